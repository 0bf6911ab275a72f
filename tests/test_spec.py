"""The config's rules, checked without torch and without Snakemake (detstudy.study.config)."""

from __future__ import annotations

import copy
import json
import subprocess
import sys

import pytest
import yaml

from types import SimpleNamespace

from detstudy.study import architectures, config, epochs, grid
from detstudy.tasks.detection.checkpoint_import import check_import_files

from conftest import ROOT

# the config's rules as one namespace: the modules of study/ the checks below exercise
spec = SimpleNamespace(**{**vars(architectures), **vars(epochs), **vars(grid), **vars(config)})


def demo_config() -> dict:
    return yaml.safe_load((ROOT / "config" / "config.yaml").read_text())


def edited(change) -> dict:
    config = copy.deepcopy(demo_config())
    change(config)
    return config


def test_the_demo_and_the_thesis_configs_pass():
    spec.check_config(demo_config())
    thesis = yaml.safe_load((ROOT / "config" / "thesis.yaml").read_text())
    spec.check_vit_resolutions(thesis)
    spec.check_augmentation_epochs(thesis)
    spec.check_multimodal_models(thesis)


def test_what_the_snakefile_imports_loads_no_torch():
    """Every package module rules/common.smk imports while the Snakefile parses."""
    import re

    modules = re.findall(r"^from (detstudy[\w.]*) import", (ROOT / "rules" / "common.smk").read_text(), re.M)
    assert "detstudy.study" in modules and "detstudy.study.chain" in modules
    code = f"import sys; sys.path.insert(0, 'src'); import {', '.join(sorted(set(modules)))}, detstudy.study.config; " \
           "sys.exit(bool({'torch', 'numpy'} & set(sys.modules)))"
    assert subprocess.run([sys.executable, "-c", code], cwd=ROOT).returncode == 0


def test_one_architecture_registry():
    """The registry (study/architectures.py) names what the builders build and the schema accepts."""
    import yaml

    from detstudy.study.architectures import CLASSIFICATION_VARIANTS, SEGMENTATION_VARIANTS
    from detstudy.tasks.detection.models import BUILDERS

    schema = yaml.safe_load((ROOT / "config" / "schema.yaml").read_text())
    accepted = schema["properties"]["models"]["additionalProperties"]["properties"]["architecture"]["enum"]
    assert list(spec.FAMILIES) == list(BUILDERS) + list(SEGMENTATION_VARIANTS) + list(CLASSIFICATION_VARIANTS) == accepted
    with pytest.raises(ValueError, match="unknown architecture 'yolo'.*Fix"):
        spec.family_of("yolo")


