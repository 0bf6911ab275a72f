"""What a run costs besides time: the FLOPs of one forward pass and the peak memory of a job.

FLOPs are counted by ``torch.utils.flop_counter.FlopCounterMode`` for both families alike: 2
FLOPs per multiply-add of the matrix multiplications, convolutions and attention products
(PyTorch's own counting rule); what it has no formula for (elementwise ops, NMS, RoIAlign,
``grid_sample`` in DEIMv2's deformable attention) is not counted.

Peak memory is measured by ``detstudy.engine.runtime`` (every task's training records it).
"""

from __future__ import annotations

import torch


def forward_gflops(adapter, image: torch.Tensor) -> float:
    """GFLOPs of one inference forward pass of ``adapter`` on ``image`` (its own pre- and
    post-processing included), counted by ``FlopCounterMode``."""
    from torch.nn.attention import SDPBackend, sdpa_kernel
    from torch.utils.flop_counter import FlopCounterMode

    adapter.model.eval()
    counter = FlopCounterMode(display=False)
    # the math kernel: attention as matrix products the counter knows on every device (the CPU's
    # fused SDPA kernel has no formula and would count as 0)
    with torch.no_grad(), sdpa_kernel(SDPBackend.MATH), counter:
        adapter.predict([image])
    return counter.get_total_flops() / 1e9
