"""The comparisons step: every cell of the grid with seeds pooled, and the paired differences.

A cell is one (model, resolution, phase) with its seeds. Its interval accounts for both
sources of variance (Bouthillier et al., 2021): each bootstrap replicate draws the seeds with
replacement, then takes those seeds' statistics on the replicate's resampled images (the same
images for every run, so the image draw is shared and the seed draw is the cell's own). With
one seed it is the run's own interval.

Pairs of cells are compared on the same replicates: the interval of the difference and a
two-sided bootstrap p-value, Holm-adjusted across the comparisons of one table and metric:

* ``baseline``: every cell against the baseline model's vanilla cell at the same resolution;
* ``multimodal``: every multimodal run and control against its vanilla cell, and every run with text
  against each of its controls (whether the text's gain exceeds the control's); the rows
  against vanilla also hold each class's difference (``per_class``, Holm-adjusted across the
  classes): what a strategy forgets;
* ``extra``: the pairs the config lists.

Classification runs also keep which test images they got right: every pair then gets McNemar's
exact test too (per seed-matched pair of runs; with several seeds the largest p, an
intersection-union test), Holm-adjusted across its table like the bootstrap p-values.
"""

from __future__ import annotations

import hashlib
import logging
from typing import Any

import numpy as np

from detstudy.engine.io import read_json, write_json
from detstudy.study.grid import cell_label, chain_run
from detstudy.statistics.mcnemar import mcnemar_exact
from detstudy.statistics.intervals import METHODS, holm, interval, json_number, p_value

log = logging.getLogger("detstudy.statistics")

CELL_KEYS = ("model", "resolution", "phase")


def cell_key(run: dict) -> tuple:
    return tuple(run[key] for key in CELL_KEYS)


#: The metric each task's log line and findings lead with (the first of these a record has).
HEADLINES = ("AP50", "mIoU", "accuracy")


def summary_names(record: dict) -> list[str]:
    """A statistics.json's summary metrics in order (detection: AP, AP50, AP75, AR100;
    segmentation: mIoU, mDice, aAcc, mAcc; classification: accuracy, the macro and weighted scores)."""
    return list(record["metrics"])


def class_metric(record: dict) -> str:
    """The per-class statistic of a statistics.json (detection: AP50, segmentation: IoU, classification: F1)."""
    entries = record.get("per_class") or []
    return next((key for key in entries[0] if key not in ("id", "name")), "AP50") if entries else "AP50"


class Cell:
    """One cell's seeds: the statistics of each on the shared replicates, pooled over seeds.

    Columns: the task's summary metrics (:func:`summary_names`), then each class's
    ``<class metric> <class>`` (detection ``AP50 <class>``, segmentation ``IoU <class>``).
    """

    def __init__(self, key: tuple, runs: list[dict], arrays: list[dict], seed_draws: np.ndarray):
        self.key, self.runs = key, runs
        self.family = runs[0]["run"].get("family")
        self.seeds = [run["run"]["seed"] for run in runs]
        self.summary_names = summary_names(runs[0])
        self.classes = [entry["name"] for entry in runs[0]["per_class"]]
        per_class = class_metric(runs[0])
        self.columns = self.summary_names + [f"{per_class} {name}" for name in self.classes]

        def joined(a: dict, name: str) -> np.ndarray:
            return np.concatenate([np.atleast_2d(a[name]), np.atleast_2d(a[f"class_{name}"])], axis=-1)

        estimates = np.stack([np.concatenate([a["estimate"], a["class_estimate"]]) for a in arrays])  # [S, C]
        self.seed_estimates = estimates
        with np.errstate(invalid="ignore"):
            self.estimate = estimates.mean(axis=0)
        replicates = np.stack([joined(a, "replicates") for a in arrays])  # [S, B, C]
        # replicate b: the drawn seeds' statistics on image resample b, averaged
        self.replicates = replicates[seed_draws, np.arange(replicates.shape[1])[:, None]].mean(axis=1)
        self.jackknife = np.stack([joined(a, "jackknife") for a in arrays]).mean(axis=0)  # [N, C]
        # classification: each seed's right and wrong test images, by seed (McNemar)
        self.correct = {seed: a["correct"] for seed, a in zip(self.seeds, arrays)} \
            if all("correct" in a for a in arrays) else None

    def column(self, name: str) -> int:
        return self.columns.index(name)

    def describe(self, j: int, level: float, method: str) -> dict:
        both = {name: interval(self.replicates[:, j], self.estimate[j], jackknife=self.jackknife[:, j],
                               level=level, method=name, bounds=(0.0, 1.0)).to_dict() for name in METHODS}
        found = {**both[method], **{name: [both[name]["low"], both[name]["high"]] for name in METHODS}}
        spread = self.seed_estimates[:, j]
        found["seed_sd"] = float(spread.std(ddof=1)) if len(spread) > 1 and np.isfinite(spread).all() else None
        return found

    def summary(self, level: float, method: str) -> dict:
        return {"model": self.key[0], "resolution": self.key[1], "phase": self.key[2], "family": self.family,
                "label": cell_label(*self.key), "seeds": self.seeds,
                "metrics": {name: self.describe(j, level, method) for j, name in enumerate(self.summary_names)},
                "per_class": {name: self.describe(len(self.summary_names) + k, level, method)
                              for k, name in enumerate(self.classes)}}


