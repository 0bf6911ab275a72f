"""The tiny workflow through a real SLURM: Debian's slurm-wlm on one node (tests/slurm_cluster.py),
Snakemake's SLURM executor with profiles/slurm, and the metrics byte for byte those of the
local run. Skipped where no cluster can start (not root, or the packages missing)."""

from __future__ import annotations

import re
import subprocess
import time

import pytest
from conftest import Workflow, copy_workflow

pytestmark = pytest.mark.workflow

TARGET = "results/runs/frcnn_resnet18/64px/base/seed0/metrics.json"


def test_the_tiny_workflow_runs_as_slurm_jobs_with_the_local_numbers(cluster, finished_workflow: Workflow,
                                                                       tmp_path):
    workflow = copy_workflow(tmp_path / "wf")
    config = workflow.config()
    config["compute"]["jobs"] = {kind: {"mem_mb": 1500, "runtime": 20} for kind in ("training", "evaluation", "light")}
    workflow.write_config(config)
    started = time.monotonic()
    done = subprocess.run(
        ["snakemake", TARGET, "--profile", "profiles/slurm", "--jobs", "4", "--slurm-no-account", "--slurm-keep-successful-logs",
         "--slurm-status-command", "squeue", "--slurm-init-seconds-before-status-checks", "2",
         "--default-resources", "slurm_partition=test", "mem_mb=500", "runtime=10", "--latency-wait", "5"],
        cwd=workflow.root, env={**cluster.environ, "HF_HUB_OFFLINE": "1"}, capture_output=True, text=True, timeout=900)
    seconds = time.monotonic() - started
    assert done.returncode == 0, done.stderr[-4000:]
    submitted = dict(re.findall(r"Job (\d+) has been submitted with SLURM jobid (\d+)", done.stderr))
    rules = re.findall(r"(?m)^(?:local)?rule (\w+):", done.stderr)
    assert {"generate_synthetic_dataset", "check_split", "train_cnn", "evaluate"} <= set(rules)
    assert len(submitted) >= 6, done.stderr[-2000:]  # every job of the chain went through sbatch
    for slurm_id in submitted.values():
        shown = subprocess.run(["scontrol", "show", "job", slurm_id], capture_output=True, text=True,
                               env=cluster.environ).stdout
        assert "JobState=COMPLETED" in shown and "Partition=test" in shown, shown
    train = next(iter((workflow.root / ".snakemake/slurm_logs").glob("rule_train_cnn/**/*.log")))
    assert train.stem in submitted.values()
    assert "--mem 1500" in done.stderr or "mem_mb=1500" in done.stderr  # compute.jobs reached the request
    local = (finished_workflow.root / TARGET).read_bytes()
    assert (workflow.root / TARGET).read_bytes() == local
    print(f"through SLURM: {len(submitted)} jobs in {seconds:.0f} s")
