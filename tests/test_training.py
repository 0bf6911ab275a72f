"""The training loop on a tiny synthetic dataset: outputs, history, schedule, seeding."""

from __future__ import annotations

import csv

import pytest
import torch

from detstudy.checkpoint import load_checkpoint
from detstudy.data.coco import SplitPaths
from detstudy.data.synthetic import generate_dataset
from detstudy.training import TrainSettings, _scheduler, train

MODEL = {"fpn_channels": 16, "box_head_width": 32, "norm": "batchnorm", "trainable_backbone_layers": 5,
         "rpn_post_nms_top_n_train": 50, "box_batch_size_per_image": 32}


@pytest.fixture(scope="module")
def tiny_splits(tmp_path_factory):
    root = tmp_path_factory.mktemp("data")
    paths = generate_dataset(root, seed=3, split_sizes={"train": 4, "val": 2, "test": 2}, image_size=64)
    return {split: SplitPaths.of(**p) for split, p in paths.items()}


def run(tiny_splits, out, **overrides):
    settings = {"epochs": 2, "batch_size": 2, "optimizer": "adamw", "lr": 1e-3, "warmup_iters": 1,
                "lr_schedule": "cosine", "log_every": 1} | overrides
    return train(architecture="fasterrcnn_resnet18_fpn", model_settings=MODEL, train_settings=settings,
                 train_split=tiny_splits["train"], val_split=tiny_splits["val"], resolution=64, seed=0,
                 checkpoint_path=out / "best.pt", history_path=out / "history.csv", device="cpu", threads=1)


def test_train_writes_checkpoint_history_and_progress(tiny_splits, tmp_path, caplog):
    caplog.set_level("INFO", logger="detstudy.train")
    summary = run(tiny_splits, tmp_path)
    with open(tmp_path / "history.csv") as handle:
        rows = list(csv.DictReader(handle))
    assert [int(r["epoch"]) for r in rows] == [1, 2]
    assert {"lr", "loss", "loss_classifier", "loss_box_reg", "loss_objectness", "loss_rpn_box_reg", "val_AP",
            "val_AP50", "seconds", "images_per_second"} <= set(rows[0])
    adapter, categories, extra = load_checkpoint(tmp_path / "best.pt")
    assert len(categories) == 6 and extra["epoch"] == summary["best_epoch"]
    assert adapter.resolution == 64 and adapter.settings["fpn_channels"] == 16
    assert any("ETA" in record.message for record in caplog.records)


def test_same_seed_same_result(tiny_splits, tmp_path):
    run(tiny_splits, tmp_path / "a", epochs=1)
    run(tiny_splits, tmp_path / "b", epochs=1)
    a = torch.load(tmp_path / "a" / "best.pt", weights_only=True)["state_dict"]
    b = torch.load(tmp_path / "b" / "best.pt", weights_only=True)["state_dict"]
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_unknown_training_setting_is_rejected():
    with pytest.raises(ValueError, match="learning_rate"):
        TrainSettings.from_dict({"learning_rate": 0.1})


def learning_rates(settings: TrainSettings, total_iters: int) -> list[float]:
    """The learning rate of every iteration of a run under ``settings`` (base lr 1.0)."""
    optimizer = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=1.0)
    scheduler = _scheduler(settings, optimizer, total_iters)
    rates = []
    for _ in range(total_iters):
        rates.append(optimizer.param_groups[0]["lr"])
        optimizer.step()
        scheduler.step()
    return rates


def test_warmup_then_cosine_schedule():
    lrs = learning_rates(TrainSettings(lr=1.0, warmup_iters=10, warmup_factor=0.1, lr_schedule="cosine",
                                       min_lr_factor=0.0), total_iters=110)
    assert lrs[0] == pytest.approx(0.1)
    assert lrs[10] == pytest.approx(1.0)
    assert lrs[60] == pytest.approx(0.5, abs=0.02)
    assert lrs[-1] < 0.01


def test_multistep_schedule_drops_at_fractions_of_the_run():
    lrs = learning_rates(TrainSettings(lr=1.0, warmup_iters=0, lr_schedule="multistep", lr_steps=[0.5, 0.75],
                                       lr_gamma=0.1), total_iters=100)
    assert lrs[49] == pytest.approx(1.0) and lrs[50] == pytest.approx(0.1) and lrs[75] == pytest.approx(0.01)
