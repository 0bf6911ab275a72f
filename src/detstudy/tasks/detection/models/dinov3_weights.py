"""The official distilled DINOv3 backbones of DEIMv2 (`vitt_distill.pt`, `vittplus_distill.pt`)
loaded into transformers' DINOv3 ViT through an explicit key mapping.

The official ViT-Tiny(+) stores a fused ``qkv`` projection and ``fc1``/``fc2`` MLPs under
``patch_embed``/``blocks``/``rope_embed`` (sometimes behind a ``_model.`` or ``module.``
prefix); transformers splits q/k/v and names things differently. Every official key must be
used and every backbone weight must be filled, or loading fails naming the keys: the official
code silently trains from scratch when its file is missing, which this refuses to do.
"""

from __future__ import annotations

import re
from pathlib import Path

import torch
from torch import nn

_PREFIXES = ("module.", "backbone.", "dinov3.", "_model.")
_RENAMES = [  # official (per block) -> transformers
    (r"^patch_embed\.proj\.(weight|bias)$", r"embeddings.patch_embeddings.\1"),
    (r"^cls_token$", "embeddings.cls_token"),
    (r"^blocks\.(\d+)\.norm([12])\.(weight|bias)$", r"model.layer.\1.norm\2.\3"),
    (r"^blocks\.(\d+)\.attn\.proj\.(weight|bias)$", r"model.layer.\1.attention.o_proj.\2"),
    (r"^blocks\.(\d+)\.mlp\.fc1\.(weight|bias)$", r"model.layer.\1.mlp.up_proj.\2"),
    (r"^blocks\.(\d+)\.mlp\.fc2\.(weight|bias)$", r"model.layer.\1.mlp.down_proj.\2"),
]
_QKV = re.compile(r"^blocks\.(\d+)\.attn\.qkv\.(weight|bias)$")
# transformers-only entries the official model does not have: layer scale (absent there, so
# kept at 1), the mask token (masked-image pretraining only), registers (none), the final
# norm (not applied by DEIMv2)
_NOT_IN_OFFICIAL = re.compile(r"(layer_scale\d\.lambda1|embeddings\.mask_token|embeddings\.register_tokens|^norm\.)")


def _strip(key: str) -> str:
    changed = True
    while changed:
        changed = False
        for prefix in _PREFIXES:
            if key.startswith(prefix):
                key, changed = key[len(prefix):], True
    return key


def official_to_transformers(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Rename (and split) an official ViT-Tiny(+) state dict; raises on keys it does not know."""
    mapped: dict[str, torch.Tensor] = {}
    unknown = []
    for raw_key, value in state.items():
        key = _strip(raw_key)
        if key == "rope_embed.periods":
            _check_rope_periods(value)
            continue
        qkv = _QKV.match(key)
        if qkv:
            block, kind = qkv.groups()
            for name, part in zip(("q_proj", "k_proj", "v_proj"), value.chunk(3, dim=0)):
                mapped[f"model.layer.{block}.attention.{name}.{kind}"] = part.clone()
            continue
        for pattern, replacement in _RENAMES:
            if re.match(pattern, key):
                mapped[re.sub(pattern, replacement, key)] = value
                break
        else:
            unknown.append(raw_key)
    if unknown:
        raise ValueError(f"unexpected keys in the DINOv3 backbone file: {unknown[:8]}"
                         f"{' ...' if len(unknown) > 8 else ''}. Fix: use the official vitt_distill.pt / "
                         "vittplus_distill.pt of DEIMv2 for the deimv2_s / deimv2_m variants.")
    return mapped


def _check_rope_periods(periods: torch.Tensor) -> None:
    """transformers computes RoPE from ``rope_theta`` (100): the file must agree."""
    head_dim = periods.numel() * 4
    expected = 100.0 ** (2 * torch.arange(head_dim // 4, dtype=torch.float64) / (head_dim // 2))
    if not torch.allclose(periods.double(), expected, rtol=1e-4):
        raise ValueError("the file's RoPE periods are not those of base 100. "
                         "Fix: use the official DEIMv2 distilled DINOv3 weights.")


def load_official_backbone(backbone: nn.Module, path: str | Path) -> None:
    """Load an official distilled DINOv3 file into a transformers DINOv3 ViT backbone, strictly."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"DINOv3 backbone weights {path} not found. Fix: download vitt_distill.pt "
                                "(deimv2_s) or vittplus_distill.pt (deimv2_m) from the DEIMv2 release and "
                                "point backbone_weights to it; the backbone never trains from scratch silently.")
    state = torch.load(path, map_location="cpu", weights_only=True)
    for wrapper in ("model", "state_dict"):
        if isinstance(state, dict) and isinstance(state.get(wrapper), dict):
            state = state[wrapper]
    mapped = official_to_transformers(state)
    own = backbone.state_dict()
    missing = [k for k in own if k not in mapped and not _NOT_IN_OFFICIAL.search(k)]
    wrong = [f"{k} {tuple(v.shape)} vs {tuple(own[k].shape)}" for k, v in mapped.items()
             if k in own and v.shape != own[k].shape]
    extra = [k for k in mapped if k not in own]
    if missing or wrong or extra:
        raise ValueError(f"{path} does not fit this backbone: missing {missing[:6]}, shape mismatches "
                         f"{wrong[:4]}, unexpected {extra[:6]}. Fix: vitt_distill.pt belongs to deimv2_s, "
                         "vittplus_distill.pt to deimv2_m.")
    backbone.load_state_dict(mapped, strict=False)
