"""The config's rules, written once and without torch.

The Snakefile checks a config with these functions while it parses (before any job), and the
jobs build from the same definitions: the family of each architecture, DEIMv2's resolution
rule, the augmentation epoch windows, the defaults both need. Every check raises a
``ValueError`` that names the config key and the fix.
"""

from __future__ import annotations

import json
import os
import re
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from detstudy.data.study_classes import CATEGORIES as SYNTHETIC_CATEGORIES
from detstudy.multimodal.chain import Phase, chain_names, phase_training
from detstudy.multimodal.descriptions import load_descriptions, prompts_for

# name -> DINOv3 backbone and DEIMv2 encoder/decoder sizes. S and M follow the official
# configs (deimv2_dinov3_{s,m}_coco): backbone taps after blocks 3/7/11, STA with 16 stem
# planes, 4 decoder layers, FFN 512, 300 queries, 100 denoising queries.
VARIANTS: dict[str, dict[str, Any]] = {
    "deimv2_s": {"vit_hidden": 192, "vit_heads": 3, "vit_layers": 12, "taps": (3, 7, 11),
                 "hidden": 192, "depth_mult": 0.67, "expansion": 0.34, "ffn": 512, "decoder_layers": 4},
    "deimv2_m": {"vit_hidden": 256, "vit_heads": 4, "vit_layers": 12, "taps": (3, 7, 11),
                 "hidden": 256, "depth_mult": 1.0, "expansion": 0.67, "ffn": 512, "decoder_layers": 4},
    # CPU demo: a 4-block ViT and a narrow encoder/decoder
    "deimv2_demo": {"vit_hidden": 96, "vit_heads": 3, "vit_layers": 4, "taps": (1, 2, 3),
                    "hidden": 96, "depth_mult": 0.34, "expansion": 0.34, "ffn": 256, "decoder_layers": 3},
}
DEIMV2_ARCHITECTURES = tuple(VARIANTS)

CNN_ARCHITECTURES = ("fasterrcnn_resnet18_fpn", "fasterrcnn_efficientnet_b0_fpn")
FAMILIES: dict[str, str] = {**{name: "cnn" for name in CNN_ARCHITECTURES},
                            **{name: "vit" for name in DEIMV2_ARCHITECTURES}}
DEFAULT_EPOCHS = 12  # TrainSettings.epochs
DEIMV2_STRIDES = (8, 16, 32)  # the encoder's levels
DEIMV2_QUERIES = 300  # the official num_queries

# The official DEIM epoch rule, stated for N augmented epochs: start 4, flat 4 + N // 2, then
# 12 epochs without augmentation; the shortest schedule it is given for is 20 + 12 epochs,
# and shorter runs scale the start and the plain tail down with the run.
OFFICIAL_START_EPOCH = 4
OFFICIAL_NO_AUG_EPOCHS = 12
OFFICIAL_MIN_EPOCHS = 32


def family_of(architecture: str) -> str:
    """``cnn`` (Faster R-CNN) or ``vit`` (DEIMv2)."""
    if architecture not in FAMILIES:
        raise ValueError(f"unknown architecture {architecture!r}. Fix: use one of {', '.join(sorted(FAMILIES))}.")
    return FAMILIES[architecture]


