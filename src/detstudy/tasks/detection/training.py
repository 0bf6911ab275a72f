"""Training a detector: the detection task's data, model and validation, run by the engine's loop.

:func:`train_run` builds the run (COCO splits with the DEIM augmentation recipe, the detector,
its optimizer and schedule) and hands it to :func:`detstudy.engine.training.run_training`.
"""

from __future__ import annotations

import logging
from dataclasses import asdict
from pathlib import Path
from typing import Any, Callable

import torch
from torch.utils.data import DataLoader

from detstudy.engine.io import file_digest
from detstudy.engine.provenance import kernel_record
from detstudy.engine.resume import TrainingState, fingerprint
from detstudy.engine.runtime import resolve_device, seed_everything
from detstudy.engine.settings import TrainSettings
from detstudy.engine.training import TrainingParts, run_training
from detstudy.tasks.detection.checkpoint import load_checkpoint, save_checkpoint
from detstudy.tasks.detection.data.augment import OPS, AugmentationSettings, BatchAugment, TrainAugmentation
from detstudy.tasks.detection.data.coco import CategoryMap, SplitPaths
from detstudy.tasks.detection.data.dataset import CocoDetection, collate
from detstudy.tasks.detection.data.layout import image_files_stamp
from detstudy.tasks.detection.evaluation.inference import predict_dataset
from detstudy.tasks.detection.evaluation.metrics import coco_evaluate
from detstudy.tasks.detection.models import DetectorAdapter, build_detector

log = logging.getLogger("detstudy.train")


def resolved(settings: TrainSettings) -> dict[str, Any]:
    """The settings with every default filled in, the augmentation's and its epoch windows too."""
    return {**asdict(settings), "augmentation": {**asdict(AugmentationSettings.from_dict(settings.augmentation)),
                                                 "epochs": list(settings.epoch_windows.as_tuple())}}


def validate(evaluated, val_data, device: torch.device, settings: TrainSettings, use_amp: bool) -> dict:
    detections = predict_dataset(evaluated, val_data, device, settings.eval_batch_size,
                                 amp=use_amp and settings.val_amp, amp_dtype=getattr(torch, settings.amp_dtype))
    return {k: v or 0.0 for k, v in coco_evaluate(val_data.coco, detections)["coco"].items()}


def start_from_checkpoint(path: str | Path, categories, resolution: int, device: torch.device):
    """The detector of a finished run's checkpoint (fine-tuning), checked against this run."""
    adapter, trained_on, _ = load_checkpoint(path, device)
    if trained_on != categories:
        raise ValueError(f"{path} was trained on categories {trained_on.as_list()}, the training split has "
                         f"{categories.as_list()}. Fix: fine-tune on the dataset the checkpoint was trained on.")
    if adapter.resolution != resolution:
        raise ValueError(f"{path} was trained at {adapter.resolution} px, this run is at {resolution} px. "
                         "Fix: start from the checkpoint of the same resolution.")
    return adapter


def out_of_memory_message(error: BaseException, settings: TrainSettings, resolution: int) -> str:
    effective = settings.batch_size * settings.accumulate_steps
    amp = f"AMP {settings.amp_dtype}" if settings.amp else "AMP off"
    return (f"the GPU ran out of memory at {resolution} px with batch size {settings.batch_size} "
            f"(x{settings.accumulate_steps} accumulated = {effective}), {amp}: {str(error).splitlines()[0]} "
            f"Fix, in models.<name>.training (or multimodal.training): lower batch_size and raise "
            f"accumulate_steps to keep the effective batch of {effective}; or train at a lower resolution "
            f"(grid.resolutions); or set amp: true (amp_dtype: bfloat16 on Ampere or newer GPUs).")



def batch_to_device(batch, device: torch.device) -> tuple[list[torch.Tensor], list[dict[str, torch.Tensor]]]:
    """A loader batch of uint8 images and COCO targets as float images in [0, 1] and plain box tensors."""
    images, targets = batch
    images = [image.to(device).float().div_(255.0) for image in images]
    targets = [{"boxes": t["boxes"].as_subclass(torch.Tensor).to(device), "labels": t["labels"].to(device)}
               for t in targets]
    return images, targets


