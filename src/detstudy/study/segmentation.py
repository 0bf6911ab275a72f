"""The segmentation study's config rules, torch-free: its classes (names and colours), and the
checks the Snakefile runs while it parses a ``task: segmentation`` config.

A mask value ``k`` is class ``names[k]``; ``dataset.ignore_index`` (255) marks pixels left out
of the loss and the metrics. The synthetic demo's classes are the detection demo's six over
``background`` (index 0).
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import Any

import yaml

from detstudy.study.classes import synthetic_class_names
from detstudy.study.model_checks import check_task_model
from detstudy.study.splits import synthetic_file_name

#: Encoder stride of the three families' last stage: every resolution is a multiple of it.
SEGMENTATION_STRIDE = 32
#: Overlay colours where the config gives none: background grey, then distinct hues
#: (matplotlib's tab20 order), cycled for more classes.
DEFAULT_COLORS = [(80, 80, 80), (31, 119, 180), (255, 127, 14), (44, 160, 44), (214, 39, 40), (148, 103, 189),
                  (140, 86, 75), (227, 119, 194), (188, 189, 34), (23, 190, 207), (174, 199, 232),
                  (255, 187, 120), (152, 223, 138), (255, 152, 150), (197, 176, 213), (196, 156, 148),
                  (247, 182, 210), (219, 219, 141), (158, 218, 229), (127, 127, 127)]


#: The training augmentations a segmentation run knows (``training.augmentation`` keys).
SEGMENTATION_AUGMENTATIONS = ("scale_range", "horizontal_flip", "vertical_flip", "brightness", "contrast",
                              "saturation", "hue")
#: The validation metrics that can pick a segmentation run's best checkpoint.
SEGMENTATION_SELECT_METRICS = ("mIoU", "mDice")

def synthetic_files(root, split: str, kind: str, size: int) -> list[str]:
    """The PNG files the demo generator writes for one split: ``kind`` is images or masks."""
    return [str(Path(root, kind, split, synthetic_file_name(split, index))) for index in range(int(size))]


def _classes_file(path: str, workflow_dir) -> Path:
    """A relative path is looked up in the working directory, then in the workflow's folder."""
    shipped = Path(workflow_dir or ".", path)
    return Path(path) if os.path.exists(path) or not shipped.is_file() else shipped


def segmentation_classes(config: dict, workflow_dir=None) -> dict[str, list]:
    """``{"names": [...], "colors": [[r, g, b], ...]}`` of the study's classes, in index order."""
    dataset = config["dataset"]
    colors = dataset.get("colors")
    if dataset["source"] == "synthetic":
        names = synthetic_class_names()
    elif isinstance(dataset.get("classes"), str):
        path = _classes_file(dataset["classes"], workflow_dir)
        try:
            loaded = yaml.safe_load(path.read_text())
        except (OSError, yaml.YAMLError) as error:
            raise ValueError(f"config dataset.classes: cannot read {path} ({error}). Fix: point it to a YAML file "
                             "holding the class names in index order.") from None
        if isinstance(loaded, dict):
            names, colors = loaded.get("names"), colors or loaded.get("colors")
        else:
            names = loaded
        if not isinstance(names, list) or not all(isinstance(n, str) and n for n in names):
            raise ValueError(f"config dataset.classes: {path} holds {type(names).__name__}, not a list of class names. "
                             "Fix: write the names in index order, one '- name' line each (or names: [...]).")
    else:
        names = list(dataset["classes"])
    if colors is None:
        colors = [DEFAULT_COLORS[k % len(DEFAULT_COLORS)] for k in range(len(names))]
    return {"names": list(names), "colors": [list(map(int, c)) for c in colors]}


def resolution_problem(resolution: int) -> str | None:
    """Why the segmenters cannot take ``resolution`` px (None when they can)."""
    if resolution % SEGMENTATION_STRIDE:
        return (f"resolution {resolution} is not a multiple of {SEGMENTATION_STRIDE} (the encoders' last stride). "
                f"Fix: use e.g. {max(1, round(resolution / SEGMENTATION_STRIDE)) * SEGMENTATION_STRIDE}.")
    return None


