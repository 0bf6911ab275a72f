"""Resumable training: the full state of a run after every epoch, outside Snakemake's outputs.

A job killed at any moment (SIGTERM, SIGKILL, power loss) loses at most the epoch it was in:
``snakemake --rerun-incomplete`` starts it again, Snakemake has deleted its declared outputs,
and the run continues from ``state.pt`` in its state folder (not a declared output, so
Snakemake leaves it alone) and restores its best checkpoint from ``best.pt`` beside it.
The state carries a fingerprint of everything that defines the run; a state written under
another configuration is discarded, never resumed from. Files are written atomically and
read with ``weights_only=True``. The folder is removed when the run finishes.

The state and the files kept beside it (``best.pt``, DEIM's ``best_stage1.pt``) never
disagree: a kept file is written as ``<name>.pending`` and promoted only once the state that
records it (by digest) is saved. A job killed in between resumes from the earlier state and
drops the pending file, so the epoch that wrote it is trained again; on a GPU, where the
rerun is not bit-identical, the later epoch's files would otherwise stand for a trajectory
that is not in the history.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import random
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import torch

from detstudy.engine.io import atomic_path, file_digest
from detstudy.engine.weights import save_torch

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


PENDING = ".pending"


def pending(path: str | Path) -> Path:
    """Where a file kept in a state folder waits until the state that records it is saved."""
    path = Path(path)
    return path.with_name(path.name + PENDING)


def _check_copy(copy: Path, digest: str, source: str | Path) -> None:
    if file_digest(copy) != digest:
        raise OSError(f"copying {source} gave a file with other bytes. Fix: check the disk (space, errors), "
                      "then rerun with --rerun-incomplete.")


class TrainingState:
    """The state folder of one run."""

    def __init__(self, folder: str | Path, fingerprint: str):
        self.folder = Path(folder)
        self.fingerprint = fingerprint
        self._kept: dict[str, str] = {}  # kept file name -> digest, as the last saved (or loaded) state records

    @property
    def state_path(self) -> Path:
        return self.folder / "state.pt"

    @property
    def best_path(self) -> Path:
        return self.folder / "best.pt"

    def load(self) -> dict[str, Any] | None:
        """The saved state of this configuration, or None (nothing saved, or stale: discarded)."""
        if not self.state_path.is_file():
            if self.folder.is_dir():  # files kept by a job killed before its first state: not resumable
                self.clear()
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
        recorded = state.pop("kept", {})
        self._settle_pending(recorded)
        if not self._kept_files_match(recorded):
            log.warning("discarding the training state in %s: the files kept beside it (%s) are not the ones it "
                        "records (%s) by digest", self.folder, ", ".join(sorted(self._kept_names())) or "none",
                        ", ".join(sorted(recorded)) or "none")
            self.clear()
            return None
        self._kept = dict(recorded)
        return state

    def _settle_pending(self, recorded: dict[str, str]) -> None:
        """Finish the promotions of a job killed after saving its state; drop what it kept after."""
        for path in sorted(self.folder.glob("*" + PENDING)):
            final = path.with_name(path.name[: -len(PENDING)])
            if recorded.get(final.name) == file_digest(path):
                self._promote([path])
            else:
                log.info("discarding %s: kept after the last saved state, by a job killed before saving the "
                         "next; that epoch is trained again", path)
                path.unlink()

    def _kept_names(self) -> set[str]:
        # hidden files are atomic_path's temporaries (or a file system's), never kept files
        return {path.name for path in self.folder.iterdir()
                if path.is_file() and path.name != self.state_path.name and not path.name.startswith(".")}

    def _kept_files_match(self, recorded: dict[str, str]) -> bool:
        return self._kept_names() == set(recorded) and all(
            file_digest(self.folder / name) == digest for name, digest in recorded.items())

    def save(self, state: dict[str, Any]) -> None:
        """Save the state with the digests of the kept files, then promote the pending ones."""
        waiting = sorted(self.folder.glob("*" + PENDING))
        kept = {**self._kept, **{path.name[: -len(PENDING)]: file_digest(path) for path in waiting}}
        save_torch({**state, "fingerprint": self.fingerprint, "kept": kept}, self.state_path)
        self._kept = kept
        self._promote(waiting)  # a job killed before this: load() promotes what the state records

    def _promote(self, waiting: list[Path]) -> None:
        for path in waiting:
            os.replace(path, path.with_name(path.name[: -len(PENDING)]))

    def keep_best(self, checkpoint: str | Path) -> None:
        """A copy of the best checkpoint, which Snakemake deletes with a failed job's outputs;
        pending until :meth:`save`."""
        digest = file_digest(checkpoint)
        with atomic_path(pending(self.best_path)) as tmp:
            shutil.copyfile(checkpoint, tmp)
            _check_copy(tmp, digest, checkpoint)

    def restore_best(self, checkpoint: str | Path) -> None:
        """Put back the best checkpoint the loaded state records (``load`` has checked the kept
        copy against its digest), and check the copy. Without one, a checkpoint at
        ``checkpoint`` was written after the state (the killed epoch's): removed."""
        digest = self._kept.get(self.best_path.name)
        if digest is None:
            Path(checkpoint).unlink(missing_ok=True)
            return
        with atomic_path(checkpoint) as tmp:
            shutil.copyfile(self.best_path, tmp)
            _check_copy(tmp, digest, self.best_path)

    def clear(self) -> None:
        self._kept = {}
        shutil.rmtree(self.folder, ignore_errors=True)
        for parent in self.folder.parents:  # the per-model/resolution folders it leaves empty
            try:
                parent.rmdir()
            except OSError:  # not empty (or not ours): stop there
                break
