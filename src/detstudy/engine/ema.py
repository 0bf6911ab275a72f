"""Exponential moving average of a model's weights, with the decay warmup of DEIM.

The decay after ``u`` updates is ``decay * (1 - exp(-u / warmups))``: early on the average
follows the model closely, later it changes slowly. Float buffers (BatchNorm statistics) are
averaged too. Built on ``torch.optim.swa_utils.AveragedModel``.
"""

from __future__ import annotations

import math

import torch
from torch import nn
from torch.optim.swa_utils import AveragedModel


def ema_decay(updates: int, decay: float, warmups: int) -> float:
    return decay * (1.0 - math.exp(-updates / warmups)) if warmups > 0 else decay


class ModelEMA(AveragedModel):
    """``update_parameters(model)`` after every optimizer step; ``module`` is the averaged model."""

    def __init__(self, model: nn.Module, decay: float = 0.9999, warmups: int = 1000):
        self.decay, self.warmups = decay, warmups

        def average(averaged: torch.Tensor, current: torch.Tensor, num_averaged) -> torch.Tensor:
            if not averaged.is_floating_point():  # counters such as num_batches_tracked follow the model
                return current
            d = ema_decay(int(num_averaged), self.decay, self.warmups)
            return averaged * d + current * (1.0 - d)

        super().__init__(model, avg_fn=average, use_buffers=True)
        self.update_parameters(model)  # start from the model's weights, like DEIM's deepcopy
