"""The cost measures: FLOPs by PyTorch's counting rule, peak memory of the job."""

from __future__ import annotations

import torch

from detstudy.tasks.detection.evaluation.cost import forward_gflops
from detstudy.engine.runtime import memory_kind, peak_memory_mb


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


def test_cpu_peak_memory_grows_with_what_the_job_holds():
    device = torch.device("cpu")
    before = peak_memory_mb(device)
    block = torch.ones(64 * 2**20 // 4)  # 64 MiB, touched
    after = peak_memory_mb(device)
    assert memory_kind(device) == "cpu_peak_rss" and before > 10
    assert after >= before and after >= block.numel() * 4 / 2**20


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
