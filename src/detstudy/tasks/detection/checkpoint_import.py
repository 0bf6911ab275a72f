"""A vanilla run taken from an official DEIMv2 checkpoint instead of trained here.

The study trained DEIMv2-M for 14 GPU hours with the official code; its ``best_stg1.pth`` is
the vanilla run the multimodal phases fine-tune. :func:`import_checkpoint` loads it (EMA
weights, strict key mapping, the dataset's class count), validates it on the val split like
a trained run's epoch 0, and writes the run's ``best.pt`` and a one-row ``history.csv``
marked ``imported``, so evaluation, figures, the report and the phases treat it as any run.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any

import torch

from detstudy.study.config import training_categories
from detstudy.study.architectures import VARIANTS
from detstudy.study.grid import import_cells
from detstudy.tasks.detection.checkpoint import save_checkpoint
from detstudy.tasks.detection.data.coco import SplitPaths
from detstudy.tasks.detection.data.dataset import CocoDetection
from detstudy.engine.io import file_digest, write_csv
from detstudy.tasks.detection.models import build_detector
from detstudy.tasks.detection.models.deimv2_keys import (COCO_CLASSES, category_rows, load_official_checkpoint,
                                                       official_to_detstudy, read_official_checkpoint)
from detstudy.study.architectures import family_of
from detstudy.engine.settings import TrainSettings
from detstudy.tasks.detection.training import validate, resolved
from detstudy.engine.runtime import resolve_device

log = logging.getLogger("detstudy.import")


def import_checkpoint(*, architecture: str, model_settings: dict[str, Any] | None, source: str | Path,
                      train_settings: dict[str, Any] | None, train_split: SplitPaths, val_split: SplitPaths,
                      resolution: int, seed: int, checkpoint_path: str | Path, history_path: str | Path,
                      device: str = "auto", threads: int | None = None) -> dict[str, Any]:
    """Write the run ``checkpoint_path``/``history_path`` from the official file ``source``."""

    if family_of(architecture) != "vit":
        raise ValueError(f"import_checkpoint is for DEIMv2 models; {architecture} is a {family_of(architecture)} model. "
                         "Fix: remove import_checkpoint from this model, or use a deimv2_* architecture.")
    if threads:
        torch.set_num_threads(threads)
    settings = TrainSettings.from_dict(dict(train_settings or {}))
    device_ = resolve_device(device)
    categories = CocoDetection(train_split).categories
    val_data = CocoDetection(val_split, categories=categories)
    built = {**(model_settings or {}), "weights": None, "backbone_weights": None}  # the file holds every weight
    adapter = build_detector(architecture, len(categories), resolution, built)
    info = load_official_checkpoint(adapter.model, source, len(categories), list(categories.ids))
    if info["reinitialised_heads"]:
        raise ValueError(f"{source} is a COCO checkpoint ({info['file_classes']} classes): it cannot stand for a "
                         f"vanilla run on this dataset's {len(categories)} classes. Fix: fine-tune from it "
                         "instead (models.<name>.model.weights), or import a checkpoint trained on this dataset.")
    adapter.to(device_)
    adapter.model.eval()
    digest = file_digest(source)
    coco = validate(adapter, val_data, device_, settings, use_amp=False)
    log.info("imported %s (sha256 %s): val AP %.4f AP50 %.4f at %d px", source, digest[:12], coco["AP"],
             coco["AP50"], resolution)
    row = {"epoch": 0, "lr": None, "val_AP": coco["AP"], "val_AP50": coco["AP50"], "imported": str(source)}
    write_csv(history_path, [row])
    save_checkpoint(checkpoint_path, adapter, categories,
                    extra={"epoch": 0, "seed": seed, "val_AP": coco["AP"], "val_AP50": coco["AP50"],
                           "train_settings": resolved(settings), "model_settings": dict(model_settings or {}),
                           "imported_from": str(source), "imported_sha256": digest})
    return {"val_AP": coco["AP"], "val_AP50": coco["AP50"], "sha256": digest}


def check_import_file(path: str | Path, architecture: str, category_ids: list[int] | None) -> None:
    """The checks that need no model, for the workflow's start: the file exists and reads as
    an official DEIMv2 checkpoint of this variant whose every key has a mapping, trained for
    the dataset's class count (when known)."""

    state = read_official_checkpoint(path)
    if "decoder.enc_score_head.weight" not in state:
        raise ValueError(f"{path} is not a DEIMv2 checkpoint (no decoder.enc_score_head.weight; first keys "
                         f"{list(state)[:4]}). Fix: point import_checkpoint to the official training's best_stg1.pth.")
    _, _, unknown = official_to_detstudy(state)
    if unknown:
        raise ValueError(f"{path}: keys no mapping knows: {unknown[:6]}. Fix: import a DEIMv2 DINOv3 (S or M) "
                         "checkpoint written by the official code.")
    width = state.get("backbone.dinov3._model.patch_embed.proj.weight")
    expected = VARIANTS[architecture]["vit_hidden"]
    if width is None or width.shape[0] != expected:
        found = "no ViT" if width is None else f"a ViT of width {width.shape[0]}"
        raise ValueError(f"{path} holds {found}; {architecture} has a ViT of width {expected}. "
                         "Fix: import the checkpoint of the same variant (vitt: deimv2_s, vittplus: deimv2_m).")
    classes = state["decoder.enc_score_head.weight"].shape[0]

    id_indexed = category_rows(classes, category_ids) is not None and classes != COCO_CLASSES  # 80: a COCO file
    if category_ids and classes != len(category_ids) and not id_indexed:
        raise ValueError(f"{path} was trained for {classes} classes, the dataset has {len(category_ids)} (ids "
                         f"{sorted(category_ids)}; the official code indexes classes by category id, so a file of "
                         "this dataset has max id + 1 heads or the dataset's count). Fix: import the checkpoint of "
                         "a run on this dataset (a COCO file is a start for fine-tuning: model.weights).")


def check_import_files(config: dict) -> None:
    """Every imported run's file, read now when torch is importable here (otherwise the import
    job checks it): a missing, foreign or mismatched file stops the workflow before any job."""
    for name in config["grid"]["models"]:
        given = config["models"][name].get("import_checkpoint")
        if not given:
            continue
        key = f"config models.{name}.import_checkpoint"
        for cell, path in import_cells(config, name).items():
            where = key if isinstance(given, str) else f"{key}[{cell!r}]"
            if not os.path.isfile(path):
                raise ValueError(f"{where}: {path!r} is not a file (relative paths start at {os.getcwd()}). Fix: "
                                 "point it to the official training's best_stg1.pth (or another official checkpoint).")
            categories = training_categories(config)
            try:
                check_import_file(path, config["models"][name]["architecture"],
                                  None if categories is None else [c["id"] for c in categories])
            except ValueError as error:
                raise ValueError(f"{where}: {error}") from None
