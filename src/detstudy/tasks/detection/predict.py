"""Detections on new images from any run's checkpoint (both families, with or without text fusion).

Everything is checked before the model runs: the checkpoint is a detstudy checkpoint, the
folder holds images, each of them decodes, the output folder is free. The results are written
into a scratch folder beside the output and moved in only once all of them exist, so an
interrupted or failed call leaves no half-written output.

Writes into ``out``:

* ``detections.json``: COCO results (``image_id``, ``category_id``, ``bbox`` as x, y, w, h in
  pixels, ``score``), with the checkpoint's own category ids;
* ``images.json``: a COCO file without annotations: ``images`` (id, file_name, width, height)
  and ``categories`` (the checkpoint's ids and names), so ``detections.json`` reads on its own;
* ``overlays/<image file name>.jpg``: each image with its detections at or above the threshold.
"""

from __future__ import annotations

import logging
import os
import shutil
import tempfile
from pathlib import Path

import numpy as np
import torch

from detstudy.tasks.detection.checkpoint import load_checkpoint
from detstudy.tasks.prediction import PredictError, check_decodable, checked_out, decoded, image_files, load_or_refuse
from detstudy.tasks.detection.evaluation.inference import as_float, coco_results
from detstudy.engine.io import atomic_path, write_json
from detstudy.engine.runtime import resolve_device

log = logging.getLogger("detstudy.predict")

__all__ = ["PredictError", "predict"]


def _draw(image: np.ndarray, detections: list[dict], names: dict[int, str], path: Path) -> None:
    from PIL import Image, ImageDraw

    canvas = Image.fromarray(image)
    draw = ImageDraw.Draw(canvas)
    width = max(1, round(max(canvas.size) / 300))
    for det in detections:
        x, y, w, h = det["bbox"]
        draw.rectangle([x, y, x + w, y + h], outline=(255, 87, 34), width=width)
        label = f"{names.get(det['category_id'], det['category_id'])} {det['score']:.2f}"
        draw.text((x + 2, max(0, y - 11)), label, fill=(255, 87, 34))
    with atomic_path(path) as tmp:
        canvas.save(tmp, format="JPEG", quality=90)


def predict(*, checkpoint, images, out, score_threshold: float = 0.3, device: str = "auto", batch_size: int = 4,
            overwrite: bool = False) -> dict:
    """Detect on every image of the folder ``images`` with ``checkpoint``; see the module docstring.
    Returns ``{"images": n, "detections": n, "out": path}``."""
    checkpoint, images, out = Path(checkpoint), Path(images), Path(out)
    if not 0.0 <= score_threshold <= 1.0:
        raise PredictError(f"--score-threshold {score_threshold}: outside [0, 1]. Fix: pass a score between 0 and 1.")
    if batch_size < 1:
        raise PredictError(f"--batch-size {batch_size}: at least 1. Fix: pass a positive batch size.")
    if not checkpoint.is_file():
        raise PredictError(f"{checkpoint}: no such file. Fix: pass --checkpoint a run's best.pt "
                           "(results/runs/<model>/<res>px/<phase>/seed<seed>/best.pt).")
    paths = image_files(images)
    checked_out(out, overwrite, "detections.json, images.json and overlays/")
    check_decodable(paths)
    device_ = resolve_device(device)
    adapter, categories, _ = load_or_refuse(load_checkpoint, checkpoint, device_)
    adapter.model.eval()
    names = dict(zip(categories.ids, categories.names))
    records, detections = [], []
    log.info("detecting on %d images with %s (%s) on %s", len(paths), checkpoint, adapter.architecture, device_)
    out.parent.mkdir(parents=True, exist_ok=True)
    scratch = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))
    try:
        (scratch / "overlays").mkdir()
        with torch.no_grad():
            for start in range(0, len(paths), batch_size):
                _predict_batch(adapter, paths[start:start + batch_size], start, device_, categories, names,
                               score_threshold, scratch / "overlays", records, detections)
        write_json(scratch / "detections.json", detections, indent=None)
        write_json(scratch / "images.json", {"images": records, "categories": categories.as_list()})
        _move_in(scratch, out)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    log.info("%d detections on %d images -> %s", len(detections), len(records), out)
    return {"images": len(records), "detections": len(detections), "out": str(out)}


def _predict_batch(adapter, paths, start, device_, categories, names, score_threshold, overlays, records,
                   detections) -> None:
    """One batch, decoded here: its image records and detections appended, its overlays drawn."""
    batch = [decoded(path) for path in paths]
    outputs = adapter.predict([as_float(torch.from_numpy(p).permute(2, 0, 1), device_) for p in batch])
    for offset, (path, picture, output) in enumerate(zip(paths, batch, outputs)):
        number = start + offset + 1
        height, width = picture.shape[:2]
        records.append({"id": number, "file_name": path.name, "width": width, "height": height})
        found = coco_results(output, number, categories)
        detections.extend(found)
        _draw(picture, [d for d in found if d["score"] >= score_threshold], names, overlays / f"{path.name}.jpg")


def _move_in(scratch: Path, out: Path) -> None:
    """The finished results into ``out``: overlays first, ``detections.json`` last (its presence
    means a complete run); with ``--overwrite`` the previous results go only then."""
    out.mkdir(parents=True, exist_ok=True)
    for name in ("detections.json", "images.json"):  # no mix of old JSON and new overlays if a move fails
        (out / name).unlink(missing_ok=True)
    if (out / "overlays").exists():
        shutil.rmtree(out / "overlays")
    os.replace(scratch / "overlays", out / "overlays")
    for name in ("images.json", "detections.json"):
        os.replace(scratch / name, out / name)
