"""The ``segmenter_latency`` step: one segmentation run's inference cost, measured in a job of its
own (nothing else runs beside it: the rule takes every core, or a GPU slot; the timing uses the
config's ``compute.threads``, as the other jobs compute with): milliseconds per image at batch size 1 through the configured
inference (whole or sliding-window, logits at the mask's size), images per second, GFLOPs of one
forward pass at the resolution, peak inference memory and the checkpoint's size, beside the
training's own time, throughput and memory. Timings vary from run to run, so they live in
``speed.json``, apart from the metrics."""

from __future__ import annotations

import logging
from typing import Any

import torch

from detstudy.engine.cost import autocast_for, check_precision, speed_record, time_per_image
from detstudy.engine.runtime import resolve_device
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
    del samples, inputs  # freed first: the peak is one image at batch 1, not the preloaded ones
    square = torch.zeros(1, 3, resolution, resolution, device=device_)
    return speed_record(timed, predict_one=lambda: predict(first),
                        forward=lambda: model(square),  # one forward pass at the resolution (one window)
                        device=device_, amp=amp, amp_dtype=amp_dtype, checkpoint=checkpoint, history=history, run=run,
                        speed_path=speed_path, resolution=resolution, log=log)
