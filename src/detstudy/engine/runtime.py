"""Where and how a job computes: the device, the seeds, and the peak memory it reaches.

Peak memory is the device's: on CUDA ``torch.cuda.max_memory_allocated`` since the last reset
(tensors only, not the allocator's cache); on the CPU the job's peak resident set size (the
whole process: the interpreter, the libraries and the data, never reset).
"""

from __future__ import annotations

import random
import resource
import sys

import numpy as np
import torch


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
