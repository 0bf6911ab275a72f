"""The ``classifier_latency`` step: one classification run's inference cost, measured in a job of
its own (the rule takes every core, or a GPU slot; the timing uses the config's
``compute.threads``, as the other jobs compute with): milliseconds per image at batch size 1 on
the evaluation's input (resized and centre-cropped test images), images per second, GFLOPs of one
forward pass, peak inference memory and the checkpoint's size, beside the training's own time,
throughput and memory. Timings vary from run to run, so they live in ``speed.json``."""

from __future__ import annotations

import logging
import os
from typing import Any

import torch

from detstudy.engine.cost import autocast_for, check_precision, gflops, time_per_image, train_seconds, training_cost
from detstudy.engine.io import write_json
from detstudy.engine.runtime import memory_kind, peak_memory_mb, reset_peak_memory, resolve_device
from detstudy.tasks.classification.checkpoint import load_checkpoint
from detstudy.tasks.classification.data.dataset import ImageDataset, eval_transform
from detstudy.tasks.classification.data.layout import ImageSplit

log = logging.getLogger("detstudy.evaluate")


def classifier_latency(*, checkpoint, history, test_split: str, speed_path, run: dict[str, Any],
                       latency_images: int = 50, precision: str = "fp32", device: str = "auto",
                       threads: int | None = None) -> dict[str, Any]:
    check_precision(precision)
    if threads:
        torch.set_num_threads(threads)
    device_ = resolve_device(device)
    model, state = load_checkpoint(checkpoint, device_)
    resolution = state["resolution"]
    data = ImageDataset(ImageSplit.of(test_split), state["class_names"], eval_transform(resolution, state["preprocessing"]))
    amp, amp_dtype = autocast_for(precision, device_)
    warmup = 3
    count = min(latency_images, len(data))
    inputs = [data[i % len(data)][0][None].to(device_) for i in range(count + warmup)]
    log.info("timing %d images at batch size 1 on %s (%d threads, %s), nothing else running",
             count, device_, torch.get_num_threads(), precision if amp else "fp32")
    timed = time_per_image(lambda image: model(image).argmax(dim=1), inputs, device_, warmup, amp, amp_dtype)
    first = inputs[0]
    del inputs  # freed before the reset: the peak is one image at batch 1, not the preloaded ones
    reset_peak_memory(device_)
    with torch.no_grad(), torch.autocast(device_.type, dtype=amp_dtype, enabled=amp):
        model(first)
    timed.update(peak_memory_mb=peak_memory_mb(device_), memory=memory_kind(device_),
                 gflops=round(gflops(lambda: model(first)), 3),
                 images_per_second=round(1000.0 / timed["latency_ms_per_image"], 2) if timed["latency_ms_per_image"] else None,
                 checkpoint_mb=round(os.path.getsize(checkpoint) / 2**20, 2))
    speed = {"run": run, "speed": timed, "train_seconds": train_seconds(history), **training_cost(history)}
    write_json(speed_path, speed)
    log.info("%.2f ms/image (median of %d; quartiles %s ms), %.3f GFLOPs at %d px, peak memory %.0f MiB, "
             "checkpoint %.1f MiB", timed["latency_ms_per_image"], timed["images_timed"],
             timed["latency_ms_quartiles"], timed["gflops"], resolution, timed["peak_memory_mb"], timed["checkpoint_mb"])
    return speed
