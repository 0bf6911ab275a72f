"""The architecture registry, written once and without torch: every architecture's family, and
the DEIMv2 variant sizes and resolution rule that both the parse-time checks and the model
builders read (the Snakefile reads this while it parses; the builders import it)."""

from __future__ import annotations

from typing import Any

from detstudy.study.epochs import multiscale_sizes

# name -> DINOv3 backbone and DEIMv2 encoder/decoder sizes. S and M follow the official
# configs (deimv2_dinov3_{s,m}_coco): backbone taps after blocks 3/7/11, STA with 16 stem
# planes, 4 decoder layers, FFN 512, 300 queries, 100 denoising queries.
VARIANTS: dict[str, dict[str, Any]] = {
    "deimv2_s": {"vit_hidden": 192, "vit_heads": 3, "vit_layers": 12, "taps": (3, 7, 11),
                 "hidden": 192, "depth_mult": 0.67, "expansion": 0.34, "ffn": 512, "decoder_layers": 4},
    "deimv2_m": {"vit_hidden": 256, "vit_heads": 4, "vit_layers": 12, "taps": (3, 7, 11),
                 "hidden": 256, "depth_mult": 1.0, "expansion": 0.67, "ffn": 512, "decoder_layers": 4},
    # CPU demo: a 4-block ViT and a narrow encoder/decoder
    "deimv2_demo": {"vit_hidden": 96, "vit_heads": 3, "vit_layers": 4, "taps": (1, 2, 3),
                    "hidden": 96, "depth_mult": 0.34, "expansion": 0.34, "ffn": 256, "decoder_layers": 3},
}
DEIMV2_ARCHITECTURES = tuple(VARIANTS)

CNN_ARCHITECTURES = ("fasterrcnn_resnet18_fpn", "fasterrcnn_efficientnet_b0_fpn")

#: The segmentation architectures: the study's three at full size and a CPU-sized demo of each
#: on the same code path (the same classes, smaller widths and depths). ``widths`` are the
#: encoder's four stage widths, ``depths`` its blocks per stage, ``head`` the decoder's width
#: (UPerNet's channels, SegFormer's decoder_hidden_size).
SEGMENTATION_VARIANTS: dict[str, dict[str, Any]] = {
    "upernet_convnext_tiny": {"family": "cnn", "encoder": "convnext", "depths": (3, 3, 9, 3),
                              "widths": (96, 192, 384, 768), "head": 512},
    "upernet_convnext_demo": {"family": "cnn", "encoder": "convnext", "depths": (1, 1, 1, 1),
                              "widths": (16, 32, 64, 128), "head": 64},
    "upernet_maxvit_tiny": {"family": "hybrid", "encoder": "maxvit", "depths": (2, 2, 5, 2),
                            "widths": (64, 128, 256, 512), "stem": 64, "head": 512},
    "upernet_maxvit_demo": {"family": "hybrid", "encoder": "maxvit", "depths": (1, 1, 1, 1),
                            "widths": (32, 32, 64, 64), "stem": 16, "head": 64},
    "segformer_b3": {"family": "vit", "encoder": "mit", "depths": (3, 4, 18, 3), "widths": (64, 128, 320, 512),
                     "heads": (1, 2, 5, 8), "head": 768},
    "segformer_demo": {"family": "vit", "encoder": "mit", "depths": (1, 1, 1, 1), "widths": (16, 32, 64, 128),
                       "heads": (1, 2, 4, 8), "head": 64},
}
SEGMENTATION_ARCHITECTURES = tuple(SEGMENTATION_VARIANTS)

#: The classification families' variants: what each builds (``tasks.classification.models``).
CLASSIFICATION_VARIANTS: dict[str, dict[str, Any]] = {
    "resnet18": {"family": "cnn", "library": "resnet", "block": "basic", "layers": (2, 2, 2, 2)},
    "resnet50": {"family": "cnn", "library": "resnet", "block": "bottleneck", "layers": (3, 4, 6, 3)},
    "resnet_demo": {"family": "cnn", "library": "resnet", "block": "basic", "layers": (1, 1, 1, 1)},
    "mobilevit_s": {"family": "hybrid", "library": "mobilevit", "hidden_sizes": (144, 192, 240),
                    "neck_hidden_sizes": (16, 32, 64, 96, 128, 160, 640), "heads": 4},
    "mobilevit_demo": {"family": "hybrid", "library": "mobilevit", "hidden_sizes": (48, 64, 80),
                       "neck_hidden_sizes": (8, 16, 24, 32, 48, 64, 160), "heads": 2},
    "dinov3_vits16": {"family": "vit", "library": "dinov3", "width": 384, "depth": 12, "heads": 6, "patch": 16,
                      "registers": 4},
    "dinov3_demo": {"family": "vit", "library": "dinov3", "width": 96, "depth": 4, "heads": 3, "patch": 8,
                    "registers": 4},
}
CLASSIFICATION_ARCHITECTURES = tuple(CLASSIFICATION_VARIANTS)
#: What each task's grid may name.
TASK_ARCHITECTURES: dict[str, tuple[str, ...]] = {"detection": CNN_ARCHITECTURES + DEIMV2_ARCHITECTURES,
                                                  "segmentation": SEGMENTATION_ARCHITECTURES,
                                                  "classification": CLASSIFICATION_ARCHITECTURES}
FAMILIES: dict[str, str] = {**{name: "cnn" for name in CNN_ARCHITECTURES},
                            **{name: "vit" for name in DEIMV2_ARCHITECTURES},
                            **{name: v["family"] for name, v in SEGMENTATION_VARIANTS.items()},
                            **{name: v["family"] for name, v in CLASSIFICATION_VARIANTS.items()}}
DEIMV2_STRIDES = (8, 16, 32)  # the encoder's levels
DEIMV2_QUERIES = 300  # the official num_queries


def family_of(architecture: str) -> str:
    """``cnn`` (Faster R-CNN, UPerNet-ConvNeXt, ResNet), ``hybrid`` (UPerNet-MaxViT, MobileViT) or ``vit``
    (DEIMv2, SegFormer, DINOv3)."""
    if architecture not in FAMILIES:
        raise ValueError(f"unknown architecture {architecture!r}. Fix: use one of {', '.join(sorted(FAMILIES))}.")
    return FAMILIES[architecture]


def deimv2_resolution_problem(resolution: int, num_queries: int = DEIMV2_QUERIES,
                              multiscale_repeat: int | None = None) -> str | None:
    """Why DEIMv2 cannot train at ``resolution`` px (None when it can): square inputs on the
    stride-32 grid, with at least ``num_queries`` encoder positions at the smallest size it
    sees (multi-scale training goes down to 75% of the resolution)."""
    if resolution % 32:
        return (f"resolution {resolution} is not a multiple of 32 (the ViT's patch size 16 and the encoder's "
                f"stride 32). Fix: use e.g. {max(round(resolution / 32), 1) * 32}.")
    smallest = min(multiscale_sizes(resolution, multiscale_repeat)) if multiscale_repeat is not None else resolution
    positions = sum((smallest // stride) ** 2 for stride in DEIMV2_STRIDES)
    if positions < num_queries:
        where = (f"{smallest} px (the smallest multi-scale size of {resolution} px)" if smallest != resolution
                 else f"{resolution} px")
        return (f"{where} gives {positions} encoder positions, fewer than the {num_queries} queries selected "
                "from them. Fix: raise the resolution or lower num_queries.")
    return None


