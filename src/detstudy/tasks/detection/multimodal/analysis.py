"""What the text fusion sees: similarity of matched queries with each class description."""

from __future__ import annotations

import torch
from torchvision.ops import box_iou

from detstudy.tasks.detection.data.dataset import CocoDetection
from detstudy.tasks.detection.evaluation.inference import ordered_loader
from detstudy.tasks.detection.models.base import DetectorAdapter
from detstudy.tasks.detection.multimodal.fusion import text_fusion_of


@torch.no_grad()
def text_similarity(adapter: DetectorAdapter, dataset: CocoDetection, device: torch.device,
                    iou_threshold: float = 0.5, batch_size: int = 4) -> dict | None:
    """Mean cosine similarity [GT class, class description] over the test boxes: each box is
    matched to the final-layer query whose box overlaps it most (IoU >= ``iou_threshold``).
    A good fusion puts the largest value of each row on the diagonal. None without fusion."""
    fusion = text_fusion_of(adapter.model)
    if fusion is None:
        return None
    adapter.model.eval()
    classes = len(dataset.categories)
    sums = torch.zeros(classes, classes, dtype=torch.float64)
    matched = torch.zeros(classes, dtype=torch.int64)
    for images, targets in ordered_loader(dataset, batch_size):
        images = [image.to(device).float().div_(255.0) for image in images]
        for (boxes, similarity), target in zip(adapter.query_text_similarity(images), targets):
            if not len(target["labels"]):
                continue
            overlap, query = box_iou(target["boxes"].as_subclass(torch.Tensor).to(device), boxes).max(dim=1)
            for label, iou, q in zip(target["labels"].tolist(), overlap.tolist(), query.tolist()):
                if iou >= iou_threshold:
                    sums[label] += similarity[q].double().cpu()
                    matched[label] += 1
    mean = sums / matched.clamp(min=1).unsqueeze(1)
    names = list(dataset.categories.names)
    order = (adapter.settings.get("text_fusion") or {}).get("description_order") or list(range(classes))
    return {"classes": names,
            "descriptions": [names[i] for i in order],  # column j: the class whose description class j got
            "matrix": [[round(v, 4) for v in row] for row in mean.tolist()],
            "matched": matched.tolist(), "iou_threshold": iou_threshold,
            "gate": round(fusion.gate.item(), 5),
            "temperature": round(1.0 / fusion.logit_scale.exp().item(), 5)}
