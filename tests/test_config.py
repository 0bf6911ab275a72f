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


@pytest.mark.parametrize("name", ["config.yaml", "thesis.yaml"])
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
    for section in ("grid", "evaluation", "compute", "figures", "report"):
        assert merged[section] == thesis[section], section
    assert merged["dataset"]["source"] == "coco" and merged["dataset"]["coco"] == thesis["dataset"]["coco"]
