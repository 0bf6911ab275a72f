"""The parse-time checks of a model entry that the segmentation and classification configs share
(torch-free): its training augmentations and selection metric belong to the task, it is not an
imported DEIMv2 run, and a weights file it names exists."""

from __future__ import annotations

import os

#: A ``model.weights`` value ending so names a local file (anything else: a hub id or a name).
WEIGHT_SUFFIXES = (".pt", ".pth", ".bin", ".safetensors")


def check_task_model(name: str, model: dict, *, task: str, augmentations: tuple[str, ...],
                     select_metrics: tuple[str, ...], pretrained: str, weights_fix: str) -> None:
    """Raise a ``ValueError`` naming ``models.<name>``'s key and the fix.

    ``task`` names the run in the messages ("classification"); ``pretrained`` what goes in
    ``model.weights`` instead of an import ("pretrained classifiers"); ``weights_fix`` what a bad
    weights path can become ("a hub id, or null to train from scratch")."""
    training = model.get("training") or {}
    unknown = sorted(set(training.get("augmentation") or {}) - set(augmentations))
    if unknown:
        raise ValueError(f"config models.{name}.training.augmentation: {unknown} are not {task} augmentations. "
                         f"Fix: a {task} run knows {', '.join(augmentations)}.")
    if training.get("select_metric", select_metrics[0]) not in select_metrics:
        raise ValueError(f"config models.{name}.training.select_metric: {training['select_metric']} is not a "
                         f"{task} metric. Fix: use {' or '.join(select_metrics)}.")
    if model.get("import_checkpoint"):
        raise ValueError(f"config models.{name}.import_checkpoint: only DEIMv2 detection runs can be imported. "
                         f"Fix: remove the key ({pretrained} go in model.weights).")
    weights_file = (model.get("model") or {}).get("weights")
    if weights_file and weights_file.endswith(WEIGHT_SUFFIXES) and not os.path.isfile(weights_file):
        raise ValueError(f"config models.{name}.model.weights: {weights_file!r} is not a file (relative paths start "
                         f"at {os.getcwd()}). Fix: correct the path, give {weights_fix}.")
