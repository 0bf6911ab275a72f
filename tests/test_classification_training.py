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
            "warmup_iters": 2, "augmentation": {"crop_scale": [0.6, 1.0], "horizontal_flip": 0.5}}


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


def test_history_holds_the_seed_studys_table_and_the_validation_loss_is_the_training_loss(splits, tmp_path):
    from torch.nn import functional as F

    train_run(architecture="resnet_demo", model_settings={}, train_settings=SETTINGS, train_split=splits["train"],
              val_split=splits["val"], class_names=class_names(), resolution=32, seed=0,
              checkpoint_path=tmp_path / "best.pt", history_path=tmp_path / "history.csv", label_smoothing=0.1)
    with open(tmp_path / "history.csv") as handle:
        rows = list(csv.DictReader(handle))
    assert {"loss", "train_accuracy", "val_loss", "val_accuracy"} <= set(rows[0])
    assert all(0 <= float(row["train_accuracy"]) <= 1 for row in rows)
    model, state = load_checkpoint(tmp_path / "best.pt")
    val = ImageDataset(splits["val"], class_names(), eval_transform(32, state["preprocessing"]))
    found = validate(model, val, torch.device("cpu"), batch_size=4, label_smoothing=0.1)
    with torch.no_grad():
        images = torch.stack([val[i][0] for i in range(len(val))])
        labels = torch.tensor([val[i][1] for i in range(len(val))])
        expected = F.cross_entropy(model(images), labels, label_smoothing=0.1)
    assert found["loss"] == pytest.approx(float(expected), rel=1e-5)
    assert found["loss"] == pytest.approx(state["val_loss"], rel=1e-9)


def test_mixup_and_cutmix_mix_the_batches(splits, tmp_path):
    def trained(augmentation):
        folder = tmp_path / str(len(augmentation))
        train_run(architecture="resnet_demo", model_settings={}, train_settings={**SETTINGS, "epochs": 1,
                  "augmentation": augmentation}, train_split=splits["train"], val_split=splits["val"],
                  class_names=class_names(), resolution=32, seed=0, checkpoint_path=folder / "best.pt",
                  history_path=folder / "history.csv")
        return load_checkpoint(folder / "best.pt")[0].state_dict()

    plain = trained({"crop_scale": [0.6, 1.0]})
    mixed = trained({"crop_scale": [0.6, 1.0], "mixup_alpha": 0.2, "cutmix_alpha": 1.0})
    assert not torch.equal(plain["network.fc.weight"], mixed["network.fc.weight"])
    with pytest.raises(ValueError, match="unknown classification augmentation settings.*mosaic"):
        trained({"mosaic": 0.5})


def test_patience_stops_after_epochs_without_a_better_validation(splits, tmp_path):
    # a ViT (no batch-norm statistics moving) at a vanishing rate: no epoch after the first is better
    settings = {**SETTINGS, "epochs": 6, "lr": 1e-12, "warmup_iters": 0, "early_stop_patience": 2}
    summary = train_run(architecture="dinov3_demo", model_settings={}, train_settings=settings,
                        train_split=splits["train"], val_split=splits["val"], class_names=class_names(), resolution=32,
                        seed=0, checkpoint_path=tmp_path / "best.pt", history_path=tmp_path / "history.csv")
    assert summary["best_epoch"] == 1 and summary["epochs"] == 3  # epochs 2 and 3 were no better: stopped
