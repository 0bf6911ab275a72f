"""The config's rules, written once and without torch.

The Snakefile checks a config with these functions while it parses (before any job); the
rules they apply (architectures, epoch windows, the grid) live in the modules beside this one,
which the jobs build from. Every check raises a ``ValueError`` that names the config key and
the fix.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import Any

from detstudy.study.classes import CATEGORIES as SYNTHETIC_CATEGORIES
from detstudy.study.architectures import (DEIMV2_ARCHITECTURES, DEIMV2_QUERIES, TASK_ARCHITECTURES,
                                         deimv2_resolution_problem, family_of)
from detstudy.study.chain import (MODEL_EPOCH_MARKS, Phase, chain_names, chain_training, configured_strategies,
                                   joint_settings)
from detstudy.study.descriptions import load_descriptions, prompts_for
from detstudy.study.epochs import DEFAULT_EPOCHS, EpochWindows
from detstudy.study.grid import grid_cells, import_cells
from detstudy.study.training_checks import check_training_combination
from detstudy.study.classification import check_classification
from detstudy.study.segmentation import SEGMENTATION_AUGMENTATIONS, check_segmentation

#: Augmentation keys only the segmentation task knows (the flips are both tasks').
SEGMENTATION_ONLY_AUGMENTATIONS = set(SEGMENTATION_AUGMENTATIONS) - {"horizontal_flip", "vertical_flip"}

# --- the parse-time checks of a config (Snakemake's validate has filled in the defaults) -------

def _models(config: dict) -> dict[str, Any]:
    return config["models"]


def _vit_models(config: dict) -> list[str]:
    """The grid's DEIMv2 models (SegFormer is a ViT too, but not a detector)."""
    return [m for m in config["grid"]["models"] if _models(config)[m]["architecture"] in DEIMV2_ARCHITECTURES]


def check_grid(config: dict) -> None:
    """Grid entries that name no model, and architectures no family knows."""
    unknown = [name for name in config["grid"]["models"] if name not in _models(config)]
    if unknown:
        raise ValueError(f"config grid.models names {unknown}, which are not keys of `models` "
                         f"({sorted(_models(config))}). Fix: add them under `models:` or remove them from grid.models.")
    task = config.get("task", "detection")
    for name in config["grid"]["models"]:
        architecture = _models(config)[name]["architecture"]
        try:
            family_of(architecture)
        except ValueError as error:
            raise ValueError(f"config models.{name}.architecture: {error}") from None
        if architecture not in TASK_ARCHITECTURES[task]:
            other = next(t for t, names in TASK_ARCHITECTURES.items() if architecture in names)
            raise ValueError(f"config models.{name}.architecture: {architecture} is a {other} model, and this "
                             f"study's task is {task}. Fix: use one of {', '.join(TASK_ARCHITECTURES[task])}.")


def check_dataset_paths(config: dict) -> None:
    """A user dataset whose files are not there fails now, naming the config key."""
    if config["dataset"]["source"] != "coco":
        return
    for split in ("train", "val", "test"):
        for key, exists in (("annotations", os.path.isfile), ("images", os.path.isdir)):
            path = config["dataset"]["coco"][split][key]
            if not exists(path):
                raise ValueError(f"config dataset.coco.{split}.{key}: {path!r} does not exist (relative paths start "
                                 f"at {os.getcwd()}). Fix: point it to your COCO {key} of the {split} split.")


def check_weight_files(config: dict) -> None:
    """Local weight files must be there before hours of GPU time are queued. Torchvision weight
    names (ResNet18_Weights.IMAGENET1K_V1) are resolved by the job."""
    for name in config["grid"]["models"]:
        settings = _models(config)[name].get("model") or {}
        path = settings.get("backbone_weights")
        if path and not re.fullmatch(r"\w+_Weights\.\w+", path) and not os.path.isfile(path):
            raise ValueError(f"config models.{name}.model.backbone_weights: {path!r} is not a file (relative paths "
                             f"start at {os.getcwd()}). Fix: download it there, correct the path, or set it to null "
                             "to train the backbone from scratch.")
        path = settings.get("weights")
        if path and not os.path.isfile(path):
            raise ValueError(f"config models.{name}.model.weights: {path!r} is not a file (relative paths start at "
                             f"{os.getcwd()}). Fix: download the official DEIMv2 checkpoint there, correct the path, "
                             "or set it to null.")


