"""The ``train_classifier`` step: one (model, resolution, seed) classification run fine-tuned on
the engine (``detstudy.tasks.classification.training.train_run``); its classes are the training
split's, as its check recorded them."""

from __future__ import annotations

from detstudy.engine.io import read_json
from detstudy.tasks.classification.data.layout import ImageSplit
from detstudy.tasks.classification.training import train_run


def train_classifier(*, train_check, splits: dict[str, str], **run) -> dict:
    """``splits``: the train and val sources; ``run``: the other :func:`train_run` arguments."""
    classes = read_json(train_check)["counts"]["classes"]
    return train_run(train_split=ImageSplit.of(splits["train"]), val_split=ImageSplit.of(splits["val"]),
                     class_names=classes, **run)
