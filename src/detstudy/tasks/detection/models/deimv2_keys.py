"""The official DEIMv2 state-dict layout mapped, key by key, onto this project's model.

The official repository (Intellindust-AI-Lab/DEIMv2) names its modules after its own classes
(``backbone.dinov3._model.blocks``, ``encoder.fpn_blocks.*.cv2.0``, ``decoder.decoder.layers``)
and fuses some projections that transformers splits: the ViT's ``qkv``, every
``nn.MultiheadAttention``'s ``in_proj`` and the SwiGLU ``w12``. Every official key is either
renamed, split, checked against the value this model fixes (``up``, ``reg_scale``, the RoPE
periods, the deformable points' scale) or, for the evaluation-size anchor buffers, dropped;
an official key that no rule knows is an error, never ignored.
"""

from __future__ import annotations

import re

import torch

from detstudy.tasks.detection.models.dinov3_weights import official_to_transformers

# buffers the official model saves for its evaluation size; this model builds them per input size
_REGENERATED = re.compile(r"^decoder\.(anchors|valid_mask)$")
# constants this model fixes in its config: the official value must agree
_CONSTANTS = {"decoder.up": "model.decoder.up", "decoder.decoder.up": "model.decoder.up",
              "decoder.reg_scale": "model.decoder.reg_scale",
              "decoder.decoder.reg_scale": "model.decoder.reg_scale"}

_CONV_NORM = r"(conv|norm)"
_RENAMES = [  # (official pattern, this project's replacement); first match wins
    # the spatial tuning adapter (STA) and the 1x1 fusion projections
    (r"^backbone\.sta\.stem\.0\.", "model.conv_encoder.spatial_tuning_adapter.stem_conv.conv."),
    (r"^backbone\.sta\.stem\.1\.", "model.conv_encoder.spatial_tuning_adapter.stem_conv.norm."),
    (r"^backbone\.sta\.conv2\.0\.", "model.conv_encoder.spatial_tuning_adapter.conv2.conv."),
    (r"^backbone\.sta\.conv2\.1\.", "model.conv_encoder.spatial_tuning_adapter.conv2.norm."),
    (r"^backbone\.sta\.conv([34])\.1\.", r"model.conv_encoder.spatial_tuning_adapter.conv\1.conv."),
    (r"^backbone\.sta\.conv([34])\.2\.", r"model.conv_encoder.spatial_tuning_adapter.conv\1.norm."),
    (r"^backbone\.convs\.(\d)\.", r"model.conv_encoder.fusion_proj.\1.conv."),
    (r"^backbone\.norms\.(\d)\.", r"model.conv_encoder.fusion_proj.\1.norm."),
    # hybrid encoder: AIFI, FPN/PAN blocks (RepNCSPELAN5: cv1, cv2.0 / cv3.0 CSP layers, cv4)
    (r"^encoder\.encoder\.(\d)\.layers\.(\d)\.self_attn\.out_proj\.", r"model.encoder.aifi.\1.layers.\2.self_attn.o_proj."),
    (r"^encoder\.encoder\.(\d)\.layers\.(\d)\.linear([12])\.",
     lambda m: f"model.encoder.aifi.{m[1]}.layers.{m[2]}.mlp.layers.{int(m[3]) - 1}."),
    (r"^encoder\.encoder\.(\d)\.layers\.(\d)\.norm1\.", r"model.encoder.aifi.\1.layers.\2.self_attn_layer_norm."),
    (r"^encoder\.encoder\.(\d)\.layers\.(\d)\.norm2\.", r"model.encoder.aifi.\1.layers.\2.final_layer_norm."),
    (rf"^encoder\.lateral_convs\.(\d)\.{_CONV_NORM}\.", r"model.encoder.lateral_convs.\1.\2."),
    (rf"^encoder\.downsample_convs\.(\d)\.0\.cv([12])\.{_CONV_NORM}\.", r"model.encoder.downsample_convs.\1.conv\2.\3."),
    (rf"^encoder\.(fpn|pan)_blocks\.(\d)\.cv1\.{_CONV_NORM}\.", r"model.encoder.\1_blocks.\2.conv1.\3."),
    (rf"^encoder\.(fpn|pan)_blocks\.(\d)\.cv4\.{_CONV_NORM}\.", r"model.encoder.\1_blocks.\2.conv2.\3."),
    (r"^encoder\.(fpn|pan)_blocks\.(\d)\.cv([23])\.0\.",
     lambda m: f"model.encoder.{m[1]}_blocks.{m[2]}.csp_rep{int(m[3]) - 1}."),
    # decoder layers
    (r"^decoder\.decoder\.layers\.(\d+)\.self_attn\.out_proj\.", r"model.decoder.layers.\1.self_attn.o_proj."),
    (r"^decoder\.decoder\.layers\.(\d+)\.norm1\.scale$", r"model.decoder.layers.\1.self_attn_layer_norm.weight"),
    (r"^decoder\.decoder\.layers\.(\d+)\.norm2\.scale$", r"model.decoder.layers.\1.encoder_attn_layer_norm.weight"),
    (r"^decoder\.decoder\.layers\.(\d+)\.norm3\.scale$", r"model.decoder.layers.\1.final_layer_norm.weight"),
    (r"^decoder\.decoder\.layers\.(\d+)\.cross_attn\.", r"model.decoder.layers.\1.encoder_attn."),
    (r"^decoder\.decoder\.layers\.(\d+)\.gateway\.norm\.scale$", r"model.decoder.layers.\1.gateway.norm.weight"),
    (r"^decoder\.decoder\.layers\.(\d+)\.gateway\.gate\.", r"model.decoder.layers.\1.gateway.gate."),
    (r"^decoder\.decoder\.layers\.(\d+)\.swish_ffn\.w3\.", r"model.decoder.layers.\1.mlp.down_proj."),
    (r"^decoder\.decoder\.lqe_layers\.", "model.decoder.lqe_layers."),
    # heads
    (r"^decoder\.denoising_class_embed\.", "model.denoising_class_embed."),
    (r"^decoder\.enc_score_head\.", "model.enc_score_head."),
    (r"^decoder\.enc_bbox_head\.", "model.enc_bbox_head."),
    (r"^decoder\.query_pos_head\.", "model.decoder.query_pos_head."),
    (r"^decoder\.pre_bbox_head\.", "model.decoder.pre_bbox_head."),
    (r"^decoder\.dec_score_head\.", "model.decoder.class_embed."),
    (r"^decoder\.dec_bbox_head\.", "model.decoder.bbox_embed."),
]
_IN_PROJ = re.compile(r"^(encoder\.encoder\.(\d)\.layers\.(\d)|decoder\.decoder\.layers\.(\d+))\.self_attn\.in_proj_(weight|bias)$")
_W12 = re.compile(r"^decoder\.decoder\.layers\.(\d+)\.swish_ffn\.w12\.(weight|bias)$")