def check_vit_resolutions(config: dict) -> None:
    """Every DEIMv2 model of the grid at every grid resolution, by the rule its builder applies."""
    for name in _vit_models(config):
        settings = _models(config)[name].get("model") or {}
        for px in config["grid"]["resolutions"]:
            problem = deimv2_resolution_problem(px, settings.get("num_queries", DEIMV2_QUERIES),
                                                settings.get("multiscale_repeat"))
            if problem:
                raise ValueError(f"config grid.resolutions: {px} px does not suit model {name!r}: {problem} "
                                 f"(models.{name}.model.num_queries)")


def check_augmentation_epochs(config: dict) -> None:
    """[start, flat, stop] must lie inside the run: caught here, not after the data is loaded."""
    for name in config["grid"]["models"]:
        training = _models(config)[name].get("training") or {}
        try:
            check_training_combination(training)
        except ValueError as error:
            raise ValueError(f"config models.{name}.training: {error}") from None
        try:
            EpochWindows.resolve(training.get("epochs", DEFAULT_EPOCHS), (training.get("augmentation") or {}).get("epochs"))
        except ValueError as error:
            raise ValueError(f"config models.{name}.training.augmentation.epochs: "
                             f"{str(error).removeprefix('augmentation epochs ')}") from None


def check_multimodal_models(config: dict) -> None:
    """The extended models must be DEIMv2 models the grid trains; the chain must be whole."""
    multimodal = config.get("multimodal")
    if not multimodal:
        return
    for name in multimodal["models"]:
        if name not in config["grid"]["models"] or name not in _vit_models(config):
            raise ValueError(f"config multimodal.models: {name!r} is not a DEIMv2 model of grid.models "
                             f"({_vit_models(config)}). Fix: name a DEIMv2 model that the grid trains (its vanilla "
                             "run is the strategies' reference and the start of phase 1 and the fusion-only run).")
    if not configured_strategies(multimodal):
        raise ValueError("config multimodal: no strategy to run. Fix: give phases (strategy 3, progressive "
                         "unfreezing), fusion_only (strategy 1) or joint (strategy 2), or leave multimodal out.")
    names = chain_names(multimodal)  # raises on phase2 without phase1
    own_keys = {"fusion_only": "multimodal.fusion_only", "joint": "multimodal.joint.training"}
    for name in multimodal["models"]:  # each run's settings as its job will merge them
        model = _models(config)[name]
        for run in (n for n in names if Phase.parse(n).control is None):
            strategy = Phase.parse(run).strategy
            where = own_keys.get(strategy, f"multimodal.phases.{run}")
            merged = chain_training(model, multimodal, run)
            inherits = "models.{0}.training, which it stretches" if strategy == "joint" else \
                "multimodal.training and models.{0}.training, which it inherits"
            try:
                check_training_combination(merged)
                EpochWindows.resolve(merged.get("epochs", DEFAULT_EPOCHS), (merged.get("augmentation") or {}).get("epochs"))
            except ValueError as error:
                raise ValueError(f"config {where} (over {inherits.format(name)}): {error}") from None
        if multimodal.get("joint"):
            model_settings = joint_settings(model, multimodal["joint"])[0]
            epochs = chain_training(model, multimodal, "joint").get("epochs", DEFAULT_EPOCHS)
            late = {k: v for k, v in model_settings.items() if k in MODEL_EPOCH_MARKS and v is not None and v > epochs}
            if late:
                raise ValueError(f"config multimodal.joint.model: {late} (models.{name}.model stretched to the joint "
                                 f"run's length, then multimodal.joint.model) lie after its {epochs} epochs. Fix: set "
                                 f"them to at most {epochs} in multimodal.joint.model.")
    check_expectations(multimodal)
    pair = multimodal["confusion_pair"]
    if pair[0] == pair[1]:
        raise ValueError(f"config multimodal.confusion_pair: {pair} names one class twice. Fix: name the two "
                         "classes whose confusion the report follows (the study: [ROTURA_FRACTURA, RAYONES_ARANAZOS]).")


