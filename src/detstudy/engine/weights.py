"""Weight files: reading one the one way every task reads one (``.safetensors``, or a torch state
dict, also one saved under ``state_dict`` or ``model`` in a training checkpoint, loaded with
``weights_only``: no pickled code runs), and saving one so that the same tensors give the same
bytes."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from detstudy.engine.io import atomic_path


def read_state_dict(path: Path) -> dict[str, torch.Tensor]:
    path = Path(path)
    if path.suffix == ".safetensors":
        from safetensors.torch import load_file

        return load_file(str(path))
    state = torch.load(path, map_location="cpu", weights_only=True)
    for key in ("state_dict", "model"):
        if isinstance(state, dict) and isinstance(state.get(key), dict):
            state = state[key]
    return state


def save_torch(obj: Any, path: str | Path) -> None:
    """``torch.save`` through :func:`atomic_path`, into an open file: torch names the archive's
    inner folder after a file name it is given (here the random temporary one) and "archive" for a
    file object, so the same object always gives the same bytes."""
    with atomic_path(path) as tmp, open(tmp, "wb") as handle:
        torch.save(obj, handle)
