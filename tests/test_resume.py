"""Resumable training: a job killed mid-run resumes from its last finished epoch and ends
exactly where an uninterrupted run ends; a changed configuration discards the stale state."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from detstudy.tasks.detection.data.synthetic import generate_synthetic_dataset
from detstudy.engine.resume import TrainingState
from detstudy.engine.stage_restart import StageRestart

# DEIMv2 with EMA, gradient clipping and flat-cosine: every piece of state a resume must restore
RUN = """
import json, logging, sys
logging.basicConfig(level=logging.INFO, stream=sys.stderr, format="%(message)s")
from detstudy.engine.kernels import kernel_settings, pin_kernels
args = json.loads(sys.argv[1])
pin_kernels(kernel_settings(args["portable"]))  # as a training job does, before torch loads
from detstudy.tasks.detection.data.coco import SplitPaths
from detstudy.steps.train import train
train(architecture="deimv2_demo", model_settings={"num_queries": 20, "num_denoising": 10},
      train_settings=args["settings"], train_split=SplitPaths.of(**args["train"]),
      val_split=SplitPaths.of(**args["val"]), resolution=64, seed=0, checkpoint_path=args["out"] + "/best.pt",
      history_path=args["out"] + "/history.csv", device="cpu", threads=1, state_dir=args["out"] + "/state")