def check_expectations(multimodal: dict) -> None:
    """The plan's expected gains and hours: ranges low to high, for strategies the config runs."""
    strategies = configured_strategies(multimodal)
    for strategy, expected in (multimodal.get("expected") or {}).items():
        if strategy not in strategies:
            raise ValueError(f"config multimodal.expected.{strategy}: the config runs no {strategy} strategy (it runs "
                             f"{strategies}). Fix: remove the entry, or configure the strategy "
                             f"({'multimodal.phases' if strategy == 'progressive' else 'multimodal.' + strategy}).")
        for key, (low, high) in expected.items():
            if low > high:
                raise ValueError(f"config multimodal.expected.{strategy}.{key}: [{low}, {high}] runs high to low. "
                                 f"Fix: give [low, high], e.g. [{high}, {low}].")


def training_categories(config: dict) -> list[dict] | None:
    """The training split's categories (``id``, ``name``), in id order, read without its images;
    ``None`` when the file cannot be read yet (the split's check job reports why)."""
    if config["dataset"]["source"] == "synthetic":
        return [{"id": int(c["id"]), "name": str(c["name"])} for c in SYNTHETIC_CATEGORIES]
    try:
        with open(config["dataset"]["coco"]["train"]["annotations"]) as handle:
            categories = json.load(handle)["categories"]
        return sorted(({"id": int(c["id"]), "name": str(c["name"])} for c in categories), key=lambda c: c["id"])
    except (OSError, ValueError, KeyError, TypeError):
        return None


def descriptions_path(config: dict, workflow_dir) -> str:
    """The class-descriptions file: a relative path is looked up in the working directory, then
    in the workflow's own folder (where config/class_descriptions.yaml ships)."""
    path = config["multimodal"]["descriptions"]
    shipped = Path(workflow_dir, path)
    return str(shipped) if not os.path.exists(path) and shipped.is_file() else path


def check_descriptions(config: dict, workflow_dir) -> None:
    """Every class of the dataset has a description, and the confusion pair names two classes."""
    multimodal = config.get("multimodal")
    if not multimodal:
        return
    source = descriptions_path(config, workflow_dir)
    descriptions = load_descriptions(source)
    categories = training_categories(config)
    names = None if categories is None else [c["name"] for c in categories]
    if names is not None:
        prompts_for(descriptions, names, multimodal["prompt"], source=source)
    for name in multimodal["confusion_pair"]:
        if name not in (names or descriptions):
            raise ValueError(
                f"config multimodal.confusion_pair: {name!r} is not a class of the dataset "
                f"({names or sorted(descriptions)}). Fix: name two classes as spelled in the annotation files.")


def phase_fusion(config: dict, phase_name: str) -> dict[str, Any]:
    """How the text fusion is attached, for the runs that attach it (phase 1, the fusion-only and
    joint runs with text; later phases inherit it through their start checkpoint, the no-text
    controls never have it)."""
    phase = Phase.parse(phase_name)
    if not phase.attaches_fusion:
        return {}
    fusion = {"temperature": config["multimodal"]["fusion"]["temperature"]}
    if phase.control == "shuffled":
        fusion["shuffle_seed"] = config["multimodal"]["shuffle_seed"]
    return fusion


MIN_RESAMPLES = 100


def check_statistics(config: dict) -> None:
    """The bootstrap settings, the baseline and the extra pairs name what the grid runs."""
    settings = config.get("statistics") or {}
    resamples, level = settings.get("resamples", MIN_RESAMPLES), settings.get("level", 0.95)
    if resamples < MIN_RESAMPLES:
        raise ValueError(f"config statistics.resamples: {resamples} resamples give no usable 95% interval. Fix: "
                         f"use at least {MIN_RESAMPLES} (10000 for p-values to three decimals).")
    if not 0 < level < 1:
        raise ValueError(f"config statistics.level: {level} is not a confidence level. Fix: a number between 0 and "
                         "1, such as 0.95.")
    baseline = settings.get("baseline")
    if baseline is not None and baseline not in config["grid"]["models"]:
        raise ValueError(f"config statistics.baseline: {baseline!r} is not a model of grid.models "
                         f"({config['grid']['models']}). Fix: name one of them (the thesis: frcnn_resnet18), or null.")
    cells = grid_cells(config)
    for number, pair in enumerate(settings.get("pairs") or []):
        for side in ("a", "b"):
            cell = pair[side]
            key = (cell["model"], int(cell["resolution"]), cell.get("phase", "base"))
            if key not in cells:
                raise ValueError(f"config statistics.pairs[{number}].{side}: {cell} is not a run of the grid. Fix: "
                                 f"name a model, resolution and phase the grid runs, e.g. {dict(zip(('model', 'resolution', 'phase'), cells[0]))}.")


