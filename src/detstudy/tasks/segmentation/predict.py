"""Masks on new images from any segmentation run's checkpoint.

Everything is checked before the model runs (the checkpoint, the images, the output folder), and
the results are written into a scratch folder beside ``out`` and moved in once all exist, so a
failed call leaves no half-written output. The checkpoint's own inference (whole-image or
sliding-window, at its resolution) predicts at each image's full size.

Writes into ``out``:

* ``masks/<image stem>.png``: single-channel PNG, each pixel the predicted class index;
* ``overlays/<image file name>.jpg``: the image with the mask blended over it in the class colours;
* ``classes.json``: the checkpoint's class names (index order) and the overlay colours.
"""

from __future__ import annotations

import logging
import os
import shutil
import tempfile
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torchvision import tv_tensors

from detstudy.engine.io import atomic_path, write_json
from detstudy.engine.runtime import resolve_device
from detstudy.study.segmentation import DEFAULT_COLORS
from detstudy.tasks.prediction import PredictError, check_decodable, checked_out, decoded, image_files, load_or_refuse
from detstudy.tasks.segmentation.checkpoint import load_checkpoint
from detstudy.tasks.segmentation.data.dataset import eval_transform
from detstudy.tasks.segmentation.inference import predict_logits
from detstudy.tasks.segmentation.confusion import predicted_labels
from detstudy.tasks.segmentation.plots import colorize

log = logging.getLogger("detstudy.predict")


def predict_masks(*, checkpoint, images, out, device: str = "auto", overwrite: bool = False,
                  alpha: float = 0.5) -> dict:
    """Segment every image of the folder ``images`` with ``checkpoint``; see the module docstring.
    Returns ``{"images": n, "out": path, "classes": names}``."""
    checkpoint, images, out = Path(checkpoint), Path(images), Path(out)
    paths = image_files(images)
    stems = [path.stem for path in paths]
    repeated = sorted({stem for stem in stems if stems.count(stem) > 1})
    if repeated:
        raise PredictError(f"{images}: {repeated} share a file stem, and the masks are named by stem. Fix: rename "
                           "one of each pair.")
    checked_out(out, overwrite, "masks/, overlays/ and classes.json")
    check_decodable(paths)
    device_ = resolve_device(device)
    model, state = load_or_refuse(load_checkpoint, checkpoint, device_)
    names = state["class_names"]
    colors = [DEFAULT_COLORS[k % len(DEFAULT_COLORS)] for k in range(len(names))]
    resolution, mode = model.settings["resolution"], state.get("inference", "whole")
    transform = eval_transform(resolution, mode)
    log.info("segmenting %d images with %s (%s, %s inference at %d px) on %s", len(paths), checkpoint,
             state["architecture"], mode, resolution, device_)
    out.parent.mkdir(parents=True, exist_ok=True)
    scratch = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))
    try:
        (scratch / "masks").mkdir()
        (scratch / "overlays").mkdir()
        with torch.no_grad():
            for path in paths:
                picture = decoded(path)
                image = transform(tv_tensors.Image(torch.from_numpy(picture).permute(2, 0, 1))).as_subclass(torch.Tensor)
                logits = predict_logits(model, image.to(device_), picture.shape[:2], resolution, mode)
                mask = predicted_labels(logits).cpu().numpy().astype(np.uint8 if len(names) <= 256 else np.uint16)
                with atomic_path(scratch / "masks" / f"{path.stem}.png") as tmp:
                    Image.fromarray(mask).save(tmp, format="PNG")
                blend = (1 - alpha) * picture + alpha * colorize(mask, colors, state["ignore_index"])
                with atomic_path(scratch / "overlays" / f"{path.name}.jpg") as tmp:
                    Image.fromarray(blend.astype(np.uint8)).save(tmp, format="JPEG", quality=90)
        write_json(scratch / "classes.json", {"names": names, "colors": [list(c) for c in colors],
                                              "ignore_index": state["ignore_index"], "checkpoint": str(checkpoint)})
        _move_in(scratch, out)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    log.info("%d masks -> %s", len(paths), out)
    return {"images": len(paths), "out": str(out), "classes": names}


def _move_in(scratch: Path, out: Path) -> None:
    """The finished results into ``out``, ``classes.json`` last (its presence means a complete run)."""
    out.mkdir(parents=True, exist_ok=True)
    (out / "classes.json").unlink(missing_ok=True)
    for name in ("masks", "overlays"):
        if (out / name).exists():
            shutil.rmtree(out / name)
        os.replace(scratch / name, out / name)
    os.replace(scratch / "classes.json", out / "classes.json")

