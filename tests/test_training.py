"""The training loop on a tiny synthetic dataset: outputs, history, schedule, seeding."""

from __future__ import annotations

import csv
import math

import pytest
import torch

from detstudy.tasks.detection.checkpoint import load_checkpoint
from detstudy.tasks.detection.data.coco import SplitPaths
from detstudy.tasks.detection.data.synthetic import generate_synthetic_dataset
from detstudy.engine.settings import TrainSettings
from detstudy.engine.schedules import build_scheduler
from detstudy.steps.train import train

MODEL = {"fpn_channels": 16, "box_head_width": 32, "norm": "batchnorm", "trainable_backbone_layers": 5,
         "rpn_post_nms_top_n_train": 50, "box_batch_size_per_image": 32}


@pytest.fixture(scope="module")
def tiny_splits(tmp_path_factory):
    root = tmp_path_factory.mktemp("data")
    paths = generate_synthetic_dataset(root, seed=3, split_sizes={"train": 4, "val": 2, "test": 2}, image_size=64)
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
            "val_AP50", "seconds", "images_per_second", "peak_memory_mb"} <= set(rows[0])
    adapter, categories, extra = load_checkpoint(tmp_path / "best.pt")
    assert len(categories) == 6 and extra["epoch"] == summary["best_epoch"]
    assert adapter.resolution == 64 and adapter.settings["fpn_channels"] == 16
    assert any("ETA" in record.message for record in caplog.records)


def test_val_interval_validates_every_nth_and_the_last_epoch(tiny_splits, tmp_path):
    summary = run(tiny_splits, tmp_path, epochs=3, val_interval=2)
    with open(tmp_path / "history.csv") as handle:
        rows = list(csv.DictReader(handle))
    assert [row["val_AP50"] != "" for row in rows] == [False, True, True]
    assert summary["best_epoch"] in (2, 3)


@pytest.mark.kernel_sensitive
def test_same_seed_same_result(tiny_splits, tmp_path):
    run(tiny_splits, tmp_path / "a", epochs=1)
    run(tiny_splits, tmp_path / "b", epochs=1)
    a = torch.load(tmp_path / "a" / "best.pt", weights_only=True)["state_dict"]
    b = torch.load(tmp_path / "b" / "best.pt", weights_only=True)["state_dict"]
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_validation_runs_in_fp32_under_amp_unless_asked(tiny_splits, monkeypatch):
    """The official DEIM and torchvision validate without autocast; val_amp opts in."""
    from detstudy.tasks.detection.data.dataset import CocoDetection
    from detstudy.tasks.detection.training import validate

    used = []
    monkeypatch.setattr("detstudy.tasks.detection.training.predict_dataset", lambda *a, **k: used.append(k["amp"]) or [])
    val = CocoDetection(tiny_splits["val"])
    for settings in (TrainSettings(), TrainSettings(val_amp=True)):
        validate(None, val, torch.device("cpu"), settings, use_amp=True)
    assert used == [False, True]


def test_unknown_training_setting_is_rejected():
    with pytest.raises(ValueError, match="learning_rate"):
        TrainSettings.from_dict({"learning_rate": 0.1})


def learning_rates(settings: TrainSettings, total_iters: int) -> list[float]:
    """The learning rate of every iteration of a run under ``settings`` (base lr 1.0)."""
    optimizer = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=1.0)
    scheduler = build_scheduler(settings, optimizer, total_iters)
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


def test_cosine_takes_each_group_to_its_own_floor():
    """Parts with rates of their own (a fusion at 20x the detector's) decay to min_lr_factor of
    their own rate; with one rate the schedule is torch's CosineAnnealingLR, value for value."""
    settings = TrainSettings(lr=0.05, warmup_iters=0, lr_schedule="cosine", min_lr_factor=0.1)
    rates = {"detector": 0.05, "fusion": 1.0}
    optimizer = torch.optim.SGD([{"params": [torch.nn.Parameter(torch.zeros(1))], "lr": lr} for lr in rates.values()])
    scheduler = build_scheduler(settings, optimizer, 100)
    seen = []
    for _ in range(100):
        seen.append([group["lr"] for group in optimizer.param_groups])
        optimizer.step()
        scheduler.step()
    seen.append([group["lr"] for group in optimizer.param_groups])
    for index, base in enumerate(rates.values()):
        assert seen[0][index] == pytest.approx(base) and seen[50][index] == pytest.approx(base * 0.55)
        assert seen[100][index] == pytest.approx(base * 0.1)  # its own floor, not the detector's
    single = learning_rates(settings, 100)
    reference = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=1.0)
    cosine = torch.optim.lr_scheduler.CosineAnnealingLR(reference, T_max=100, eta_min=0.1)
    expected = []
    for _ in range(100):
        expected.append(reference.param_groups[0]["lr"])
        reference.step()
        cosine.step()
    assert single == expected  # bit for bit: the runs made before keep their numbers


