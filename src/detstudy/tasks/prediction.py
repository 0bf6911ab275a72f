"""What ``detstudy predict`` checks for every task before a model runs: the image folder, each
image decodable, the output folder free; errors name the file and the fix."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from detstudy.tasks.images import load_rgb

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp")


class PredictError(ValueError):
    """Bad input to ``detstudy predict``: the message names the file and the fix."""


def image_files(folder: Path) -> list[Path]:
    """The images of ``folder``, sorted by name."""
    folder = Path(folder)
    if not folder.is_dir():
        raise PredictError(f"{folder}: no such folder. Fix: pass --images a folder of images.")
    found = sorted(p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)
    if not found:
        raise PredictError(f"{folder}: no images ({', '.join(IMAGE_SUFFIXES)}). Fix: pass --images the folder "
                           "that holds them.")
    return found


def decoded(path: Path) -> np.ndarray:
    """One image as RGB, decoded as training and evaluation decode it, or an error naming it."""
    from PIL import UnidentifiedImageError

    try:
        return np.asarray(load_rgb(path)).copy()
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as error:
        raise PredictError(f"{path}: not a readable image ({error}). Fix: remove or replace it.") from None


def check_decodable(paths: list[Path]) -> None:
    """Every image decodes, each read once and dropped, before the model loads."""
    for path in paths:
        decoded(path)


def load_or_refuse(load_checkpoint, checkpoint: Path, device):
    """``load_checkpoint(checkpoint, device)`` (a task's loader), its failure a ``PredictError``
    naming the file (once: the loaders' own messages start with it)."""
    try:
        return load_checkpoint(checkpoint, device)
    except (ValueError, KeyError, RuntimeError, EOFError, OSError) as error:
        text = str(error)
        raise PredictError(text if text.startswith(str(checkpoint)) else f"{checkpoint}: {text}") from None


def checked_out(out: Path, overwrite: bool, replaced: str) -> None:
    """``out`` is a new or empty folder, or ``overwrite`` allows replacing ``replaced`` in it."""
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise PredictError(f"{out}: exists and is not a folder. Fix: pass --out a new folder.")
    if out.is_dir() and any(out.iterdir()) and not overwrite:
        raise PredictError(f"{out}: not empty. Fix: pass --out a new folder, or --overwrite to replace its "
                           f"{replaced}.")


def checkpoint_format(path: Path) -> str | None:
    """The ``format`` a detstudy checkpoint records (``None``: not a dict, or unreadable), read
    without loading the weights into memory."""
    import torch

    path = Path(path)
    if not path.is_file():
        raise PredictError(f"{path}: no such file. Fix: pass --checkpoint a run's best.pt "
                           "(results/runs/<model>/<res>px/<phase>/seed<seed>/best.pt).")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True, mmap=True)
    except Exception:  # the task's loader names what is wrong with it
        return None
    return state.get("format") if isinstance(state, dict) else None
