"""Text fusion on DEIMv2's decoder: class descriptions that change the class logits.

Every decoder layer's class head becomes ``logits = W h + b + g * s * (cos(P h, t_c) - mean_k cos(P h, t_k))``:
the query feature ``h`` is projected into the text space (``P``), compared with each
class's text embedding ``t_c`` by cosine similarity, scaled by a learnable inverse
temperature ``s`` (CLIP's parametrisation, init 1/0.07) and added to the detector's own
logits through a gate ``g``. ``g`` starts at 0, so a freshly fused model reproduces the
vanilla detector exactly; its gradient (the similarity term) is not zero, so training
opens the gate and the text then reaches every prediction and every decoder layer's loss
(the pre-layer, main and denoising queries all go through these heads).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

MAX_LOGIT_SCALE = math.log(100.0)  # CLIP clamps the learnable temperature at 1/100
FUSION_PREFIX = "text_fusion."  # the fusion's parameter names: it is registered as ``model.text_fusion``


class TextFusion(nn.Module):
    def __init__(self, query_dim: int, class_embeddings: torch.Tensor, temperature: float = 0.07):
        super().__init__()
        if class_embeddings.ndim != 2:
            raise ValueError(f"class embeddings must be [classes, dim], got {tuple(class_embeddings.shape)}")
        self.projection = nn.Linear(query_dim, class_embeddings.shape[1])
        self.logit_scale = nn.Parameter(torch.tensor(math.log(1.0 / temperature)))
        self.gate = nn.Parameter(torch.zeros(()))
        self.register_buffer("class_embeddings", F.normalize(class_embeddings.float(), dim=-1))

    def similarity(self, queries: torch.Tensor) -> torch.Tensor:
        """Cosine similarity [..., classes] of query features with the class descriptions."""
        projected = F.normalize(self.projection(queries), dim=-1)
        return projected @ self.class_embeddings.to(projected.dtype).T

    def forward(self, queries: torch.Tensor) -> torch.Tensor:
        """The text term added to the class logits, centred over the classes: the text can
        only move a query's score from one class to another, not raise or lower all of them
        (otherwise the fusion learns a global score bias, the cheapest way to lower the focal
        loss on the many background queries, instead of telling classes apart)."""
        scale = self.logit_scale.clamp(max=MAX_LOGIT_SCALE).exp()
        similarity = self.similarity(queries)
        return self.gate * scale * (similarity - similarity.mean(dim=-1, keepdim=True))


class TextFusedLinear(nn.Linear):
    """A class head whose logits gain the fusion's text term. It keeps nn.Linear's parameter
    names, so a vanilla checkpoint's head weights load into it unchanged; the shared fusion
    module is registered once on the detector, and only referenced here."""

    def __init__(self, linear: nn.Linear, fusion: TextFusion):
        super().__init__(linear.in_features, linear.out_features, bias=linear.bias is not None,
                         device=linear.weight.device, dtype=linear.weight.dtype)
        self.load_state_dict(linear.state_dict())
        self._fusion = [fusion]  # a list: not a submodule, so its parameters are not listed twice

    def forward(self, queries: torch.Tensor) -> torch.Tensor:
        return super().forward(queries) + self._fusion[0](queries)


def attach_text_fusion(model: nn.Module, class_embeddings: torch.Tensor, temperature: float = 0.07) -> TextFusion:
    """Fuse a transformers ``Deimv2ForObjectDetection`` in place; returns the fusion module
    (registered as ``model.text_fusion``)."""
    heads = model.model.decoder.class_embed
    if class_embeddings.shape[0] != heads[0].out_features:
        raise ValueError(f"{class_embeddings.shape[0]} class embeddings for a detector with "
                         f"{heads[0].out_features} classes. Fix: rebuild the text embeddings for this dataset.")
    fusion = TextFusion(heads[0].in_features, class_embeddings, temperature).to(heads[0].weight.device)
    setattr(model, FUSION_PREFIX.rstrip("."), fusion)
    for index, head in enumerate(heads):
        fused = TextFusedLinear(head, fusion)
        heads[index] = fused
        model.class_embed[index] = fused  # transformers ties the top-level heads to the decoder's
    return fusion


def text_fusion_of(model: nn.Module) -> TextFusion | None:
    return getattr(model, FUSION_PREFIX.rstrip("."), None)


def derangement(count: int, seed: int = 0) -> list[int]:
    """A seeded permutation with no fixed point: every class gets another class's description."""
    if count < 2:
        raise ValueError("the shuffled-descriptions control needs at least 2 classes")
    generator = torch.Generator().manual_seed(seed)
    while True:
        order = torch.randperm(count, generator=generator).tolist()
        if all(i != j for i, j in enumerate(order)):
            return order
