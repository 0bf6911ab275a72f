"""Classes of new images from any classification run's checkpoint.

Everything is checked before the model runs (the checkpoint, the images, the output folder, k),
and both files are written into a scratch folder beside ``out`` and moved in once complete, so a
failed call leaves no half-written output. Each image goes through the evaluation's transform
(resize to resolution / 0.875, centre crop) with the checkpoint's preprocessing.

Writes into ``out``:

* ``predictions.csv``: one row per image and rank: ``image, rank, class, probability``;
* ``predictions.json``: ``{"checkpoint", "classes", "top_k", "images": [{"image", "top": [{"class",
  "probability"}, ...]}]}``.
"""

from __future__ import annotations

import csv
import logging
import os
import shutil
import tempfile
from pathlib import Path

import torch
from torchvision import tv_tensors

from detstudy.engine.io import atomic_path, write_json
from detstudy.engine.runtime import resolve_device
from detstudy.tasks.classification.checkpoint import load_checkpoint
from detstudy.tasks.classification.data.dataset import eval_transform
from detstudy.tasks.prediction import PredictError, check_decodable, checked_out, decoded, image_files, load_or_refuse

log = logging.getLogger("detstudy.predict")


def predict_classes(*, checkpoint, images, out, top_k: int = 5, device: str = "auto", batch_size: int = 16,
                    overwrite: bool = False) -> dict:
    """Classify every image of the folder ``images``; see the module docstring. Returns
    ``{"images": n, "out": path, "classes": names}``."""
    checkpoint, images, out = Path(checkpoint), Path(images), Path(out)
    if top_k < 1:
        raise PredictError(f"--top-k {top_k}: at least 1. Fix: pass --top-k 1 or more.")
    paths = image_files(images)
    checked_out(out, overwrite, "predictions.csv and predictions.json")
    check_decodable(paths)
    device_ = resolve_device(device)
    model, state = load_or_refuse(load_checkpoint, checkpoint, device_)
    names = state["class_names"]
    k = min(top_k, len(names))
    transform = eval_transform(state["resolution"], state["preprocessing"])
    log.info("classifying %d images with %s (%s at %d px) on %s", len(paths), checkpoint, state["architecture"],
             state["resolution"], device_)
    results = []
    with torch.no_grad():
        for start in range(0, len(paths), batch_size):
            batch = paths[start:start + batch_size]
            tensors = [transform(tv_tensors.Image(torch.from_numpy(decoded(p)).permute(2, 0, 1))).as_subclass(torch.Tensor)
                       for p in batch]
            probabilities = model(torch.stack(tensors).to(device_)).float().softmax(dim=1).cpu()
            values, indices = probabilities.topk(k, dim=1)
            for path, p, i in zip(batch, values.tolist(), indices.tolist()):
                results.append({"image": path.name, "top": [{"class": names[c], "probability": round(v, 6)}
                                                           for v, c in zip(p, i)]})
    out.parent.mkdir(parents=True, exist_ok=True)
    scratch = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))
    try:
        with atomic_path(scratch / "predictions.csv") as tmp, open(tmp, "w", newline="") as handle:
            writer = csv.writer(handle)
            writer.writerow(["image", "rank", "class", "probability"])
            for item in results:
                for rank, entry in enumerate(item["top"], 1):
                    writer.writerow([item["image"], rank, entry["class"], f"{entry['probability']:.6f}"])
        write_json(scratch / "predictions.json", {"checkpoint": str(checkpoint), "classes": names, "top_k": k,
                                                  "images": results})
        out.mkdir(parents=True, exist_ok=True)
        (out / "predictions.json").unlink(missing_ok=True)  # its presence means a complete run: moved in last
        os.replace(scratch / "predictions.csv", out / "predictions.csv")
        os.replace(scratch / "predictions.json", out / "predictions.json")
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    log.info("top-%d classes of %d images -> %s", k, len(paths), out)
    return {"images": len(paths), "out": str(out), "classes": names}
