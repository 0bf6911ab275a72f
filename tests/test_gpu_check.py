"""benchmarks/gpu_check.py: the GPU check's own code, run at tiny sizes on the CPU (--cpu-smoke),
and its answer on a machine without CUDA."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "benchmarks" / "gpu_check.py"


@pytest.mark.workflow
def test_the_cpu_smoke_run_measures_every_model_and_runs_the_workflow_twice(tmp_path):
    out = tmp_path / "check.jsonl"
    done = subprocess.run([sys.executable, str(SCRIPT), "--cpu-smoke", "--out", str(out)], capture_output=True,
                          text=True, timeout=1200, env={**os.environ, "HF_HUB_OFFLINE": "1"})
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    lines = [json.loads(line) for line in out.read_text().splitlines()]
    trained = {(line["task"], line["model"], line["precision"]) for line in lines if line["check"] == "train"}
    for task, models in (("detection", ("deimv2_demo", "fasterrcnn_resnet18_fpn")),
                         ("segmentation", ("upernet_convnext_demo", "upernet_maxvit_demo", "segformer_demo")),
                         ("classification", ("resnet_demo", "mobilevit_demo", "dinov3_demo"))):
        assert {(task, model, precision) for model in models for precision in ("fp32", "bfloat16")} <= trained
    assert all(line["images_per_second"] > 0 and line["peak_memory_mb"] > 0 for line in lines if line["check"] == "train")
    assert [line["exit_status"] for line in lines if line["check"] == "workflow"] == [0, 0]
    metrics = [line for line in lines if line["check"] == "workflow_metrics"]
    assert metrics and all(line["within_0_05"] and line["AP50_cpu"] == line["AP50_gpu"] for line in metrics)
    assert all(line["loss_within_2_percent"] and line["loss_cpu"] == line["loss_gpu"] > 0 for line in metrics)
    assert lines[-1]["check"] == "done" and lines[-1]["ok"] is True
    assert "check=train task=classification model=dinov3_demo" in done.stdout  # one line per measurement


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has CUDA: the check would run")
def test_without_cuda_it_says_so_and_exits():
    done = subprocess.run([sys.executable, str(SCRIPT)], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0 and "no CUDA device here" in done.stdout
