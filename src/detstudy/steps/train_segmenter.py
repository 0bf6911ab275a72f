"""The ``train_segmenter`` step: one (model, resolution, seed) segmentation run trained on the
engine (``detstudy.tasks.segmentation.training.train_run``); the loss's class weights come from
the training split's pixel counts its check recorded."""

from __future__ import annotations

from typing import Any

from detstudy.engine.io import read_json
from detstudy.tasks.segmentation.data.layout import MaskSplit
from detstudy.tasks.segmentation.training import train_run


def train_segmenter(*, train_check, splits: dict[str, dict[str, str]], dataset: dict[str, Any], **run) -> dict:
    """``splits``: the train and val folders; ``dataset``: classes, ignore_index, palette;
    ``run``: the other :func:`train_run` arguments."""
    pixels = [entry["pixels"] for entry in read_json(train_check)["counts"]["per_class"]]
    return train_run(train_split=MaskSplit.of(**splits["train"]), val_split=MaskSplit.of(**splits["val"]),
                     class_names=dataset["classes"], ignore_index=dataset["ignore_index"],
                     palette=dataset.get("palette"), train_pixels=pixels, **run)
