"""Reading a weights file, the one way every task reads one: ``.safetensors``, or a torch state
dict (also one saved under ``state_dict`` or ``model`` in a training checkpoint), loaded with
``weights_only`` (no pickled code runs)."""

from __future__ import annotations

from pathlib import Path

import torch


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