def _in_proj_target(match: re.Match) -> str:
    if match[2] is not None:
        return f"model.encoder.aifi.{match[2]}.layers.{match[3]}.self_attn"
    return f"model.decoder.layers.{match[4]}.self_attn"


def official_to_detstudy(state: dict[str, torch.Tensor]) -> tuple[dict[str, torch.Tensor], dict[str, torch.Tensor], list[str]]:
    """Rename an official DEIMv2 (DINOv3) state dict. Returns (mapped state, constants to check
    against this model's {key: official value}, official keys no rule knows)."""
    mapped: dict[str, torch.Tensor] = {}
    constants: dict[str, torch.Tensor] = {}
    unknown: list[str] = []
    vit = {key[len("backbone.dinov3."):]: value for key, value in state.items() if key.startswith("backbone.dinov3.")}
    if vit:
        for key, value in official_to_transformers(vit).items():
            mapped[f"model.conv_encoder.backbone.{key}"] = value
    for key, value in state.items():
        if key.startswith("backbone.dinov3.") or _REGENERATED.match(key):
            continue
        if key in _CONSTANTS:
            constants[_CONSTANTS[key]] = value
            continue
        if key.endswith("cross_attn.num_points_scale"):
            target = re.sub(r"^decoder\.decoder\.layers\.(\d+)\.cross_attn\.", r"model.decoder.layers.\1.encoder_attn.", key)
            constants[target] = value
            continue
        in_proj = _IN_PROJ.match(key)
        if in_proj:
            for name, part in zip(("q_proj", "k_proj", "v_proj"), value.chunk(3, dim=0)):
                mapped[f"{_in_proj_target(in_proj)}.{name}.{in_proj[5]}"] = part.clone()
            continue
        w12 = _W12.match(key)
        if w12:  # official: x1, x2 = w12(x).chunk(2); silu(x1) * x2
            gate, up = value.chunk(2, dim=0)
            mapped[f"model.decoder.layers.{w12[1]}.mlp.gate_proj.{w12[2]}"] = gate.clone()
            mapped[f"model.decoder.layers.{w12[1]}.mlp.up_proj.{w12[2]}"] = up.clone()
            continue
        for pattern, replacement in _RENAMES:
            if re.match(pattern, key):
                mapped[re.sub(pattern, replacement, key, count=1)] = value
                break
        else:
            unknown.append(key)
    # transformers keeps a second, tied reference to the decoder's heads at the top level
    for key in [k for k in mapped if k.startswith(("model.decoder.class_embed.", "model.decoder.bbox_embed."))]:
        mapped[key[len("model.decoder."):]] = mapped[key]
    return mapped, constants, unknown


