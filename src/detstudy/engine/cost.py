"""What running a model costs, measured alike for every task: the time per image at batch size 1,
the FLOPs of one forward pass, the evaluation precision, and the training's own cost read back
from its history.

FLOPs are counted by ``torch.utils.flop_counter.FlopCounterMode``: 2 FLOPs per multiply-add of
the matrix multiplications, convolutions and attention products (PyTorch's own counting rule);
what it has no formula for (elementwise ops, interpolation, NMS, RoIAlign, ``grid_sample``) is
not counted.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch

from detstudy.engine.history import trained_epochs
from detstudy.engine.io import write_json
from detstudy.engine.runtime import memory_kind, peak_memory_mb, reset_peak_memory

PRECISIONS = ("fp32", "float16", "bfloat16")


def check_precision(precision: str) -> None:
    if precision not in PRECISIONS:
        raise ValueError(f"evaluation precision {precision!r} is not one of {', '.join(PRECISIONS)}. "
                         "Fix: set evaluation.precision to one of them.")


def autocast_for(precision: str, device: torch.device) -> tuple[bool, torch.dtype]:
    """(autocast on, dtype) of an evaluation precision: autocast on CUDA only."""
    return device.type == "cuda" and precision != "fp32", getattr(torch, precision, torch.float16)


@torch.no_grad()
def time_per_image(predict: Callable[[torch.Tensor], Any], inputs: list[torch.Tensor], device: torch.device,
                   warmup: int = 3, amp: bool = False, amp_dtype: torch.dtype = torch.float16) -> dict:
    """Milliseconds per image of ``predict(image)`` at batch size 1: the median over ``inputs``
    after the first ``warmup`` of them (untimed), with the quartiles and the mean."""
    times = []
    for index, image in enumerate(inputs):
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        start = time.perf_counter()
        with torch.autocast(device.type, dtype=amp_dtype, enabled=amp and device.type == "cuda"):
            predict(image)
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        if index >= warmup:
            times.append(1000.0 * (time.perf_counter() - start))
    q1, median, q3 = (float(v) for v in np.percentile(times, [25, 50, 75])) if times else (0.0, 0.0, 0.0)
    on_gpu = amp and device.type == "cuda"
    return {"device": device.type if device.type == "cpu" else torch.cuda.get_device_name(device),
            "latency_ms_per_image": round(median, 2), "latency_ms_quartiles": [round(q1, 2), round(q3, 2)],
            "latency_ms_mean": round(float(np.mean(times)) if times else 0.0, 2),
            "images_timed": len(times), "batch_size": 1, "threads": torch.get_num_threads(), "amp": bool(on_gpu),
            **({"amp_dtype": str(amp_dtype).removeprefix("torch.")} if on_gpu else {})}


def gflops(forward: Callable[[], Any]) -> float:
    """GFLOPs of ``forward()`` (one inference pass), counted by ``FlopCounterMode``."""
    from torch.nn.attention import SDPBackend, sdpa_kernel
    from torch.utils.flop_counter import FlopCounterMode

    counter = FlopCounterMode(display=False)
    # the math kernel: attention as matrix products the counter knows on every device (the CPU's
    # fused SDPA kernel has no formula and would count as 0)
    with torch.no_grad(), sdpa_kernel(SDPBackend.MATH), counter:
        forward()
    return counter.get_total_flops() / 1e9


def train_seconds(history_csv: str | Path) -> float:
    """Training wall time: the epochs that trained."""
    return round(sum(float(row["seconds"]) for row in trained_epochs(history_csv)), 1)


def training_cost(history_csv: str | Path) -> dict[str, float | None]:
    """The trained epochs' mean throughput (images/s) and their peak memory (MiB; ``None`` for a
    history written before it was recorded)."""
    epochs = trained_epochs(history_csv)
    rates = [float(row["images_per_second"]) for row in epochs if row.get("images_per_second")]
    peaks = [float(row["peak_memory_mb"]) for row in epochs if row.get("peak_memory_mb")]
    return {"train_images_per_second": round(sum(rates) / len(rates), 2) if rates else None,
            "train_peak_memory_mb": max(peaks) if peaks else None}


def speed_record(timed: dict[str, Any], *, predict_one: Callable[[], Any], forward: Callable[[], Any],
                 device: torch.device, amp: bool, amp_dtype: torch.dtype, checkpoint, history, run: dict[str, Any],
                 speed_path, resolution: int, log) -> dict[str, Any]:
    """A latency job's ``speed.json`` from its timings (:func:`time_per_image`): the peak memory of
    ``predict_one`` (one image at batch 1; free the preloaded images first), the GFLOPs of
    ``forward``, images per second, the checkpoint's size and the training's cost (its history);
    written atomically and logged."""
    reset_peak_memory(device)
    with torch.no_grad(), torch.autocast(device.type, dtype=amp_dtype, enabled=amp):
        predict_one()
    timed.update(peak_memory_mb=peak_memory_mb(device), memory=memory_kind(device), gflops=round(gflops(forward), 3),
                 images_per_second=round(1000.0 / timed["latency_ms_per_image"], 2) if timed["latency_ms_per_image"] else None,
                 checkpoint_mb=round(Path(checkpoint).stat().st_size / 2**20, 2))
    speed = {"run": run, "speed": timed, "train_seconds": train_seconds(history), **training_cost(history)}
    write_json(speed_path, speed)
    log.info("%.2f ms/image (median of %d; quartiles %s ms), %.3f GFLOPs at %d px, peak memory %.0f MiB, "
             "checkpoint %.1f MiB", timed["latency_ms_per_image"], timed["images_timed"],
             timed["latency_ms_quartiles"], timed["gflops"], resolution, timed["peak_memory_mb"], timed["checkpoint_mb"])
    return speed
