"""The ViT attention step of one DEIMv2 run: where its backbone looks and where its decoder
samples, on the first test images that have objects."""

from __future__ import annotations

import logging
from typing import Any

import numpy as np
import torch

from detstudy.tasks.detection.attention_plots import plot_backbone_attention, plot_decoder_sampling
from detstudy.tasks.detection.checkpoint import load_checkpoint
from detstudy.tasks.detection.data.coco import SplitPaths
from detstudy.tasks.detection.data.dataset import CocoDetection
from detstudy.tasks.detection.evaluation.inference import as_float
from detstudy.tasks.detection.models.deimv2_attention import where_deimv2_looks
from detstudy.study.grid import run_label
from detstudy.engine.runtime import resolve_device

log = logging.getLogger("detstudy.vit_attention")


def _with_objects(dataset: CocoDetection, count: int) -> list[int]:
    """The first ``count`` images (in the split's order) that have at least one object."""
    having = {a["image_id"] for a in dataset.coco["annotations"] if not a.get("iscrowd", 0)}
    chosen = [i for i, image in enumerate(dataset.images) if image["id"] in having][:count]
    return chosen or list(range(min(count, len(dataset))))


def vit_attention(*, checkpoint, test_split: SplitPaths, run: dict[str, Any], backbone_png, decoder_png,
                  images: int = 2, top_k: int = 4, style: dict[str, Any] | None = None, device: str = "auto",
                  threads: int | None = None) -> None:
    if threads:
        torch.set_num_threads(threads)
    device_ = resolve_device(device)
    adapter, categories, _ = load_checkpoint(checkpoint, device_)
    if adapter.family != "vit":
        raise ValueError(f"{checkpoint}: a {adapter.architecture} checkpoint has no ViT attention to draw. "
                         "Fix: the vit_attention rule is for DEIMv2 runs only.")
    dataset = CocoDetection(test_split)
    chosen = _with_objects(dataset, images)
    pictures, looks = [], []
    for index in chosen:
        image = dataset.load_image(index)
        pictures.append(image.permute(1, 2, 0).numpy().astype(np.uint8))
        looks.append(where_deimv2_looks(adapter, as_float(image, device_), top_k=top_k))
    names = [c["name"] for c in categories.as_list()]
    name = run_label(run)
    log.info("drawing the attention of %d test images (top %d detections each)", len(chosen), top_k)
    plot_backbone_attention(pictures, looks, backbone_png, style=style,
                            title=f"Where the DINOv3 backbone looks (class token, last layer): {name}")
    plot_decoder_sampling(pictures, looks, names, decoder_png, style=style,
                          title=f"Where the decoder samples for its top detections: {name}")