def _seed_draws(n_seeds: int, resamples: int, seed: int, key: tuple) -> np.ndarray:
    """[resamples, n_seeds]: the seeds each replicate of one cell averages (all of them, once,
    when the cell has one seed). Seeded by the cell's name, so adding a run to the grid leaves
    the other cells' draws alone."""
    if n_seeds == 1:
        return np.zeros((resamples, 1), dtype=np.int64)
    name = int.from_bytes(hashlib.sha256(cell_label(*key).encode()).digest()[:8], "little")
    return np.random.default_rng([seed, 1, name]).integers(0, n_seeds, size=(resamples, n_seeds))


def difference(a: Cell, b: Cell, level: float, method: str, columns=None) -> dict:
    """``a`` minus ``b`` on the same replicates, per column (the summary metrics unless told):
    the interval and the raw p-value."""
    out = {}
    columns = a.summary_names if columns is None else columns
    for name in columns:
        i, j = a.column(name), b.column(name)
        estimate = a.estimate[i] - b.estimate[j]
        replicates = a.replicates[:, i] - b.replicates[:, j]
        found = interval(replicates, estimate, jackknife=a.jackknife[:, i] - b.jackknife[:, j],
                         level=level, method=method, bounds=(-1.0, 1.0)).to_dict()
        found["p"] = json_number(p_value(replicates, estimate))
        out[name] = found
    return out


def class_differences(a: Cell, b: Cell, level: float, method: str) -> dict[str, dict]:
    """Each class's ``a`` minus ``b`` (the per-class metric), its interval, raw and Holm-adjusted
    p-value (Holm across the classes of this one comparison: did any class change)."""
    columns = [name for name in a.columns if name not in a.summary_names and name in b.columns]
    found = difference(a, b, level, method, columns)
    for name, value in zip(columns, holm([np.nan if found[c]["p"] is None else found[c]["p"] for c in columns])):
        found[name]["p_holm"] = json_number(value)
    return {name.partition(" ")[2]: value for name, value in found.items()}


def mcnemar(a: Cell, b: Cell) -> dict | None:
    """McNemar's exact test of ``a`` against ``b`` (classification cells), one per pair of runs:
    the seeds both have, paired by seed (otherwise the seeds in order). ``p`` is the largest of
    the pairs' p-values: the intersection-union test, which rejects only when every seed's pair
    does (summing the discordant images of several seeds would count the same test images again
    and shrink p). ``a_only``/``b_only``: the pairs' discordant images summed, to read the direction."""
    if a.correct is None or b.correct is None:
        return None
    common = sorted(set(a.correct) & set(b.correct))
    pairs = [(s, s) for s in common] if common else list(zip(sorted(a.correct), sorted(b.correct)))
    tests = [mcnemar_exact(a.correct[x], b.correct[y]) for x, y in pairs]
    paired = {x for x, _ in pairs} | {y for _, y in pairs}
    return {"a_only": sum(t["a_only"] for t in tests), "b_only": sum(t["b_only"] for t in tests),
            "p": max(t["p"] for t in tests), "per_pair": tests, "seed_pairs": [[x, y] for x, y in pairs],
            "unpaired_seeds": sorted((set(a.correct) | set(b.correct)) - paired)}


def best_of_columns(cells: dict[tuple, Cell], level: float, method: str) -> dict[str, dict]:
    """For each column, the cell with the highest value against every other cell (Holm across
    them): ``significant`` when it is better than all at ``1 - level``; otherwise ``tied`` lists the
    cells it is not significantly better than (itself first)."""
    alpha = 1 - level
    columns = list(dict.fromkeys(name for cell in cells.values() for name in cell.columns))
    out = {}
    for name in columns:
        having = [cell for cell in cells.values() if name in cell.columns and np.isfinite(cell.estimate[cell.column(name)])]
        if len(having) < 2:
            continue
        best = max(having, key=lambda cell: cell.estimate[cell.column(name)])
        others = [cell for cell in having if cell is not best]
        raw = [difference(best, other, level, method, [name])[name]["p"] for other in others]
        adjusted = holm([np.nan if p is None else p for p in raw])
        tied = [other.key for other, p in zip(others, adjusted) if not p < alpha]
        out[name] = {"best": cell_label(*best.key), "significant": not tied,
                     "tied": [cell_label(*best.key)] + [cell_label(*key) for key in tied] if tied else [],
                     "p_holm": {cell_label(*other.key): json_number(p) for other, p in zip(others, adjusted)}}
    return out


