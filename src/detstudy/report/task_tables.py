"""The segmentation and classification reports' numbers: every run's metrics JSON (and speed.json
beside it) as DataFrames, one row per (family, model, resolution, phase) with seeds aggregated,
the same way :mod:`detstudy.report.tables` does for detection. Both tasks' metrics.json keep
their summary numbers in ``metrics`` and each class's in ``metrics.per_class``."""

from __future__ import annotations

import math
from typing import Iterable

import pandas as pd

from detstudy.report.tables import GROUP_KEYS, Column, aggregate_seeds, as_number, cost_fields, load_runs, report_order
from detstudy.study.grid import cell_label

#: The blocks every segmentation and classification metrics.json holds.
TASK_BLOCKS = ("run", "protocol", "metrics", "provenance")

SEGMENTATION_COLUMNS = [
    Column("params_M", "Params (M)", r"Params (M)", 1, "min", show_std=False, exact=True),
    Column("mIoU", "mIoU", r"mIoU", 3, statistic="mIoU"),
    Column("mDice", "mDice", r"mDice", 3, statistic="mDice"),
    Column("aAcc", "aAcc", r"aAcc", 3, statistic="aAcc", long="pixel accuracy (aAcc)"),
    Column("mAcc", "mAcc", r"mAcc", 3, statistic="mAcc", long="mean class accuracy (mAcc)"),
    Column("latency_ms", "Latency (ms/img)", r"Latency (ms/img)", 1, "min"),
]

CLASSIFICATION_COLUMNS = [
    Column("params_M", "Params (M)", r"Params (M)", 1, "min", show_std=False, exact=True),
    Column("accuracy", "Accuracy", r"Acc.", 3, statistic="accuracy", long="top-1 accuracy"),
    Column("macro_F1", "Macro F1", r"F1\textsubscript{macro}", 3, statistic="macro_F1"),
    Column("macro_precision", "Macro P", r"P\textsubscript{macro}", 3, statistic="macro_precision",
           long="macro precision"),
    Column("macro_recall", "Macro R", r"R\textsubscript{macro}", 3, statistic="macro_recall", long="macro recall"),
    Column("weighted_F1", "Weighted F1", r"F1\textsubscript{w}", 3, statistic="weighted_F1"),
    Column("weighted_precision", "Weighted P", r"P\textsubscript{w}", 3, statistic="weighted_precision",
           long="support-weighted precision"),
    Column("weighted_recall", "Weighted R", r"R\textsubscript{w}", 3, statistic="weighted_recall",
           long="support-weighted recall"),
    Column("top5", "Top-5", r"Top-5", 3, statistic="top5", long="top-5 accuracy"),
    Column("ECE", "ECE", r"ECE", 3, "min", long="expected calibration error (15 bins)"),
    Column("latency_ms", "Latency (ms/img)", r"Latency (ms/img)", 2, "min"),
]

#: The seed study's train / val / test table: the best epoch's training and validation numbers
#: beside the test's (with its interval).
TRAIN_VAL_TEST_COLUMNS = [
    Column("best_epoch", "Best epoch", r"Epoch", 0, None, show_std=False),
    Column("train_loss", "Loss", r"Loss", 3, None, long="train loss"),
    Column("train_accuracy", "Accuracy", r"Acc.", 3, None, long="train accuracy"),
    Column("val_loss", "Loss", r"Loss", 3, None, long="validation loss"),
    Column("val_accuracy", "Accuracy", r"Acc.", 3, None, long="validation accuracy"),
    Column("accuracy", "Accuracy", r"Acc.", 3, statistic="accuracy", long="test accuracy"),
    Column("macro_F1", "Macro F1", r"F1\textsubscript{macro}", 3, statistic="macro_F1", long="test macro F1"),
]

MODEL_COST_COLUMNS = [
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


def load_task_runs(metrics_paths: Iterable) -> list[dict]:
    return load_runs(metrics_paths, TASK_BLOCKS)


def flat_record(run: dict) -> dict:
    meta, metrics, training = run.get("run", {}), run.get("metrics") or {}, run.get("training") or {}
    return {
        "family": str(meta.get("family", "other")), "model": str(meta.get("model", "?")),
        "resolution": meta.get("resolution"), "phase": str(meta.get("phase", "base")), "seed": meta.get("seed"),
        "cell": cell_label(meta.get("model"), meta.get("resolution"), meta.get("phase", "base")),
        "params_M": as_number((run.get("params") or {}).get("total")) / 1e6,
        **{name: as_number(value) for name, value in metrics.items() if isinstance(value, (int, float, type(None)))},
        **{f"train_{key}" if key == "loss" else key: as_number(value) for key, value in training.items()
           if key in TRAINING_FIELDS},
        **cost_fields(run),
    }


#: The training summary's numbers a table can show (classification: the best epoch's).
TRAINING_FIELDS = ("best_epoch", "loss", "train_accuracy", "val_loss", "val_accuracy")


def cell_table(runs: list[dict], columns: list[Column]) -> pd.DataFrame:
    """``columns`` of every cell in report order, means over seeds with ``_std``."""
    runs = sorted(runs, key=lambda r: report_order(r.get("run", {})))
    return aggregate_seeds([flat_record(r) for r in runs], [c.key for c in columns], with_std=True)


def class_metric_table(runs: list[dict], metric: str) -> pd.DataFrame:
    """One column per class (the dataset's order) with its ``metric`` averaged over seeds; a value
    the run's metrics leave undefined (segmentation: a class absent from ground truth and
    prediction) is NaN, shown as absent, not 0."""
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
