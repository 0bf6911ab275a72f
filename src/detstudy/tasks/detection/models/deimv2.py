"""The ViT family: transformers' DEIMv2 with a DINOv3 ViT backbone and the spatial tuning adapter.

The variants (``detstudy.study.architectures.VARIANTS``) are the official DINOv3 architectures
(S: ViT-Tiny, M: ViT-Tiny+) and a small demo for CPU runs. Images are resized to ``resolution`` x ``resolution`` (DEIMv2 is
trained on square inputs) and normalised with ImageNet statistics, as DINOv3 was pretrained;
predictions come back in original image pixels.
"""

from __future__ import annotations

import random
import re
from collections import defaultdict

import torch
import torch.nn.functional as F
from torchvision.ops import box_convert
from transformers import Deimv2Config, Deimv2ForObjectDetection, DINOv3ViTConfig

from detstudy.tasks.detection.models.base import DetectorAdapter
from detstudy.tasks.detection.models.deimv2_criterion import Deimv2Criterion, MatcherSettings
from detstudy.tasks.detection.models.deimv2_forward import deimv2_forward
from detstudy.tasks.detection.models.deimv2_keys import load_official_checkpoint
from detstudy.tasks.detection.models.deimv2_official import official_init, restore_official_architecture
from detstudy.study.architectures import VARIANTS
from detstudy.tasks.detection.models.dinov3_weights import load_official_backbone
from detstudy.study.architectures import deimv2_resolution_problem
from detstudy.study.epochs import multiscale_sizes
from detstudy.tasks.detection.multimodal.fusion import attach_text_fusion, text_fusion_of

PATCH_SIZE = 16
OFFICIAL_POINTS = (3, 6, 3)  # deformable sampling points per level (1/8, 1/16, 1/32)
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def deimv2_config(architecture: str, num_classes: int, *, num_queries: int = 300, num_denoising: int = 100,
                  focal_gamma: float = 1.5, class_prior: float = 0.01) -> Deimv2Config:
    """The transformers config of a variant. ``focal_gamma`` 1.5 and a class-bias prior of
    0.01 are the official DEIM values (the port's defaults are 2.0 and 1/(classes+1))."""
    v = VARIANTS[architecture]
    # The distilled ViT-Tiny(+) of the official repository: a class token and no registers,
    # biases on q, k and v, LayerNorm eps 1e-6, RoPE base 100 without coordinate rescaling,
    # no final norm (layer scale stays at its no-op value 1.0).
    backbone = DINOv3ViTConfig(
        hidden_size=v["vit_hidden"], num_hidden_layers=v["vit_layers"], num_attention_heads=v["vit_heads"],
        intermediate_size=4 * v["vit_hidden"], patch_size=PATCH_SIZE, num_register_tokens=0, key_bias=True,
        layer_norm_eps=1e-6, rope_theta=100.0, pos_embed_rescale=None, layerscale_value=1.0,
        out_indices=[tap + 1 for tap in v["taps"]],  # hidden_states[0] is the embedding output
        apply_layernorm=False, reshape_hidden_states=True,
    )
    hidden = v["hidden"]
    return Deimv2Config(
        backbone_config=backbone, num_labels=num_classes,
        encoder_in_channels=[hidden] * 3, encoder_hidden_dim=hidden, encoder_ffn_dim=v["ffn"],
        depth_mult=v["depth_mult"], hidden_expansion=v["expansion"], encoder_has_trailing_conv=False,
        spatial_tuning_adapter_inplanes=16, feat_strides=[8, 16, 32],
        d_model=hidden, decoder_in_channels=[hidden] * 3, decoder_ffn_dim=v["ffn"],
        decoder_layers=v["decoder_layers"], num_queries=num_queries, num_denoising=num_denoising,
        focal_loss_gamma=focal_gamma, initializer_bias_prior_prob=class_prior,
        # official DEIMTransformer: 8 heads, [3, 6, 3] sampling points, SiLU in the query-position head
        encoder_attention_heads=8, decoder_attention_heads=8, decoder_n_points=list(OFFICIAL_POINTS),
        decoder_activation_function="silu",
    )


