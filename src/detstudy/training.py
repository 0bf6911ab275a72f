"""The training loop shared by every detector family.

Seeded, AMP on CUDA, per-iteration warmup + schedule (cosine, multistep, DEIM's
flat-cosine), optional EMA of the weights, validation mAP after every epoch, best
checkpoint by a validation metric, per-epoch history, and progress lines with an ETA
on stderr (the rule's log).
"""

from __future__ import annotations

import copy
import csv
import logging
import math
import random
import time
from dataclasses import asdict, dataclass, field, fields
from functools import partial
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch
from torch.utils.data import DataLoader

from detstudy.checkpoint import load_checkpoint, save_checkpoint
from detstudy.data.coco import CategoryMap, SplitPaths
from detstudy.data.augment import OPS, AugmentationSettings, BatchAugment, EpochWindows, TrainAugmentation
from detstudy.data.dataset import CocoDetection, collate
from detstudy.ema import ModelEMA
from detstudy.evaluation.inference import predict_dataset
from detstudy.evaluation.cost import peak_memory_mb, reset_peak_memory
from detstudy.evaluation.metrics import coco_evaluate
from detstudy.data.layout import image_files_stamp
from detstudy.io import file_digest, write_csv
from detstudy.models import DetectorAdapter, build_detector
from detstudy.provenance import kernel_record
from detstudy.resume import TrainingState, fingerprint, restore_rng, rng_state
from detstudy.spec import DEFAULT_EPOCHS, check_training_combination
from detstudy.stage_restart import StageRestart

log = logging.getLogger("detstudy.train")


@dataclass
class TrainSettings:
    """Hyperparameters of one training run (all reach the rule through ``params:``)."""

    epochs: int = DEFAULT_EPOCHS
    batch_size: int = 4
    optimizer: str = "sgd"  # sgd | adamw
    lr: float = 0.02
    momentum: float = 0.9
    weight_decay: float = 1e-4
    backbone_lr: float | None = None  # a learning rate of its own for the backbone (DEIM: 2.5e-5 vs 5e-4)
    lr_schedule: str = "multistep"  # cosine | multistep | constant | flat_cosine
    lr_steps: list[float] = field(default_factory=lambda: [0.67, 0.89])  # fractions of the run (multistep)
    lr_gamma: float = 0.1
    min_lr_factor: float = 0.01  # cosine floor, as a fraction of lr
    warmup_iters: int = 100
    warmup_factor: float = 0.001  # linear warmup from this factor (flat_cosine: the official quadratic from 0)
    warmup_max_fraction: float = 1.0  # cap the warmup at this fraction of the run (small datasets)
    flat_epochs: int | None = None  # flat_cosine: full lr until this epoch (None: the augmentation's flat epoch)
    no_aug_epochs: int | None = None  # flat_cosine: the last epochs stay at the minimum lr (None: after `stop`)
    ema: bool = False  # validate and save an exponential moving average of the weights
    ema_decay: float = 0.9999
    ema_warmups: int = 1000
    ema_restart: bool = False  # DEIM: stage 2 (from the policy's stop epoch) restarts from the best stage-1 state
    grad_clip: float | None = None
    amp: bool = True  # used on CUDA only
    amp_dtype: str = "float16"  # float16 (with loss scaling) | bfloat16 (no scaling needed)
    val_amp: bool = False  # validate under AMP too (official DEIM and torchvision validate in fp32)
    num_workers: int = 0
    eval_batch_size: int = 4
    select_metric: str = "AP"  # validation metric that picks the best checkpoint: AP | AP50
    val_interval: int = 1  # validate every N epochs and after the last one (MMDetection's val_interval)
    early_stop_drop: float | None = None  # stop when the validation metric falls this far below its best
    augmentation: dict[str, Any] = field(default_factory=lambda: {"horizontal_flip": 0.5})  # AugmentationSettings
    accumulate_steps: int = 1  # gradient accumulation: one optimizer step per N batches (batch_size x N)
    log_every: int = 10

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> "TrainSettings":
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise ValueError(f"unknown training settings {unknown}. Fix: use only {sorted(known)}.")
        check_training_combination(values)
        return cls(**values)

    @property
    def augmentation_settings(self) -> AugmentationSettings:
        return AugmentationSettings.from_dict(self.augmentation)

    @property
    def epoch_windows(self) -> EpochWindows:
        """[start, flat, stop] of the augmentation policy, given or derived from ``epochs``."""
        return EpochWindows.resolve(self.epochs, self.augmentation_settings.epochs)


