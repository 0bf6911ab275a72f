"""The latency step: one run's inference time, measured in a job of its own.

The rule reserves every core Snakemake has (``threads: workflow.cores``), so no training or
evaluation job runs beside the timing; on a GPU it also holds a GPU slot. Batch size 1, after
warmup, end to end through the model's own pre- and post-processing, at the evaluation's
precision. Timings vary from run to run, so they live in ``speed.json``, apart from the
metrics, which do not.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import torch

from detstudy.checkpoint import load_checkpoint
from detstudy.data.coco import SplitPaths
from detstudy.data.dataset import CocoDetection
from detstudy.evaluation.inference import measure_latency
from detstudy.io import write_json
from detstudy.training import resolve_device, trained_epochs

log = logging.getLogger("detstudy.evaluate")
PRECISIONS = ("fp32", "float16", "bfloat16")


def check_precision(precision: str) -> None:
    if precision not in PRECISIONS:
        raise ValueError(f"evaluation precision {precision!r} is not one of {', '.join(PRECISIONS)}. "
                         "Fix: set evaluation.precision to one of them.")


def autocast_for(precision: str, device: torch.device) -> tuple[bool, torch.dtype]:
    """(autocast on, dtype) of an evaluation precision: autocast on CUDA only."""
    return device.type == "cuda" and precision != "fp32", getattr(torch, precision, torch.float16)


def train_seconds(history_csv: str | Path) -> float:
    """Training wall time: the epochs that trained."""
    return round(sum(float(row["seconds"]) for row in trained_epochs(history_csv)), 1)


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
    speed = {"run": run,
             "speed": measure_latency(adapter, dataset, device_, images=latency_images, amp=amp, amp_dtype=amp_dtype),
             "train_seconds": train_seconds(history)}
    write_json(speed_path, speed)
    log.info("%.1f ms/image (median of %d; quartiles %s ms)", speed["speed"]["latency_ms_per_image"],
             speed["speed"]["images_timed"], speed["speed"]["latency_ms_quartiles"])
    return speed
