"""Both shipped configs validate against the schema; the thesis config survives Snakemake's merge."""

from __future__ import annotations

import copy
from pathlib import Path

import pytest
import yaml
from snakemake.utils import update_config, validate

ROOT = Path(__file__).resolve().parents[1]
SCHEMA = str(ROOT / "config" / "schema.yaml")


def load(name: str) -> dict:
    return yaml.safe_load((ROOT / "config" / name).read_text())


@pytest.mark.parametrize("name", ["config.yaml", "thesis.yaml", "segmentation.yaml", "segmentation_study.yaml",
                                  "classification.yaml", "classification_study.yaml"])
def test_shipped_configs_are_valid(name):
    config = load(name)
    validate(config, SCHEMA)
    assert set(config["grid"]["models"]) <= set(config["models"])


def test_defaults_come_from_the_schema():
    config = {"dataset": {"name": "x", "source": "synthetic", "synthetic": {}},
              "grid": {"models": ["m"], "resolutions": [64]},
              "models": {"m": {"architecture": "fasterrcnn_resnet18_fpn"}}}
    validate(config, SCHEMA)
    assert config["grid"]["seeds"] == [0]
    assert config["evaluation"]["score_threshold"] == 0.5
    assert config["compute"]["device"] == "auto"


def test_coco_source_requires_the_splits():
    config = {"dataset": {"name": "x", "source": "coco"}, "grid": {"models": ["m"], "resolutions": [64]},
              "models": {"m": {"architecture": "fasterrcnn_resnet18_fpn"}}}
    with pytest.raises(Exception, match="coco"):
        validate(config, SCHEMA)


def test_thesis_config_merged_over_the_demo_equals_the_thesis_config():
    """Without --replace-workflow-config Snakemake merges; no demo setting may leak into the study."""
    thesis = load("thesis.yaml")
    merged = copy.deepcopy(load("config.yaml"))
    update_config(merged, thesis)
    for name in thesis["grid"]["models"]:
        assert merged["models"][name] == thesis["models"][name], name
    for section in ("grid", "multimodal", "evaluation", "compute", "figures", "report"):
        assert merged[section] == thesis[section], section
    assert merged["dataset"]["source"] == "coco" and merged["dataset"]["coco"] == thesis["dataset"]["coco"]


def test_thesis_vit_runs_use_the_official_deim_recipe():
    from detstudy.tasks.detection.data.augment import DEIM_OFFICIAL, EpochWindows

    thesis = load("thesis.yaml")
    for name, epochs in (("deimv2_s", 132), ("deimv2_m", 102)):
        training = thesis["models"][name]["training"]
        augmentation = dict(training["augmentation"])
        assert training["epochs"] == epochs
        assert augmentation.pop("epochs") == list(EpochWindows.derive(epochs).as_tuple())
        assert augmentation == DEIM_OFFICIAL
        assert (training["grad_clip"], training["weight_decay"], training["ema_decay"]) == (0.1, 1e-4, 0.9999)
        assert training["backbone_lr"] / training["lr"] == pytest.approx(2.5e-5 / 5e-4)
        assert training["lr_schedule"] == "flat_cosine" and training["ema"] is True and training["ema_restart"] is True
    assert thesis["models"]["deimv2_s"]["model"]["backbone_weights"].endswith("vitt_distill.pt")
    assert thesis["models"]["deimv2_m"]["model"]["backbone_weights"].endswith("vittplus_distill.pt")


def test_thesis_multimodal_phases_follow_the_study_plan():
    multimodal = load("thesis.yaml")["multimodal"]
    phases = multimodal["phases"]
    assert [phases[p]["epochs"] for p in ("phase1", "phase2", "phase3")] == [20, 20, 20]
    assert [phases[p]["lr"] for p in ("phase1", "phase2", "phase3")] == [1e-4, 5e-5, 2e-5]
    assert multimodal["training"]["early_stop_drop"] == 0.02 and multimodal["training"]["select_metric"] == "AP"
    assert multimodal["text_encoder"]["model"] == "openai/clip-vit-base-patch32"
    assert multimodal["confusion_pair"] == ["ROTURA_FRACTURA", "RAYONES_ARANAZOS"]


