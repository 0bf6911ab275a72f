"""The ``segmenter_latency`` step: one segmentation run's inference cost, measured in a job of its
own (nothing else runs beside it: the rule takes every core, or a GPU slot; the timing uses the
config's ``compute.threads``, as the other jobs compute with): milliseconds per image at batch size 1 through the configured
inference (whole or sliding-window, logits at the mask's size), images per second, GFLOPs of one
forward pass at the resolution, peak inference memory and the checkpoint's size, beside the
training's own time, throughput and memory. Timings vary from run to run, so they live in
``speed.json``, apart from the metrics."""

from __future__ import annotations

import logging
import os
from typing import Any

import torch

from detstudy.engine.cost import autocast_for, check_precision, gflops, time_per_image, train_seconds, training_cost
from detstudy.engine.io import write_json
from detstudy.engine.runtime import memory_kind, peak_memory_mb, reset_peak_memory, resolve_device
from detstudy.tasks.segmentation.checkpoint import load_checkpoint
from detstudy.tasks.segmentation.data.dataset import MaskDataset, eval_transform
from detstudy.tasks.segmentation.data.layout import MaskSplit
from detstudy.tasks.segmentation.inference import predict_logits
from detstudy.tasks.segmentation.confusion import predicted_labels

log = logging.getLogger("detstudy.evaluate")


def segmenter_latency(*, checkpoint, history, test_split: dict[str, str], speed_path, run: dict[str, Any],
                      latency_images: int = 50, inference: str = "whole", palette=None, precision: str = "fp32",
                      device: str = "auto", threads: int | None = None) -> dict[str, Any]:
    check_precision(precision)
    if threads:
        torch.set_num_threads(threads)
    device_ = resolve_device(device)
    model, state = load_checkpoint(checkpoint, device_)
    resolution = model.settings["resolution"]
    data = MaskDataset(MaskSplit.of(**test_split), len(state["class_names"]), eval_transform(resolution, inference),
                       ignore_index=state["ignore_index"], palette=palette, resize_mask=False)
    amp, amp_dtype = autocast_for(precision, device_)
    warmup = 3
    count = min(latency_images, len(data))
    samples = [data[i % len(data)] for i in range(count + warmup)]
    inputs = [(image.to(device_), tuple(mask.shape)) for image, mask in samples]

    def predict(item):
        image, size = item
        return predicted_labels(predict_logits(model, image, size, resolution, inference))

    log.info("timing %d images at batch size 1 on %s (%d threads, %s, %s inference), nothing else running",
             count, device_, torch.get_num_threads(), precision if amp else "fp32", inference)
    timed = time_per_image(predict, inputs, device_, warmup, amp, amp_dtype)
    first = inputs[0]
    del samples, inputs  # freed before the reset: the peak is one image at batch 1, not the preloaded ones
    reset_peak_memory(device_)
    with torch.no_grad(), torch.autocast(device_.type, dtype=amp_dtype, enabled=amp):
        predict(first)
    square = torch.zeros(1, 3, resolution, resolution, device=device_)
    timed.update(peak_memory_mb=peak_memory_mb(device_), memory=memory_kind(device_),
                 gflops=round(gflops(lambda: model(square)), 3),  # one forward pass at the resolution (one window)
                 images_per_second=round(1000.0 / timed["latency_ms_per_image"], 2) if timed["latency_ms_per_image"] else None,
                 checkpoint_mb=round(os.path.getsize(checkpoint) / 2**20, 2))
    speed = {"run": run, "speed": timed, "train_seconds": train_seconds(history), **training_cost(history)}
    write_json(speed_path, speed)
    log.info("%.1f ms/image (median of %d; quartiles %s ms), %.2f GFLOPs at %d px, peak memory %.0f MiB, "
             "checkpoint %.1f MiB", timed["latency_ms_per_image"], timed["images_timed"],
             timed["latency_ms_quartiles"], timed["gflops"], resolution, timed["peak_memory_mb"], timed["checkpoint_mb"])
    return speed
