"""The ``classifier_latency`` step: one classification run's inference cost, measured in a job of
its own (the rule takes every core, or a GPU slot; the timing uses the config's
``compute.threads``, as the other jobs compute with): milliseconds per image at batch size 1 on
the evaluation's input (resized and centre-cropped test images), images per second, GFLOPs of one
forward pass, peak inference memory and the checkpoint's size, beside the training's own time,
throughput and memory. Timings vary from run to run, so they live in ``speed.json``."""

from __future__ import annotations

import logging
from typing import Any

import torch

from detstudy.engine.cost import autocast_for, check_precision, speed_record, time_per_image
from detstudy.engine.runtime import resolve_device
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
    del inputs  # freed first: the peak is one image at batch 1, not the preloaded ones
    return speed_record(timed, predict_one=lambda: model(first), forward=lambda: model(first), device=device_, amp=amp,
                        amp_dtype=amp_dtype, checkpoint=checkpoint, history=history, run=run, speed_path=speed_path,
                        resolution=resolution, log=log)