def _build(settings: TrainSettings, *, architecture, model_settings, train_split, val_split, resolution: int,
           start_from, prepare, generator: torch.Generator, device: torch.device, use_amp: bool, seed: int,
           ) -> tuple[TrainingParts, CategoryMap]:
    augmentation, windows = AugmentationSettings.from_dict(settings.augmentation), settings.epoch_windows
    train_data = TrainAugmentation(CocoDetection(train_split), augmentation, windows, resolution)
    val_data = CocoDetection(val_split, categories=train_data.categories)
    batch_collate = BatchAugment(augmentation, windows) if augmentation.batch_level else None
    if start_from is not None:
        adapter = start_from_checkpoint(start_from, train_data.categories, resolution, device)
    else:
        adapter = build_detector(architecture, len(train_data.categories), resolution, model_settings).to(device)
    if prepare is not None:
        prepare(adapter, train_data.categories)
    loader = DataLoader(train_data, batch_size=settings.batch_size, shuffle=True,
                        drop_last=len(train_data) > settings.batch_size, collate_fn=batch_collate or collate,
                        num_workers=settings.num_workers, generator=generator)

    def save_best(path, model, extra):
        save_checkpoint(path, model, train_data.categories, extra=extra)

    parts = TrainingParts.with_optimization(
        adapter, loader, settings, use_amp, to_device=lambda batch: batch_to_device(batch, device),
        validate=lambda model: validate(model, val_data, device, settings, use_amp),
        save_checkpoint=save_best,
        metrics=("AP", "AP50"),
        epoch_stages=[stage for stage in (train_data, batch_collate, adapter) if stage is not None])
    return parts, train_data.categories


def _log_setup(parts: TrainingParts, settings: TrainSettings, resolution: int, device: torch.device, use_amp: bool,
               start_from) -> None:
    counts = parts.adapter.parameter_count()
    log.info("training %s at %d px on %s (%s) for %d epochs x %d iterations; %s parameters (%s trainable)%s",
             parts.adapter.architecture, resolution, device, f"AMP {settings.amp_dtype}" if use_amp else "fp32",
             settings.epochs, len(parts.loader), f"{counts['total']:,}", f"{counts['trainable']:,}",
             f", starting from {start_from}" if start_from else "")
    augmentation = AugmentationSettings.from_dict(settings.augmentation)
    active = {op: getattr(augmentation, op) for op in OPS if getattr(augmentation, op) > 0}
    log.info("augmentation %s; policy ops from epoch %d, mosaic/mixup until %d, none from %d (0-based)",
             active or "off", *settings.epoch_windows.as_tuple())



def train_run(*, architecture: str | None = None, model_settings: dict[str, Any] | None = None,
              train_settings: dict[str, Any], train_split: SplitPaths, val_split: SplitPaths, resolution: int,
              seed: int, checkpoint_path: str | Path, history_path: str | Path, device: str = "auto",
              threads: int | None = None, start_from: str | Path | None = None,
              prepare: Callable[[DetectorAdapter, CategoryMap], None] | None = None,
              state_dir: str | Path | None = None) -> dict[str, Any]:
    """Train one (model, resolution, seed) cell; write the best checkpoint and the history CSV.

    A new detector is built from ``architecture`` and ``model_settings``, or, to fine-tune,
    loaded from the ``start_from`` checkpoint (whose starting weights are then validated as
    epoch 0); ``prepare`` then adapts it (freezing, fusion); its ``identity()``, where it has
    one, is part of the resume fingerprint. With ``state_dir``, an interrupted job resumes
    (``detstudy.engine.resume``).
    """
    settings = TrainSettings.from_dict(train_settings)
    resolved_settings = resolved(settings)  # every default filled in: a checkpoint never makes a reader guess
    if threads:
        torch.set_num_threads(threads)
    generator = seed_everything(seed)
    device_ = resolve_device(device)
    use_amp = settings.amp and device_.type == "cuda"
    parts, _ = _build(settings, architecture=architecture, model_settings=model_settings, train_split=train_split,
                      val_split=val_split, resolution=resolution, start_from=start_from, prepare=prepare,
                      generator=generator, device=device_, use_amp=use_amp, seed=seed)
    _log_setup(parts, settings, resolution, device_, use_amp, start_from)
    resume = None
    if state_dir is not None:
        resume = TrainingState(state_dir, fingerprint(
            architecture=parts.adapter.architecture, model_settings=parts.adapter.settings,
            train_settings=train_settings, resolution=resolution, seed=seed,
            start_from=file_digest(start_from) if start_from else None,
            prepare=getattr(prepare, "identity", lambda: None)(),  # e.g. the class embeddings a phase fuses
            data=[file_digest(split.annotations) for split in (train_split, val_split)],
            images=[image_files_stamp(split.annotations, split.images) for split in (train_split, val_split)],
            kernels=kernel_record()))  # other kernels or threads would not continue the same computation
    return run_training(parts, settings, seed=seed, generator=generator, device=device_, use_amp=use_amp,
                        checkpoint_path=checkpoint_path, history_path=history_path,
                        checkpoint_extra={"train_settings": resolved_settings,
                                          **({"start_from": str(start_from)} if start_from else {})},
                        resume=resume, validate_start=start_from is not None)


def train(**arguments) -> dict[str, Any]:
    """:func:`train_run`, with a CUDA out-of-memory error turned into a message that names the
    settings to change, instead of a bare CUDA traceback."""
    try:
        return train_run(**arguments)
    except torch.cuda.OutOfMemoryError as error:
        settings = TrainSettings.from_dict(arguments["train_settings"])
        raise MemoryError(out_of_memory_message(error, settings, arguments["resolution"])) from None
