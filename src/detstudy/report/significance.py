"""What the comparisons say about the report's cells: each value's interval, whether it is the
significantly best of its column or tied for best, and the differences the tables show
(``results/statistics/comparisons.json``, written by :mod:`detstudy.statistics.comparisons`)."""

from __future__ import annotations

from detstudy.engine.io import read_json


#: The per-class statistic of each task's comparisons (detection AP50, segmentation IoU, classification F1).
CLASS_METRICS = ("AP50", "IoU", "F1")


class Significance:
    """Lookups into one comparisons record; every lookup is ``None`` where it has nothing."""

    def __init__(self, record: dict):
        self.record = record
        settings = record["settings"]
        self.level, self.method, self.resamples = settings["level"], settings["method"], settings["resamples"]
        self.alpha, self.baseline = settings["alpha"], settings.get("baseline")
        self.cells = {cell["label"]: cell for cell in record["cells"]}
        # per table: an extra pair may repeat a planned one, with another Holm family
        self.pairs = {table: {(row["a"], row["b"]): row for row in rows} for table, rows in record["tables"].items()}

    @classmethod
    def load(cls, path) -> "Significance | None":
        return cls(read_json(path)) if path else None

    def value(self, cell: str, column: str) -> dict | None:
        """The interval record of a cell's column (a summary metric such as ``AP50`` or ``mIoU``, or
        ``<class metric> <class>``: ``AP50 <class>``, ``IoU <class>``)."""
        found = self.cells.get(cell)
        if found is None:
            return None
        metric, _, name = column.partition(" ")
        if column not in found["metrics"] and metric in CLASS_METRICS:  # "AP50 <class>", "IoU <class>"
            return found["per_class"].get(name)
        return found["metrics"].get(column)

    def interval(self, cell: str, column: str) -> tuple[float, float] | None:
        value = self.value(cell, column)
        if not value or value.get("low") is None or value.get("high") is None:
            return None
        return value["low"], value["high"]

    def mark(self, cell: str, column: str) -> str | None:
        """``"best"`` (better than every other cell of the column, Holm-adjusted), ``"tied"`` (in the
        group the best is not significantly better than) or ``None``."""
        best = self.record["best"].get(column)
        if not best:
            return None
        if best["significant"]:
            return "best" if best["best"] == cell else None
        return "tied" if cell in best["tied"] else None

    def difference(self, a: str, b: str, column: str, table: str) -> dict | None:
        """``a`` minus ``b`` (interval, ``p``, ``p_holm``) in ``table`` (``baseline``, ``multimodal``,
        ``extra``), where the comparisons made that pair."""
        row = self.pairs.get(table, {}).get((a, b))
        return None if row is None else row["metrics"].get(column)

    def significant(self, a: str, b: str, column: str, table: str) -> bool:
        found = self.difference(a, b, column, table)
        return bool(found and found.get("p_holm") is not None and found["p_holm"] < self.alpha)
