"""Segmentation training on the engine: each family trains, its best checkpoint reloads to the
validated numbers; the loss leaves ignore pixels out; sliding-window inference; predict."""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest
import torch
from PIL import Image

from detstudy.tasks.segmentation.checkpoint import load_checkpoint
from detstudy.tasks.segmentation.data.dataset import MaskDataset, eval_transform
from detstudy.tasks.segmentation.data.layout import MaskSplit
from detstudy.tasks.segmentation.data.synthetic import class_names, generate_segmentation_dataset
from detstudy.tasks.segmentation.inference import predict_logits
from detstudy.tasks.segmentation.losses import DiceCrossEntropy
from detstudy.tasks.segmentation.training import train_run, validate


@pytest.fixture(scope="module")
def splits(tmp_path_factory):
    paths = generate_segmentation_dataset(tmp_path_factory.mktemp("seg"), seed=0,
                                          split_sizes={"train": 8, "val": 3, "test": 2}, image_size=64)
    return {name: MaskSplit.of(**p) for name, p in paths.items()}


@pytest.mark.parametrize("architecture", ["upernet_convnext_demo", "upernet_maxvit_demo", "segformer_demo"])
def test_each_family_trains_and_its_checkpoint_holds_the_validated_numbers(splits, tmp_path, architecture):
    out = tmp_path / architecture
    summary = train_run(architecture=architecture, model_settings={}, class_names=class_names(), resolution=64, seed=0,
                        train_settings={"epochs": 2, "batch_size": 4, "optimizer": "adamw", "lr": 1e-3,
                                        "lr_schedule": "poly", "warmup_iters": 1, "log_every": 1},
                        train_split=splits["train"], val_split=splits["val"], checkpoint_path=out / "best.pt",
                        history_path=out / "history.csv", device="cpu", threads=1)
    rows = list(csv.DictReader(open(out / "history.csv")))
    assert [int(r["epoch"]) for r in rows] == [1, 2] and all("val_mIoU" in r for r in rows)
    model, state = load_checkpoint(out / "best.pt")
    assert state["class_names"] == class_names() and state["architecture"] == architecture
    val = MaskDataset(splits["val"], len(class_names()), eval_transform(64), resize_mask=False)
    again = validate(model, val, torch.device("cpu"), 64, "whole", use_amp=False)
    assert again["mIoU"] == pytest.approx(summary["best_val_mIoU"], abs=1e-12)


def test_the_loss_leaves_ignore_pixels_out():
    torch.manual_seed(0)
    target = torch.randint(0, 3, (2, 8, 8))
    target[:, :2] = 255
    logits = torch.randn(2, 3, 8, 8)
    loss = DiceCrossEntropy(torch.tensor([1.0, 2.0, 3.0]))
    before = loss(logits, target)
    changed = logits.clone()
    changed[:, :, :2] = torch.randn(2, 3, 2, 8) * 10  # only the ignored rows
    after = loss(changed, target)
    for key in before:
        assert torch.allclose(before[key], after[key]), key
    # the weights apply to the cross-entropy as torch's weighted mean
    expected = torch.nn.functional.cross_entropy(logits, target, weight=torch.tensor([1.0, 2.0, 3.0]), ignore_index=255)
    assert torch.allclose(before["loss_ce"], expected)


def test_sliding_windows_cover_the_image_and_agree_with_whole_at_window_size():
    torch.manual_seed(0)
    model = torch.nn.Conv2d(3, 4, 3, padding=1).eval()
    image = torch.randn(3, 32, 32)
    with torch.no_grad():
        whole = predict_logits(lambda x: model(x), image, (32, 32), 32, "whole")
        slide = predict_logits(lambda x: model(x), image, (32, 32), 32, "slide")
        assert torch.allclose(whole, slide)
        big = torch.randn(3, 50, 70)
        logits = predict_logits(lambda x: model(x), big, (50, 70), 32, "slide")
    assert logits.shape == (4, 50, 70)
    # a pixel away from window borders: the windows that cover it see the same neighbourhood
    with torch.no_grad():
        direct = model(big.unsqueeze(0))[0]
    assert torch.allclose(logits[:, 25, 35], direct[:, 25, 35], atol=1e-5)


