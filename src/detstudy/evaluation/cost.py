"""What a run costs besides time: the FLOPs of one forward pass and the peak memory of a job.

FLOPs are counted by ``torch.utils.flop_counter.FlopCounterMode`` for both families alike: 2
FLOPs per multiply-add of the matrix multiplications, convolutions and attention products
(PyTorch's own counting rule); what it has no formula for (elementwise ops, NMS, RoIAlign,
``grid_sample`` in DEIMv2's deformable attention) is not counted.

Peak memory is the device's: on CUDA ``torch.cuda.max_memory_allocated`` since the last reset
(tensors only, not the allocator's cache); on the CPU the job's peak resident set size (the
whole process: the interpreter, the libraries and the data, never reset).
"""

from __future__ import annotations

import resource
import sys

import torch


def reset_peak_memory(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)


def peak_memory_mb(device: torch.device) -> float:
    """The peak memory (MiB) of ``device`` since :func:`reset_peak_memory` (CUDA) or since the
    process started (CPU: peak RSS)."""
    if device.type == "cuda":
        return round(torch.cuda.max_memory_allocated(device) / 2**20, 1)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux, bytes on macOS
    return round(peak / (2**20 if sys.platform == "darwin" else 2**10), 1)


def memory_kind(device: torch.device) -> str:
    return "cuda_max_allocated" if device.type == "cuda" else "cpu_peak_rss"


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
