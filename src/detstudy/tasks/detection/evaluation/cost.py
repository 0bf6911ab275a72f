"""What a run costs besides time: the FLOPs of one forward pass and the peak memory of a job.

FLOPs are counted by :func:`detstudy.engine.cost.gflops` for both families alike (what it has
no formula for, such as NMS, RoIAlign and ``grid_sample`` in DEIMv2's deformable attention, is
not counted).

Peak memory is measured by ``detstudy.engine.runtime`` (every task's training records it).
"""

from __future__ import annotations

import torch

from detstudy.engine.cost import gflops


def forward_gflops(adapter, image: torch.Tensor) -> float:
    """GFLOPs of one inference forward pass of ``adapter`` on ``image`` (its own pre- and
    post-processing included)."""
    adapter.model.eval()
    return gflops(lambda: adapter.predict([image]))
