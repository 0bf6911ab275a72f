"""Detector checkpoints: weights plus what is needed to rebuild the detector.

Saved atomically with ``torch.save`` and read with ``weights_only=True``, so a
checkpoint can never run code when it is loaded.
"""

from __future__ import annotations

import pickle
import re
from pathlib import Path
from typing import Any

import torch

from detstudy.tasks.detection.data.coco import CategoryMap
from detstudy.engine.weights import save_torch
from detstudy.tasks.detection.models import DetectorAdapter, build_detector

FORMAT = "detstudy-checkpoint/1"


def save_checkpoint(path: str | Path, adapter: DetectorAdapter, categories: CategoryMap,
                    extra: dict[str, Any] | None = None) -> None:
    payload = {
        "format": FORMAT,
        "detector": adapter.describe(),
        "categories": categories.as_list(),
        "state_dict": {k: v.detach().cpu() for k, v in adapter.model.state_dict().items()},
        "extra": extra or {},
    }
    save_torch(payload, path)


def load_checkpoint(path: str | Path, device: torch.device | str = "cpu",
                    ) -> tuple[DetectorAdapter, CategoryMap, dict[str, Any]]:
    """Rebuild the detector of a checkpoint; returns (adapter, categories, extra)."""
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as error:  # e.g. torch.save(model): the module's class is pickled with it
        found = re.search(r"GLOBAL (\S+) was not an allowed global", str(error))
        raise ValueError(f"{path}: a whole pickled object{f' ({found.group(1)})' if found else ''}, not a {FORMAT} "
                         "checkpoint; checkpoints are read with weights_only=True, which never runs pickled code. "
                         "Fix: pass a best.pt the workflow wrote, or, for a model of your own, save its state_dict() "
                         "instead of the model and write it with detstudy.tasks.detection.checkpoint.save_checkpoint.") from None
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        found = payload.get("format") if isinstance(payload, dict) else type(payload).__name__
        raise ValueError(f"{path}: not a detstudy checkpoint (format {found!r}, not {FORMAT!r}). Fix: point to a "
                         "best.pt written by the train rules (results/runs/<model>/<res>px/<phase>/seed<seed>/).")
    detector = payload["detector"]
    settings = dict(detector["settings"])
    for key in ("backbone_weights", "weights"):  # the state dict below holds the trained weights
        if key in settings:
            settings[key] = None
    if "model_config" in detector:  # the model's own config (DEIMv2): no table of today decides its shapes
        settings["model_config"] = detector["model_config"]
    adapter = build_detector(detector["architecture"], detector["num_classes"], detector["resolution"], settings)
    try:
        adapter.model.load_state_dict(payload["state_dict"])
    except RuntimeError as error:
        raise ValueError(f"{path} does not fit the {detector['architecture']} this code builds "
                         f"({str(error).splitlines()[0]} ...): it was written by another version of detstudy "
                         "(DEIMv2 checkpoints before the official architecture have enc_output weights). "
                         "Fix: rerun the training that wrote it (snakemake reruns it when the code changed).") from None
    adapter.to(torch.device(device))
    adapter.model.eval()
    categories = CategoryMap(tuple(c["id"] for c in payload["categories"]),
                             tuple(c["name"] for c in payload["categories"]))
    return adapter, categories, payload["extra"]
