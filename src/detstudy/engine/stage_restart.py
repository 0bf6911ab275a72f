"""DEIM's restart of the second training stage from the best state of the first.

DEIM trains in two stages: with the augmentation policy until its stop epoch, then without.
The official solver (``engine/solver/det_solver.py``) reloads its ``best_stg1.pth`` (the whole
state of the best stage-1 epoch: weights, EMA with its update count, optimizer, loss scaler)
when stage 2 begins, and again after every stage-2 epoch that does not beat the best score
since the previous reload (the first epoch after a reload always counts as that best). The
learning rate is not part of it: it follows the iteration count. The official code also
lowers ``ema.decay`` by 1e-4 at each reload, but its ModelEMA computes the decay from the
value it was built with, so the decay the official runs trained with never changed; it does
not change here either.
"""

from __future__ import annotations

import copy
import logging
from pathlib import Path
from typing import Any

import torch

from detstudy.engine.weights import save_torch
from detstudy.engine.resume import pending

log = logging.getLogger("detstudy.train")


def _on_cpu(state: Any) -> Any:
    """A detached CPU copy of a (nested) state dict, so the snapshot costs no GPU memory."""
    if isinstance(state, torch.Tensor):
        return state.detach().to("cpu", copy=True)
    if isinstance(state, dict):
        return {key: _on_cpu(value) for key, value in state.items()}
    if isinstance(state, (list, tuple)):
        return type(state)(_on_cpu(value) for value in state)
    return copy.deepcopy(state)


class StageRestart:
    """When and from what stage 2 restarts. ``first_stage_two_epoch`` is 1-based (the training
    loop's numbering); ``path``, when given, keeps the snapshot for a resumed job, tagged with
    the run's fingerprint: a file in the run's :class:`~detstudy.engine.resume.TrainingState` folder,
    written pending and promoted by the state's ``save``, so that it is always the snapshot of
    the best epoch the saved state records."""

    def __init__(self, first_stage_two_epoch: int, path: str | Path | None = None, fingerprint: str = ""):
        self.first_stage_two_epoch = first_stage_two_epoch
        self.path = Path(path) if path is not None else None
        self.fingerprint = fingerprint
        self.snapshot: dict[str, Any] | None = None
        self.segment_best: float | None = None  # the best score since the last reload (None: just reloaded)
        self.restarts = 0

    def in_stage_one(self, epoch: int) -> bool:
        return epoch < self.first_stage_two_epoch

    def keep(self, state: dict[str, Any]) -> None:
        """The state of a stage-1 epoch whose validation score is the best so far."""
        self.snapshot = _on_cpu(state)
        if self.path is not None:
            save_torch({"fingerprint": self.fingerprint, "state": self.snapshot}, pending(self.path))

    def discard(self) -> None:
        """A fresh start: a snapshot left by an earlier job of this folder is not ours."""
        self.snapshot = None
        if self.path is not None:
            self.path.unlink(missing_ok=True)
            pending(self.path).unlink(missing_ok=True)

    def resume(self, progress: dict[str, Any]) -> None:
        """Continue an interrupted job: its counters, and the snapshot from ``path`` (the one the
        state records: ``TrainingState.load`` has promoted or dropped a pending one)."""
        self.segment_best, self.restarts = progress["segment_best"], progress["restarts"]
        if self.path is not None and self.path.is_file():
            saved = torch.load(self.path, map_location="cpu", weights_only=True)
            if saved.get("fingerprint") == self.fingerprint:
                self.snapshot = saved["state"]

    def progress(self) -> dict[str, Any]:
        return {"segment_best": self.segment_best, "restarts": self.restarts}

    def due_before(self, epoch: int, best_score: float) -> bool:
        """Stage 2 begins with ``epoch``: reload. Its first segment is measured against the
        run's best so far (``best_score``), as the official best_stat carries over."""
        if epoch != self.first_stage_two_epoch:
            return False
        self.segment_best = best_score
        return True

    def due_after(self, epoch: int, score: float | None) -> bool:
        """After a validated epoch: reload when a stage-2 epoch did not beat the segment's best."""
        if score is None or self.in_stage_one(epoch):
            return False
        if self.segment_best is None or score > self.segment_best:
            self.segment_best = score
            return False
        self.segment_best = None
        return True

    def restore(self, epoch: int, targets: dict[str, Any]) -> bool:
        """Load the snapshot into ``targets`` (name -> object with ``load_state_dict``)."""
        if self.snapshot is None:
            log.warning("epoch %d: no validated stage-1 epoch to restart stage 2 from; continuing", epoch)
            return False
        for name, target in targets.items():
            # a copy: an optimizer on the snapshot's device adopts the tensors it is given and then
            # updates them in place, which would change what the next restart reloads (the
            # official solver reads best_stg1.pth from disk each time)
            target.load_state_dict(_on_cpu(self.snapshot[name]))
        self.restarts += 1
        log.info("epoch %d: stage 2 restarts from the best stage-1 state (restart %d)", epoch, self.restarts)
        return True