def resolved(settings: TrainSettings) -> dict[str, Any]:
    """The settings with every default filled in, the augmentation's and its epoch windows too."""
    return {**asdict(settings), "augmentation": {**asdict(settings.augmentation_settings),
                                                 "epochs": list(settings.epoch_windows.as_tuple())}}


def seed_everything(seed: int) -> torch.Generator:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    generator = torch.Generator()
    generator.manual_seed(seed)
    return generator


def resolve_device(name: str = "auto") -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


def _optimizer(settings: TrainSettings, model: torch.nn.Module, backbone_prefix: str = "",
               decays: Callable[[str, torch.nn.Parameter], bool] | None = None) -> torch.optim.Optimizer:
    """Parameter groups: weight decay where ``decays(name, parameter)`` (default: not on norms and
    biases, the usual detection practice); with ``backbone_lr``, the parameters under
    ``backbone_prefix`` get their own learning rate."""
    decays = decays or (lambda name, parameter: parameter.ndim > 1)
    split_backbone = settings.backbone_lr is not None and bool(backbone_prefix)
    groups: dict[tuple[bool, bool], list] = {(False, False): [], (False, True): []}  # (in backbone, no decay)
    for name, parameter in model.named_parameters():
        if parameter.requires_grad:
            key = (split_backbone and name.startswith(backbone_prefix), not decays(name, parameter))
            groups.setdefault(key, []).append(parameter)
    param_groups = [{"params": params, "weight_decay": 0.0 if no_decay else settings.weight_decay,
                     **({"lr": settings.backbone_lr} if in_backbone else {})}
                    for (in_backbone, no_decay), params in groups.items()]
    if settings.optimizer == "sgd":
        return torch.optim.SGD(param_groups, lr=settings.lr, momentum=settings.momentum)
    if settings.optimizer == "adamw":
        return torch.optim.AdamW(param_groups, lr=settings.lr)
    raise ValueError(f"optimizer {settings.optimizer!r} is not one of sgd, adamw")


# The official configs also build LinearWarmup(warmup_duration=500) (configs/base/optimizer.yml),
# which sets the rate to base / 500 when it is built and is never stepped under flat-cosine.
OFFICIAL_FIRST_STEP_FACTOR = 1 / 500


def flat_cosine_factor(step: int, *, warmup: int, flat_end: int, total: int, no_aug: int,
                       min_factor: float) -> float:
    """The learning rate of optimizer step ``step`` (0-based) as a factor of the base lr, as the
    official FlatCosineLRScheduler gives it: quadratic warmup from 0, flat, cosine down to
    ``min_factor``, flat at the minimum for the last ``no_aug`` iterations. The official loop
    sets the rate after each step from that step's index, so step k runs at the schedule's
    value for k - 1, and the very first step at the rate the official LinearWarmup left."""
    if step == 0:
        return OFFICIAL_FIRST_STEP_FACTOR
    i = step - 1
    if warmup > 0 and i <= warmup:
        return (i / warmup) ** 2
    if i <= flat_end:
        return 1.0
    if i >= total - no_aug:
        return min_factor
    progress = (i - flat_end) / max(total - flat_end - no_aug, 1)
    return min_factor + (1.0 - min_factor) * 0.5 * (1.0 + math.cos(math.pi * progress))


