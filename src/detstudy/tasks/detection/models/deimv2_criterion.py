"""The official DEIM criterion (Intellindust-AI-Lab/DEIMv2, engine/deim/deim_criterion.py and
matcher.py), written for the outputs of :func:`detstudy.tasks.detection.models.deimv2_forward.deimv2_forward`.

It replaces transformers' ``Deimv2ForObjectDetectionLoss``, which pairs each layer's logits
with the next layer's corners (its logits carry the pre-head scores in front, its corners do
not), so one decoder layer and the last denoising layer get no matched loss and the final
layer no FGL term. Here, as in the official code, every output is supervised with its own
boxes and corners: the final layer (MAL, L1, GIoU, FGL), every earlier layer (the same plus DDF
against the final layer), the pre-head outputs (MAL, L1, GIoU), the encoder proposals (MAL,
L1, GIoU) and every denoising layer and its pre-head. Box and localisation terms use the
union of all layers' matches (dense one-to-one, ``use_uni_set``); after
``matcher_change_epoch`` the matcher ranks by ``score * IoU**alpha``.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from scipy.optimize import linear_sum_assignment
from torch import nn
from torchvision.ops import box_convert, box_iou, generalized_box_iou
from transformers.loss.loss_d_fine import bbox2distance

WEIGHTS = {"loss_mal": 1.0, "loss_bbox": 5.0, "loss_giou": 2.0, "loss_fgl": 0.15, "loss_ddf": 1.5}
DISTILL_TEMPERATURE = 5.0


def _xyxy(boxes: torch.Tensor) -> torch.Tensor:
    return box_convert(boxes, "cxcywh", "xyxy")


@dataclass
class MatcherSettings:
    cost_class: float = 2.0
    cost_bbox: float = 5.0
    cost_giou: float = 2.0
    alpha: float = 0.25
    gamma: float = 2.0
    change_matcher: bool = True
    iou_order_alpha: float = 4.0
    matcher_change_epoch: int = 10_000


@torch.no_grad()
def hungarian_match(outputs: dict, targets: list[dict], settings: MatcherSettings, epoch: int = 0):
    """Official ``HungarianMatcher`` with focal class cost; returns per image (queries, targets)."""
    batch, queries = outputs["pred_logits"].shape[:2]
    prob = outputs["pred_logits"].flatten(0, 1).sigmoid()
    boxes = outputs["pred_boxes"].flatten(0, 1)
    labels = torch.cat([t["labels"] for t in targets])
    target_boxes = torch.cat([t["boxes"] for t in targets])
    if settings.change_matcher and epoch >= settings.matcher_change_epoch:
        iou = box_iou(_xyxy(boxes), _xyxy(target_boxes))
        cost = -(prob[:, labels] * iou.pow(settings.iou_order_alpha))
    else:
        p = prob[:, labels]
        negative = (1 - settings.alpha) * (p ** settings.gamma) * (-(1 - p + 1e-8).log())
        positive = settings.alpha * ((1 - p) ** settings.gamma) * (-(p + 1e-8).log())
        cost = (settings.cost_bbox * torch.cdist(boxes, target_boxes, p=1)
                + settings.cost_class * (positive - negative)
                - settings.cost_giou * generalized_box_iou(_xyxy(boxes), _xyxy(target_boxes)))
    cost = torch.nan_to_num(cost.view(batch, queries, -1).cpu(), nan=1.0)
    sizes = [len(t["boxes"]) for t in targets]
    matches = [linear_sum_assignment(c[i]) for i, c in enumerate(cost.split(sizes, -1))]
    return [(torch.as_tensor(i, dtype=torch.int64), torch.as_tensor(j, dtype=torch.int64)) for i, j in matches]


def _dense_one_to_one(indices, extra):
    """Official ``_get_go_indices``: per image, the union of all layers' matches, each query
    keeping the target it was matched to most often."""
    for more in extra:
        indices = [(torch.cat([a[0], b[0]]), torch.cat([a[1], b[1]])) for a, b in zip(indices, more)]
    result = []
    for pairs in [torch.cat([i[0][:, None], i[1][:, None]], 1) for i in indices]:
        unique, counts = torch.unique(pairs, return_counts=True, dim=0)
        ordered = unique[torch.argsort(counts, descending=True)]
        chosen: dict[int, int] = {}
        for row, col in ordered.tolist():
            chosen.setdefault(row, col)
        result.append((torch.tensor(list(chosen.keys()), dtype=torch.long),
                       torch.tensor(list(chosen.values()), dtype=torch.long)))
    return result


def _denoising_matches(meta: dict, targets: list[dict]):
    groups, positives = meta["dn_num_group"], meta["dn_positive_idx"]
    result = []
    for i, target in enumerate(targets):
        count = len(target["labels"])
        if count:
            result.append((positives[i], torch.arange(count, dtype=torch.int64, device=positives[i].device).tile(groups)))
        else:
            empty = torch.zeros(0, dtype=torch.int64, device=target["labels"].device)
            result.append((empty, empty))
    return result


@dataclass
class _Cache:
    fgl: tuple | None = None
    fgl_dn: tuple | None = None
    num_pos: torch.Tensor | None = None
    num_neg: torch.Tensor | None = None


class Deimv2Criterion(nn.Module):
    """The DEIM loss: ``forward(outputs, targets, epoch)`` returns every weighted term by name
    (``loss_mal``, ``loss_bbox_aux_0``, ``loss_fgl_dn_2``, ``loss_giou_enc_0``, ``loss_mal_pre``, ...)."""

    def __init__(self, num_classes: int, *, gamma: float = 1.5, alpha: float = 0.75, mal_alpha: float | None = None,
                 reg_max: int = 32, weights: dict[str, float] | None = None, matcher: MatcherSettings | None = None):
        super().__init__()
        self.num_classes, self.gamma, self.alpha, self.mal_alpha = num_classes, gamma, alpha, mal_alpha
        self.reg_max = reg_max
        self.weights = dict(WEIGHTS if weights is None else weights)
        self.matcher = matcher or MatcherSettings()

    # --- individual terms -------------------------------------------------------------
    @staticmethod
    def _source_index(indices):
        batch = torch.cat([torch.full_like(src, i) for i, (src, _) in enumerate(indices)])
        return batch, torch.cat([src for src, _ in indices])

    def _matched(self, outputs, targets, indices):
        index = self._source_index(indices)
        target_boxes = torch.cat([t["boxes"][j] for t, (_, j) in zip(targets, indices)], dim=0)
        return index, outputs["pred_boxes"][index], target_boxes

    def loss_mal(self, outputs, targets, indices, num_boxes, cache):
        index, boxes, target_boxes = self._matched(outputs, targets, indices)
        ious = torch.diag(box_iou(_xyxy(boxes), _xyxy(target_boxes))).detach()
        logits = outputs["pred_logits"]
        classes = torch.full(logits.shape[:2], self.num_classes, dtype=torch.int64, device=logits.device)
        classes[index] = torch.cat([t["labels"][j] for t, (_, j) in zip(targets, indices)])
        one_hot = F.one_hot(classes, num_classes=self.num_classes + 1)[..., :-1]
        score = torch.zeros_like(classes, dtype=logits.dtype)
        score[index] = ious.to(score.dtype)
        score = (score.unsqueeze(-1) * one_hot).pow(self.gamma)
        predicted = logits.sigmoid().detach()
        scale = 1.0 if self.mal_alpha is None else self.mal_alpha
        weight = scale * predicted.pow(self.gamma) * (1 - one_hot) + one_hot
        loss = F.binary_cross_entropy_with_logits(logits, score, weight=weight, reduction="none")
        return {"loss_mal": loss.mean(1).sum() * logits.shape[1] / num_boxes}

    def loss_boxes(self, outputs, targets, indices, num_boxes, cache):
        _, boxes, target_boxes = self._matched(outputs, targets, indices)
        giou = torch.diag(generalized_box_iou(_xyxy(boxes), _xyxy(target_boxes)))
        return {"loss_bbox": F.l1_loss(boxes, target_boxes, reduction="none").sum() / num_boxes,
                "loss_giou": (1 - giou).sum() / num_boxes}

    def loss_local(self, outputs, targets, indices, num_boxes, cache, *, denoising=False):
        """Fine-grained localisation (FGL) and decoupled distillation focal (DDF) terms."""
        if "pred_corners" not in outputs:
            return {}
        index, boxes, target_boxes = self._matched(outputs, targets, indices)
        corners = outputs["pred_corners"][index].reshape(-1, self.reg_max + 1)
        with torch.no_grad():  # the distance targets are computed once per forward (main or denoising)
            if (cache.fgl_dn if denoising else cache.fgl) is None:
                value = bbox2distance(outputs["ref_points"][index].detach(), _xyxy(target_boxes), self.reg_max,
                                      outputs["reg_scale"], outputs["up"])
                if denoising:
                    cache.fgl_dn = value
                else:
                    cache.fgl = value
        target_corners, weight_right, weight_left = cache.fgl_dn if denoising else cache.fgl
        ious = torch.diag(box_iou(_xyxy(boxes), _xyxy(target_boxes)))
        weight = ious.unsqueeze(-1).repeat(1, 1, 4).reshape(-1).detach()
        losses = {"loss_fgl": self._unimodal_focal(corners, target_corners, weight_right, weight_left, weight,
                                                   num_boxes)}
        if "teacher_corners" in outputs:
            student = outputs["pred_corners"].reshape(-1, self.reg_max + 1)
            teacher = outputs["teacher_corners"].reshape(-1, self.reg_max + 1)
            if not torch.equal(student, teacher):
                local_weight = outputs["teacher_logits"].sigmoid().max(dim=-1)[0]
                mask = torch.zeros_like(local_weight, dtype=torch.bool)
                mask[index] = True
                mask = mask.unsqueeze(-1).repeat(1, 1, 4).reshape(-1)
                local_weight[index] = ious.reshape_as(local_weight[index]).to(local_weight.dtype)
                local_weight = local_weight.unsqueeze(-1).repeat(1, 1, 4).reshape(-1).detach()
                t = DISTILL_TEMPERATURE
                kl = nn.KLDivLoss(reduction="none")(F.log_softmax(student / t, dim=1),
                                                    F.softmax(teacher.detach() / t, dim=1))
                distill = local_weight * (t ** 2) * kl.sum(-1)
                if not denoising:  # the official code weighs with the last non-denoising layer's counts
                    batch_scale = 8 / outputs["pred_boxes"].shape[0]
                    cache.num_pos = (mask.sum() * batch_scale) ** 0.5
                    cache.num_neg = ((~mask).sum() * batch_scale) ** 0.5
                matched = distill[mask].mean() if mask.any() else 0
                unmatched = distill[~mask].mean() if (~mask).any() else 0
                losses["loss_ddf"] = (matched * cache.num_pos + unmatched * cache.num_neg) / (cache.num_pos + cache.num_neg)
        return losses

    @staticmethod
    def _unimodal_focal(pred, label, weight_right, weight_left, weight, avg_factor):
        left = label.long()
        loss = (F.cross_entropy(pred, left, reduction="none") * weight_left.reshape(-1)
                + F.cross_entropy(pred, left + 1, reduction="none") * weight_right.reshape(-1))
        return (loss * weight.float()).sum() / avg_factor

    # --- the whole criterion ----------------------------------------------------------
    def _terms(self, outputs, targets, indices_by_term, num_by_term, cache, suffix, **local):
        losses = {}
        losses.update(self.loss_mal(outputs, targets, indices_by_term["mal"], num_by_term["mal"], cache))
        losses.update(self.loss_boxes(outputs, targets, indices_by_term["boxes"], num_by_term["boxes"], cache))
        losses.update(self.loss_local(outputs, targets, indices_by_term["local"], num_by_term["local"], cache, **local))
        return {name + suffix: value * self.weights[name] for name, value in losses.items() if name in self.weights}

    def forward(self, outputs: dict, targets: list[dict], epoch: int = 0) -> dict[str, torch.Tensor]:
        match = lambda out: hungarian_match(out, targets, self.matcher, epoch)  # noqa: E731
        indices = match(outputs)
        cache = _Cache()
        layer_outputs = outputs["aux_outputs"] + [outputs["pre_outputs"]]
        cached = [match(out) for out in layer_outputs]
        cached_enc = [match(out) for out in outputs["enc_aux_outputs"]]
        dense = _dense_one_to_one(indices, cached + cached_enc)
        num_dense = max(float(sum(len(x[0]) for x in dense)), 1.0)
        num_boxes = max(float(sum(len(t["labels"]) for t in targets)), 1.0)

        def layer_sets(own):
            return ({"mal": own, "boxes": dense, "local": dense}, {"mal": num_boxes, "boxes": num_dense, "local": num_dense})

        losses = self._terms(outputs, targets, *layer_sets(indices), cache, "")
        for i, aux in enumerate(outputs["aux_outputs"]):
            aux = {**aux, "up": outputs["up"], "reg_scale": outputs["reg_scale"]}
            losses.update(self._terms(aux, targets, *layer_sets(cached[i]), cache, f"_aux_{i}"))
        losses.update(self._terms(outputs["pre_outputs"], targets, *layer_sets(cached[-1]), cache, "_pre"))
        for i, enc in enumerate(outputs["enc_aux_outputs"]):  # dense matches for the boxes term only
            sets = ({"mal": cached_enc[i], "boxes": dense, "local": cached_enc[i]},
                    {"mal": num_boxes, "boxes": num_dense, "local": num_boxes})
            losses.update(self._terms(enc, targets, *sets, cache, f"_enc_{i}"))
        if "dn_outputs" in outputs:
            meta = outputs["dn_meta"]
            dn_indices = _denoising_matches(meta, targets)
            dn_num = num_boxes * meta["dn_num_group"]
            sets = ({"mal": dn_indices, "boxes": dn_indices, "local": dn_indices},
                    {"mal": dn_num, "boxes": dn_num, "local": dn_num})
            for i, aux in enumerate(outputs["dn_outputs"]):
                aux = {**aux, "up": outputs["up"], "reg_scale": outputs["reg_scale"]}
                losses.update(self._terms(aux, targets, *sets, cache, f"_dn_{i}", denoising=True))
            losses.update(self._terms(outputs["dn_pre_outputs"], targets, *sets, cache, "_dn_pre", denoising=True))
        return {name: torch.nan_to_num(value, nan=0.0) for name, value in losses.items()}