@dataclass(frozen=True)
class EpochWindows:
    start: int  # policy ops, mixup and copy-blend from this epoch
    flat: int  # mosaic and mixup until this epoch (the learning rate stays flat until here too)
    stop: int  # no policy op, mixup or copy-blend from this epoch on

    @classmethod
    def derive(cls, epochs: int) -> "EpochWindows":
        """The official rule from the number of epochs alone (132 -> [4, 64, 120], 102 -> [4, 49, 90])."""
        scale = min(1.0, epochs / OFFICIAL_MIN_EPOCHS)
        start = round(OFFICIAL_START_EPOCH * scale)
        stop = epochs - round(OFFICIAL_NO_AUG_EPOCHS * scale)
        return cls(start, start + stop // 2, stop)

    @classmethod
    def resolve(cls, epochs: int, given: list[int] | None) -> "EpochWindows":
        if given is None:
            return cls.derive(epochs)
        if len(given) != 3 or not 0 <= given[0] <= given[1] <= given[2] <= epochs:
            raise ValueError(f"augmentation epochs {given} must be [start, flat, stop] with "
                             f"0 <= start <= flat <= stop <= epochs ({epochs}). Fix: e.g. "
                             f"{list(cls.derive(epochs).as_tuple())}, or leave it out to derive it from epochs.")
        return cls(*given)

    def as_tuple(self) -> tuple[int, int, int]:
        return self.start, self.flat, self.stop


def multiscale_sizes(base: int, repeat: int) -> list[int]:
    """Official generate_scales: 75% to 125% of the base size in steps of 32, the base size
    ``repeat`` times in the middle (640, 20 -> 480 ... 608, 640 x 20, 800 ... 672)."""
    low, high = int(base * 0.75 / 32) * 32, int(base * 1.25 / 32) * 32
    steps = (base - low) // 32
    return [low + 32 * i for i in range(steps)] + [base] * repeat + [high - 32 * i for i in range(steps)]


def deimv2_resolution_problem(resolution: int, num_queries: int = DEIMV2_QUERIES,
                              multiscale_repeat: int | None = None) -> str | None:
    """Why DEIMv2 cannot train at ``resolution`` px (None when it can): square inputs on the
    stride-32 grid, with at least ``num_queries`` encoder positions at the smallest size it
    sees (multi-scale training goes down to 75% of the resolution)."""
    if resolution % 32:
        return (f"resolution {resolution} is not a multiple of 32 (the ViT's patch size 16 and the encoder's "
                f"stride 32). Fix: use e.g. {max(round(resolution / 32), 1) * 32}.")
    smallest = min(multiscale_sizes(resolution, multiscale_repeat)) if multiscale_repeat is not None else resolution
    positions = sum((smallest // stride) ** 2 for stride in DEIMV2_STRIDES)
    if positions < num_queries:
        where = (f"{smallest} px (the smallest multi-scale size of {resolution} px)" if smallest != resolution
                 else f"{resolution} px")
        return (f"{where} gives {positions} encoder positions, fewer than the {num_queries} queries selected "
                "from them. Fix: raise the resolution or lower num_queries.")
    return None


def check_training_combination(values: dict[str, Any]) -> None:
    """Training settings that are each valid but not together (the schema checks them one by one)."""
    if values.get("lr_schedule") == "flat_cosine" and "warmup_factor" in values:
        raise ValueError("flat_cosine warms up as the official FlatCosineLRScheduler does, lr x (i / warmup_iters)^2 "
                         "from 0; warmup_factor is for the other schedules. Fix: remove warmup_factor.")
    if values.get("amp_dtype", "float16") not in ("float16", "bfloat16"):
        raise ValueError(f"amp_dtype {values['amp_dtype']!r} is not one of float16, bfloat16")


# --- the parse-time checks of a config (Snakemake's validate has filled in the defaults) -------

def _models(config: dict) -> dict[str, Any]:
    return config["models"]


def _vit_models(config: dict) -> list[str]:
    return [m for m in config["grid"]["models"] if family_of(_models(config)[m]["architecture"]) == "vit"]


def check_grid(config: dict) -> None:
    """Grid entries that name no model, and architectures no family knows."""
    unknown = [name for name in config["grid"]["models"] if name not in _models(config)]
    if unknown:
        raise ValueError(f"config grid.models names {unknown}, which are not keys of `models` "
                         f"({sorted(_models(config))}). Fix: add them under `models:` or remove them from grid.models.")
    for name in config["grid"]["models"]:
        try:
            family_of(_models(config)[name]["architecture"])
        except ValueError as error:
            raise ValueError(f"config models.{name}.architecture: {error}") from None


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


def import_cells(config: dict, name: str) -> dict[str, str]:
    """{"<res>px/seed<seed>": file} for every grid cell of an imported model. A file is one
    training run, so it stands for the grid's only cell, never for several seeds or resolutions."""
    given = _models(config)[name]["import_checkpoint"]
    cells = [f"{r}px/seed{s}" for r in config["grid"]["resolutions"] for s in config["grid"]["seeds"]]
    key = f"config models.{name}.import_checkpoint"
    if isinstance(given, str):
        if len(cells) > 1:
            raise ValueError(
                f"{key}: one file for the {len(cells)} grid cells {cells}: it would stand for every seed and "
                "resolution, with no variance between them. Fix: give one file per cell, e.g. "
                f"import_checkpoint: {{{cells[0]!r}: best_stg1.pth, ...}}, or a grid of one resolution and seed.")
        return {cells[0]: given}
    missing = [cell for cell in cells if cell not in given]
    extra = [cell for cell in given if cell not in cells]
    if missing or extra:
        raise ValueError(f"{key}: cells {missing} of the grid have no file" + (f", {extra} are not grid cells" if extra
                         else "") + f". Fix: give one file for each of {cells}.")
    return dict(given)


def check_multimodal_models(config: dict) -> None:
    """The extended models must be DEIMv2 models the grid trains; the chain must be whole."""
    multimodal = config.get("multimodal")
    if not multimodal:
        return
    for name in multimodal["models"]:
        if name not in config["grid"]["models"] or name not in _vit_models(config):
            raise ValueError(f"config multimodal.models: {name!r} is not a DEIMv2 model of grid.models "
                             f"({_vit_models(config)}). Fix: name a DEIMv2 model that the grid trains (its vanilla "
                             "run starts phase 1).")
    chain_names(multimodal["phases"], multimodal.get("controls", []))  # raises on phase2 without phase1
    for name in multimodal["models"]:  # each phase's settings as its job will merge them
        for phase, own in multimodal["phases"].items():
            merged = phase_training(_models(config)[name].get("training"), multimodal.get("training"), own)
            try:
                check_training_combination(merged)
            except ValueError as error:
                raise ValueError(f"config multimodal.phases.{phase} (over multimodal.training and "
                                 f"models.{name}.training, which a phase inherits): {error}") from None
    pair = multimodal["confusion_pair"]
    if pair[0] == pair[1]:
        raise ValueError(f"config multimodal.confusion_pair: {pair} names one class twice. Fix: name the two "
                         "classes whose confusion the report follows (the study: [ROTURA_FRACTURA, RAYONES_ARANAZOS]).")


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


def check_import_files(config: dict) -> None:
    """Every imported run's file, read now when torch is importable here (otherwise the import
    job checks it): a missing, foreign or mismatched file stops the workflow before any job."""
    for name in config["grid"]["models"]:
        given = _models(config)[name].get("import_checkpoint")
        if not given:
            continue
        key = f"config models.{name}.import_checkpoint"
        for cell, path in import_cells(config, name).items():
            where = key if isinstance(given, str) else f"{key}[{cell!r}]"
            if not os.path.isfile(path):
                raise ValueError(f"{where}: {path!r} is not a file (relative paths start at {os.getcwd()}). Fix: "
                                 "point it to the official training's best_stg1.pth (or another official checkpoint).")
            try:
                from detstudy.importing import check_import_file  # torch: only when a run is imported
            except ImportError as error:
                print(f"warning: {where} is checked by the import job ({error})", file=sys.stderr)
                continue
            categories = training_categories(config)
            try:
                check_import_file(path, _models(config)[name]["architecture"],
                                  None if categories is None else [c["id"] for c in categories])
            except ValueError as error:
                raise ValueError(f"{where}: {error}") from None


def phase_fusion(config: dict, phase_name: str) -> dict[str, Any]:
    """How the text fusion is attached, for the runs that attach it (phase 1 with text; later
    phases inherit it through their start checkpoint, the no-text control never has it)."""
    phase = Phase.parse(phase_name)
    if not (phase.uses_text and phase.stage == 1):
        return {}
    fusion = {"temperature": config["multimodal"]["fusion"]["temperature"]}
    if phase.control == "shuffled":
        fusion["shuffle_seed"] = config["multimodal"]["shuffle_seed"]
    return fusion


MIN_RESAMPLES = 100


def grid_cells(config: dict) -> list[tuple[str, int, str]]:
    """Every (model, resolution, phase) of the grid: the vanilla runs, then the multimodal ones."""
    multimodal = config.get("multimodal") or {}
    phases = chain_names(multimodal["phases"], multimodal.get("controls", [])) if multimodal else []
    return [(model, int(resolution), phase) for model in config["grid"]["models"]
            for resolution in config["grid"]["resolutions"]
            for phase in ["base"] + (phases if model in (multimodal.get("models") or []) else [])]


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


def check_config(config: dict) -> None:
    """The checks that need only the config (and the files it names)."""
    check_grid(config)
    check_gpus(config)
    check_dataset_paths(config)
    check_weight_files(config)
    check_vit_resolutions(config)
    check_augmentation_epochs(config)
    check_multimodal_models(config)
    check_statistics(config)
    for name in config["grid"]["models"]:
        if _models(config)[name].get("import_checkpoint"):
            if family_of(_models(config)[name]["architecture"]) != "vit":
                raise ValueError(f"config models.{name}.import_checkpoint: {name} is a "
                                 f"{_models(config)[name]['architecture']} model; only DEIMv2 (vit) runs can be "
                                 "imported. Fix: remove the key.")
            import_cells(config, name)


def check_workflow(config: dict, workflow_dir) -> None:
    """Everything checked while the Snakefile parses: the config's own rules, the class
    descriptions against the dataset, then the imported checkpoint files."""
    check_config(config)
    check_descriptions(config, workflow_dir)
    check_import_files(config)