def _scheduler(settings: TrainSettings, optimizer: torch.optim.Optimizer, total_iters: int):
    sched = torch.optim.lr_scheduler
    warmup = min(settings.warmup_iters, int(settings.warmup_max_fraction * total_iters), max(total_iters - 1, 0))
    remaining = max(total_iters - warmup, 1)
    if settings.lr_schedule == "flat_cosine":
        if settings.warmup_max_fraction >= 1.0:  # uncapped, as official: a warmup longer than the run stays a ramp
            warmup = settings.warmup_iters
        per_epoch = total_iters / settings.epochs
        windows = settings.epoch_windows
        flat_epochs = settings.flat_epochs if settings.flat_epochs is not None else windows.flat
        no_aug_epochs = settings.no_aug_epochs if settings.no_aug_epochs is not None else settings.epochs - windows.stop
        factor = partial(flat_cosine_factor, warmup=warmup, flat_end=int(flat_epochs * per_epoch), total=total_iters,
                         no_aug=int(no_aug_epochs * per_epoch), min_factor=settings.min_lr_factor)
        return sched.LambdaLR(optimizer, factor)
    if settings.lr_schedule == "cosine":
        main = sched.CosineAnnealingLR(optimizer, T_max=remaining, eta_min=settings.lr * settings.min_lr_factor)
    elif settings.lr_schedule == "multistep":
        milestones = sorted({max(1, round(f * total_iters) - warmup) for f in settings.lr_steps})
        main = sched.MultiStepLR(optimizer, milestones=milestones, gamma=settings.lr_gamma)
    elif settings.lr_schedule == "constant":
        main = sched.ConstantLR(optimizer, factor=1.0, total_iters=0)
    else:
        raise ValueError(f"lr_schedule {settings.lr_schedule!r} is not one of cosine, multistep, constant, "
                         "flat_cosine")
    if warmup == 0:
        return main
    warm = sched.LinearLR(optimizer, start_factor=settings.warmup_factor, total_iters=warmup)
    return sched.SequentialLR(optimizer, [warm, main], milestones=[warmup])


def _duration(seconds: float) -> str:
    seconds = int(max(seconds, 0))
    return f"{seconds // 3600:d}:{seconds % 3600 // 60:02d}:{seconds % 60:02d}"


class Progress:
    """Progress lines with throughput and ETA, every ``every`` iterations and at the end."""

    def __init__(self, epochs: int, total_iters: int, every: int):
        self.epochs, self.total, self.every = epochs, total_iters, every
        self.step = self.first_step = 0
        self.started = time.perf_counter()

    def update(self, epoch: int, loss: float, lr: float, images_per_second: float) -> None:
        self.step += 1
        if self.step % self.every and self.step != self.total:
            return
        elapsed = time.perf_counter() - self.started
        log.info("epoch %d/%d step %d/%d loss %.4f lr %.2e %.1f img/s elapsed %s ETA %s", epoch, self.epochs,
                 self.step, self.total, loss, lr, images_per_second, _duration(elapsed),
                 _duration(elapsed / (self.step - self.first_step) * (self.total - self.step)))

    def resume_at(self, step: int) -> None:
        """Continue counting after ``step`` iterations of an earlier, interrupted job."""
        self.step = self.first_step = step

    @property
    def elapsed(self) -> float:
        return time.perf_counter() - self.started


def freeze_frozen_norms(model: torch.nn.Module) -> None:
    """Batch norms whose parameters are frozen keep their running statistics (eval mode), so a
    frozen part of the detector stays exactly as it was (MMDetection's ``norm_eval``)."""
    for module in model.modules():
        if isinstance(module, torch.nn.modules.batchnorm._BatchNorm) and not any(
                p.requires_grad for p in module.parameters()):
            module.eval()


