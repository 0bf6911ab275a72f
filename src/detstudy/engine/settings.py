"""The hyperparameters of one training run, every one of which reaches its rule through
``params:``."""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from typing import Any

from detstudy.engine.history import DEFAULT_SELECT_METRIC
from detstudy.study.training_checks import check_training_combination
from detstudy.study.epochs import DEFAULT_EPOCHS, EpochWindows


@dataclass
class TrainSettings:
    """Hyperparameters of one training run (all reach the rule through ``params:``)."""

    epochs: int = DEFAULT_EPOCHS
    batch_size: int = 4
    optimizer: str = "sgd"  # sgd | adam | adamw
    lr: float = 0.02
    momentum: float = 0.9
    weight_decay: float = 1e-4
    backbone_lr: float | None = None  # a learning rate of its own for the backbone (DEIM: 2.5e-5 vs 5e-4)
    fusion_lr: float | None = None  # multimodal: a learning rate of its own for the text fusion
    lr_schedule: str = "multistep"  # cosine | multistep | constant | flat_cosine | poly
    poly_power: float = 1.0  # poly: the decay's exponent (mmsegmentation: 1.0)
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
    select_metric: str = DEFAULT_SELECT_METRIC  # validation metric that picks the best checkpoint: AP | AP50
    val_interval: int = 1  # validate every N epochs and after the last one (MMDetection's val_interval)
    early_stop_drop: float | None = None  # stop when the validation metric falls this far below its best
    early_stop_patience: int | None = None  # stop after this many validated epochs without a new best
    augmentation: dict[str, Any] = field(default_factory=lambda: {"horizontal_flip": 0.5})  # the task's (detection: AugmentationSettings)
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
    def epoch_windows(self) -> EpochWindows:
        """[start, flat, stop] of the augmentation policy, given or derived from ``epochs``."""
        return EpochWindows.resolve(self.epochs, (self.augmentation or {}).get("epochs"))