def test_warmup_then_poly_schedule_is_mmsegmentations_polylr():
    """After the warmup, lr = (lr - eta_min) (1 - t / T) ** power + eta_min (mmengine's PolyLR)."""
    lrs = learning_rates(TrainSettings(lr=1.0, warmup_iters=10, warmup_factor=0.1, lr_schedule="poly", poly_power=0.9,
                                       min_lr_factor=0.01), total_iters=110)
    assert lrs[0] == pytest.approx(0.1) and lrs[10] == pytest.approx(1.0)
    for t in (0, 25, 50, 99):
        assert lrs[10 + t] == pytest.approx(0.99 * (1 - t / 100) ** 0.9 + 0.01)


def test_multistep_schedule_drops_at_fractions_of_the_run():
    lrs = learning_rates(TrainSettings(lr=1.0, warmup_iters=0, lr_schedule="multistep", lr_steps=[0.5, 0.75],
                                       lr_gamma=0.1), total_iters=100)
    assert lrs[49] == pytest.approx(1.0) and lrs[50] == pytest.approx(0.1) and lrs[75] == pytest.approx(0.01)


def test_flat_cosine_schedule_with_a_capped_warmup():
    """The official FlatCosineLRScheduler: quadratic warmup from 0, flat, cosine to the floor,
    the floor in the no-aug epochs; set after each step, so step k runs at the value for k - 1
    and the first step at base / 500 (where the official LinearWarmup, built and never stepped,
    leaves it)."""
    settings = TrainSettings(lr=1.0, epochs=10, warmup_iters=2000, warmup_max_fraction=0.1,
                             lr_schedule="flat_cosine", flat_epochs=4, no_aug_epochs=2, min_lr_factor=0.5)
    lrs = learning_rates(settings, total_iters=100)  # 10 iterations per epoch
    assert lrs[0] == pytest.approx(0.002) and lrs[1] == 0.0 and lrs[6] == pytest.approx(0.25)  # capped at 10
    assert lrs[11] == pytest.approx(1.0) and lrs[41] == pytest.approx(1.0)  # flat until iteration 40
    assert lrs[61] == pytest.approx(0.75)  # half-way down the cosine (iterations 40 to 80)
    assert lrs[80] > 0.5 and lrs[81] == pytest.approx(0.5) and lrs[99] == pytest.approx(0.5)  # the floor


def test_flat_cosine_follows_the_official_epoch_windows():
    """deimv2_s: 132 epochs, windows [4, 64, 120]: flat until epoch 64, cosine to half the lr
    by epoch 120, then the 12 plain epochs at the floor; the 2000-iteration warmup capped at 5%."""
    settings = TrainSettings(lr=1.0, epochs=132, lr_schedule="flat_cosine", min_lr_factor=0.5, warmup_iters=2000,
                             warmup_max_fraction=0.05)
    lrs = learning_rates(settings, total_iters=1320)  # 10 iterations per epoch
    assert lrs[34] == pytest.approx(0.25)  # warmup: 66 iterations (5% of the run), half-way
    assert lrs[67] == pytest.approx(1.0) and lrs[641] == pytest.approx(1.0)
    assert lrs[921] == pytest.approx(0.75)  # epoch 92: half-way between 64 and 120
    assert lrs[1201] == pytest.approx(0.5) and lrs[1319] == pytest.approx(0.5)


def test_flat_cosine_refuses_a_warmup_factor():
    with pytest.raises(ValueError, match="quadratic|warmup_factor"):
        TrainSettings.from_dict({"lr_schedule": "flat_cosine", "warmup_factor": 0.001})


@pytest.mark.kernel_sensitive
def test_ema_follows_the_deim_decay_warmup():
    from detstudy.engine.ema import ModelEMA, ema_decay

    model = torch.nn.Sequential(torch.nn.Linear(2, 2), torch.nn.BatchNorm1d(2))
    ema = ModelEMA(model, decay=0.9999, warmups=1000)
    start = model[0].weight.detach().clone()
    with torch.no_grad():
        model[0].weight.add_(1.0)
    model(torch.randn(4, 2))
    ema.update_parameters(model)
    d = ema_decay(1, 0.9999, 1000)
    assert d == pytest.approx(0.9999 * (1 - math.exp(-1 / 1000)))
    assert torch.allclose(ema.module[0].weight, start * d + (start + 1) * (1 - d))
    assert torch.allclose(ema.module[1].running_mean, model[1].running_mean * (1 - d), atol=1e-6)
    assert ema_decay(100_000, 0.9999, 1000) == pytest.approx(0.9999)


