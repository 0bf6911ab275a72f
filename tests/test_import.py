"""The study's own vanilla DEIMv2 run imported from an official checkpoint (best_stg1.pth)."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest
import torch

from detstudy.tasks.detection.models.deimv2_parity import seeded_official_state

FIXTURE = Path(__file__).parent / "fixtures" / "deimv2_parity.pt"
RUN = "results/runs/deimv2_s/64px/base/seed0"
CLASSES = 6  # the synthetic dataset's


def official_training_file(path: Path, classes: int = CLASSES, seed: int = 5) -> Path:
    """A best_stg1.pth in the official layout (model and EMA entries) of a DEIMv2-S trained on
    ``classes`` classes, from the fixture's official key list."""
    record = torch.load(FIXTURE, weights_only=True)["variants"]["s"]
    state = seeded_official_state(record["shapes"], record["constants"], seed)
    for key in ("decoder.anchors", "decoder.valid_mask"):
        state.pop(key)
    for key in list(state):
        if key.startswith(("decoder.enc_score_head.", "decoder.dec_score_head.")):
            state[key] = state[key][:classes].clone()
    state["decoder.denoising_class_embed.weight"] = state["decoder.denoising_class_embed.weight"][:classes + 1].clone()
    raw = {k: v * 0 if v.is_floating_point() else v for k, v in state.items()}
    torch.save({"model": raw, "ema": {"module": state, "updates": 100}, "last_epoch": 59}, path)
    return path


def imported_config(config: dict, source: str) -> dict:
    config["grid"]["models"] = ["deimv2_s"]
    config["models"]["deimv2_s"] = {"architecture": "deimv2_s", "import_checkpoint": source,
                                    "model": {"num_queries": 50, "num_denoising": 10},
                                    "training": dict(config["models"]["deimv2"]["training"])}
    config["multimodal"]["models"] = ["deimv2_s"]
    config["statistics"]["baseline"] = "deimv2_s"  # the grid's only model
    return config


@pytest.mark.slow
def test_an_imported_run_is_evaluated_drawn_and_starts_the_phases(workflow):
    source = official_training_file(workflow.root / "best_stg1.pth")
    workflow.write_config(imported_config(workflow.config(), "best_stg1.pth"))
    planned = workflow.planned_jobs(phases=True)
    assert ("import_checkpoint", "deimv2_s", "base") in planned
    assert not any(rule == "train_vit" for rule, *_ in planned)
    assert ("train_phase", "deimv2_s", "phase1") in planned  # the phases fine-tune the imported run
    workflow.snakemake(f"{RUN}/metrics.json", f"{RUN}/figures/training_curves.png", "--cores", "2")
    metrics = json.loads((workflow.root / RUN / "metrics.json").read_text())
    assert metrics["run"]["imported"] is True and metrics["run"]["family"] == "vit"
    assert metrics["training"]["imported_from"] == "best_stg1.pth" and metrics["training"]["epochs"] == 0
    rows = list(csv.DictReader((workflow.root / RUN / "history.csv").open()))
    assert len(rows) == 1 and rows[0]["epoch"] == "0" and rows[0]["imported"] == "best_stg1.pth"
    # the EMA weights, not the raw ones, are the run
    saved = torch.load(workflow.root / RUN / "best.pt", weights_only=True)["state_dict"]
    ema = torch.load(source, weights_only=True)["ema"]["module"]
    assert torch.equal(saved["model.encoder.lateral_convs.0.conv.weight"], ema["encoder.lateral_convs.0.conv.weight"])
    # editing the file reruns the import and what follows it, nothing else
    official_training_file(source, seed=6)
    assert ("import_checkpoint", "deimv2_s") in workflow.planned_jobs(f"{RUN}/metrics.json")


@pytest.mark.slow
def test_a_bad_import_file_stops_the_workflow_before_any_job(workflow):
    config = imported_config(workflow.config(), "best_stg1.pth")
    workflow.write_config(config)
    (workflow.root / "best_stg1.pth").write_bytes(b"not a checkpoint")
    result = workflow.snakemake("-n", "--cores", "1", check=False)
    assert result.returncode != 0
    assert "config models.deimv2_s.import_checkpoint: best_stg1.pth is not a readable PyTorch checkpoint" in result.stdout + result.stderr
    official_training_file(workflow.root / "best_stg1.pth", classes=80)
    result = workflow.snakemake("-n", "--cores", "1", check=False)
    assert "best_stg1.pth was trained for 80 classes, the dataset has 6" in result.stdout + result.stderr
    (workflow.root / "best_stg1.pth").unlink()
    result = workflow.snakemake("-n", "--cores", "1", check=False)
    assert "config models.deimv2_s.import_checkpoint: 'best_stg1.pth' is not a file" in result.stdout + result.stderr


@pytest.mark.slow
def test_one_file_cannot_stand_for_several_seeds(workflow):
    config = imported_config(workflow.config(), "best_stg1.pth")
    config["grid"]["seeds"] = [0, 1]
    workflow.write_config(config)
    official_training_file(workflow.root / "best_stg1.pth")
    result = workflow.snakemake("-n", "--cores", "1", check=False)
    assert result.returncode != 0
    assert "one file for the 2 grid cells ['64px/seed0', '64px/seed1']" in result.stdout + result.stderr
    config["models"]["deimv2_s"]["import_checkpoint"] = {"64px/seed0": "best_stg1.pth", "64px/seed1": "seed1.pth"}
    workflow.write_config(config)
    official_training_file(workflow.root / "seed1.pth", seed=7)
    planned = workflow.planned_jobs(f"results/runs/deimv2_s/64px/base/seed1/best.pt", keys=("model", "seed"))
    assert ("import_checkpoint", "deimv2_s", "1") in planned
