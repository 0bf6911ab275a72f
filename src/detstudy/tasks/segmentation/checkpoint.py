"""A segmentation checkpoint: the weights and everything that rebuilds the model (architecture,
its settings, the class names, the ignore value), so a config fully determines it."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from detstudy.engine.weights import save_torch
from detstudy.tasks.segmentation import CHECKPOINT_FORMAT
from detstudy.tasks.segmentation.models import Segmenter, build_segmenter

FORMAT = CHECKPOINT_FORMAT


def save_checkpoint(path, model: Segmenter, class_names: list[str], ignore_index: int,
                    extra: dict[str, Any] | None = None) -> None:
    state = {"format": FORMAT, "architecture": model.architecture, "settings": model.settings,
             "class_names": list(class_names), "ignore_index": int(ignore_index),
             "model": {k: v.detach().cpu() for k, v in model.state_dict().items()}, **(extra or {})}
    save_torch(state, path)


def load_checkpoint(path, device: torch.device | str = "cpu") -> tuple[Segmenter, dict[str, Any]]:
    """The model (in eval mode, on ``device``) and the checkpoint's other entries."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"segmentation checkpoint {path} not found. Fix: train the run first or give the "
                                "path of a best.pt the workflow wrote")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # a pickle of another kind: name the file instead of a bare unpickling error
        raise ValueError(f"{path}: not a detstudy segmentation checkpoint ({str(error).splitlines()[0]}). "
                         "Fix: give a best.pt written by the segmentation workflow") from None
    if not isinstance(state, dict) or state.get("format") != FORMAT:
        raise ValueError(f"{path}: not a detstudy segmentation checkpoint (format {state.get('format') if isinstance(state, dict) else type(state).__name__!r}). "
                         "Fix: give a best.pt written by the segmentation workflow")
    settings = state["settings"]
    model = build_segmenter(state["architecture"], settings["num_classes"], settings["resolution"],
                            drop_path_rate=settings.get("drop_path_rate", 0.0))
    model.load_state_dict(state["model"])
    return model.to(device).eval(), {k: v for k, v in state.items() if k != "model"}