#: Memory (MB) and wall time (minutes) per kind of job where ``compute.jobs`` does not say.
JOB_LIMITS = {"training": {"mem_mb": 32000, "runtime": 2880}, "evaluation": {"mem_mb": 16000, "runtime": 120},
              "light": {"mem_mb": 4000, "runtime": 60}}


def job_limits(config: dict, kind: str) -> dict:
    """``compute.jobs.<kind>`` over its defaults (a config may give one of the two)."""
    return {**JOB_LIMITS[kind], **((config.get("compute") or {}).get("jobs") or {}).get(kind, {})}


def check_gpus(config: dict) -> None:
    """``compute.gpus`` shares GPUs out one per job: each job then sees one GPU, its own."""
    compute = config.get("compute") or {}
    gpus, device = compute.get("gpus") or [], compute.get("device", "auto")
    if len(set(gpus)) != len(gpus):
        raise ValueError(f"config compute.gpus: {gpus} names a GPU twice. Fix: list each id once.")
    if gpus and device not in ("auto", "cuda"):
        raise ValueError(f"config compute.device: {device!r} with compute.gpus {gpus}: each job gets one GPU of "
                         "the list as its only 'cuda'. Fix: set compute.device to cuda (or auto), or drop compute.gpus.")


def check_config(config: dict, workflow_dir=None) -> None:
    """The checks that need only the config (and the files it names)."""
    check_grid(config)
    check_gpus(config)
    check_augmentation_epochs(config)
    check_statistics(config)
    if config.get("task", "detection") == "segmentation":
        check_segmentation(config, workflow_dir)
        return
    if config.get("task", "detection") == "classification":
        check_classification(config)
        return
    check_dataset_paths(config)
    check_weight_files(config)
    check_vit_resolutions(config)
    check_multimodal_models(config)
    for name in config["grid"]["models"]:
        training = _models(config)[name].get("training") or {}
        foreign = sorted(set(training.get("augmentation") or {}) & SEGMENTATION_ONLY_AUGMENTATIONS)
        if foreign:
            raise ValueError(f"config models.{name}.training.augmentation: {foreign} are segmentation augmentations. "
                             "Fix: remove them (detection: photometric, zoom_out, iou_crop, mosaic, mixup, copy_blend).")
        if training.get("fusion_lr") is not None:
            raise ValueError(f"config models.{name}.training.fusion_lr: the vanilla run has no text fusion. Fix: set "
                             "it where a fusion trains, in multimodal.joint.training (or a phase, or fusion_only).")
        if training.get("select_metric", "AP") not in ("AP", "AP50"):
            raise ValueError(f"config models.{name}.training.select_metric: {training['select_metric']} is not a "
                             "detection metric. Fix: use AP or AP50.")
    for name in config["grid"]["models"]:
        if _models(config)[name].get("import_checkpoint"):
            if family_of(_models(config)[name]["architecture"]) != "vit":
                raise ValueError(f"config models.{name}.import_checkpoint: {name} is a "
                                 f"{_models(config)[name]['architecture']} model; only DEIMv2 (vit) runs can be "
                                 "imported. Fix: remove the key.")
            import_cells(config, name)


def check_workflow(config: dict, workflow_dir) -> None:
    """Everything checked here while the Snakefile parses: the config's own rules and the class
    descriptions against the dataset (the imported checkpoint files need torch: the detection
    task checks them, ``tasks.detection.checkpoint_import.check_import_files``)."""
    check_config(config, workflow_dir)
    if config.get("task", "detection") == "detection":
        check_descriptions(config, workflow_dir)