def planned_pairs(cells: dict[tuple, Cell], baseline: str | None, extra: list[dict]) -> dict[str, list[tuple]]:
    """The comparisons of each table, as (a, b) cell keys: a minus b."""
    tables: dict[str, list[tuple]] = {"baseline": [], "multimodal": [], "extra": []}
    if baseline:
        for key in cells:
            reference = (baseline, key[1], "base")
            if key != reference and reference in cells:
                tables["baseline"].append((key, reference))
    for key in cells:
        run = chain_run(key[2])
        if run is None:
            continue
        vanilla = (key[0], key[1], "base")
        if vanilla in cells:
            tables["multimodal"].append((key, vanilla))
        if run.control is None:
            for control in sorted(k for k in cells if k[:2] == key[:2] and k[2] != key[2]
                                  and getattr(chain_run(k[2]), "treatment", None) == run.treatment):
                tables["multimodal"].append((key, control))
    for pair in extra:
        tables["extra"].append((cell_key(pair["a"]), cell_key(pair["b"])))
    return tables


def comparisons(*, statistics: list, bootstraps: list, settings: dict[str, Any], comparisons_path) -> dict:
    """Pool every cell's seeds and compare the planned pairs; writes ``comparisons.json``."""
    level, method = float(settings["level"]), str(settings["method"])
    resamples, seed = int(settings["resamples"]), int(settings["seed"])
    records = [read_json(path) for path in statistics]
    digests = {record["image_ids_sha256"] for record in records}
    if len(digests) > 1:
        raise ValueError(f"the runs' statistics ({', '.join(map(str, statistics))}) were not computed on the same "
                         "test images, so they cannot be compared resample by resample. Fix: evaluate every run "
                         "on one test split.")
    stale = [str(path) for path, record in zip(statistics, records)
             if record["settings"]["resamples"] != resamples or record["settings"]["seed"] != seed]
    if stale:
        raise ValueError(f"{', '.join(stale)}: drawn with other resampling settings than {settings}. Fix: rerun "
                         "their statistics jobs (delete those files and run snakemake).")
    grouped: dict[tuple, list[tuple[dict, dict]]] = {}
    for record, path in zip(records, bootstraps):
        with np.load(path) as data:
            arrays = {name: data[name] for name in ("estimate", "replicates", "jackknife", "class_estimate",
                                                    "class_replicates", "class_jackknife", "correct")
                      if name in data}
        grouped.setdefault(cell_key(record["run"]), []).append((record, arrays))
    cells = {}
    for key, members in grouped.items():
        members.sort(key=lambda m: m[0]["run"]["seed"])
        cells[key] = Cell(key, [m[0] for m in members], [m[1] for m in members],
                          _seed_draws(len(members), resamples, seed, key))
    missing = [pair for pair in settings.get("pairs") or [] if cell_key(pair["a"]) not in cells
               or cell_key(pair["b"]) not in cells]
    if missing:
        raise ValueError(f"statistics.pairs {missing}: no such run in the statistics given. Fix: name runs of the grid.")
    names = summary_names(records[0]) if records else []
    if any(summary_names(record) != names for record in records):
        raise ValueError(f"the runs' statistics ({', '.join(map(str, statistics))}) hold different metrics. Fix: "
                         "compare runs of one task.")
    headline = next((name for name in HEADLINES if name in names), names[0] if names else None)
    tables = {}
    for table, pairs in planned_pairs(cells, settings.get("baseline"), settings.get("pairs") or []).items():
        rows = [{"a": cell_label(*a), "b": cell_label(*b), "a_key": list(a), "b_key": list(b),
                 "metrics": difference(cells[a], cells[b], level, method)} for a, b in pairs]
        tested = []
        for row, (a, b) in zip(rows, pairs):
            test = mcnemar(cells[a], cells[b])
            if test is not None:
                row["mcnemar"] = test
                tested.append(row)
        for row, value in zip(tested, holm([row["mcnemar"]["p"] for row in tested])):
            row["mcnemar"]["p_holm"] = json_number(value)
        for name in names:  # Holm across the comparisons of one table, per metric
            adjusted = holm([row["metrics"][name]["p"] for row in rows])
            for row, value in zip(rows, adjusted):
                row["metrics"][name]["p_holm"] = json_number(value)
        if table == "multimodal":
            for row, (a, b) in zip(rows, pairs):
                if b[2] == "base":
                    row["per_class"] = class_differences(cells[a], cells[b], level, method)
        tables[table] = rows
    result = {"settings": {"resamples": resamples, "seed": seed, "level": level, "method": method,
                           "baseline": settings.get("baseline"), "alpha": round(1 - level, 10)},
              "cells": [cell.summary(level, method) for cell in cells.values()],
              "best": best_of_columns(cells, level, method),
              "tables": tables}
    write_json(comparisons_path, result)
    significant = sum((row["metrics"][headline]["p_holm"] or 1.0) < 1 - level for rows in tables.values() for row in rows)
    log.info("%d cells, %d comparisons, %d with a %s difference significant at %g (Holm)", len(cells),
             sum(len(rows) for rows in tables.values()), significant, headline, 1 - level)
    return result
