"""Fine-tuning a classifier: the classification task's data, model and validation, run by the
engine's loop (:func:`detstudy.engine.training.run_training`), resumable like the other tasks'.
Cross-entropy with optional label smoothing and MixUp / CutMix; the best checkpoint by validation
accuracy (or macro F1: ``select_metric``). The history records the seed study's table per epoch: train loss and accuracy (on the
un-mixed labels), validation loss, accuracy and macro F1."""

from __future__ import annotations

import logging
from dataclasses import asdict
from pathlib import Path
from typing import Any

import torch
from torch.nn import functional as F
from torch.utils.data import DataLoader

from detstudy.engine.io import file_digest
from detstudy.engine.provenance import kernel_record
from detstudy.engine.resume import TrainingState, fingerprint
from detstudy.engine.runtime import resolve_device, seed_everything
from detstudy.engine.settings import TrainSettings
from detstudy.engine.training import TrainingParts, run_training
from detstudy.tasks.classification.checkpoint import save_checkpoint
from detstudy.tasks.classification.data.dataset import ImageAugmentation, ImageDataset, eval_transform, train_transform
from detstudy.tasks.classification.data.layout import ImageSplit
from detstudy.tasks.classification.metrics import SUMMARY, confusion_matrix, summary
from detstudy.tasks.classification.inference import predict_logits
from detstudy.tasks.classification.models import PREPROCESSING, Classifier, build_classifier

log = logging.getLogger("detstudy.train")

#: The validation numbers in history.csv (``val_<name>``); the best checkpoint is picked by one of
#: :data:`SELECT_METRICS` (accuracy unless told).
VALIDATION_METRICS = ("accuracy", "macro_F1", "loss")
SELECT_METRICS = ("accuracy", "macro_F1")
DEFAULT_SELECT_METRIC = "accuracy"


class ClassificationAdapter:
    """What the engine's loop trains: ``model`` and ``losses(images, labels)``; ``mixing``: the
    batch's MixUp / CutMix (soft labels), if any."""

    def __init__(self, model: Classifier, label_smoothing: float = 0.0, mixing=None):
        self.model, self.label_smoothing, self.mixing = model, label_smoothing, mixing
        self.architecture, self.settings = model.architecture, model.settings
        self.backbone_prefix = ""  # backbone_lr: not split for classification (the head is part of the network)
        self.decays = None

    def losses(self, images: torch.Tensor, labels: torch.Tensor) -> dict[str, torch.Tensor]:
        targets = labels
        if self.mixing is not None:
            images, targets = self.mixing(images, labels)
        logits = self.model(images)
        accuracy = (logits.detach().argmax(dim=1) == labels).float().mean()  # recorded, not a loss (no "loss" prefix)
        return {"loss_ce": F.cross_entropy(logits, targets, label_smoothing=self.label_smoothing),
                "train_accuracy": accuracy}


def validate(model: Classifier, data: ImageDataset, device: torch.device, batch_size: int,
             use_amp: bool = False, amp_dtype: torch.dtype = torch.float16, label_smoothing: float = 0.0) -> dict[str, float]:
    """Accuracy, macro F1 and the loss (the training's cross-entropy, label smoothing included) on ``data``."""
    true, logits = predict_logits(model, data, device, batch_size, use_amp, amp_dtype)
    values = summary(confusion_matrix(true.numpy(), logits.argmax(dim=1).numpy(), len(data.class_names)))
    loss = F.cross_entropy(logits, true, label_smoothing=label_smoothing) if len(true) else torch.tensor(float("nan"))
    return {**{name: float(values[SUMMARY.index(name)]) for name in SELECT_METRICS}, "loss": float(loss)}


def train_run(*, architecture: str, model_settings: dict[str, Any] | None, train_settings: dict[str, Any],
              train_split: ImageSplit, val_split: ImageSplit, class_names: list[str], resolution: int, seed: int,
              checkpoint_path: str | Path, history_path: str | Path, label_smoothing: float = 0.0,
              device: str = "auto", threads: int | None = None, state_dir: str | Path | None = None) -> dict[str, Any]:
    """Train one (model, resolution, seed) cell; write the best checkpoint (by the validation
    ``select_metric``, accuracy unless told) and the history CSV. ``model_settings``: ``fine_tune`` (full, head, last_<n>),
    ``drop_path_rate``."""
    settings = TrainSettings.from_dict({"select_metric": DEFAULT_SELECT_METRIC, **train_settings})
    if settings.select_metric not in SELECT_METRICS:
        raise ValueError(f"select_metric {settings.select_metric!r}: a classification run is selected by one of "
                         f"{', '.join(SELECT_METRICS)}")
    if threads:
        torch.set_num_threads(threads)
    generator = seed_everything(seed)
    device_ = resolve_device(device)
    use_amp = settings.amp and device_.type == "cuda"
    model = build_classifier(architecture, len(class_names), **(model_settings or {}))
    preprocessing = PREPROCESSING[model.family]
    augmentation = ImageAugmentation.from_dict(settings.augmentation)
    train_data = ImageDataset(train_split, class_names, train_transform(augmentation, resolution, preprocessing))
    val_data = ImageDataset(val_split, class_names, eval_transform(resolution, preprocessing))
    adapter = ClassificationAdapter(model.to(device_), label_smoothing, augmentation.batch_mixing(len(class_names)))
    loader = DataLoader(train_data, batch_size=settings.batch_size, shuffle=True,
                        drop_last=len(train_data) > settings.batch_size, num_workers=settings.num_workers,
                        generator=generator)
    batch = settings.eval_batch_size or settings.batch_size

    def save_best(path, chosen, extra):
        save_checkpoint(path, chosen.model, class_names, extra=extra)

    parts = TrainingParts.with_optimization(
        adapter, loader, settings, use_amp, to_device=lambda b: (b[0].to(device_), b[1].to(device_)),
        validate=lambda chosen: validate(chosen.model, val_data, device_, batch, use_amp and settings.val_amp,
                                         getattr(torch, settings.amp_dtype), label_smoothing),
        save_checkpoint=save_best, metrics=VALIDATION_METRICS)
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    log.info("training %s at %d px on %s (%s) for %d epochs x %d iterations; %s of %s parameters trained (%s); "
             "augmentation %s", architecture, resolution, device_, f"AMP {settings.amp_dtype}" if use_amp else "fp32",
             settings.epochs, len(loader), f"{trainable:,}", f"{sum(p.numel() for p in model.parameters()):,}",
             model.settings["fine_tune"], asdict(augmentation))
    resume = None
    if state_dir is not None:
        resume = TrainingState(state_dir, fingerprint(
            architecture=architecture, model_settings=model.settings, train_settings=train_settings,
            label_smoothing=label_smoothing, resolution=resolution, seed=seed, classes=class_names,
            data=[[(path.name, label, file_digest(path)) for path, label in split.samples()]
                  for split in (train_split, val_split)],
            kernels=kernel_record()))
    return run_training(parts, settings, seed=seed, generator=generator, device=device_, use_amp=use_amp,
                        checkpoint_path=checkpoint_path, history_path=history_path,
                        checkpoint_extra={"train_settings": asdict(settings), "label_smoothing": label_smoothing,
                                          "resolution": resolution, "preprocessing": preprocessing},
                        resume=resume)