def test_evaluation_and_its_bootstrap(splits, tmp_path):
    """The metrics block is the test split's summed confusion; the bootstrap's estimate is the
    evaluation's, its intervals hold it, and a metrics file from other matrices is refused."""
    import json

    import numpy as np

    from detstudy.statistics.segmentation import run_intervals
    from detstudy.tasks.segmentation.evaluation import evaluate
    from detstudy.tasks.segmentation.metrics import metrics_from_confusion

    out = tmp_path / "run"
    train_run(architecture="segformer_demo", model_settings={}, class_names=class_names(), resolution=64, seed=0,
              train_settings={"epochs": 1, "batch_size": 4, "optimizer": "adamw", "lr": 1e-3, "warmup_iters": 0},
              train_split=splits["train"], val_split=splits["val"], checkpoint_path=out / "best.pt",
              history_path=out / "history.csv", device="cpu", threads=1)
    run = {"model": "segformer", "family": "vit", "resolution": 64, "phase": "base", "seed": 0}
    record = evaluate(checkpoint=out / "best.pt", test_split=splits["test"], run=run, metrics_path=out / "metrics.json",
                      confusions_path=out / "confusions.npz", device="cpu")
    stored = np.load(out / "confusions.npz")
    assert stored["confusions"].shape == (2, 7, 7) and list(stored["stems"]) == ["test_00000", "test_00001"]
    assert record["metrics"] == metrics_from_confusion(stored["confusions"].sum(axis=0), class_names())
    assert stored["confusions"].sum() == 2 * 64 * 64  # the demo has no ignore pixels
    settings = {"resamples": 200, "seed": 0, "level": 0.95, "method": "basic"}
    result = run_intervals(confusions_path=out / "confusions.npz", metrics=json.loads((out / "metrics.json").read_text()),
                        settings=settings, statistics_path=out / "statistics.json", bootstrap_path=out / "bootstrap.npz")
    assert result["metrics"]["mIoU"]["estimate"] == pytest.approx(record["metrics"]["mIoU"], abs=1e-12)
    assert [entry["name"] for entry in result["per_class"]] == class_names()
    wrong = json.loads((out / "metrics.json").read_text())
    wrong["metrics"]["mIoU"] += 0.01
    with pytest.raises(ValueError, match="mIoU .* from the confusion matrices.*Fix: rerun"):
        run_intervals(confusions_path=out / "confusions.npz", metrics=wrong, settings=settings,
                   statistics_path=out / "s.json", bootstrap_path=out / "b.npz")


def test_predict_writes_the_masks_the_evaluation_sees(splits, tmp_path):
    """``detstudy predict`` on a segmentation checkpoint: a class-index mask per image equal to the
    evaluation's prediction, an overlay each, the classes; bad input refused before the model runs."""
    from detstudy.cli import main
    from detstudy.tasks.segmentation.checkpoint import load_checkpoint
    from detstudy.tasks.segmentation.inference import dataset_confusions

    checkpoint = tmp_path / "best.pt"
    train_run(architecture="upernet_convnext_demo", model_settings={}, class_names=class_names(), resolution=64,
              seed=0, train_settings={"epochs": 1, "batch_size": 4}, train_split=splits["train"],
              val_split=splits["val"], checkpoint_path=checkpoint, history_path=tmp_path / "history.csv")
    out = tmp_path / "predictions"
    assert main(["predict", "--checkpoint", str(checkpoint), "--images", str(splits["test"].images),
                 "--out", str(out)]) == 0
    model, state = load_checkpoint(checkpoint)
    data = MaskDataset(splits["test"], len(class_names()), eval_transform(64), resize_mask=False)
    seen = {}
    dataset_confusions(model, data, torch.device("cpu"), 64, on_image=lambda i, p, t: seen.__setitem__(i, p.numpy()))
    for index, (image, _) in enumerate(data.pairs):
        written = np.asarray(Image.open(out / "masks" / f"{image.stem}.png"))
        assert np.array_equal(written, seen[index]), image.name
        assert (out / "overlays" / f"{image.name}.jpg").stat().st_size > 0
    assert json.loads((out / "classes.json").read_text())["names"] == class_names()
    # a non-empty output folder, an unreadable image and a file that is no checkpoint are refused
    assert main(["predict", "--checkpoint", str(checkpoint), "--images", str(splits["test"].images),
                 "--out", str(out)]) == 2
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "a.png").write_bytes(b"not a png")
    assert main(["predict", "--checkpoint", str(checkpoint), "--images", str(broken), "--out",
                 str(tmp_path / "o2")]) == 2
    (tmp_path / "bogus.pt").write_bytes(b"nothing")
    assert main(["predict", "--checkpoint", str(tmp_path / "bogus.pt"), "--images", str(splits["test"].images),
                 "--out", str(tmp_path / "o3")]) == 2
    assert not (tmp_path / "o2").exists() and not (tmp_path / "o3").exists()
