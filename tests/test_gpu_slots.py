"""GPU slots on one machine, on the CPU with fake ids: jobs started together hold distinct GPUs,
a killed job's GPU is free again at once, and workflows in different folders share the slots."""

from __future__ import annotations

import os
import signal
import stat
import subprocess
import sys
import time

import pytest

from detstudy.engine.gpu_slots import claim_gpu

HOLDER = """
import sys, time
from detstudy.engine.gpu_slots import claim_gpu
gpus = [int(g) for g in sys.argv[2:]] or [5, 6, 7]
gpu = claim_gpu(gpus, sys.argv[1] or None, wait_seconds=60, poll_seconds=0.05)  # "": the default folder
import os
print(gpu, os.environ["CUDA_VISIBLE_DEVICES"], flush=True)
time.sleep(120)
"""


def _start(locks, *gpus, cwd=None, env=None):
    return subprocess.Popen([sys.executable, "-c", HOLDER, str(locks), *map(str, gpus)], stdout=subprocess.PIPE,
                            text=True, cwd=cwd, env=env)


def _claimed(process) -> int:
    line = process.stdout.readline().split()
    assert line and line[0] == line[1], line  # the job sees only the GPU it holds
    return int(line[0])


def test_jobs_started_together_hold_distinct_gpus_and_a_killed_one_frees_its_slot(tmp_path):
    processes = [_start(tmp_path) for _ in range(3)]
    try:
        held = [_claimed(p) for p in processes]
        assert sorted(held) == [5, 6, 7]
        waiting = _start(tmp_path)  # a fourth job: every slot is held, it waits
        time.sleep(1.0)
        assert waiting.poll() is None
        victim = processes[1]
        os.kill(victim.pid, signal.SIGKILL)
        victim.wait()
        assert _claimed(waiting) == held[1]  # the killed job's GPU, at once
        processes.append(waiting)
    finally:
        for process in processes:
            process.kill()
            process.wait()


def test_nothing_is_claimed_without_ids_or_under_slurm(tmp_path):
    environ = {}
    assert claim_gpu([], tmp_path, environ=environ) is None and "CUDA_VISIBLE_DEVICES" not in environ
    assert claim_gpu([0, 1], tmp_path, environ={"SLURM_JOB_ID": "12"}) is None
    assert not list(tmp_path.iterdir())


def test_a_full_machine_is_an_error_that_says_what_to_do(tmp_path):
    holder = _start(tmp_path)
    try:
        _claimed(holder)
        script = ("from detstudy.engine.gpu_slots import claim_gpu; import sys\n"
                  "claim_gpu([5], sys.argv[1], wait_seconds=0.3, poll_seconds=0.05)")
        done = subprocess.run([sys.executable, "-c", script, str(tmp_path)], capture_output=True, text=True)
        assert done.returncode != 0 and "no free GPU among [5]" in done.stderr and "--resources gpu=N" in done.stderr
    finally:
        holder.kill()
        holder.wait()


def _claim_once(gpu, cwd, env):
    script = ("from detstudy.engine.gpu_slots import claim_gpu\n"
              f"print(claim_gpu([{gpu}], wait_seconds=0.3, poll_seconds=0.05))")
    return subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, cwd=cwd, env=env)


@pytest.mark.parametrize("where", ["temporary folder", "DETSTUDY_GPU_LOCKS"])
def test_workflows_in_different_folders_share_the_machine_wide_slots(tmp_path, where):
    """Jobs of two workflows (two working directories), slots where they are by default: the
    second finds the first one's GPU taken, and gets it once the first ends."""
    env = {k: v for k, v in os.environ.items() if k != "DETSTUDY_GPU_LOCKS"}
    env["TMPDIR"] = str(tmp_path / "tmp")  # tempfile.gettempdir(): this test's own machine-wide folder
    (tmp_path / "tmp").mkdir()
    locks = tmp_path / "tmp" / "detstudy-gpu-slots"
    if where == "DETSTUDY_GPU_LOCKS":
        locks = env["DETSTUDY_GPU_LOCKS"] = str(tmp_path / "shared" / "slots")
    studies = [tmp_path / "study_a", tmp_path / "study_b"]
    for folder in studies:
        folder.mkdir()
    holder = _start("", 5, cwd=studies[0], env=env)
    try:
        assert _claimed(holder) == 5
        done = _claim_once(5, studies[1], env)
        assert done.returncode != 0 and "no free GPU among [5]" in done.stderr, done.stdout
    finally:
        holder.kill()
        holder.wait()
    done = _claim_once(5, studies[1], env)
    assert done.returncode == 0 and done.stdout.split() == ["5"], done.stderr
    assert stat.S_IMODE(os.stat(locks).st_mode) == 0o1777  # any user's workflow may add and lock slots
    assert stat.S_IMODE(os.stat(f"{locks}/gpu5.lock").st_mode) == 0o666
    assert not [p for folder in studies for p in folder.iterdir()]  # nothing in the working directories


@pytest.mark.workflow
def test_two_training_jobs_at_once_each_hold_their_own_gpu(workflow):
    """The tiny grid's two CNN trainings with --resources gpu=2 and compute.gpus [3, 4] on this
    CPU machine (device auto falls back to the CPU, the slots are claimed all the same)."""
    config = workflow.config()
    config["compute"].update(device="auto", gpus=[3, 4])
    workflow.write_config(config)
    targets = [f"results/runs/{m}/64px/base/seed0/best.pt" for m in ("frcnn_resnet18", "frcnn_efficientnet_b0")]
    workflow.snakemake(*targets, "--cores", "2", "--resources", "gpu=2")
    held = []
    for model in ("frcnn_resnet18", "frcnn_efficientnet_b0"):
        log = (workflow.root / f"results/logs/{model}/64px/base/seed0/train.log").read_text()
        held += [int(gpu) for gpu in __import__("re").findall(r"holding GPU (\d+)", log)]
    assert sorted(held) == [3, 4]
