"""The training loop every task shares, read top to bottom: resume or validate the start, then
the epochs.

A task builds the run (:class:`TrainingParts`: its data, its model adapter, how a batch reaches
the device, how the model is validated and saved) and hands it to :func:`run_training`. The
loop is a plain step (:func:`train_epoch`: forward, backward, optimizer and schedule step)
with small hooks around it: EMA of the weights, the best checkpoint (:class:`RunRecord`),
DEIM's stage-2 restart, the resumable state, early stopping, progress with an ETA.
"""

from __future__ import annotations

import copy
import logging
import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import torch
from torch.utils.data import DataLoader

from detstudy.engine.ema import ModelEMA
from detstudy.engine.history import RunRecord
from detstudy.engine.progress import Progress, format_duration
from detstudy.engine.resume import TrainingState, restore_rng, rng_state
from detstudy.engine.runtime import peak_memory_mb, reset_peak_memory
from detstudy.engine.schedules import build_optimizer, build_scheduler
from detstudy.engine.settings import TrainSettings
from detstudy.engine.stage_restart import StageRestart

log = logging.getLogger("detstudy.train")


def freeze_frozen_norms(model: torch.nn.Module) -> None:
    """Batch norms whose parameters are frozen keep their running statistics (eval mode), so a
    frozen part of the model stays exactly as it was (MMDetection's ``norm_eval``)."""
    for module in model.modules():
        if isinstance(module, torch.nn.modules.batchnorm._BatchNorm) and not any(
                p.requires_grad for p in module.parameters()):
            module.eval()


@dataclass
class TrainingParts:
    """What one run trains with, built by its task from the run's settings.

    ``adapter`` is the task's model adapter: ``.model`` (the ``nn.Module``) and
    ``.losses(inputs, targets)`` (a dict of scalars: those named ``loss*`` are summed into the
    loss trained on, the others, such as a training accuracy, only recorded in the history, each a
    per-sample mean over the epoch). ``to_device(batch)`` turns a loader
    batch into (inputs, targets) on the device; ``validate(evaluated)`` returns the validation
    metrics named in ``metrics`` (the history's ``val_<name>`` columns); ``save_checkpoint(path,
    evaluated, extra)`` writes the best checkpoint (atomically: the task's checkpoint writer);
    ``epoch_stages`` are told the 0-based epoch before it starts (augmentation windows, the
    model's own schedule)."""

    adapter: Any
    loader: DataLoader
    optimizer: torch.optim.Optimizer
    scheduler: Any
    scaler: torch.amp.GradScaler
    ema: ModelEMA | None
    evaluated: Any  # validated and saved: the EMA weights when enabled
    to_device: Callable[[Any], tuple[list, list]]
    validate: Callable[[Any], dict[str, float]]
    save_checkpoint: Callable[[str | Path, Any, dict[str, Any]], None]
    metrics: tuple[str, ...] = ("AP", "AP50")
    epoch_stages: list = field(default_factory=list)

    @classmethod
    def with_optimization(cls, adapter, loader: DataLoader, settings: TrainSettings, use_amp: bool,
                          **task_parts: Any) -> "TrainingParts":
        """The parts every task builds alike from its adapter and loader: the optimizer
        (``adapter.lr_prefixes`` and ``adapter.decays`` shape its groups), the schedule over
        the run's optimizer steps, the AMP loss scaler, the optional EMA and the model validated
        (the EMA's weights when enabled). ``task_parts``: the rest of the fields."""
        optimizer = build_optimizer(settings, adapter.model, getattr(adapter, "lr_prefixes", adapter.backbone_prefix),
                                    adapter.decays)
        total_iters = settings.epochs * math.ceil(len(loader) / settings.accumulate_steps)  # optimizer steps
        scheduler = build_scheduler(settings, optimizer, total_iters)
        for group in optimizer.param_groups:  # what reached the optimizer, readable in the run's log
            log.info("optimizer group %s: %s parameters at lr %.2e, weight decay %g", group.get("name", "?"),
                     f"{sum(p.numel() for p in group['params']):,}", group.get("initial_lr", group["lr"]),
                     group["weight_decay"])
        scaler = torch.amp.GradScaler("cuda", enabled=use_amp and settings.amp_dtype == "float16")
        ema = ModelEMA(adapter.model, settings.ema_decay, settings.ema_warmups) if settings.ema else None
        evaluated = adapter
        if ema is not None:
            evaluated = copy.copy(adapter)
            evaluated.model = ema.module
        return cls(adapter=adapter, loader=loader, optimizer=optimizer, scheduler=scheduler, scaler=scaler, ema=ema,
                   evaluated=evaluated, **task_parts)

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