def check_segmentation(config: dict, workflow_dir=None) -> None:
    """Everything a segmentation config must hold together, each problem with its key and fix."""
    dataset = config["dataset"]
    if dataset["source"] == "coco":
        raise ValueError("config dataset.source: coco is a detection dataset and the task is segmentation. Fix: "
                         "use source: folders with dataset.folders.<split>.images / masks, or source: synthetic.")
    classes = segmentation_classes(config, workflow_dir)
    names = classes["names"]
    if len(names) < 2:
        raise ValueError(f"config dataset.classes: {names}: a segmentation needs at least two classes (background "
                         "and one more). Fix: list every class in index order.")
    repeated = sorted({n for n in names if names.count(n) > 1})
    if repeated:
        raise ValueError(f"config dataset.classes: {repeated} named twice. Fix: give each class its own name.")
    ignore = dataset.get("ignore_index", 255)
    if ignore < len(names):
        raise ValueError(f"config dataset.ignore_index: {ignore} is class {names[ignore]!r} (classes 0..{len(names) - 1}). "
                         "Fix: use a value above the class indices, such as 255.")
    for key, values in (("colors", classes["colors"]), ("palette", dataset.get("palette"))):
        if values is not None and len(values) != len(names):
            raise ValueError(f"config dataset.{key}: {len(values)} colours for {len(names)} classes. Fix: one "
                             "[r, g, b] per class, in index order.")
    weights = (config.get("loss") or {}).get("class_weights")
    if isinstance(weights, list) and len(weights) != len(names):
        raise ValueError(f"config loss.class_weights: {len(weights)} weights for {len(names)} classes ({names}). "
                         "Fix: one number per class, or inverse_log / median_frequency / none.")
    if dataset["source"] == "folders":
        for split in ("train", "val", "test"):
            for key in ("images", "masks"):
                path = dataset["folders"][split][key]
                if not os.path.isdir(path):
                    raise ValueError(f"config dataset.folders.{split}.{key}: {path!r} is not a folder (relative paths "
                                     f"start at {os.getcwd()}). Fix: point it to the {split} split's {key}.")
    for px in config["grid"]["resolutions"]:
        problem = resolution_problem(px)
        if problem:
            raise ValueError(f"config grid.resolutions: {problem}")
    for name in config["grid"]["models"]:
        model = config["models"][name]
        check_task_model(name, model, task="segmentation", augmentations=SEGMENTATION_AUGMENTATIONS,
                         select_metrics=SEGMENTATION_SELECT_METRICS, pretrained="pretrained segmentation encoders",
                         weights_fix="a hub id, or null to train from scratch")
    if (config.get("loss") or {}).get("label_smoothing"):
        raise ValueError("config loss.label_smoothing: a classification setting. Fix: remove it (a segmentation run's "
                         "loss is Dice + cross-entropy with loss.class_weights).")
    if config.get("multimodal"):
        raise ValueError("config multimodal: the text-conditioned extension is a detection model. Fix: remove the "
                         "multimodal section from a segmentation config.")


def resolved_loss(config: dict) -> dict[str, Any]:
    """The loss settings every segmentation run trains with (the schema's defaults filled in)."""
    loss = config.get("loss") or {}
    return {"class_weights": loss.get("class_weights", "inverse_log"), "ce_weight": float(loss.get("ce_weight", 1.0)),
            "dice_weight": float(loss.get("dice_weight", 1.0))}


def folder_stamp(*folders) -> str:
    """A digest of (name, size, modification time) of every file in ``folders``: a parameter of a
    split's check, so that a replaced, added or removed image or mask reruns it, for one stat()
    per file (listing tens of thousands of files as inputs costs Snakemake minutes at each start)."""
    digest = hashlib.sha256()
    for folder in folders:
        try:
            entries = sorted((entry.name, entry.stat()) for entry in os.scandir(folder) if entry.is_file())
        except OSError:
            digest.update(f"{folder}\0missing\n".encode())  # the check names it
            continue
        for name, info in entries:
            digest.update(f"{folder}/{name}\0{info.st_size}:{info.st_mtime_ns}\n".encode())
    return digest.hexdigest()