@pytest.mark.parametrize(("change", "message"), [
    (lambda c: c["grid"].update(models=["nope"]), r"grid.models names \['nope'\]"),
    (lambda c: c["models"]["frcnn_resnet18"].update(architecture="yolo"), r"models.frcnn_resnet18.architecture"),
    (lambda c: c["models"]["frcnn_resnet18"].update(architecture="segformer_demo"),
     r"models.frcnn_resnet18.architecture: segformer_demo is a segmentation model.*task is detection.*Fix"),
    (lambda c: c["grid"].update(resolutions=[200]), r"200 px does not suit model 'deimv2_demo'.*multiple of 32"),
    (lambda c: c["models"]["deimv2_demo"]["model"].update(num_queries=2000), r"fewer than the 2000 queries"),
    (lambda c: c["models"]["deimv2_demo"]["training"].update(augmentation={"epochs": [1, 5, 40]}),
     r"models.deimv2_demo.training.augmentation.epochs.*<= epochs \(24\)"),
    (lambda c: c["models"]["deimv2_demo"]["model"].update(backbone_weights="missing/vitt.pt"), r"not a file"),
    (lambda c: c["multimodal"].update(models=["frcnn_resnet18"]), r"not a DEIMv2 model of grid.models"),
    (lambda c: c["multimodal"].update(confusion_pair=["NORMAL", "NORMAL"]), r"names one class twice"),
    (lambda c: c["multimodal"]["phases"].pop("phase1"), r"phase1"),
    (lambda c: c["models"]["deimv2_demo"]["training"].update(warmup_factor=0.1),
     r"models.deimv2_demo.training: flat_cosine warms up.*Fix: remove warmup_factor"),
    (lambda c: (c["multimodal"]["training"].pop("lr_schedule"), c["multimodal"]["training"].update(warmup_factor=0.1)),
     r"multimodal.phases.phase1 \(over multimodal.training and models.deimv2_demo.training.*flat_cosine"),
    (lambda c: c["models"]["frcnn_resnet18"].update(import_checkpoint="x.pth"), r"only DEIMv2 \(vit\) runs"),
    (lambda c: c["statistics"].update(resamples=50), r"statistics.resamples: 50 .*at least 100"),
    (lambda c: c["statistics"].update(level=1.0), r"statistics.level: 1.0 is not a confidence level"),
    (lambda c: c["statistics"].update(baseline="yolo"), r"statistics.baseline: 'yolo' is not a model of grid.models"),
    (lambda c: c["statistics"].update(pairs=[{"a": {"model": "deimv2_demo", "resolution": 192, "phase": "phase1"},
                                              "b": {"model": "frcnn_resnet18", "resolution": 192, "phase": "phase1"}}]),
     r"statistics.pairs\[0\].b: .*frcnn_resnet18.* is not a run of the grid"),
    (lambda c: c["statistics"].update(pairs=[{"a": {"model": "deimv2_demo", "resolution": 640}, "b": {}}]),
     r"statistics.pairs\[0\].a: .*640.* is not a run of the grid"),
    (lambda c: c["models"]["deimv2_demo"].update(import_checkpoint={"192px/seed1": "x.pth"}),
     r"cells \['192px/seed0'\] of the grid have no file, \['192px/seed1'\] are not grid cells"),
])
def test_each_rule_names_the_key_and_the_fix(change, message):
    with pytest.raises(ValueError, match=message):
        spec.check_config(edited(change))


def test_the_resolution_rule_counts_the_smallest_multi_scale_size():
    """Multi-scale training goes down to 75% of the resolution: 160 px has enough positions for
    300 queries, its smallest multi-scale size (96 px) does not. The builder and the parse-time
    check apply this one rule."""
    from detstudy.tasks.detection.models import build_detector

    assert spec.deimv2_resolution_problem(160, 300) is None
    problem = spec.deimv2_resolution_problem(160, 300, multiscale_repeat=4)
    assert "96 px (the smallest multi-scale size of 160 px)" in problem
    config = edited(lambda c: (c["grid"].update(resolutions=[160]),
                               c["models"]["deimv2_demo"]["model"].update(num_queries=300, multiscale_repeat=4)))
    with pytest.raises(ValueError, match="smallest multi-scale size"):
        spec.check_vit_resolutions(config)
    with pytest.raises(ValueError, match="smallest multi-scale size"):
        build_detector("deimv2_demo", 3, 160, {"multiscale_repeat": 4})


# ------------------------------------------------------------------ checks that read the files a config names
def validated(config: dict) -> dict:
    """The config as the Snakefile sees it: the schema's defaults filled in."""
    from snakemake.utils import validate

    validate(config, str(ROOT / "config" / "schema.yaml"))
    return config


def user_dataset(tmp_path, categories) -> dict:
    config = validated(demo_config())
    train = tmp_path / "train.json"
    train.write_text(json.dumps({"images": [], "annotations": [], "categories": categories}))
    config["dataset"] = {"source": "coco", "coco": {split: {"annotations": str(train), "images": str(tmp_path)}
                                                    for split in ("train", "val", "test")}}
    return config


def test_training_categories_come_from_the_training_file_in_id_order(tmp_path):
    config = user_dataset(tmp_path, [{"id": 7, "name": "b"}, {"id": 2, "name": "a"}])
    assert spec.training_categories(config) == [{"id": 2, "name": "a"}, {"id": 7, "name": "b"}]
    (tmp_path / "train.json").write_text("{not json")
    assert spec.training_categories(config) is None  # the split's check job names the problem
    assert [c["name"] for c in spec.training_categories(validated(demo_config()))][:2] == ["NORMAL", "DEFORMACIONES"]