def train_epoch(parts: TrainingParts, settings: TrainSettings, device: torch.device, use_amp: bool, epoch: int,
                progress: Progress) -> tuple[dict[str, float], int]:
    """One pass over the training data; returns (per-sample mean of each loss, samples seen)."""
    adapter, optimizer = parts.adapter, parts.optimizer
    adapter.model.train()
    freeze_frozen_norms(adapter.model)
    started = time.perf_counter()
    sums: dict[str, float] = {}
    seen, batches, accumulate = 0, len(parts.loader), settings.accumulate_steps
    for index, batch in enumerate(parts.loader):
        inputs, targets = parts.to_device(batch)
        with torch.autocast(device.type, dtype=getattr(torch, settings.amp_dtype), enabled=use_amp):
            losses = adapter.losses(inputs, targets)
            loss = sum(value for key, value in losses.items() if key.startswith("loss"))  # others are only recorded
        if not torch.isfinite(loss):
            raise FloatingPointError(f"loss is {loss.item()} at epoch {epoch}, iteration {progress.step + 1}: "
                                     f"{ {k: float(v) for k, v in losses.items()} }. "
                                     "Fix: lower the learning rate or lengthen the warmup.")
        group_start = index - index % accumulate  # the epoch's last group may be shorter
        parts.scaler.scale(loss / min(accumulate, batches - group_start)).backward()
        if (index + 1) % accumulate == 0 or index + 1 == batches:  # one optimizer step per group
            if settings.grad_clip:
                parts.scaler.unscale_(optimizer)
                torch.nn.utils.clip_grad_norm_(adapter.model.parameters(), settings.grad_clip)
            parts.scaler.step(optimizer)
            parts.scaler.update()
            optimizer.zero_grad(set_to_none=True)
            parts.scheduler.step()
            if parts.ema is not None:
                parts.ema.update_parameters(adapter.model)
        seen += len(inputs)
        for key, value in {**losses, "loss": loss}.items():
            sums[key] = sums.get(key, 0.0) + float(value.detach()) * len(inputs)
        progress.update(epoch, float(loss.detach()), optimizer.param_groups[0]["lr"],
                        seen / (time.perf_counter() - started))
    return {key: value / max(seen, 1) for key, value in sorted(sums.items())}, seen


def _scores(metrics: dict[str, float]) -> str:
    return " ".join(f"{name} {value:.4f}" for name, value in metrics.items())


