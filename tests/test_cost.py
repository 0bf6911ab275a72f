"""The cost measures: FLOPs by PyTorch's counting rule, peak memory of the job."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
import torch

from detstudy.tasks.detection.evaluation.cost import forward_gflops



class _ConvAdapter:
    """A stand-in detector: one 3x3 convolution (3 -> 8 channels, same padding) and a linear head."""

    def __init__(self):
        self.model = torch.nn.Sequential(torch.nn.Conv2d(3, 8, 3, padding=1), torch.nn.Flatten(),
                                         torch.nn.Linear(8 * 16 * 16, 10))

    def predict(self, images):
        return [self.model(image[None]) for image in images]


def test_flops_are_twice_the_multiply_adds():
    gflops = forward_gflops(_ConvAdapter(), torch.rand(3, 16, 16))
    conv = 2 * 8 * 3 * 3 * 3 * 16 * 16
    linear = 2 * 8 * 16 * 16 * 10
    assert gflops * 1e9 == conv + linear  # the bias additions and the flatten are not counted


# run in a fresh process: the test process's peak RSS is whatever its largest earlier moment was
MEASURE = """
import json, sys
import torch
from detstudy.engine.runtime import memory_kind, peak_memory_mb

device = torch.device("cpu")
before = peak_memory_mb(device)
mib = int(sys.argv[1])
if mib:
    block = torch.ones(mib * 2**20 // 4)  # written, so every page is resident
    del block  # freed: the peak keeps it, the current RSS does not
print(json.dumps({"kind": memory_kind(device), "before": before, "after": peak_memory_mb(device)}))
"""


# Linux carries the peak RSS of a process across exec, and a forked child's starts at its parent's
# RSS: a child of this test process (torch loaded, ~700 MiB) would start above what it measures. A
# small Python in between forks the measuring one.
HOP = "import subprocess, sys; sys.exit(subprocess.run(sys.argv[1:]).returncode)"


def _peak_growth(mib: int) -> dict:
    found = subprocess.run([sys.executable, "-c", HOP, sys.executable, "-c", MEASURE, str(mib)],
                           capture_output=True, text=True, check=True)
    return json.loads(found.stdout)


@pytest.mark.skipif(sys.platform != "linux", reason="ru_maxrss in KiB, pages touched by torch.ones: Linux")
def test_cpu_peak_memory_grows_by_what_the_job_held():
    """A 200 MiB tensor, written then freed, raises the job's peak by 200 MiB (within what the
    allocator and the interpreter add); nothing allocated leaves the peak where it was."""
    held = _peak_growth(200)
    assert held["kind"] == "cpu_peak_rss" and held["before"] > 10  # the interpreter and torch already count
    assert 190 <= held["after"] - held["before"] <= 230, held
    idle = _peak_growth(0)
    assert 0 <= idle["after"] - idle["before"] < 5, idle


class _AttentionAdapter:
    """Scaled dot-product attention of 16 tokens, 2 heads of 8 dims: the kernel the ViT runs."""

    def __init__(self):
        self.model = torch.nn.Identity()

    def predict(self, images):
        q = images[0].reshape(1, 2, 16, 8)
        return [torch.nn.functional.scaled_dot_product_attention(q, q, q)]


def test_attention_is_counted_on_the_cpu_too():
    """The CPU's fused SDPA kernel has no FLOP formula: counted through the math kernel instead."""
    gflops = forward_gflops(_AttentionAdapter(), torch.rand(256))
    assert gflops * 1e9 == 2 * (2 * 16 * 16 * 8) * 2  # q·kᵀ and weights·v, 2 FLOPs per multiply-add
