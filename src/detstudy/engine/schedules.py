"""The optimizer's parameter groups and the learning-rate schedules (per optimizer step):
linear warmup + cosine / multistep / constant, and DEIM's flat-cosine as the official code
steps it."""

from __future__ import annotations

import math
from functools import partial
from typing import TYPE_CHECKING, Callable

import torch

if TYPE_CHECKING:
    from detstudy.engine.settings import TrainSettings


#: The learning-rate settings that give a part of the model a rate of its own (checked in this
#: order: the first prefix a parameter's name starts with wins).
GROUP_RATES = ("fusion_lr", "backbone_lr")


def build_optimizer(settings: TrainSettings, model: torch.nn.Module, prefixes: str | dict[str, str] = "",
                    decays: Callable[[str, torch.nn.Parameter], bool] | None = None) -> torch.optim.Optimizer:
    """Parameter groups: weight decay where ``decays(name, parameter)`` (default: not on norms and
    biases, the usual detection practice); ``prefixes`` maps a rate setting of
    :data:`GROUP_RATES` to the parameter-name prefix of its part (a bare string: the backbone's),
    and where that setting is given, the part trains at its own rate (``backbone_lr``: DEIM's
    backbone; ``fusion_lr``: the multimodal text fusion). Each group is named (``detector``,
    ``backbone``, ``fusion``, ``+ no decay``) so that what reached the optimizer can be read back."""
    decays = decays or (lambda name, parameter: parameter.ndim > 1)
    prefixes = {"backbone_lr": prefixes} if isinstance(prefixes, str) else prefixes
    rates = [(key, prefixes[key], getattr(settings, key)) for key in GROUP_RATES
             if prefixes.get(key) and getattr(settings, key) is not None]
    groups: dict[tuple[str | None, bool], list] = {(None, False): [], (None, True): []}  # (rate setting, no decay)
    for name, parameter in model.named_parameters():
        if parameter.requires_grad:
            part = next((key for key, prefix, _ in rates if name.startswith(prefix)), None)
            groups.setdefault((part, not decays(name, parameter)), []).append(parameter)
    own_rates = {key: rate for key, _, rate in rates}
    param_groups = [{"params": params, "weight_decay": 0.0 if no_decay else settings.weight_decay,
                     "name": (part.removesuffix("_lr") if part else "detector") + (" no decay" if no_decay else ""),
                     **({"lr": own_rates[part]} if part else {})}
                    for (part, no_decay), params in groups.items()]
    if settings.optimizer == "sgd":
        return torch.optim.SGD(param_groups, lr=settings.lr, momentum=settings.momentum)
    if settings.optimizer == "adamw":
        return torch.optim.AdamW(param_groups, lr=settings.lr)
    if settings.optimizer == "adam":  # weight decay as an L2 term of the loss (torch.optim.Adam's), not decoupled
        return torch.optim.Adam(param_groups, lr=settings.lr)
    raise ValueError(f"optimizer {settings.optimizer!r} is not one of sgd, adam, adamw")


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


def poly_factor(step: int, *, total: int, power: float, floor: float) -> float:
    """The polynomial decay of the segmentation recipes: (1 - step / total) ** power of the base
    rate, never below ``floor`` (mmsegmentation's PolyLR with eta_min = floor x lr)."""
    return (1 - floor) * (1 - min(step, total) / total) ** power + floor


def cosine_factor(step: int, *, total: int, floor: float) -> float:
    """Cosine decay from 1 to ``floor`` over ``total`` steps, as a factor of a group's own base rate."""
    return floor + (1 - floor) * 0.5 * (1 + math.cos(math.pi * min(step, total) / total))


def build_scheduler(settings: TrainSettings, optimizer: torch.optim.Optimizer, total_iters: int):
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
        bases = {group["lr"] for group in optimizer.param_groups}
        if len(bases) == 1:  # one rate: torch's own recursion, so earlier runs keep their bytes
            main = sched.CosineAnnealingLR(optimizer, T_max=remaining, eta_min=bases.pop() * settings.min_lr_factor)
        else:  # parts with rates of their own (backbone_lr, fusion_lr): each decays to its own floor
            main = sched.LambdaLR(optimizer, partial(cosine_factor, total=remaining, floor=settings.min_lr_factor))
    elif settings.lr_schedule == "multistep":
        milestones = sorted({max(1, round(f * total_iters) - warmup) for f in settings.lr_steps})
        main = sched.MultiStepLR(optimizer, milestones=milestones, gamma=settings.lr_gamma)
    elif settings.lr_schedule == "constant":
        main = sched.ConstantLR(optimizer, factor=1.0, total_iters=0)
    elif settings.lr_schedule == "poly":  # mmsegmentation's PolyLR: (1 - step / steps) ** power, down to the floor
        floor = settings.min_lr_factor
        main = sched.LambdaLR(optimizer, partial(poly_factor, total=remaining, power=settings.poly_power, floor=floor))
    else:
        raise ValueError(f"lr_schedule {settings.lr_schedule!r} is not one of cosine, multistep, constant, "
                         "flat_cosine, poly")
    if warmup == 0:
        return main
    warm = sched.LinearLR(optimizer, start_factor=settings.warmup_factor, total_iters=warmup)
    return sched.SequentialLR(optimizer, [warm, main], milestones=[warmup])
