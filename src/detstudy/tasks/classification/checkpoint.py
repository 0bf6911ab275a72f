"""A classification checkpoint: the weights and what rebuilds the model (architecture, settings,
class names, the preprocessing it was trained with)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from detstudy.engine.weights import save_torch
from detstudy.tasks.classification import CHECKPOINT_FORMAT
from detstudy.tasks.classification.models import Classifier, build_classifier

FORMAT = CHECKPOINT_FORMAT


def save_checkpoint(path, model: Classifier, class_names: list[str], extra: dict[str, Any] | None = None) -> None:
    state = {"format": FORMAT, "architecture": model.architecture, "settings": model.settings,
             "class_names": list(class_names), "model": {k: v.detach().cpu() for k, v in model.state_dict().items()},
             **(extra or {})}
    save_torch(state, path)


def load_checkpoint(path, device: torch.device | str = "cpu") -> tuple[Classifier, dict[str, Any]]:
    """The model (eval mode, on ``device``) and the checkpoint's other entries."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"classification checkpoint {path} not found. Fix: train the run first")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # another kind of pickle: name the file, not a bare unpickling error
        raise ValueError(f"{path}: not a detstudy classification checkpoint ({str(error).splitlines()[0]})") from None
    if not isinstance(state, dict) or state.get("format") != FORMAT:
        raise ValueError(f"{path}: not a detstudy classification checkpoint. Fix: give a best.pt of a classification run")
    settings = state["settings"]
    model = build_classifier(state["architecture"], settings["num_classes"], fine_tune=settings.get("fine_tune", "full"),
                             drop_path_rate=settings.get("drop_path_rate", 0.0))
    model.load_state_dict(state["model"])
    return model.to(device).eval(), {k: v for k, v in state.items() if k != "model"}