def test_training_with_ema_saves_the_averaged_weights(tiny_splits, tmp_path, monkeypatch):
    from detstudy.engine.ema import ModelEMA

    seen = {}
    update = ModelEMA.update_parameters

    def keep(self, model):
        update(self, model)
        seen.update(ema=self, raw=model)

    monkeypatch.setattr(ModelEMA, "update_parameters", keep)
    run(tiny_splits, tmp_path, epochs=1, ema=True, ema_warmups=1, ema_decay=0.5, lr_schedule="flat_cosine")
    saved = torch.load(tmp_path / "best.pt", weights_only=True)["state_dict"]
    assert all(not key.startswith("module.") for key in saved)  # the averaged model itself, not its wrapper
    averaged, raw = seen["ema"].module.state_dict(), seen["raw"].state_dict()
    assert all(torch.equal(saved[k], averaged[k]) for k in saved)  # one epoch: saved after the last update
    assert any(not torch.equal(saved[k], raw[k]) for k in saved if saved[k].is_floating_point())
    adapter, _, _ = load_checkpoint(tmp_path / "best.pt")
    assert adapter.architecture == "fasterrcnn_resnet18_fpn"


def test_backbone_gets_its_own_learning_rate_and_norms_no_decay():
    from detstudy.tasks.detection.models import build_detector
    from detstudy.engine.schedules import build_optimizer

    adapter = build_detector("deimv2_demo", 3, 128)
    settings = TrainSettings(optimizer="adamw", lr=5e-4, backbone_lr=2.5e-5, weight_decay=1e-4)
    optimizer = build_optimizer(settings, adapter.model, adapter.backbone_prefix)
    backbone = {id(p) for p in adapter.model.model.conv_encoder.backbone.parameters()}
    for group in optimizer.param_groups:
        in_backbone = {id(p) in backbone for p in group["params"]}
        assert len(in_backbone) == 1
        assert group["lr"] == (2.5e-5 if in_backbone.pop() else 5e-4)
        assert group["weight_decay"] == (0.0 if all(p.ndim <= 1 for p in group["params"]) else 1e-4)
    assert sum(len(g["params"]) for g in optimizer.param_groups) == sum(p.requires_grad for p in adapter.model.parameters())
    # without backbone_lr: the two groups of before
    assert len(build_optimizer(TrainSettings(), adapter.model, adapter.backbone_prefix).param_groups) == 2


@pytest.mark.parametrize(("name", "kind"), [("sgd", torch.optim.SGD), ("adam", torch.optim.Adam),
                                             ("adamw", torch.optim.AdamW)])
def test_each_optimizer_is_torchs_with_the_decay_groups(name, kind):
    from detstudy.engine.schedules import build_optimizer

    model = torch.nn.Sequential(torch.nn.Linear(4, 3), torch.nn.LayerNorm(3))
    optimizer = build_optimizer(TrainSettings(optimizer=name, lr=1e-4, weight_decay=0.05), model)
    assert type(optimizer) is kind and optimizer.defaults["lr"] == 1e-4
    decays = {group["weight_decay"]: sum(p.numel() for p in group["params"]) for group in optimizer.param_groups}
    assert decays == {0.05: 12, 0.0: 3 + 3 + 3}  # the weight matrix decays; biases and the norm do not
    with pytest.raises(ValueError, match="not one of sgd, adam, adamw"):
        build_optimizer(TrainSettings(optimizer="lion"), model)


def test_gradient_accumulation_steps_the_optimizer_once_per_group(tiny_splits, tmp_path, monkeypatch):
    steps = []
    original = torch.optim.AdamW.step
    monkeypatch.setattr(torch.optim.AdamW, "step", lambda self, *a, **k: steps.append(1) or original(self, *a, **k))
    run(tiny_splits, tmp_path / "one", epochs=1, batch_size=1)
    assert len(steps) == 4  # 4 training images
    steps.clear()
    run(tiny_splits, tmp_path / "three", epochs=1, batch_size=1, accumulate_steps=3)
    assert len(steps) == 2  # batches [0, 1, 2] and the shorter last group [3]


def test_out_of_memory_names_the_settings_to_change(tiny_splits, tmp_path, monkeypatch):
    def exhausted(*args, **kwargs):
        raise torch.cuda.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")

    monkeypatch.setattr("detstudy.engine.training.train_epoch", exhausted)
    with pytest.raises(MemoryError) as error:
        run(tiny_splits, tmp_path, batch_size=2, accumulate_steps=2)
    message = str(error.value)
    assert "Tried to allocate 2.00 GiB" in message and "batch size 2 (x2 accumulated = 4)" in message
    for knob in ("batch_size", "accumulate_steps", "grid.resolutions", "amp: true"):
        assert knob in message