def _train_epoch(adapter, loader, optimizer, scheduler, scaler, settings: TrainSettings, device: torch.device,
                 use_amp: bool, epoch: int, progress: Progress, ema: ModelEMA | None = None,
                 ) -> tuple[dict[str, float], int]:
    """One pass over the training data; returns (per-image mean of each loss, images seen)."""
    adapter.model.train()
    freeze_frozen_norms(adapter.model)
    started = time.perf_counter()
    sums: dict[str, float] = {}
    seen, batches, accumulate = 0, len(loader), settings.accumulate_steps
    for index, (images, targets) in enumerate(loader):
        images = [image.to(device).float().div_(255.0) for image in images]
        targets = [{"boxes": t["boxes"].as_subclass(torch.Tensor).to(device), "labels": t["labels"].to(device)}
                   for t in targets]
        with torch.autocast(device.type, dtype=getattr(torch, settings.amp_dtype), enabled=use_amp):
            losses = adapter.losses(images, targets)
            loss = sum(losses.values())
        if not torch.isfinite(loss):
            raise FloatingPointError(f"loss is {loss.item()} at epoch {epoch}, iteration {progress.step + 1}: "
                                     f"{ {k: float(v) for k, v in losses.items()} }. "
                                     "Fix: lower the learning rate or lengthen the warmup.")
        group_start = index - index % accumulate  # the epoch's last group may be shorter
        scaler.scale(loss / min(accumulate, batches - group_start)).backward()
        if (index + 1) % accumulate == 0 or index + 1 == batches:  # one optimizer step per group
            if settings.grad_clip:
                scaler.unscale_(optimizer)
                torch.nn.utils.clip_grad_norm_(adapter.model.parameters(), settings.grad_clip)
            scaler.step(optimizer)
            scaler.update()
            optimizer.zero_grad(set_to_none=True)
            scheduler.step()
            if ema is not None:
                ema.update_parameters(adapter.model)
        seen += len(images)
        for key, value in {**losses, "loss": loss}.items():
            sums[key] = sums.get(key, 0.0) + float(value.detach()) * len(images)
        progress.update(epoch, float(loss.detach()), optimizer.param_groups[0]["lr"],
                        seen / (time.perf_counter() - started))
    return {key: value / max(seen, 1) for key, value in sorted(sums.items())}, seen


def _validate(evaluated, val_data, device: torch.device, settings: TrainSettings, use_amp: bool) -> dict:
    detections = predict_dataset(evaluated, val_data, device, settings.eval_batch_size,
                                 amp=use_amp and settings.val_amp, amp_dtype=getattr(torch, settings.amp_dtype))
    return {k: v or 0.0 for k, v in coco_evaluate(val_data.coco, detections)["coco"].items()}


def _start_from(path: str | Path, categories, resolution: int, device: torch.device):
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


def train(**arguments) -> dict[str, Any]:
    """:func:`train_run`, with a CUDA out-of-memory error turned into a message that names the
    settings to change, instead of a bare CUDA traceback."""
    try:
        return train_run(**arguments)
    except torch.cuda.OutOfMemoryError as error:
        settings = TrainSettings.from_dict(arguments["train_settings"])
        raise MemoryError(out_of_memory_message(error, settings, arguments["resolution"])) from None


class RunRecord:
    """The history of a run and its best checkpoint, written as they change: the history CSV after
    every row (a running job's curves can be inspected), the checkpoint when a candidate epoch
    beats the best so far by the validation metric (the first maximum wins ties)."""

    def __init__(self, history_path: str | Path, metric: str, on_best: Callable[[dict[str, Any]], None]):
        self.history_path, self.metric = history_path, metric
        self.on_best = on_best  # writes the checkpoint (atomically) and what keeps it
        self.history: list[dict[str, Any]] = []
        self.best: dict[str, Any] = {"score": -math.inf, "epoch": 0}

    def add(self, row: dict[str, Any], candidate: bool = True) -> bool:
        """Append a row; save the checkpoint when it is the best so far. Returns whether it was."""
        self.history.append(row)
        write_csv(self.history_path, self.history)
        score = row[f"val_{self.metric}"]
        if not candidate or score is None or score <= self.best["score"]:
            return False
        self.best.update(score=score, epoch=row["epoch"], val_AP=row["val_AP"], val_AP50=row["val_AP50"])
        self.on_best(row)
        return True

    def restore(self, history: list[dict[str, Any]], best: dict[str, Any]) -> None:
        self.history[:] = history
        self.best.update(best)
        write_csv(self.history_path, self.history)


