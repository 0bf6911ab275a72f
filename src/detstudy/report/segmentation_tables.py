"""The segmentation report's numbers: every run's metrics JSON (and speed.json beside it) as
DataFrames, one row per (family, model, resolution, phase) with seeds aggregated, the same way
:mod:`detstudy.report.tables` does for detection."""

from __future__ import annotations

import math
from typing import Iterable

import pandas as pd

from detstudy.report.tables import GROUP_KEYS, Column, aggregate_seeds, as_number, cost_fields, load_runs, report_order
from detstudy.study.grid import cell_label

#: The blocks every segmentation metrics.json holds.
SEGMENTATION_BLOCKS = ("run", "protocol", "metrics", "provenance")

SEGMENTATION_COLUMNS = [
    Column("params_M", "Params (M)", r"Params (M)", 1, "min", show_std=False, exact=True),
    Column("mIoU", "mIoU", r"mIoU", 3, statistic="mIoU"),
    Column("mDice", "mDice", r"mDice", 3, statistic="mDice"),
    Column("aAcc", "aAcc", r"aAcc", 3, statistic="aAcc", long="pixel accuracy (aAcc)"),
    Column("mAcc", "mAcc", r"mAcc", 3, statistic="mAcc", long="mean class accuracy (mAcc)"),
    Column("latency_ms", "Latency (ms/img)", r"Latency (ms/img)", 1, "min"),
]

SEGMENTATION_COST_COLUMNS = [
    Column("params_M", "Params (M)", r"Params (M)", 1, "min", show_std=False, exact=True),
    Column("gflops", "GFLOPs", r"GFLOPs", 1, "min", show_std=False, exact=True),
    Column("latency_ms", "Latency (ms)", r"Lat.\ (ms)", 1, "min", long="latency median (ms/img)"),
    Column("latency_iqr_ms", "IQR (ms)", r"IQR", 1, None, long="latency IQR (ms)"),
    Column("images_per_second", "img/s", r"img/s", 1, "max", long="inference images/s (batch 1)"),
    Column("infer_memory_mb", "Infer. mem. (MiB)", r"Inf.\ mem.", 0, "min", long="inference peak memory (MiB)"),
    Column("train_memory_mb", "Train mem. (MiB)", r"Train mem.", 0, "min", long="training peak memory (MiB)"),
    Column("train_minutes", "Train (min)", r"Train (min)", 1, "min", long="training wall time (min)"),
    Column("checkpoint_mb", "Checkpoint (MiB)", r"Ckpt (MiB)", 1, "min", show_std=False, long="checkpoint size (MiB)"),
]


def load_segmentation_runs(metrics_paths: Iterable) -> list[dict]:
    return load_runs(metrics_paths, SEGMENTATION_BLOCKS)


def flat_record(run: dict) -> dict:
    meta, metrics = run.get("run", {}), run.get("metrics") or {}
    return {
        "family": str(meta.get("family", "other")), "model": str(meta.get("model", "?")),
        "resolution": meta.get("resolution"), "phase": str(meta.get("phase", "base")), "seed": meta.get("seed"),
        "cell": cell_label(meta.get("model"), meta.get("resolution"), meta.get("phase", "base")),
        "params_M": as_number((run.get("params") or {}).get("total")) / 1e6,
        **{name: as_number(metrics.get(name)) for name in ("mIoU", "mDice", "aAcc", "mAcc")},
        **cost_fields(run),
    }


def cell_table(runs: list[dict], columns: list[Column]) -> pd.DataFrame:
    """``columns`` of every cell in report order, means over seeds with ``_std``."""
    runs = sorted(runs, key=lambda r: report_order(r.get("run", {})))
    return aggregate_seeds([flat_record(r) for r in runs], [c.key for c in columns], with_std=True)


def class_iou_table(runs: list[dict], metric: str = "IoU") -> pd.DataFrame:
    """One column per class (the dataset's order) with its ``metric`` averaged over seeds; a class
    absent from a run's ground truth and prediction is NaN (shown as absent, not 0)."""
    runs = sorted(runs, key=lambda r: report_order(r.get("run", {})))
    names = list(dict.fromkeys(entry["name"] for run in runs for entry in run["metrics"]["per_class"]))
    records = []
    for run in runs:
        base = flat_record(run)
        values = {entry["name"]: as_number(entry.get(metric)) for entry in run["metrics"]["per_class"]}
        records.append({**{k: base[k] for k in GROUP_KEYS + ["seed", "cell"]},
                        **{name: values.get(name, math.nan) for name in names}})
    table = aggregate_seeds(records, names, with_std=False)
    table.attrs.update(classes=names, metric=metric)
    return table