def run_training(parts: TrainingParts, settings: TrainSettings, *, seed: int, generator: torch.Generator,
                 device: torch.device, use_amp: bool, checkpoint_path: str | Path, history_path: str | Path,
                 checkpoint_extra: dict[str, Any], resume: TrainingState | None = None,
                 validate_start: bool = False) -> dict[str, Any]:
    """Train the built run; write the best checkpoint and the history CSV; return a summary.

    With ``resume`` (a :class:`TrainingState`), the full training state is kept after every
    epoch and a rerun of the same configuration resumes from it. ``validate_start`` (a
    fine-tuning run) validates the starting weights first: epoch 0 of the history, the
    reference its curves start from. The start is not a candidate for the best checkpoint: it
    was itself picked as the maximum of a noisy validation score, so it would win by selection
    alone and a phase would hand on its input unchanged."""
    progress = Progress(settings.epochs, settings.epochs * len(parts.loader), settings.log_every)
    windows = settings.epoch_windows
    restart = None
    if settings.ema_restart and windows.stop < settings.epochs:
        restart = StageRestart(windows.stop + 1, resume.folder / "best_stage1.pt" if resume else None,
                               resume.fingerprint if resume else "")

    def save_best(row: dict[str, Any]) -> None:
        scores = {f"val_{name}": row[f"val_{name}"] for name in parts.metrics}
        parts.save_checkpoint(checkpoint_path, parts.evaluated, {"epoch": row["epoch"], "seed": seed, **scores,
                                                      **checkpoint_extra})
        if resume is not None:
            resume.keep_best(checkpoint_path)
        if restart is not None and restart.in_stage_one(row["epoch"]):
            restart.keep({name: target.state_dict() for name, target in parts.restartable().items()})

    record = RunRecord(history_path, settings.select_metric, save_best, parts.metrics)
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
        progress.resume_at((first_epoch - 1) * len(parts.loader))
        resume.restore_best(checkpoint_path)
        log.info("resuming after epoch %d from %s (best epoch %d)", saved["epoch"], resume.state_path, best["epoch"])
    elif validate_start:
        scores = parts.validate(parts.evaluated)
        record.add({"epoch": 0, "lr": parts.optimizer.param_groups[0]["lr"],
                    **{f"val_{name}": scores[name] for name in parts.metrics}}, candidate=False)
        log.info("epoch 0 (start): val %s", _scores({name: scores[name] for name in parts.metrics}))

    # --- the epochs
    metric = f"val_{settings.select_metric}"
    for epoch in range(first_epoch, settings.epochs + 1):
        if stopped:
            break
        epoch_start = time.perf_counter()
        reset_peak_memory(device)
        if restart is not None and restart.due_before(epoch, best["score"]):
            restart.restore(epoch, parts.restartable())
        for stage in parts.epoch_stages:  # the windows count 0-based epochs
            stage.set_epoch(epoch - 1)
        losses, seen = train_epoch(parts, settings, device, use_amp, epoch, progress)
        train_seconds = time.perf_counter() - epoch_start
        validate = epoch % settings.val_interval == 0 or epoch == settings.epochs
        scores = parts.validate(parts.evaluated) if validate else {name: None for name in parts.metrics}
        row = {"epoch": epoch, "lr": parts.optimizer.param_groups[0]["lr"], **losses,
               **{f"val_{name}": scores[name] for name in parts.metrics},  # empty in epochs without validation
               "seconds": round(time.perf_counter() - epoch_start, 2),
               "images_per_second": round(seen / train_seconds, 2),
               "peak_memory_mb": peak_memory_mb(device)}  # the timings and memory: last, they vary
        improved = record.add(row)
        validation = (f"val {_scores({name: scores[name] for name in parts.metrics})}" if validate
                      else f"not validated (val_interval {settings.val_interval})")
        log.info("epoch %d/%d done: loss %.4f %s%s (%.1fs)", epoch, settings.epochs, row["loss"], validation,
                 " (best, saved)" if improved else "", row["seconds"])
        if restart is not None and restart.due_after(epoch, row[metric]):
            restart.restore(epoch, parts.restartable())
        drop, patience = settings.early_stop_drop, settings.early_stop_patience
        if validate and drop is not None and best["score"] - row[metric] > drop:
            stopped = True
            log.info("early stop: val %s %.4f is more than %.3f below the best %.4f (epoch %d)",
                     settings.select_metric, row[metric], drop, best["score"], best["epoch"])
        waited = sum(1 for r in record.history if r["epoch"] > best["epoch"] and r.get(metric) is not None)
        if validate and patience is not None and waited >= patience:
            stopped = True
            log.info("early stop: no better val %s than %.4f (epoch %d) in %d validated epochs (patience %d)",
                     settings.select_metric, best["score"], best["epoch"], waited, patience)
        if resume is not None:  # after validation: the state holds the epoch's history row and best
            resume.save({"epoch": epoch, "stopped": stopped, "history": record.history, "best": dict(best),
                         **parts.state(), "rng": rng_state(generator),
                         "restart": restart.progress() if restart is not None else None})
    if resume is not None:
        resume.clear()
    summary = {"epochs": record.history[-1]["epoch"], "best_epoch": best["epoch"],
               **{f"best_val_{name}": best.get(f"val_{name}") for name in parts.metrics},
               "train_seconds": round(progress.elapsed, 1),
               **({"stage_restarts": restart.restarts} if restart is not None else {})}
    log.info("finished: best epoch %d (val %s %.4f) in %s", best["epoch"], settings.select_metric, best["score"],
             format_duration(summary["train_seconds"]))
    return summary
