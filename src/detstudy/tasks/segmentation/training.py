"""Training a segmenter: the segmentation task's data, model and validation, run by the
engine's loop (:func:`detstudy.engine.training.run_training`), resumable like detection's."""

from __future__ import annotations

import logging
from dataclasses import asdict
from pathlib import Path
from typing import Any

import torch
from torch.utils.data import DataLoader

from detstudy.engine.io import file_digest
from detstudy.engine.provenance import kernel_record
from detstudy.engine.resume import TrainingState, fingerprint
from detstudy.engine.runtime import resolve_device, seed_everything
from detstudy.engine.settings import TrainSettings
from detstudy.engine.training import TrainingParts, run_training
from detstudy.study.segmentation import SEGMENTATION_SELECT_METRICS
from detstudy.tasks.segmentation.checkpoint import save_checkpoint
from detstudy.tasks.segmentation.data.checks import check_split, loss_class_weights
from detstudy.tasks.segmentation.data.dataset import (MaskAugmentation, MaskDataset, collate, eval_transform,
                                                      train_transform)
from detstudy.tasks.segmentation.data.layout import MaskSplit
from detstudy.tasks.segmentation.inference import dataset_confusions
from detstudy.tasks.segmentation.losses import DiceCrossEntropy
from detstudy.tasks.segmentation.metrics import SUMMARY, summary
from detstudy.tasks.segmentation.models import Segmenter, build_segmenter

log = logging.getLogger("detstudy.train")

#: The validation metrics in history.csv (``val_<name>``); the best checkpoint is picked by mIoU unless told otherwise.
VALIDATION_METRICS = SEGMENTATION_SELECT_METRICS
DEFAULT_SELECT_METRIC = "mIoU"


class SegmentationAdapter:
    """What the engine's loop trains: ``model`` and ``losses(images, masks)``."""

    def __init__(self, model: Segmenter, loss: DiceCrossEntropy):
        self.model, self.loss = model, loss
        self.architecture, self.settings = model.architecture, model.settings
        self.backbone_prefix = "network." + model.encoder_name  # backbone_lr applies to the encoder
        self.decays = None  # the engine's default: no weight decay on norms and biases

    def losses(self, images: torch.Tensor, masks: torch.Tensor) -> dict[str, torch.Tensor]:
        return self.loss(self.model(images), masks)

    def parameter_count(self) -> dict[str, int]:
        return {"total": sum(p.numel() for p in self.model.parameters()),
                "trainable": sum(p.numel() for p in self.model.parameters() if p.requires_grad)}


def validate(model: Segmenter, data: MaskDataset, device: torch.device, resolution: int, mode: str,
             use_amp: bool = False, amp_dtype: torch.dtype = torch.float16) -> dict[str, float]:
    confusions = dataset_confusions(model, data, device, resolution, mode, use_amp, amp_dtype=amp_dtype)
    values = summary(confusions.sum(dim=0).numpy())
    return {name: float(value) for name, value in zip(SUMMARY, values) if name in VALIDATION_METRICS}


