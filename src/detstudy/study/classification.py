"""The classification study's config rules, torch-free: where each split lives and the checks the
Snakefile runs while it parses a ``task: classification`` config.

A split is a folder with one sub-folder per class (torchvision's ``ImageFolder``) or a CSV file
of ``path,label`` rows; the classes are the training split's, sorted as ``ImageFolder`` sorts
them. The synthetic demo writes its crops of the detection demo's six classes in that layout.
"""

from __future__ import annotations

import csv
import hashlib
import os
from pathlib import Path

from detstudy.study.model_checks import check_task_model
from detstudy.study.splits import SPLITS

#: The training augmentations a classification run knows (``training.augmentation`` keys).
CLASSIFICATION_AUGMENTATIONS = ("crop_scale", "horizontal_flip", "vertical_flip", "mixup_alpha", "cutmix_alpha")
#: The validation metrics that can pick a classification run's best checkpoint.
CLASSIFICATION_SELECT_METRICS = ("accuracy", "macro_F1")
#: The ViT's patch per architecture: its resolution must be a multiple (the other families take any size).
PATCHES = {"dinov3_vits16": 16, "dinov3_demo": 8}


def split_sources(config: dict, synthetic_dir) -> dict[str, str]:
    """``{split: folder or CSV}``: the user's (``dataset.splits``) or the demo generator's."""
    if config["dataset"]["source"] == "synthetic":
        return {split: str(Path(synthetic_dir, "images", split)) for split in SPLITS}
    return {split: config["dataset"]["splits"][split] for split in SPLITS}


def split_stamp(source) -> str:
    """A digest of (name, size, modification time) of every file a split lists (and of its CSV):
    a parameter of the split's check, so that a replaced, added or removed image reruns it, for
    one stat() per file (listing tens of thousands of files as inputs costs Snakemake minutes)."""
    source = Path(source)
    digest = hashlib.sha256()
    if source.suffix.lower() == ".csv":
        files = [source]
        try:
            with open(source, newline="") as handle:
                files += [source.parent / row.get("path", "") for row in csv.DictReader(handle)]
        except (OSError, UnicodeDecodeError, csv.Error):
            pass  # the check names the problem
    else:
        folders = sorted(p for p in source.iterdir() if p.is_dir()) if source.is_dir() else []
        files = [entry for folder in folders for entry in sorted(folder.iterdir())]
    for path in files:
        try:
            info = path.stat()
            digest.update(f"{path}\0{info.st_size}:{info.st_mtime_ns}\n".encode())
        except OSError:
            digest.update(f"{path}\0missing\n".encode())
    return digest.hexdigest()


def resolution_problem(architecture: str, resolution: int) -> str | None:
    """Why ``architecture`` cannot take ``resolution`` px (None when it can)."""
    patch = PATCHES.get(architecture)
    if patch and resolution % patch:
        return (f"resolution {resolution} is not a multiple of {architecture}'s patch size {patch}. "
                f"Fix: use e.g. {max(1, round(resolution / patch)) * patch}.")
    return None


def check_classification(config: dict) -> None:
    """Everything a classification config must hold together, each problem with its key and fix."""
    dataset = config["dataset"]
    if dataset["source"] not in ("synthetic", "imagefolder"):
        raise ValueError(f"config dataset.source: {dataset['source']} is a "
                         f"{'detection' if dataset['source'] == 'coco' else 'segmentation'} dataset and the task is "
                         "classification. Fix: use source: imagefolder with dataset.splits.<split> (a folder of class "
                         "folders, or a path,label CSV), or source: synthetic.")
    if dataset["source"] == "imagefolder":
        for split in SPLITS:
            path = dataset["splits"][split]
            exists = os.path.isfile(path) if path.lower().endswith(".csv") else os.path.isdir(path)
            if not exists:
                raise ValueError(f"config dataset.splits.{split}: {path!r} is not a "
                                 f"{'file' if path.lower().endswith('.csv') else 'folder'} (relative paths start at "
                                 f"{os.getcwd()}). Fix: point it to the {split} split: a folder with one sub-folder "
                                 "per class, or a CSV of path,label rows.")
    for name in config["grid"]["models"]:
        model = config["models"][name]
        for px in config["grid"]["resolutions"]:
            problem = resolution_problem(model["architecture"], px)
            if problem:
                raise ValueError(f"config grid.resolutions: {px} px does not suit model {name!r}: {problem}")
        check_task_model(name, model, task="classification", augmentations=CLASSIFICATION_AUGMENTATIONS,
                         select_metrics=CLASSIFICATION_SELECT_METRICS, pretrained="pretrained classifiers",
                         weights_fix="a hub id or torchvision weights name, or null to train from random weights")
    loss = config.get("loss") or {}
    foreign = sorted(key for key in ("ce_weight", "dice_weight") if key in loss and loss[key] != 1.0)
    if loss.get("class_weights", "inverse_log") not in ("inverse_log", "none"):  # inverse_log: the schema's default
        foreign.append("class_weights")
    if foreign:
        raise ValueError(f"config loss: {foreign} are segmentation settings. Fix: a classification run's loss is "
                         "the cross-entropy with loss.label_smoothing.")
    if config.get("multimodal"):
        raise ValueError("config multimodal: the text-conditioned extension is a detection model. Fix: remove the "
                         "multimodal section from a classification config.")