def test_thesis_runs_the_plans_three_strategies_with_its_epochs_and_rates():
    from detstudy.study.chain import chain_training, joint_settings
    from detstudy.study.config import check_multimodal_models

    thesis = load("thesis.yaml")
    multimodal, model = thesis["multimodal"], thesis["models"]["deimv2_m"]
    assert 30 <= multimodal["fusion_only"]["epochs"] <= 40 and multimodal["fusion_only"]["lr"] == 1e-4
    joint = chain_training(model, multimodal, "joint")
    assert 150 <= joint["epochs"] <= 200
    assert (joint["backbone_lr"], joint["lr"], joint["fusion_lr"]) == (4e-5, 4e-4, 1e-3)
    assert joint["ema"] and joint["ema_restart"] and joint["lr_schedule"] == "flat_cosine"  # the whole recipe
    assert joint["augmentation"]["mosaic"] == 0.5 and joint["augmentation"]["epochs"][2] == joint["epochs"] - 12
    assert joint_settings(model, multimodal["joint"])[0]["multiscale_stop_epoch"] == joint["augmentation"]["epochs"][2]
    # the plan's expectations stand beside the measured numbers
    assert multimodal["expected"]["joint"] == {"gain": [-0.04, 0.10], "hours": [16, 20]}
    assert set(multimodal["expected"]) == {"fusion_only", "joint", "progressive"}
    check_multimodal_models(thesis)  # every run's merged settings pass the parse-time checks


def test_the_strategies_config_runs_the_three_over_the_demo():
    from detstudy.study.config import check_config
    from detstudy.study.grid import chain_phases

    merged = load("config.yaml")
    for key, value in load("strategies.yaml").items():  # Snakemake's --configfile merge, key by key
        merged[key] = {**merged[key], **value} if isinstance(value, dict) else value
    validate(merged, SCHEMA)
    check_config(merged, ROOT)
    assert merged["grid"]["models"] == ["deimv2_demo"]
    assert chain_phases(merged)[:4] == ["fusion_only_shuffled", "fusion_only", "joint_notext", "joint"]
    assert {"phase1", "phase2", "phase3"} <= set(chain_phases(merged))


def test_the_segmentation_study_config_passes_every_parse_time_check(tmp_path, monkeypatch):
    """With its folders in place (relative paths start at the working directory)."""
    from detstudy.study.config import check_workflow
    from detstudy.study.segmentation import segmentation_classes

    config = load("segmentation_study.yaml")
    validate(config, SCHEMA)
    for split in config["dataset"]["folders"].values():
        for folder in split.values():
            (tmp_path / folder).mkdir(parents=True)
    monkeypatch.chdir(tmp_path)
    check_workflow(config, ROOT)
    names = segmentation_classes(config)["names"]
    assert len(names) == 16 and names[0] == "Clean" and names[15] == "Other damage"
    assert {config["models"][m]["training"]["epochs"] for m in config["grid"]["models"]} == {50}
    assert config["grid"]["resolutions"] == [384] and config["models"]["segformer_b3"]["training"]["amp"]


def test_folders_source_requires_the_folders_and_the_classes():
    config = {"task": "segmentation", "dataset": {"name": "x", "source": "folders"},
              "grid": {"models": ["m"], "resolutions": [64]}, "models": {"m": {"architecture": "segformer_demo"}}}
    with pytest.raises(Exception, match="folders"):
        validate(config, SCHEMA)


@pytest.mark.parametrize("name", ["segmentation.yaml", "classification.yaml"])
@pytest.mark.parametrize(("edit", "message"), [
    (lambda m: m.update(import_checkpoint="run.pth"), r"models.{0}.import_checkpoint: only DEIMv2 detection runs can "
                                                      r"be imported. Fix: remove the key \(pretrained"),
    (lambda m: m.setdefault("model", {}).update(weights="weights/missing.pth"),
     r"models.{0}.model.weights: 'weights/missing.pth' is not a file \(relative paths start at .*\). Fix: correct "
     r"the path, give a hub id"),
])
def test_a_segmentation_or_classification_model_entry_is_checked_with_its_key(name, edit, message, tmp_path,
                                                                               monkeypatch):
    from detstudy.study.config import check_config

    config = load(name)
    model = config["grid"]["models"][0]
    edit(config["models"][model])
    validate(config, SCHEMA)
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ValueError, match=message.format(model)):
        check_config(config, ROOT)
    # a hub id is not a file to look for
    config["models"][model].pop("import_checkpoint", None)
    config["models"][model].setdefault("model", {})["weights"] = "facebook/some-model"
    check_config(config, ROOT)