def load_official_state(model: torch.nn.Module, state: dict[str, torch.Tensor], *, source: str) -> None:
    """Load an official-layout DEIMv2 state dict into a model built by ``build_deimv2``, strictly:
    every official key used, every model weight filled, every fixed constant equal."""
    mapped, constants, unknown = official_to_detstudy(state)
    own = model.state_dict()
    missing = sorted(k for k in own if k not in mapped and k not in constants and own[k].numel())  # registers: none
    unexpected = sorted(k for k in mapped if k not in own)
    wrong = [f"{k} {tuple(v.shape)} (model {tuple(own[k].shape)})" for k, v in mapped.items()
             if k in own and v.shape != own[k].shape]
    differing = [k for k, v in constants.items() if k in own and not torch.allclose(v.float(), own[k].float())]
    problems = []
    width_key = "model.conv_encoder.backbone.embeddings.patch_embeddings.weight"
    if width_key in mapped and width_key in own and mapped[width_key].shape[0] != own[width_key].shape[0]:
        names = {192: "deimv2_s", 256: "deimv2_m"}
        file_width, model_width = mapped[width_key].shape[0], own[width_key].shape[0]
        problems.append(f"it holds a ViT of width {file_width} ({names.get(file_width, 'unknown variant')}), "
                        f"the model's is {model_width} ({names.get(model_width, 'another variant')})")
    if unknown:
        problems.append(f"official keys no mapping knows: {unknown[:6]}{' ...' if len(unknown) > 6 else ''}")
    if missing:
        problems.append(f"model weights the file does not hold: {missing[:6]}{' ...' if len(missing) > 6 else ''}")
    if unexpected:
        problems.append(f"file weights this model has no place for: {unexpected[:6]}")
    if wrong:
        problems.append(f"shape mismatches: {wrong[:4]}{' ...' if len(wrong) > 4 else ''}")
    if differing:
        problems.append(f"constants that differ from this model's: {differing[:4]}")
    if problems:
        raise ValueError(f"{source} does not fit this DEIMv2: " + "; ".join(problems)
                         + ". Fix: use a checkpoint of the same variant (deimv2_s: ViT-Tiny, 192 channels; "
                           "deimv2_m: ViT-Tiny+, 256 channels) written by the official DEIMv2 code.")
    model.load_state_dict({**own, **{k: v for k, v in mapped.items()}}, strict=True)


COCO_CLASSES = 80
# official keys whose first dimension is the class count (denoising: classes + 1 padding row)
_CLASS_HEADS = re.compile(r"^decoder\.(enc_score_head|dec_score_head\.\d+|denoising_class_embed)\.")


def read_official_checkpoint(path) -> dict[str, torch.Tensor]:
    """The weights of an official DEIMv2 checkpoint: the EMA weights when the file has them
    (``best_stg1.pth`` and other files of the official training: ``model`` and ``ema``), else
    ``model``."""
    from pathlib import Path

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"DEIMv2 checkpoint {path} not found. Fix: point the model's weights (or "
                                "import_checkpoint) to an official .pth file (deimv2_dinov3_s_coco.pth, "
                                "deimv2_dinov3_m_coco.pth or a best_stg1.pth of the official training).")
    try:
        saved = torch.load(path, map_location="cpu", weights_only=True, mmap=True)  # read lazily: a big file
    except Exception as error:  # noqa: BLE001 - any unpickling failure means: not a plain checkpoint
        raise ValueError(f"{path} is not a readable PyTorch checkpoint ({str(error).splitlines()[0]}). "
                         "Fix: use an official DEIMv2 .pth file.") from error
    if isinstance(saved, dict) and isinstance(saved.get("ema"), dict) and isinstance(saved["ema"].get("module"), dict):
        return saved["ema"]["module"]
    if isinstance(saved, dict) and isinstance(saved.get("model"), dict):
        return saved["model"]
    keys = list(saved)[:6] if isinstance(saved, dict) else type(saved).__name__
    raise ValueError(f"{path} holds neither 'ema' nor 'model' weights (top-level entries {keys}). "
                     "Fix: use a checkpoint written by the official DEIMv2 training or release.")


