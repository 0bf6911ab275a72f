"""Resumable training: the full state of a run after every epoch, outside Snakemake's outputs.

A job killed at any moment (SIGTERM, SIGKILL, power loss) loses at most the epoch it was in:
``snakemake --rerun-incomplete`` starts it again, Snakemake has deleted its declared outputs,
and the run continues from ``state.pt`` in its state folder (not a declared output, so
Snakemake leaves it alone) and restores its best checkpoint from ``best.pt`` beside it.
The state carries a fingerprint of everything that defines the run; a state written under
another configuration is discarded, never resumed from. Files are written atomically and
read with ``weights_only=True``. The folder is removed when the run finishes.
"""

from __future__ import annotations

import hashlib
import json
import logging
import random
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import torch

from detstudy.engine.io import atomic_path, file_digest

log = logging.getLogger("detstudy.train")


def fingerprint(**identity: Any) -> str:
    """A stable hash of what defines a run (settings, seed, resolution, input file digests)."""
    return hashlib.sha256(json.dumps(identity, sort_keys=True, default=str).encode()).hexdigest()


def rng_state(generator: torch.Generator) -> dict[str, Any]:
    """Every random stream the loop draws from, in types ``weights_only`` loading accepts."""
    kind, keys, position, has_gauss, gauss = np.random.get_state()
    return {"python": random.getstate(), "torch": torch.get_rng_state(), "loader": generator.get_state(),
            "numpy": [kind, torch.from_numpy(keys.astype(np.int64)), position, has_gauss, gauss],
            **({"cuda": torch.cuda.get_rng_state_all()} if torch.cuda.is_available() else {})}


def restore_rng(state: dict[str, Any], generator: torch.Generator) -> None:
    random.setstate(state["python"])
    kind, keys, position, has_gauss, gauss = state["numpy"]
    np.random.set_state((kind, keys.numpy().astype(np.uint32), position, has_gauss, gauss))
    torch.set_rng_state(state["torch"])
    generator.set_state(state["loader"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def _check_copy(copy: Path, digest: str, source: str | Path) -> None:
    if file_digest(copy) != digest:
        raise OSError(f"copying {source} gave a file with other bytes. Fix: check the disk (space, errors), "
                      "then rerun with --rerun-incomplete.")


class TrainingState:
    """The state folder of one run."""

    def __init__(self, folder: str | Path, fingerprint: str):
        self.folder = Path(folder)
        self.fingerprint = fingerprint

    @property
    def state_path(self) -> Path:
        return self.folder / "state.pt"

    @property
    def best_path(self) -> Path:
        return self.folder / "best.pt"

    def load(self) -> dict[str, Any] | None:
        """The saved state of this configuration, or None (nothing saved, or stale: discarded)."""
        if not self.state_path.is_file():
            return None
        try:
            state = torch.load(self.state_path, map_location="cpu", weights_only=True)
        except Exception as error:  # a state file that cannot be read is no reason to stop: start over
            log.warning("discarding unreadable training state %s (%s)", self.state_path, error)
            self.clear()
            return None
        if state.get("fingerprint") != self.fingerprint:
            log.info("discarding the training state in %s: it was written under another configuration", self.folder)
            self.clear()
            return None
        if self.best_path.is_file() and not self._best_is_intact():
            log.warning("discarding the training state in %s: its copy of the best checkpoint %s does not match "
                        "the digest written with it", self.folder, self.best_path)
            self.clear()
            return None
        return state

    @property
    def _digest_path(self) -> Path:
        return self.folder / "best.pt.sha256"

    def _best_is_intact(self) -> bool:
        return self._digest_path.is_file() and self._digest_path.read_text().strip() == file_digest(self.best_path)

    def save(self, state: dict[str, Any]) -> None:
        with atomic_path(self.state_path) as tmp:
            torch.save({**state, "fingerprint": self.fingerprint}, tmp)

    def keep_best(self, checkpoint: str | Path) -> None:
        """A copy of the best checkpoint, which Snakemake deletes with a failed job's outputs."""
        digest = file_digest(checkpoint)
        with atomic_path(self.best_path) as tmp:
            shutil.copyfile(checkpoint, tmp)
            _check_copy(tmp, digest, checkpoint)
        with atomic_path(self._digest_path) as tmp:
            tmp.write_text(digest + "\n")

    def restore_best(self, checkpoint: str | Path) -> None:
        """Put the kept best checkpoint back (``load`` has checked it against its digest), and
        check the copy."""
        if self.best_path.is_file():
            with atomic_path(checkpoint) as tmp:
                shutil.copyfile(self.best_path, tmp)
                _check_copy(tmp, self._digest_path.read_text().strip(), self.best_path)

    def clear(self) -> None:
        shutil.rmtree(self.folder, ignore_errors=True)
        for parent in self.folder.parents:  # the per-model/resolution folders it leaves empty
            try:
                parent.rmdir()
            except OSError:  # not empty (or not ours): stop there
                break