"""
SETTINGS = {"epochs": 6, "batch_size": 2, "optimizer": "adamw", "lr": 5e-4, "lr_schedule": "flat_cosine",
            "warmup_iters": 2, "ema": True, "ema_warmups": 5, "grad_clip": 0.1, "log_every": 1,
            "ema_restart": True,  # stage 2 from epoch 2: a job killed after it restarts from the kept snapshot
            "augmentation": {"horizontal_flip": 0.5, "vertical_flip": 0.5, "epochs": [0, 1, 1]}}


@pytest.fixture(scope="module")
def splits(tmp_path_factory):
    return generate_synthetic_dataset(tmp_path_factory.mktemp("data"), seed=4, split_sizes={"train": 8, "val": 2, "test": 2},
                            image_size=64)


def start(splits, out, settings=SETTINGS, portable=True) -> subprocess.Popen:
    out.mkdir(parents=True, exist_ok=True)
    args = json.dumps({"settings": settings, "train": splits["train"], "val": splits["val"], "out": str(out),
                       "portable": portable})
    return subprocess.Popen([sys.executable, "-c", RUN, args], stderr=open(out / "log.txt", "a"),
                            env=dict(os.environ, PYTHONHASHSEED="0"))


def finish(splits, out, settings=SETTINGS, portable=True) -> None:
    assert start(splits, out, settings, portable).wait(timeout=600) == 0, (out / "log.txt").read_text()


def kill_after_first_epoch(splits, out, stop=signal.SIGKILL) -> None:
    """Kill the job in the middle of a later epoch, the first time its state exists: SIGKILL
    (power loss, the OOM killer) or SIGTERM (`kill`, a cluster's time limit)."""
    job = start(splits, out)
    deadline = time.time() + 600
    while not (out / "state" / "state.pt").exists():
        assert job.poll() is None and time.time() < deadline, "the job ended before saving any state"
        time.sleep(0.05)
    time.sleep(0.5)  # into the next epoch
    job.send_signal(stop)
    job.wait()
    saved = torch.load(out / "state" / "state.pt", weights_only=True)
    assert 1 <= saved["epoch"] < SETTINGS["epochs"], "killed too late to test anything"
    for output in ("best.pt", "history.csv"):  # what Snakemake does with a failed job's outputs
        (out / output).unlink(missing_ok=True)


@pytest.mark.slow
@pytest.mark.parametrize("stop", [pytest.param(signal.SIGKILL, marks=pytest.mark.kernel_sensitive), signal.SIGTERM],
                         ids=["sigkill", "sigterm"])
def test_a_killed_job_resumes_and_ends_exactly_like_an_uninterrupted_one(splits, tmp_path, stop):
    finish(splits, tmp_path / "straight")
    kill_after_first_epoch(splits, tmp_path / "killed", stop)
    killed_part = len((tmp_path / "killed" / "log.txt").read_text())
    finish(splits, tmp_path / "killed")
    log = (tmp_path / "killed" / "log.txt").read_text()[killed_part:]  # the resumed job's own lines
    resumed = re.search(r"resuming after epoch (\d+)", log)
    assert resumed, log
    resumed_after = int(resumed.group(1))
    # the resumed job restarts stage 2 where the uninterrupted one did after that epoch, its count carried on
    restarts = lambda text: re.findall(r"epoch (\d+): stage 2 restarts from the best stage-1 state \(restart (\d+)\)",
                                       text)
    expected = [found for found in restarts((tmp_path / "straight" / "log.txt").read_text())
                if int(found[0]) > resumed_after]
    assert expected and restarts(log) == expected, log
    assert "no validated stage-1 epoch" not in log  # the snapshot came back from the state folder
    assert (tmp_path / "killed" / "history.csv").read_text().count("\n") == SETTINGS["epochs"] + 1
    straight = torch.load(tmp_path / "straight" / "best.pt", weights_only=True)
    resumed = torch.load(tmp_path / "killed" / "best.pt", weights_only=True)
    assert straight["extra"]["epoch"] == resumed["extra"]["epoch"]
    for key, value in straight["state_dict"].items():
        assert torch.equal(value, resumed["state_dict"][key]), key
    strip = lambda text: [line.rsplit(",", 3)[0] for line in text.splitlines()]  # without the timings and memory
    assert strip((tmp_path / "straight" / "history.csv").read_text()) == strip(
        (tmp_path / "killed" / "history.csv").read_text())
    assert not (tmp_path / "killed" / "state").exists()  # removed once the run is complete


@pytest.mark.slow
def test_a_changed_configuration_discards_the_stale_state(splits, tmp_path):
    kill_after_first_epoch(splits, tmp_path)
    finish(splits, tmp_path, {**SETTINGS, "lr": 1e-3})
    log = (tmp_path / "log.txt").read_text()
    assert "written under another configuration" in log and "resuming after epoch" not in log


@pytest.mark.slow
def test_other_cpu_kernels_discard_the_stale_state(splits, tmp_path):
    """A run resumed under other kernels would not continue the same computation."""
    kill_after_first_epoch(splits, tmp_path)
    finish(splits, tmp_path, portable=False)
    log = (tmp_path / "log.txt").read_text()
    assert "written under another configuration" in log and "resuming after epoch" not in log


@pytest.mark.slow
def test_a_replaced_training_image_discards_the_stale_state(tmp_path):
    from PIL import Image

    data = generate_synthetic_dataset(tmp_path / "data", seed=4, split_sizes={"train": 8, "val": 2, "test": 2}, image_size=64)
    kill_after_first_epoch(data, tmp_path / "run")
    image = sorted(Path(data["train"]["images"]).iterdir())[0]
    Image.new("RGB", (64, 64), (1, 2, 3)).save(image)  # same name, new content
    finish(data, tmp_path / "run")
    log = (tmp_path / "run" / "log.txt").read_text()
    assert "written under another configuration" in log and "resuming after epoch" not in log


def test_an_unreadable_state_is_discarded(tmp_path):
    state = TrainingState(tmp_path / "state", "abc")
    state.folder.mkdir()
    state.state_path.write_bytes(b"half a file")
    assert state.load() is None and not state.folder.exists()


def test_the_kept_best_checkpoint_is_checked_before_it_is_restored(tmp_path):
    """A kept copy that no longer matches the digest written with it (a bad disk, a half copy)
    cannot stand for the best checkpoint: the state is discarded instead of resumed."""
    checkpoint = tmp_path / "best.pt"
    checkpoint.write_bytes(b"weights of the best epoch")
    state = TrainingState(tmp_path / "state", "abc")
    state.keep_best(checkpoint)
    state.save({"epoch": 1})
    checkpoint.unlink()  # Snakemake removes a failed job's outputs
    assert state.load() == {"epoch": 1, "fingerprint": "abc"}
    state.restore_best(checkpoint)
    assert checkpoint.read_bytes() == b"weights of the best epoch"
    state.best_path.write_bytes(b"weights of the best epo")  # damaged
    assert state.load() is None and not state.folder.exists()


def _epoch(folder: Path, checkpoint: Path, number: int, *, improved: bool = True, saved: bool = True):
    """What train_run does at the end of an epoch: an improved one writes best.pt and keeps it
    with its stage-1 snapshot (save_best), then the state is saved. ``saved=False``: killed
    before that."""
    state, restart = TrainingState(folder, "abc"), StageRestart(9, folder / "best_stage1.pt", "abc")
    loaded = state.load()
    if loaded:
        restart.resume(loaded["restart"])
    else:
        restart.discard()
    best = loaded["best"] if loaded else {"epoch": 0}
    if improved:
        checkpoint.write_bytes(f"weights of epoch {number}".encode())
        state.keep_best(checkpoint)
        restart.keep({"model": {"w": torch.full((2,), float(number))}})
        best = {"epoch": number}
    if saved:
        state.save({"epoch": number, "best": best, "restart": restart.progress()})
    return state, restart


def _resumed(folder: Path, checkpoint: Path) -> tuple[dict, bytes, torch.Tensor]:
    """What a resumed train_run restores: the state, best.pt and the stage-1 snapshot."""
    checkpoint.unlink(missing_ok=True)  # Snakemake removes a failed job's outputs
    state, restart = TrainingState(folder, "abc"), StageRestart(9, folder / "best_stage1.pt", "abc")
    saved = state.load()
    restart.resume(saved["restart"])
    state.restore_best(checkpoint)
    return saved, checkpoint.read_bytes(), restart.snapshot["model"]["w"]


def test_a_job_killed_between_keeping_its_best_and_saving_its_state_restores_the_best_the_state_records(tmp_path):
    """Epoch 2 beats epoch 1 and keeps its checkpoint and stage-1 snapshot, and the job is
    killed before the state of epoch 2 is saved. The resumed job trains epoch 2 again from the
    state of epoch 1, so it must restore epoch 1's files: on a GPU the rerun need not beat
    epoch 1, and epoch 2's first files would then stand for a trajectory not in the history."""
    folder, checkpoint = tmp_path / "state", tmp_path / "best.pt"
    _epoch(folder, checkpoint, 1)
    _epoch(folder, checkpoint, 2, saved=False)  # killed here
    saved, best, snapshot = _resumed(folder, checkpoint)
    assert saved["epoch"] == 1 and saved["best"] == {"epoch": 1}
    assert best == b"weights of epoch 1"
    assert torch.equal(snapshot, torch.full((2,), 1.0))
    _epoch(folder, checkpoint, 2, improved=False)  # the rerun of epoch 2 does not beat epoch 1
    saved, best, snapshot = _resumed(folder, checkpoint)
    assert saved["best"] == {"epoch": 1} and best == b"weights of epoch 1"
    assert torch.equal(snapshot, torch.full((2,), 1.0))


def test_a_job_killed_after_saving_its_state_restores_the_best_it_recorded(tmp_path, monkeypatch):
    """Killed after the state of epoch 2 is saved but before its kept files are promoted: the
    state records epoch 2's, which the resumed job then restores."""
    folder, checkpoint = tmp_path / "state", tmp_path / "best.pt"
    _epoch(folder, checkpoint, 1)
    with monkeypatch.context() as patch:
        patch.setattr(TrainingState, "_promote", lambda self, waiting: None)  # killed before the promotion
        _epoch(folder, checkpoint, 2)
    saved, best, snapshot = _resumed(folder, checkpoint)
    assert saved["best"] == {"epoch": 2} and best == b"weights of epoch 2"
    assert torch.equal(snapshot, torch.full((2,), 2.0))
    assert sorted(path.name for path in folder.iterdir()) == ["best.pt", "best_stage1.pt", "state.pt"]


@pytest.mark.workflow
def test_snakemake_rerun_incomplete_resumes_a_killed_training_job(tmp_path):
    from conftest import copy_workflow

    target = "results/runs/deimv2/64px/base/seed0/best.pt"
    runs = {}
    for name in ("straight", "killed"):
        workflow = copy_workflow(tmp_path / name)
        config = workflow.config()
        config["models"]["deimv2"]["training"].update(epochs=4, augmentation={"horizontal_flip": 0.5})
        workflow.write_config(config)
        runs[name] = workflow
    runs["straight"].snakemake(target, "--cores", "1")

    killed = runs["killed"]
    state = killed.root / "results/state/deimv2/64px/base/seed0/state.pt"
    killed.kill_once_state_exists(target, state)
    assert torch.load(state, weights_only=True)["epoch"] < 4

    killed.snakemake("--unlock")  # the lock a killed Snakemake leaves behind
    killed.snakemake(target, "--cores", "1", "--rerun-incomplete")
    assert "resuming after epoch" in (killed.root / "results/logs/deimv2/64px/base/seed0/train.log").read_text()
    straight = torch.load(runs["straight"].root / target, weights_only=True)["state_dict"]
    resumed = torch.load(killed.root / target, weights_only=True)["state_dict"]
    assert all(torch.equal(value, resumed[key]) for key, value in straight.items())
    assert not (killed.root / "results/state").exists()  # no empty folders left behind either
