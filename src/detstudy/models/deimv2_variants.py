"""DEIMv2 variant sizes, kept apart from the model code so that listing them imports no transformers."""

from __future__ import annotations

from typing import Any

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
