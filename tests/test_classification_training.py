"""Classification fine-tuning on the engine: each family trains on the demo's crops, its best
checkpoint reloads to the validated numbers, a killed run resumes to the same weights."""

from __future__ import annotations

import csv

import pytest
import torch

from detstudy.tasks.classification.checkpoint import load_checkpoint
from detstudy.tasks.classification.data.dataset import ImageDataset, eval_transform
from detstudy.tasks.classification.data.layout import ImageSplit
from detstudy.tasks.classification.data.synthetic import class_names, generate_classification_dataset
from detstudy.tasks.classification.models import PREPROCESSING
from detstudy.tasks.classification.training import train_run, validate

SETTINGS = {"epochs": 2, "batch_size": 8, "optimizer": "adamw", "lr": 0.002, "lr_schedule": "cosine",
            "warmup_iters": 2, "augmentation": {"scale": [0.6, 1.0], "horizontal_flip": 0.5}}


@pytest.fixture(scope="module")
def splits(tmp_path_factory):
    paths = generate_classification_dataset(tmp_path_factory.mktemp("crops"), seed=0, image_size=96, crop_size=32,
                                            split_sizes={"train": 32, "val": 12, "test": 12})
    return {name: ImageSplit.of(path) for name, path in paths.items()}


@pytest.mark.parametrize("architecture", ["resnet_demo", "mobilevit_demo", "dinov3_demo"])
def test_each_family_trains_and_its_checkpoint_holds_the_validated_numbers(splits, tmp_path, architecture):
    summary = train_run(architecture=architecture, model_settings={"fine_tune": "full"}, train_settings=SETTINGS,
                        train_split=splits["train"], val_split=splits["val"], class_names=class_names(),
                        resolution=32, seed=0, checkpoint_path=tmp_path / "best.pt",
                        history_path=tmp_path / "history.csv", label_smoothing=0.1)
    model, state = load_checkpoint(tmp_path / "best.pt")
    assert state["class_names"] == class_names() and state["preprocessing"] == PREPROCESSING[model.family]
    val = ImageDataset(splits["val"], class_names(), eval_transform(32, state["preprocessing"]))
    again = validate(model, val, torch.device("cpu"), batch_size=4)
    assert again["accuracy"] == pytest.approx(state["val_accuracy"], abs=1e-12)
    with open(tmp_path / "history.csv") as handle:
        rows = list(csv.DictReader(handle))
    assert len(rows) == 2 and {"loss_ce", "val_accuracy", "val_macro_F1"} <= set(rows[0])
    assert summary["best_epoch"] in (1, 2)


def test_head_only_fine_tuning_leaves_the_backbone_as_it_was(splits, tmp_path):
    torch.manual_seed(0)
    train_run(architecture="resnet_demo", model_settings={"fine_tune": "head"}, train_settings=SETTINGS,
              train_split=splits["train"], val_split=splits["val"], class_names=class_names(), resolution=32, seed=0,
              checkpoint_path=tmp_path / "best.pt", history_path=tmp_path / "history.csv")
    from detstudy.tasks.classification.models import build_classifier
    from detstudy.engine.runtime import seed_everything

    seed_everything(0)
    initial = build_classifier("resnet_demo", len(class_names()), fine_tune="head").state_dict()
    trained, _ = load_checkpoint(tmp_path / "best.pt")
    changed = {k for k, v in trained.state_dict().items() if not torch.equal(v, initial[k])}
    assert changed and all(k.startswith("network.fc.") for k in changed)


def test_evaluation_writes_the_protocol_from_every_images_probabilities(splits, tmp_path):
    import json

    import numpy as np

    from detstudy.tasks.classification.evaluation import evaluate
    from detstudy.tasks.classification.metrics import metrics_from_predictions

    train_run(architecture="dinov3_demo", model_settings={}, train_settings=SETTINGS, train_split=splits["train"],
              val_split=splits["val"], class_names=class_names(), resolution=32, seed=0,
              checkpoint_path=tmp_path / "best.pt", history_path=tmp_path / "history.csv")
    run = {"model": "vit", "resolution": 32, "phase": "base", "seed": 0}
    record = evaluate(checkpoint=tmp_path / "best.pt", test_split=splits["test"], run=run,
                      metrics_path=tmp_path / "metrics.json", predictions_path=tmp_path / "predictions.npz",
                      batch_size=5)
    stored = np.load(tmp_path / "predictions.npz")
    assert len(stored["true"]) == 12 and stored["probabilities"].shape == (12, 6)
    again = metrics_from_predictions(stored["true"], stored["probabilities"], class_names())
    assert again["accuracy"] == record["metrics"]["accuracy"]
    assert json.loads((tmp_path / "metrics.json").read_text())["protocol"]["classes"] == class_names()