def trained_epochs(history_csv: str | Path) -> list[dict[str, str]]:
    """The rows of a history CSV that trained (a fine-tuning run's epoch 0 only validates its
    start and has no ``seconds``)."""
    with open(history_csv) as handle:
        return [row for row in csv.DictReader(handle) if row.get("seconds")]


@dataclass
class TrainingParts:
    """What one run trains with, built from its settings."""

    train_data: TrainAugmentation
    val_data: CocoDetection
    batch_collate: BatchAugment | None
    adapter: DetectorAdapter
    loader: DataLoader
    optimizer: torch.optim.Optimizer
    scheduler: Any
    scaler: torch.amp.GradScaler
    ema: ModelEMA | None
    evaluated: DetectorAdapter  # validated and saved: the EMA weights when enabled

    def state(self) -> dict[str, Any]:
        return {"model": self.adapter.model.state_dict(), "optimizer": self.optimizer.state_dict(),
                "scheduler": self.scheduler.state_dict(), "scaler": self.scaler.state_dict(),
                "ema": self.ema.state_dict() if self.ema is not None else None}

    def load_state(self, saved: dict[str, Any]) -> None:
        self.adapter.model.load_state_dict(saved["model"])
        self.optimizer.load_state_dict(saved["optimizer"])
        self.scheduler.load_state_dict(saved["scheduler"])
        self.scaler.load_state_dict(saved["scaler"])
        if self.ema is not None:
            self.ema.load_state_dict(saved["ema"])

    def restartable(self) -> dict[str, Any]:
        """What DEIM's stage-2 restart reloads (not the schedule: the rate follows the iteration)."""
        return {"model": self.adapter.model, "optimizer": self.optimizer, "scaler": self.scaler,
                **({"ema": self.ema} if self.ema is not None else {})}


def _build(settings: TrainSettings, *, architecture, model_settings, train_split, val_split, resolution: int,
           start_from, prepare, generator: torch.Generator, device: torch.device, use_amp: bool) -> TrainingParts:
    augmentation, windows = settings.augmentation_settings, settings.epoch_windows
    train_data = TrainAugmentation(CocoDetection(train_split), augmentation, windows, resolution)
    val_data = CocoDetection(val_split, categories=train_data.categories)
    batch_collate = BatchAugment(augmentation, windows) if augmentation.batch_level else None
    if start_from is not None:
        adapter = _start_from(start_from, train_data.categories, resolution, device)
    else:
        adapter = build_detector(architecture, len(train_data.categories), resolution, model_settings).to(device)
    if prepare is not None:
        prepare(adapter, train_data.categories)
    loader = DataLoader(train_data, batch_size=settings.batch_size, shuffle=True,
                        drop_last=len(train_data) > settings.batch_size, collate_fn=batch_collate or collate,
                        num_workers=settings.num_workers, generator=generator)
    optimizer = _optimizer(settings, adapter.model, adapter.backbone_prefix, adapter.decays)
    total_iters = settings.epochs * math.ceil(len(loader) / settings.accumulate_steps)  # optimizer steps
    scheduler = _scheduler(settings, optimizer, total_iters)
    scaler = torch.amp.GradScaler("cuda", enabled=use_amp and settings.amp_dtype == "float16")
    ema = ModelEMA(adapter.model, settings.ema_decay, settings.ema_warmups) if settings.ema else None
    evaluated = adapter
    if ema is not None:
        evaluated = copy.copy(adapter)
        evaluated.model = ema.module
    return TrainingParts(train_data, val_data, batch_collate, adapter, loader, optimizer, scheduler, scaler, ema,
                         evaluated)