def category_rows(file_classes: int, category_ids: list[int] | None) -> list[int] | None:
    """The class-head rows of the dataset's categories in a file trained by the official code on
    it: the official custom-dataset loader (remap_mscoco_category: False) uses each category id
    as the class index, so a dataset with ids 1..K trains K + 1 (or more) heads. None when the
    file's heads are the dataset's classes in order, or when the ids do not index them."""
    if not category_ids or file_classes == len(category_ids) or max(category_ids) >= file_classes:
        return None
    return sorted(category_ids)


def _select_class_rows(state: dict[str, torch.Tensor], rows: list[int]) -> dict[str, torch.Tensor]:
    selected = dict(state)
    for key, value in state.items():
        if _CLASS_HEADS.match(key):
            if key.startswith("decoder.denoising_class_embed."):  # classes + 1: the padding row is last
                selected[key] = value[rows + [value.shape[0] - 1]].clone()
            else:
                selected[key] = value[rows].clone()
    return selected


def load_official_checkpoint(model: torch.nn.Module, path, num_classes: int,
                             category_ids: list[int] | None = None) -> dict[str, int]:
    """Load an official DEIMv2 checkpoint into ``model`` (built for ``num_classes``). A COCO file
    (80 classes) for another class count keeps only its class heads out (they stay at this
    model's initialisation). A file whose class heads are indexed by the dataset's
    ``category_ids`` (the official custom-dataset convention) keeps the rows of those ids. Any
    other class-count mismatch is an error. Returns ``{"file_classes", "reinitialised_heads"}``."""
    state = read_official_checkpoint(path)
    if "decoder.enc_score_head.weight" not in state:
        raise ValueError(f"{path} has no decoder.enc_score_head.weight: not a DEIMv2 checkpoint "
                         f"(first keys {list(state)[:4]}). Fix: use an official DEIMv2 DINOv3 .pth file.")
    file_classes = state["decoder.enc_score_head.weight"].shape[0]
    reinitialised = 0
    rows = category_rows(file_classes, category_ids) if num_classes == len(category_ids or []) else None
    if rows is not None and file_classes != COCO_CLASSES:
        state = _select_class_rows(state, rows)
    elif file_classes != num_classes:
        if file_classes != COCO_CLASSES:
            raise ValueError(f"{path} was trained for {file_classes} classes, the dataset has {num_classes}"
                             + (f" with category ids {sorted(category_ids)}" if category_ids else "")
                             + " (the official code indexes classes by category id, so a file of this dataset "
                             "has max id + 1 heads or the dataset's count). Fix: import a checkpoint fine-tuned "
                             "on this dataset's classes, or start from an official COCO checkpoint (its class "
                             "heads are then re-initialised).")
        own = model.state_dict()
        mapped, _, _ = official_to_detstudy({k: v for k, v in state.items() if _CLASS_HEADS.match(k)})
        reinitialised = len(mapped)
        state = {k: v for k, v in state.items() if not _CLASS_HEADS.match(k)}
        state.update(_official_names_of(own, mapped))
    load_official_state(model, state, source=str(path))
    return {"file_classes": int(file_classes), "reinitialised_heads": reinitialised}


def _official_names_of(own: dict[str, torch.Tensor], mapped: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """This model's own class-head tensors under the official names of ``mapped``'s keys."""
    reverse = {}
    for official_pattern, ours in (("decoder.enc_score_head.", "model.enc_score_head."),
                                   ("decoder.denoising_class_embed.", "model.denoising_class_embed.")):
        for key in own:
            if key.startswith(ours):
                reverse[official_pattern + key[len(ours):]] = own[key]
    for key in own:
        match = re.match(r"^model\.decoder\.class_embed\.(\d+)\.(weight|bias)$", key)
        if match:
            reverse[f"decoder.dec_score_head.{match[1]}.{match[2]}"] = own[key]
    return reverse