def _loss_group(name: str) -> str:
    """loss_mal_aux_2 / loss_fgl_dn_pre -> loss_mal / loss_fgl: one history column per loss,
    summed over the decoder layers, the pre-head, the encoder and the denoising queries."""
    return re.sub(r"(_(aux|dn|enc|pre)(_\d+)?)+$", "", name)


def _float_outputs(value):
    """The criterion runs in fp32 under AMP, as the official training loop runs it."""
    if isinstance(value, torch.Tensor):
        return value.float() if value.is_floating_point() else value
    if isinstance(value, dict):
        return {k: _float_outputs(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_float_outputs(v) for v in value]
    return value


class Deimv2Adapter(DetectorAdapter):
    family = "vit"
    backbone_prefix = "model.conv_encoder.backbone."  # the DINOv3 ViT (the STA stem is not part of it)

    def __init__(self, model, architecture, num_classes, resolution, settings, criterion: Deimv2Criterion):
        super().__init__(model, architecture, num_classes, resolution, settings)
        self.criterion = criterion
        self.epoch = 0

    def decays(self, name: str, parameter) -> bool:
        """The official parameter groups exempt norms and biases by name (``norm|bn|bias`` under
        the ViT, or under ``sta|encoder|decoder``): the fusion norms after the STA (official
        ``backbone.norms``) and the STA's batch-norm weights (``backbone.sta.*.1.weight``) match
        neither and stay in the decayed default group."""
        if ".conv_encoder.fusion_proj." in name and ".norm." in name:
            return True
        if ".conv_encoder.spatial_tuning_adapter." in name and name.endswith(".norm.weight"):
            return True
        return parameter.ndim > 1

    def describe(self) -> dict:
        """Also the transformers config itself: a checkpoint is rebuilt as it was written."""
        return {**super().describe(), "model_config": self.model.config.to_dict()}

    def set_epoch(self, epoch: int) -> None:
        """0-based training epoch (the matcher changes its cost at ``matcher_change_epoch``)."""
        self.epoch = epoch

    def training_size(self) -> int:
        """The input size of a training batch: official multi-scale training draws one per batch
        from :func:`multiscale_sizes` until ``multiscale_stop_epoch``, then the base size."""
        repeat, stop = self.settings.get("multiscale_repeat"), self.settings.get("multiscale_stop_epoch")
        if repeat is None or (stop is not None and self.epoch >= stop):
            return self.resolution
        return random.choice(multiscale_sizes(self.resolution, repeat))

    def _pixels(self, images: list[torch.Tensor], size: int | None = None) -> torch.Tensor:
        """Square inputs, resized with antialiasing as the official (PIL) Resize does."""
        size = (size or self.resolution,) * 2
        batch = torch.stack([F.interpolate(image[None], size=size, mode="bilinear", align_corners=False,
                                           antialias=True)[0] for image in images])
        mean = batch.new_tensor(IMAGENET_MEAN).view(1, 3, 1, 1)
        std = batch.new_tensor(IMAGENET_STD).view(1, 3, 1, 1)
        return (batch - mean) / std

    def losses(self, images, targets):
        official = []
        for image, target in zip(images, targets):
            height, width = image.shape[-2:]
            scale = target["boxes"].new_tensor([width, height, width, height])
            official.append({"labels": target["labels"],
                             "boxes": box_convert(target["boxes"], "xyxy", "cxcywh") / scale})
        outputs = deimv2_forward(self.model, self._pixels(images, self.training_size()), official)
        with torch.autocast(outputs["pred_logits"].device.type, enabled=False):
            terms = self.criterion(_float_outputs(outputs), official, epoch=self.epoch)
        grouped: dict[str, torch.Tensor] = defaultdict(lambda: outputs["pred_logits"].new_zeros((), dtype=torch.float32))
        for name, value in terms.items():
            grouped[_loss_group(name)] = grouped[_loss_group(name)] + value
        return dict(grouped)

    @torch.no_grad()
    def predict(self, images):
        output = deimv2_forward(self.model, self._pixels(images))
        top_k = self.settings.get("max_detections", 100)
        results = []
        for image, logits, boxes in zip(images, output["pred_logits"], output["pred_boxes"]):
            num_classes = logits.shape[-1]
            scores, index = logits.sigmoid().flatten().topk(min(top_k, logits.numel()))
            height, width = image.shape[-2:]
            xyxy = box_convert(boxes[index // num_classes], "cxcywh", "xyxy")
            xyxy = xyxy * xyxy.new_tensor([width, height, width, height])
            results.append({"boxes": xyxy.clamp(min=0).minimum(xyxy.new_tensor([width, height] * 2)),
                            "scores": scores, "labels": index % num_classes})
        return results

    @torch.no_grad()
    def query_text_similarity(self, images):
        """Per image: the final decoder layer's boxes (xyxy, original pixels) and the cosine
        similarity [queries, classes] of its query features with the class descriptions
        (text-fused detectors only)."""
        fusion = text_fusion_of(self.model)
        if fusion is None:
            raise ValueError(f"{self.architecture} has no text fusion")
        output = deimv2_forward(self.model, self._pixels(images))
        similarity = fusion.similarity(output["last_hidden_state"])
        results = []
        for image, boxes, scores in zip(images, output["pred_boxes"], similarity):
            height, width = image.shape[-2:]
            xyxy = box_convert(boxes, "cxcywh", "xyxy") * boxes.new_tensor([width, height, width, height])
            results.append((xyxy, scores))
        return results


def build_deimv2(architecture: str, num_classes: int, resolution: int, *, weights: str | None = None,
                 backbone_weights: str | None = None, num_queries: int = 300, num_denoising: int = 100,
                 focal_gamma: float = 1.5, max_detections: int = 100, matcher_change_epoch: int | None = None,
                 multiscale_repeat: int | None = None, multiscale_stop_epoch: int | None = None,
                 text_fusion: dict | None = None, model_config: dict | None = None) -> Deimv2Adapter:
    """A DEIMv2 variant for ``num_classes`` classes at ``resolution`` px (a multiple of 32).

    The port is turned into the official architecture (``restore_official_architecture``) and
    initialised as the official code does. ``weights``: an official DEIMv2 checkpoint (.pth:
    the COCO release files, whose class heads are re-initialised for another class count, or
    a file of the official training, whose EMA weights are used). ``backbone_weights``: the
    official distilled DINOv3 file (``vitt_distill.pt`` for S, ``vittplus_distill.pt`` for M).
    ``matcher_change_epoch``: 0-based epoch from which the matcher ranks by score x IoU^4
    (official DEIMv2; None: never). ``multiscale_repeat``/``multiscale_stop_epoch``: official
    multi-scale training (base_size_repeat, stop_epoch; None: a single size).
    ``text_fusion`` (``{"dim", "temperature"}``): rebuild a text-fused detector from its
    checkpoint (the class embeddings come with the state dict). ``model_config``: the transformers
    config a checkpoint stored (``Deimv2Config.to_dict()``), rebuilt as it was instead of from
    today's variant table.
    """
    settings = {k: v for k, v in locals().items()
                if k not in {"architecture", "num_classes", "resolution", "model_config"}}
    problem = deimv2_resolution_problem(resolution, num_queries, multiscale_repeat)
    if problem:
        raise ValueError(f"{architecture}: {problem}")
    config = (Deimv2Config.from_dict(model_config) if model_config is not None else
              deimv2_config(architecture, num_classes, num_queries=num_queries, num_denoising=num_denoising,
                            focal_gamma=focal_gamma))
    model = restore_official_architecture(Deimv2ForObjectDetection(config))
    official_init(model)
    if backbone_weights:  # first, as the official model loads it when built: a checkpoint overrides it
        load_official_backbone(model.model.conv_encoder.backbone, backbone_weights)
    if weights:
        load_official_checkpoint(model, weights, num_classes)
    if text_fusion:
        attach_text_fusion(model, torch.zeros(num_classes, text_fusion["dim"]), text_fusion["temperature"])
    matcher = MatcherSettings(change_matcher=matcher_change_epoch is not None,
                              matcher_change_epoch=matcher_change_epoch if matcher_change_epoch is not None else 0)
    criterion = Deimv2Criterion(num_classes, gamma=focal_gamma, matcher=matcher)
    return Deimv2Adapter(model, architecture, num_classes, resolution, settings, criterion)