def _log_setup(parts: TrainingParts, settings: TrainSettings, resolution: int, device: torch.device, use_amp: bool,
               start_from) -> None:
    counts = parts.adapter.parameter_count()
    log.info("training %s at %d px on %s (%s) for %d epochs x %d iterations; %s parameters (%s trainable)%s",
             parts.adapter.architecture, resolution, device, f"AMP {settings.amp_dtype}" if use_amp else "fp32",
             settings.epochs, len(parts.loader), f"{counts['total']:,}", f"{counts['trainable']:,}",
             f", starting from {start_from}" if start_from else "")
    augmentation = settings.augmentation_settings
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

    Build, resume (or validate the start), loop, as torchvision's train.py reads. A new
    detector is built from ``architecture`` and ``model_settings``, or, to fine-tune, loaded
    from the ``start_from`` checkpoint; ``prepare`` then adapts it (freezing, fusion); its
    ``identity()``, where it has one, is part of the resume fingerprint. A fine-tuning run
    validates its starting weights first (epoch 0 of the history, the reference its curves
    start from). The start is not a candidate for the best checkpoint: it was itself picked as
    the maximum of a noisy validation score, so it would win by selection alone and a phase
    would hand on its input unchanged. With ``state_dir``, the full training state is kept
    there after every epoch and a rerun of the same configuration resumes from it
    (``detstudy.resume``).
    """
    # --- build
    settings = TrainSettings.from_dict(train_settings)
    resolved_settings = resolved(settings)  # every default filled in: a checkpoint never makes a reader guess
    if threads:
        torch.set_num_threads(threads)
    generator = seed_everything(seed)
    device_ = resolve_device(device)
    use_amp = settings.amp and device_.type == "cuda"
    parts = _build(settings, architecture=architecture, model_settings=model_settings, train_split=train_split,
                   val_split=val_split, resolution=resolution, start_from=start_from, prepare=prepare,
                   generator=generator, device=device_, use_amp=use_amp)
    _log_setup(parts, settings, resolution, device_, use_amp, start_from)
    adapter, loader, optimizer = parts.adapter, parts.loader, parts.optimizer
    progress = Progress(settings.epochs, settings.epochs * len(loader), settings.log_every)

    resume = None
    if state_dir is not None:
        resume = TrainingState(state_dir, fingerprint(
            architecture=adapter.architecture, model_settings=adapter.settings, train_settings=train_settings,
            resolution=resolution, seed=seed, start_from=file_digest(start_from) if start_from else None,
            prepare=getattr(prepare, "identity", lambda: None)(),  # e.g. the class embeddings a phase fuses
            data=[file_digest(split.annotations) for split in (train_split, val_split)],
            images=[image_files_stamp(split.annotations, split.images) for split in (train_split, val_split)],
            kernels=kernel_record()))  # other kernels or threads would not continue the same computation
    windows = settings.epoch_windows
    restart = None
    if settings.ema_restart and windows.stop < settings.epochs:
        restart = StageRestart(windows.stop + 1, resume.folder / "best_stage1.pt" if resume else None,
                               resume.fingerprint if resume else "")

    def save_best(row: dict[str, Any]) -> None:
        save_checkpoint(checkpoint_path, parts.evaluated, parts.train_data.categories,
                        extra={"epoch": row["epoch"], "seed": seed, "val_AP": row["val_AP"],
                               "val_AP50": row["val_AP50"], "train_settings": resolved_settings,
                               **({"start_from": str(start_from)} if start_from else {})})
        if resume is not None:
            resume.keep_best(checkpoint_path)
        if restart is not None and restart.in_stage_one(row["epoch"]):
            restart.keep({name: target.state_dict() for name, target in parts.restartable().items()})

    record = RunRecord(history_path, settings.select_metric, save_best)
    best = record.best

    # --- resume, or validate the start
    saved = resume.load() if resume is not None else None
    if restart is not None and saved is not None:
        restart.resume(saved["restart"])
    elif restart is not None:
        restart.discard()
    first_epoch, stopped = 1, False
    if saved is not None:
        parts.load_state(saved)
        record.restore(saved["history"], saved["best"])
        stopped = saved["stopped"]
        restore_rng(saved["rng"], generator)
        first_epoch = saved["epoch"] + 1
        progress.resume_at((first_epoch - 1) * len(loader))
        resume.restore_best(checkpoint_path)
        log.info("resuming after epoch %d from %s (best epoch %d)", saved["epoch"], resume.state_path, best["epoch"])
    elif start_from is not None:
        coco = _validate(parts.evaluated, parts.val_data, device_, settings, use_amp)
        record.add({"epoch": 0, "lr": optimizer.param_groups[0]["lr"], "val_AP": coco["AP"],
                    "val_AP50": coco["AP50"]}, candidate=False)
        log.info("epoch 0 (start): val AP %.4f AP50 %.4f", coco["AP"], coco["AP50"])

    # --- the epochs
    metric = f"val_{settings.select_metric}"
    for epoch in range(first_epoch, settings.epochs + 1):
        if stopped:
            break
        epoch_start = time.perf_counter()
        reset_peak_memory(device_)
        if restart is not None and restart.due_before(epoch, best["score"]):
            restart.restore(epoch, parts.restartable())
        for stage in (parts.train_data, parts.batch_collate, adapter):  # the windows count 0-based epochs
            if stage is not None:
                stage.set_epoch(epoch - 1)
        losses, seen = _train_epoch(adapter, loader, optimizer, parts.scheduler, parts.scaler, settings, device_,
                                    use_amp, epoch, progress, parts.ema)
        train_seconds = time.perf_counter() - epoch_start
        validate = epoch % settings.val_interval == 0 or epoch == settings.epochs
        coco = (_validate(parts.evaluated, parts.val_data, device_, settings, use_amp) if validate
                else {"AP": None, "AP50": None})
        row = {"epoch": epoch, "lr": optimizer.param_groups[0]["lr"], **losses,
               "val_AP": coco["AP"], "val_AP50": coco["AP50"],  # empty in epochs without validation
               "seconds": round(time.perf_counter() - epoch_start, 2),
               "images_per_second": round(seen / train_seconds, 2),
               "peak_memory_mb": peak_memory_mb(device_)}  # the timings and memory: last, they vary
        improved = record.add(row)
        validation = (f"val AP {row['val_AP']:.4f} AP50 {row['val_AP50']:.4f}" if validate
                      else f"not validated (val_interval {settings.val_interval})")
        log.info("epoch %d/%d done: loss %.4f %s%s (%.1fs)", epoch, settings.epochs, row["loss"], validation,
                 " (best, saved)" if improved else "", row["seconds"])
        if restart is not None and restart.due_after(epoch, row[metric]):
            restart.restore(epoch, parts.restartable())
        drop = settings.early_stop_drop
        stopped = validate and drop is not None and best["score"] - row[metric] > drop
        if stopped:
            log.info("early stop: val %s %.4f is more than %.3f below the best %.4f (epoch %d)",
                     settings.select_metric, row[metric], drop, best["score"], best["epoch"])
        if resume is not None:  # after validation: the state holds the epoch's history row and best
            resume.save({"epoch": epoch, "stopped": stopped, "history": record.history, "best": dict(best),
                         **parts.state(), "rng": rng_state(generator),
                         "restart": restart.progress() if restart is not None else None})
    if resume is not None:
        resume.clear()
    summary = {"epochs": record.history[-1]["epoch"], "best_epoch": best["epoch"], "best_val_AP": best.get("val_AP"),
               "best_val_AP50": best.get("val_AP50"), "train_seconds": round(progress.elapsed, 1),
               **({"stage_restarts": restart.restarts} if restart is not None else {})}
    log.info("finished: best epoch %d (val %s %.4f) in %s", best["epoch"], settings.select_metric, best["score"],
             _duration(summary["train_seconds"]))
    return summary
