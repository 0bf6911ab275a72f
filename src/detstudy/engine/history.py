"""A run's history: ``history.csv`` (one row per epoch) written as it grows, the best checkpoint
kept beside it, and the one reader every consumer uses."""

from __future__ import annotations

import csv
import math
import os
from pathlib import Path
from typing import Any, Callable

from detstudy.engine.io import write_csv

#: The validation metric that picks the best checkpoint unless a run's settings say otherwise
#: (TrainSettings.select_metric; the figures of a run that did not record it use it too).
DEFAULT_SELECT_METRIC = "AP"


class RunRecord:
    """The history of a run and its best checkpoint, written as they change: the history CSV after
    every row (a running job's curves can be inspected), the checkpoint when a candidate epoch
    beats the best so far by the validation metric (the first maximum wins ties)."""

    def __init__(self, history_path: str | Path, metric: str, on_best: Callable[[dict[str, Any]], None],
                 metrics: tuple[str, ...] = ("AP", "AP50")):
        self.history_path, self.metric, self.metrics = history_path, metric, metrics
        self.on_best = on_best  # writes the checkpoint (atomically) and what keeps it
        self.history: list[dict[str, Any]] = []
        self.best: dict[str, Any] = {"score": -math.inf, "epoch": 0}

    def add(self, row: dict[str, Any], candidate: bool = True) -> bool:
        """Append a row; save the checkpoint when it is the best so far. Returns whether it was."""
        self.history.append(row)
        write_csv(self.history_path, self.history)
        score = row[f"val_{self.metric}"]
        if not candidate or score is None or score <= self.best["score"]:
            return False
        self.best.update(score=score, epoch=row["epoch"], **{f"val_{name}": row[f"val_{name}"] for name in self.metrics})
        self.on_best(row)
        return True

    def restore(self, history: list[dict[str, Any]], best: dict[str, Any]) -> None:
        self.history[:] = history
        self.best.update(best)
        write_csv(self.history_path, self.history)


def read_history(path: str | os.PathLike) -> list[dict[str, float]]:
    """A training ``history.csv`` as numbers, one dict per epoch row (empty cells, such as the
    validation of an epoch that skipped it, left out)."""
    rows = []
    with open(path, newline="") as handle:
        for row in csv.DictReader(handle):
            values = {}
            for key, text in row.items():
                try:
                    values[key] = float(text)
                except (TypeError, ValueError):
                    continue
            if "epoch" in values:
                rows.append(values)
    return rows


def trained_epochs(history_csv: str | Path) -> list[dict[str, float]]:
    """The rows of a history CSV that trained (a fine-tuning run's epoch 0 only validates its
    start and has no ``seconds``)."""
    return [row for row in read_history(history_csv) if "seconds" in row]