def train_run(*, architecture: str, model_settings: dict[str, Any] | None, train_settings: dict[str, Any],
              train_split: MaskSplit, val_split: MaskSplit, class_names: list[str], resolution: int, seed: int,
              checkpoint_path: str | Path, history_path: str | Path, ignore_index: int = 255,
              loss_settings: dict[str, Any] | None = None, inference: str = "whole",
              palette: list | None = None, device: str = "auto", threads: int | None = None,
              state_dir: str | Path | None = None, train_pixels: list[int] | None = None) -> dict[str, Any]:
    """Train one (model, resolution, seed) cell; write the best checkpoint (by validation mIoU)
    and the history CSV. ``loss_settings``: ``class_weights`` (inverse_log, median_frequency,
    none, or one number per class), ``ce_weight``, ``dice_weight``; ``train_pixels``: the
    training split's pixels per class as its check counted them (counted here when not given)."""
    settings = TrainSettings.from_dict({"select_metric": DEFAULT_SELECT_METRIC, **train_settings})
    if settings.select_metric not in VALIDATION_METRICS:
        raise ValueError(f"select_metric {settings.select_metric!r}: a segmentation run is selected by one of "
                         f"{', '.join(VALIDATION_METRICS)}")
    loss_settings = {"class_weights": "inverse_log", "ce_weight": 1.0, "dice_weight": 1.0, **(loss_settings or {})}
    if threads:
        torch.set_num_threads(threads)
    generator = seed_everything(seed)
    device_ = resolve_device(device)
    use_amp = settings.amp and device_.type == "cuda"
    num_classes = len(class_names)
    augmentation = MaskAugmentation.from_dict(settings.augmentation)
    train_data = MaskDataset(train_split, num_classes, train_transform(augmentation, resolution, ignore_index),
                             ignore_index=ignore_index, palette=palette)
    val_data = MaskDataset(val_split, num_classes, eval_transform(resolution, inference), ignore_index=ignore_index,
                           palette=palette, resize_mask=False)
    if train_pixels is None and loss_settings["class_weights"] in ("inverse_log", "median_frequency"):
        train_pixels = check_split(train_split, "train", num_classes, ignore_index, palette).pixels
    weights = loss_class_weights(loss_settings["class_weights"], train_pixels, num_classes)
    log.info("class weights (%s): %s", loss_settings["class_weights"] if isinstance(loss_settings["class_weights"], str)
             else "given", ", ".join(f"{n} {w:.3f}" for n, w in zip(class_names, weights)))
    model = build_segmenter(architecture, num_classes, resolution, **(model_settings or {}))
    loss = DiceCrossEntropy(torch.as_tensor(weights), ignore_index, loss_settings["ce_weight"],
                            loss_settings["dice_weight"])
    adapter = SegmentationAdapter(model.to(device_), loss.to(device_))
    loader = DataLoader(train_data, batch_size=settings.batch_size, shuffle=True,
                        drop_last=len(train_data) > settings.batch_size, collate_fn=collate,
                        num_workers=settings.num_workers, generator=generator)

    def save_best(path, chosen, extra):
        save_checkpoint(path, chosen.model, class_names, ignore_index, extra=extra)

    parts = TrainingParts.with_optimization(
        adapter, loader, settings, use_amp, to_device=lambda batch: (batch[0].to(device_), batch[1].to(device_)),
        validate=lambda chosen: validate(chosen.model, val_data, device_, resolution, inference,
                                         use_amp and settings.val_amp, getattr(torch, settings.amp_dtype)),
        save_checkpoint=save_best, metrics=VALIDATION_METRICS)
    counts = adapter.parameter_count()
    log.info("training %s at %d px on %s (%s) for %d epochs x %d iterations; %s parameters; augmentation %s",
             architecture, resolution, device_, f"AMP {settings.amp_dtype}" if use_amp else "fp32", settings.epochs,
             len(loader), f"{counts['total']:,}", asdict(augmentation))
    resume = None
    if state_dir is not None:
        resume = TrainingState(state_dir, fingerprint(
            architecture=architecture, model_settings=model.settings, train_settings=train_settings,
            loss=loss_settings, resolution=resolution, seed=seed, classes=class_names, ignore_index=ignore_index,
            data=[_split_identity(split) for split in (train_split, val_split)],
            kernels=kernel_record()))
    return run_training(parts, settings, seed=seed, generator=generator, device=device_, use_amp=use_amp,
                        checkpoint_path=checkpoint_path, history_path=history_path,
                        checkpoint_extra={"train_settings": asdict(settings), "loss": loss_settings,
                                          "class_weights": [float(w) for w in weights], "inference": inference},
                        resume=resume)


def _split_identity(split: MaskSplit) -> list:
    """What the resumed job must find unchanged: every mask's digest, every image's name and size."""
    return [(image.name, image.stat().st_size, file_digest(mask)) for image, mask in split.pairs()]