def test_descriptions_must_cover_the_dataset_and_the_pair(tmp_path):
    spec.check_descriptions(validated(demo_config()), ROOT)  # shipped descriptions, synthetic classes
    config = user_dataset(tmp_path, [{"id": 1, "name": "NORMAL"}, {"id": 2, "name": "DENT"}])
    with pytest.raises(ValueError, match=r"no description for the dataset's categories \['DENT'\]"):
        spec.check_descriptions(config, ROOT)
    config = validated(demo_config())
    config["multimodal"]["confusion_pair"] = ["NORMAL", "CRACK"]
    with pytest.raises(ValueError, match=r"multimodal.confusion_pair: 'CRACK' is not a class of the dataset.*Fix"):
        spec.check_descriptions(config, ROOT)


def test_a_relative_descriptions_file_is_found_in_the_workflow_folder(tmp_path, monkeypatch):
    config = validated(demo_config())
    monkeypatch.chdir(tmp_path)
    assert spec.descriptions_path(config, ROOT) == str(ROOT / config["multimodal"]["descriptions"])
    own = tmp_path / config["multimodal"]["descriptions"]
    own.parent.mkdir(parents=True)
    own.write_text("{}")
    assert spec.descriptions_path(config, ROOT) == config["multimodal"]["descriptions"]  # the user's own wins


def test_an_imported_file_that_is_missing_is_named_with_its_key(tmp_path, monkeypatch):
    config = validated(demo_config())
    config["models"]["deimv2_demo"]["import_checkpoint"] = "best_stg1.pth"
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ValueError, match=r"models.deimv2_demo.import_checkpoint: 'best_stg1.pth' is not a file.*Fix"):
        check_import_files(config)


def test_only_the_runs_that_attach_the_fusion_get_its_settings():
    config = validated(demo_config())
    config["multimodal"].update(fusion={"temperature": 0.05}, shuffle_seed=3)
    assert spec.phase_fusion(config, "phase1") == {"temperature": 0.05}
    assert spec.phase_fusion(config, "phase1_shuffled") == {"temperature": 0.05, "shuffle_seed": 3}
    for later in ("phase2", "phase3_shuffled", "phase2_notext"):  # inherited through the start checkpoint
        assert spec.phase_fusion(config, later) == {}
    # strategies 1 and 2 attach it themselves; the joint run's control has none
    assert spec.phase_fusion(config, "fusion_only_shuffled") == {"temperature": 0.05, "shuffle_seed": 3}
    assert spec.phase_fusion(config, "joint") == {"temperature": 0.05} and spec.phase_fusion(config, "joint_notext") == {}


@pytest.mark.parametrize(("change", "message"), [
    (lambda m: [m.pop("phases")], "multimodal: no strategy to run. Fix: give phases"),
    (lambda m: m.update(joint={"training": {"epochs": 30, "augmentation": {"epochs": [2, 20, 40]}}}),
     r"config multimodal.joint.training \(over models.deimv2_demo.training, which it stretches\): augmentation "
     r"epochs \[2, 20, 40\] must be"),
    (lambda m: m.update(joint={"training": {"epochs": 30}, "model": {"matcher_change_epoch": 31}}),
     r"multimodal.joint.model: \{'matcher_change_epoch': 31\} .* lie after its 30 epochs"),
    (lambda m: m.update(fusion_only={"epochs": 3, "lr_schedule": "flat_cosine", "augmentation": {"epochs": [0, 9, 9]}}),
     r"config multimodal.fusion_only \(over multimodal.training and models.deimv2_demo.training"),
    (lambda m: m.update(joint=None) or m["phases"].clear(), "multimodal: no strategy to run"),
    (lambda m: m.update(expected={"fusion_only": {"gain": [0.02, 0.04]}}),
     r"multimodal.expected.fusion_only: the config runs no fusion_only strategy \(it runs \['progressive'\]\)\. "
     r"Fix: remove the entry, or configure the strategy \(multimodal.fusion_only\)"),
    (lambda m: m.update(expected={"progressive": {"hours": [7, 6]}}),
     r"multimodal.expected.progressive.hours: \[7, 6\] runs high to low. Fix: give \[low, high\], e.g. \[6, 7\]"),
], ids=["no-strategy", "joint-windows", "joint-matcher", "fusion-only-windows", "empty-phases", "plan-not-run",
        "plan-high-to-low"])
