"""The latency step: one run's inference time, measured in a job of its own.

The rule reserves every core Snakemake has (``threads: workflow.cores``), so no training or
evaluation job runs beside the timing; on a GPU it also holds a GPU slot. Batch size 1, after
warmup, end to end through the model's own pre- and post-processing, at the evaluation's
precision. Timings vary from run to run, so they live in ``speed.json``, apart from the
metrics, which do not.
"""

from __future__ import annotations

import logging
from typing import Any

import torch

from detstudy.tasks.detection.checkpoint import load_checkpoint
from detstudy.tasks.detection.data.coco import SplitPaths
from detstudy.tasks.detection.data.dataset import CocoDetection
from detstudy.tasks.detection.evaluation.cost import forward_gflops
from detstudy.engine.runtime import memory_kind, peak_memory_mb, reset_peak_memory
from detstudy.tasks.detection.evaluation.inference import as_float
from detstudy.tasks.detection.models.base import DetectorAdapter
from detstudy.engine.io import write_json
from detstudy.engine.runtime import resolve_device
from detstudy.engine.cost import autocast_for, check_precision, time_per_image, train_seconds, training_cost

log = logging.getLogger("detstudy.evaluate")


def measure_latency(adapter: DetectorAdapter, dataset: CocoDetection, device: torch.device,
                    images: int = 20, warmup: int = 3, amp: bool = False,
                    amp_dtype: torch.dtype = torch.float16) -> dict:
    """Milliseconds per image at batch size 1, end to end through the model's own pre/post-processing:
    the median over ``images`` test images after ``warmup`` untimed ones, with the quartiles and mean."""
    adapter.model.eval()
    count = min(images, len(dataset))
    inputs = [as_float(dataset[i % len(dataset)][0], device) for i in range(count + warmup)]
    return time_per_image(lambda image: adapter.predict([image]), inputs, device, warmup, amp, amp_dtype)


def latency(*, checkpoint, history, test_split: SplitPaths, speed_path, run: dict[str, Any],
            latency_images: int = 50, precision: str = "fp32", device: str = "auto",
            threads: int | None = None) -> dict[str, Any]:
    check_precision(precision)
    if threads:
        torch.set_num_threads(threads)
    device_ = resolve_device(device)
    adapter, _, _ = load_checkpoint(checkpoint, device_)
    dataset = CocoDetection(test_split)
    amp, amp_dtype = autocast_for(precision, device_)
    log.info("timing %d images at batch size 1 on %s (%d threads, %s), nothing else running",
             min(latency_images, len(dataset)), device_, torch.get_num_threads(), precision if amp else "fp32")
    timed = measure_latency(adapter, dataset, device_, images=latency_images, amp=amp, amp_dtype=amp_dtype)
    first = as_float(dataset[0][0], device_)
    reset_peak_memory(device_)  # one image at batch 1, not the images the timing preloaded
    with torch.no_grad(), torch.autocast(device_.type, dtype=amp_dtype, enabled=amp):
        adapter.predict([first])
    timed.update(peak_memory_mb=peak_memory_mb(device_), memory=memory_kind(device_),
                 gflops=round(forward_gflops(adapter, first), 3))
    speed = {"run": run, "speed": timed, "train_seconds": train_seconds(history), **training_cost(history)}
    write_json(speed_path, speed)
    log.info("%.1f ms/image (median of %d; quartiles %s ms), %.1f GFLOPs, peak memory %.0f MiB",
             timed["latency_ms_per_image"], timed["images_timed"], timed["latency_ms_quartiles"],
             timed["gflops"], timed["peak_memory_mb"])
    return speed