def test_a_bad_strategy_is_named_with_its_key(change, message):
    config = edited(lambda c: change(c["multimodal"]))
    with pytest.raises(ValueError, match=message):
        spec.check_config(config)


def test_a_fusion_rate_on_a_model_without_fusion_is_refused_and_never_inherited():
    config = edited(lambda c: c["models"]["deimv2_demo"]["training"].update(fusion_lr=1e-3))
    with pytest.raises(ValueError, match=r"models.deimv2_demo.training.fusion_lr: the vanilla run has no text fusion"):
        spec.check_config(config)
    from detstudy.study.chain import chain_training

    multimodal = {"phases": {"phase1": {"epochs": 1, "lr": 1e-4}}, "fusion_only": {}}
    model = {"training": {"lr": 5e-4, "fusion_lr": 1e-3}}
    assert chain_training(model, multimodal, "phase1") == {"epochs": 1, "lr": 1e-4}  # the phase's own rate
    assert chain_training(model, multimodal, "fusion_only") == {}  # given, though empty: it runs
    config = edited(lambda c: c["multimodal"].update(fusion_only={}))
    from detstudy.study.grid import chain_phases

    assert chain_phases(config)[:2] == ["fusion_only_shuffled", "fusion_only"]


def test_a_joint_run_stretches_derived_windows_with_the_model_marks():
    """A recipe without explicit windows: the official rule's windows at its own length, stretched
    like multiscale_stop_epoch, so the two stay together."""
    from detstudy.study.chain import joint_settings

    model = {"model": {"multiscale_stop_epoch": 90}, "training": {"epochs": 102, "augmentation": {"mosaic": 0.5}}}
    model_settings, training = joint_settings(model, {"training": {"epochs": 204}})
    assert training["augmentation"] == {"mosaic": 0.5, "epochs": [8, 98, 180]}  # derived [4, 49, 90], doubled
    assert model_settings["multiscale_stop_epoch"] == 180
    # an augmentation of the joint run's own replaces the recipe's, its windows still the stretched ones
    _, training = joint_settings(model, {"training": {"epochs": 204, "augmentation": {"mosaic": 0.2}}})
    assert training["augmentation"] == {"mosaic": 0.2, "epochs": [8, 98, 180]}
    _, training = joint_settings(model, {"training": {"epochs": 204, "augmentation": {"epochs": [4, 100, 190]}}})
    assert training["augmentation"] == {"epochs": [4, 100, 190]}  # given: taken as given


def test_no_text_controls_never_get_a_fusion_rate():
    """They have no fusion: a fusion rate would change nothing but their parameters (and rerun them)."""
    from detstudy.study.chain import chain_training

    multimodal = {"training": {"fusion_lr": 1e-3}, "phases": {"phase1": {}, "phase2": {"epochs": 2}},
                  "joint": {"training": {"epochs": 4, "fusion_lr": 2e-3}}}
    model = {"training": {"epochs": 2, "lr": 5e-4}}
    assert chain_training(model, multimodal, "phase2")["fusion_lr"] == 1e-3
    assert chain_training(model, multimodal, "phase2_shuffled")["fusion_lr"] == 1e-3
    assert chain_training(model, multimodal, "joint")["fusion_lr"] == 2e-3
    for control in ("phase2_notext", "joint_notext"):
        assert "fusion_lr" not in chain_training(model, multimodal, control), control


def test_a_joint_run_of_another_length_stretches_the_demo_recipe():
    config = edited(lambda c: c["multimodal"].update(joint={"training": {"epochs": 36, "fusion_lr": 1e-3}}))
    spec.check_config(config)
    from detstudy.study.chain import chain_training

    joint = chain_training(config["models"]["deimv2_demo"], config["multimodal"], "joint")
    assert joint["epochs"] == 36 and joint["flat_epochs"] == 18 and joint["lr"] == 5e-4  # 12 of 24, stretched
