"""The report's numbers: every run's metrics JSON loaded, sorted and aggregated over seeds.

:func:`load_runs` reads the per-run ``metrics.json`` files (``docs/metrics_schema.md``);
:func:`runs_table`, :func:`operating_points_table` and :func:`per_class_table` turn them
into pandas DataFrames, one row per (family, model, resolution, phase) with seeds
aggregated. Nothing here knows about HTML, Markdown, LaTeX or Jinja (see ``render``).
"""

from __future__ import annotations

import math
import re
from pathlib import Path
from typing import Iterable

import pandas as pd

from detstudy.tasks.detection.evaluation.class_pairs import pair_confusion
from detstudy.tasks.detection.evaluation.error_kinds import ERRORS
from detstudy.study.families import FAMILY_LABELS, FAMILY_ORDER, family_label, family_rank  # noqa: F401 (re-exported)
from detstudy.engine.io import read_json
from detstudy.study.chain import CONTROLS, STRATEGIES
from detstudy.study.grid import cell_label, chain_run, is_phase_run, phase_label, phase_parts


#: The blocks every metrics.json of the evaluate rule holds (docs/metrics_schema.md).
METRICS_BLOCKS = ("run", "dataset", "coco", "provenance")

#: The columns that identify one row of the comparison tables (seeds are aggregated).
GROUP_KEYS = ["family", "model", "resolution", "phase"]


# --------------------------------------------------------------------------------------
# metric columns: key in the tables, where it comes from, how it is shown
# --------------------------------------------------------------------------------------
class Column:
    def __init__(self, key, label, tex, decimals=3, better="max", show_std=True, long=None, statistic=None,
                 exact=False):
        self.key = key
        self.label = label  # plain text (HTML, under a group header when there is one)
        self.long = long or label  # plain text that stands alone (Markdown has no group headers)
        self.tex = tex  # raw LaTeX header
        self.decimals = decimals
        self.better = better  # "max", "min" or None (no bold)
        self.show_std = show_std
        self.statistic = statistic  # its column in comparisons.json (intervals, significance), if any
        self.exact = exact  # no sampling error (a parameter count): the best value is bold as it is


RUN_COLUMNS = [
    Column("params_M", "Params (M)", r"Params (M)", 1, "min", show_std=False, exact=True),
    Column("mAP", "mAP", r"mAP", 3, statistic="AP"),
    Column("AP50", "AP50", r"AP$_{50}$", 3, statistic="AP50"),
    Column("AP75", "AP75", r"AP$_{75}$", 3, statistic="AP75"),
    Column("APs", "APs", r"AP$_{S}$", 3),
    Column("APm", "APm", r"AP$_{M}$", 3),
    Column("APl", "APl", r"AP$_{L}$", 3),
    Column("AR100", "AR@100", r"AR$_{100}$", 3, statistic="AR100"),
    Column("latency_ms", "Latency (ms/img)", r"Latency (ms/img)", 1, "min"),
]

OPERATING_COLUMNS = [
    Column("best_f1_threshold", "score thr.", r"thr.", 3, None, show_std=False, long="best-F1 thr."),
    Column("best_f1_precision", "P", r"P", 3, long="P (best F1)"),
    Column("best_f1_recall", "R", r"R", 3, long="R (best F1)"),
    Column("best_f1_f1", "F1", r"F$_1$", 3, long="F1 (best F1)"),
    Column("configured_threshold", "score thr.", r"thr.", 3, None, show_std=False, long="configured thr."),
    Column("configured_precision", "P", r"P", 3, long="P (configured)"),
    Column("configured_recall", "R", r"R", 3, long="R (configured)"),
    Column("configured_f1", "F1", r"F$_1$", 3, long="F1 (configured)"),
]

#: The TIDE breakdown (``metrics["errors"]``): the AP50 each error costs; less is better.
ERROR_COLUMNS = [
    Column("AP50", "AP50", r"AP$_{50}$", 3, None),
    Column("err_classification", "Cls", r"Cls", 3, "min", long="dAP50 classification"),
    Column("err_localisation", "Loc", r"Loc", 3, "min", long="dAP50 localisation"),
    Column("err_both", "Both", r"Both", 3, "min", long="dAP50 both"),
    Column("err_duplicate", "Dupe", r"Dupe", 3, "min", long="dAP50 duplicate"),
    Column("err_background", "Bkg", r"Bkg", 3, "min", long="dAP50 background"),
    Column("err_missed", "Miss", r"Miss", 3, "min", long="dAP50 missed"),
    Column("err_false_positives", "FP", r"FP", 3, "min", long="dAP50 false positives"),
    Column("err_false_negatives", "FN", r"FN", 3, "min", long="dAP50 false negatives"),
]

#: What each run costs (``metrics.json`` params, ``speed.json``): lower is better everywhere.
COST_COLUMNS = [
    Column("params_M", "Params (M)", r"Params (M)", 1, "min", show_std=False, exact=True),
    Column("trainable_M", "Trainable (M)", r"Train.\ (M)", 1, None, show_std=False, long="trainable params (M)"),
    Column("gflops", "GFLOPs", r"GFLOPs", 1, "min", show_std=False, exact=True),
    Column("latency_ms", "Latency (ms)", r"Lat.\ (ms)", 1, "min", long="latency median (ms/img)"),
    Column("latency_iqr_ms", "IQR (ms)", r"IQR", 1, None, long="latency IQR (ms)"),
    Column("infer_memory_mb", "Infer. mem. (MiB)", r"Inf.\ mem.", 0, "min", long="inference peak memory (MiB)"),
    Column("train_memory_mb", "Train mem. (MiB)", r"Train mem.", 0, "min", long="training peak memory (MiB)"),
    Column("train_minutes", "Train (min)", r"Train (min)", 1, "min", long="training wall time (min)"),
    Column("train_images_per_second", "Train img/s", r"img/s", 1, None, long="training images/s"),
]


# --------------------------------------------------------------------------------------
# small helpers
# --------------------------------------------------------------------------------------
def as_number(value) -> float:
    """A JSON number (or None / missing) as a float; None becomes NaN."""
    if value is None:
        return math.nan
    try:
        return float(value)
    except (TypeError, ValueError):
        return math.nan


def is_missing(value) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value))


def _natural_key(text) -> tuple:
    parts = re.split(r"(\d+)", str(text))
    return tuple((0, int(p)) if p.isdigit() else (1, p.lower()) for p in parts if p != "")



def _phase_key(phase) -> tuple:
    # "base" (the vanilla model) first, then phase1 < phase2 < ... < phase10, then the rest.
    phase = str(phase if phase is not None else "")
    return (0 if phase in ("base", "") else 1, _natural_key(phase))


def _res_key(resolution) -> tuple:
    value = as_number(resolution)
    return (1, 0.0) if math.isnan(value) else (0, value)


def report_order(meta: dict) -> tuple:
    seed = as_number(meta.get("seed"))
    return (
        family_rank(meta.get("family")),
        str(meta.get("model", "")),
        _res_key(meta.get("resolution")),
        _phase_key(meta.get("phase")),
        (1, 0.0) if math.isnan(seed) else (0, seed),
    )


# --------------------------------------------------------------------------------------
# loading and aggregation
# --------------------------------------------------------------------------------------
def load_runs(metrics_paths: Iterable, blocks: tuple[str, ...] = METRICS_BLOCKS) -> list[dict]:
    """Read every metrics JSON; each dict gets ``metrics_path`` (the file it came from).

    The timings of a run live beside its metrics in ``speed.json`` (they differ from run to run,
    the metrics do not): when that file is there, its ``speed`` block and ``train_seconds``,
    ``train_images_per_second``, ``train_peak_memory_mb`` are merged in, as ``speed`` and
    ``training.<name>``.

    Sorted by family (cnn, vit, multimodal, then others alphabetically), model,
    resolution, phase (base first, then phase1, phase2, ...) and seed.
    """
    runs = []
    for path in metrics_paths:
        data = read_json(path)
        missing = [key for key in blocks if not isinstance(data, dict) or not isinstance(data.get(key), dict)]
        if missing:
            raise ValueError(f"{path}: not a metrics JSON written by this workflow (no {', '.join(map(repr, missing))} "
                             "block); see docs/metrics_schema.md. Fix: delete it and rerun snakemake, which "
                             "evaluates the run's checkpoint again")
        speed_path = Path(path).with_name("speed.json")
        if speed_path.is_file():
            timings = read_json(speed_path)
            data["speed"] = timings.get("speed") or {}
            training = data.setdefault("training", {})
            for key in ("train_seconds", "train_images_per_second", "train_peak_memory_mb"):
                training[key] = timings.get(key)
        data["metrics_path"] = str(path)
        runs.append(data)
    runs.sort(key=lambda r: report_order(r["run"]))
    return runs


def _flat_record(run: dict) -> dict:
    meta = run.get("run", {})
    coco = run.get("coco") or {}
    params = run.get("params") or {}
    ops = run.get("operating_points") or {}
    total = as_number(params.get("total"))
    record = {
        "family": str(meta.get("family", "other")),
        # an imported vanilla run (an official checkpoint, not trained here) says so in every table
        "model": str(meta.get("model", "?")) + (" (imported)" if meta.get("imported") else ""),
        "resolution": meta.get("resolution"),
        "phase": str(meta.get("phase", "base")),
        "seed": meta.get("seed"),
        "cell": cell_label(meta.get("model"), meta.get("resolution"), meta.get("phase", "base")),
        "params_M": total / 1e6,
        "mAP": as_number(coco.get("AP")),
        "AP50": as_number(coco.get("AP50")),
        "AP75": as_number(coco.get("AP75")),
        "APs": as_number(coco.get("APs")),
        "APm": as_number(coco.get("APm")),
        "APl": as_number(coco.get("APl")),
        "AR100": as_number(coco.get("AR100")),
        "trainable_M": as_number(params.get("trainable")) / 1e6,
        **cost_fields(run),
    }
    for name in ("best_f1", "configured"):
        point = ops.get(name) or {}
        record[f"{name}_threshold"] = as_number(point.get("score_threshold"))
        record[f"{name}_precision"] = as_number(point.get("precision"))
        record[f"{name}_recall"] = as_number(point.get("recall"))
        record[f"{name}_f1"] = as_number(point.get("f1"))
    record["iou_threshold"] = as_number(ops.get("iou_threshold"))
    errors = run.get("errors") or {}
    for name in ERRORS:  # NaN for a run without the breakdown
        record[f"err_{name}"] = as_number((errors.get("dAP") or {}).get(name))
    record["err_false_positives"] = as_number(errors.get("false_positives_dAP"))
    record["err_false_negatives"] = as_number(errors.get("false_negatives_dAP"))
    return record


def cost_fields(run: dict) -> dict[str, float]:
    """What a run costs, from its ``speed.json`` (merged by :func:`load_runs`) and training record:
    any task's columns of the cost tables (NaN where a run has no such number)."""
    speed, training = run.get("speed") or {}, run.get("training") or {}
    return {
        "latency_ms": as_number(speed.get("latency_ms_per_image")),
        "latency_iqr_ms": iqr(speed.get("latency_ms_quartiles")),
        "images_per_second": as_number(speed.get("images_per_second")),
        "gflops": as_number(speed.get("gflops")),
        "infer_memory_mb": as_number(speed.get("peak_memory_mb")),
        "checkpoint_mb": as_number(speed.get("checkpoint_mb")),
        "train_memory_mb": as_number(training.get("train_peak_memory_mb")),
        "train_minutes": as_number(training.get("train_seconds")) / 60,
        "train_images_per_second": as_number(training.get("train_images_per_second")),
    }


def iqr(quartiles) -> float:
    if not isinstance(quartiles, (list, tuple)) or len(quartiles) != 2:
        return math.nan
    return as_number(quartiles[1]) - as_number(quartiles[0])


def aggregate_seeds(records: list[dict], value_columns: list[str], with_std: bool) -> pd.DataFrame:
    """Mean (and sample std, ddof=1) over seeds for each (family, model, resolution, phase)."""
    if not records:
        columns = GROUP_KEYS + ["n_seeds", "seeds"] + value_columns
        if with_std:
            columns += [f"{c}_std" for c in value_columns]
        return pd.DataFrame(columns=columns)
    frame = pd.DataFrame.from_records(records)
    for column in value_columns:
        frame[column] = pd.to_numeric(frame[column], errors="coerce").astype(float)
    rows = []
    # records are already in report order; keep first-appearance order of the groups
    for key, group in frame.groupby(GROUP_KEYS, sort=False, dropna=False):
        row = dict(zip(GROUP_KEYS, key))
        seeds = [s for s in group["seed"].tolist() if not is_missing(s)]
        row["n_seeds"] = int(len(group))
        if "cell" in group:
            row["cell"] = group["cell"].iloc[0]  # the comparisons' name of the row
        row["seeds"] = ", ".join(str(s) for s in seeds)
        for column in value_columns:
            values = group[column]
            row[column] = float(values.mean(skipna=True)) if values.notna().any() else math.nan
            if with_std:
                std = values.std(skipna=True, ddof=1) if values.notna().sum() > 1 else math.nan
                row[f"{column}_std"] = float(std)
        rows.append(row)
    out = pd.DataFrame(rows)
    if with_std:
        ordered = GROUP_KEYS + ["n_seeds", "seeds"] + (["cell"] if "cell" in out else [])
        for column in value_columns:
            ordered += [column, f"{column}_std"]
        out = out[ordered]
    return out.reset_index(drop=True)


def runs_table(runs: list[dict]) -> pd.DataFrame:
    """One row per (family, model, resolution, phase), seeds aggregated.

    Columns: family, model, resolution, phase, n_seeds, seeds, then for each of
    ``params_M, mAP, AP50, AP75, APs, APm, APl, AR100, latency_ms`` the mean over seeds
    and ``<name>_std`` (sample standard deviation; NaN with a single seed). COCO values
    that are null in the metrics (no ground truth in that size range) are NaN.
    """
    return _cell_table(runs, [c.key for c in RUN_COLUMNS])


def _cell_table(runs: list[dict], columns: list[str]) -> pd.DataFrame:
    """``columns`` of :func:`_flat_record`, one row per cell in report order, seeds aggregated."""
    runs = sorted(runs, key=lambda r: report_order(r.get("run", {})))
    return aggregate_seeds([_flat_record(r) for r in runs], columns, with_std=True)


def operating_points_table(runs: list[dict]) -> pd.DataFrame:
    """Precision / recall / F1 at the best-F1 score threshold and at the configured one.

    Same rows as :func:`runs_table`; columns ``best_f1_{threshold,precision,recall,f1}``,
    ``configured_{...}`` and ``iou_threshold`` (means over seeds, with ``_std`` columns).
    """
    return _cell_table(runs, [c.key for c in OPERATING_COLUMNS] + ["iou_threshold"])


def costs_table(runs: list[dict]) -> pd.DataFrame:
    """What each cell costs: same rows as :func:`runs_table`; the ``COST_COLUMNS`` as means over
    seeds with ``_std`` (NaN where a run has no ``speed.json``)."""
    return _cell_table(runs, [c.key for c in COST_COLUMNS])


def cost_devices(runs: list[dict]) -> list[str]:
    """The devices the latency and memory were measured on, as the runs name them (first seen first)."""
    return list(dict.fromkeys(str((r.get("speed") or {}).get("device")) for r in runs if r.get("speed")))


def errors_table(runs: list[dict]) -> pd.DataFrame:
    """The TIDE breakdown: same rows as :func:`runs_table`; the ``ERROR_COLUMNS`` (AP50, the dAP50
    of each error type, of perfect precision and of perfect recall; NaN for a run without them) as means over seeds with ``_std``."""
    return _cell_table(runs, [c.key for c in ERROR_COLUMNS])


def class_names(runs: list[dict]) -> list[str]:
    """The dataset's class names in its own order (union over runs, first seen first)."""
    names: list[str] = []
    for run in runs:
        categories = (run.get("dataset") or {}).get("categories") or []
        ordered = [c.get("name") for c in sorted(categories, key=lambda c: as_number(c.get("id")))] if categories else []
        ordered += [c.get("name") for c in run.get("per_class") or []]
        for name in ordered:
            if name is not None and str(name) not in names:
                names.append(str(name))
    return names


def per_class_table(runs: list[dict], metric: str = "AP50") -> pd.DataFrame:
    """Rows as in :func:`runs_table` (family, model, resolution, phase, n_seeds, seeds);
    one column per class (the dataset's own names, in its order) with ``metric`` from
    ``per_class`` averaged over seeds. ``df.attrs["classes"]`` lists the class columns."""
    runs = sorted(runs, key=lambda r: report_order(r.get("run", {})))
    names = class_names(runs)
    records = []
    for run in runs:
        base = _flat_record(run)
        record = {k: base[k] for k in GROUP_KEYS + ["seed", "cell"]}
        values = {str(c.get("name")): as_number(c.get(metric)) for c in run.get("per_class") or []}
        for name in names:
            record[name] = values.get(name, math.nan)
        records.append(record)
    table = aggregate_seeds(records, names, with_std=False)
    table.attrs["classes"] = names
    table.attrs["metric"] = metric
    return table


# --------------------------------------------------------------------------------------
# the multimodal extension: phases, controls and the vanilla run they start from
# --------------------------------------------------------------------------------------
_CONTROL_RANK = {**{control: rank for rank, control in enumerate(CONTROLS, 1)}, None: len(CONTROLS) + 1}


def _multimodal_rank(phase) -> tuple:
    """vanilla, then strategy by strategy (the plan's order), each one's controls before its runs."""
    run = chain_run(phase)
    if run is None:
        return (0, 0, 0)
    return (1 + list(STRATEGIES).index(run.strategy), _CONTROL_RANK.get(run.control, len(_CONTROL_RANK) + 1),
            run.stage)


def pair_columns(pair) -> list[str]:
    """The two swap-count columns of :func:`multimodal_table`: ``a→b`` and ``b→a``."""
    a, b = pair
    return [f"{a}→{b}", f"{b}→{a}"]


def multimodal_table(runs: list[dict], metric: str = "AP50", pair=None) -> pd.DataFrame:
    """The multimodal runs and controls of every (model, resolution) that has them, next to their vanilla run.

    Rows per (model, resolution): vanilla (``base``), then strategy by strategy (fusion only,
    joint, the phases) its no-text controls, its shuffled-text controls, then its runs with
    text (the phases by stage, only those present); columns ``phase_label``,
    ``n_seeds``, ``seeds``, then ``mAP``, ``AP50``, one column per class (``metric`` from
    ``per_class``) and, with ``pair`` = (a, b), the swap counts ``a→b`` (GT a detected as b) and
    ``b→a``; each as the mean over seeds with ``<col>_std`` (NaN with one seed) and
    ``<col>_delta``: the mean minus the vanilla row's (NaN on the vanilla row and without one).
    ``df.attrs``: ``classes``, ``metric``, ``pair``, ``values`` (the value columns in order).
    """
    groups = {(r["run"].get("model"), r["run"].get("resolution")) for r in runs if is_phase_run(r)}
    chosen = [r for r in runs if (r["run"].get("model"), r["run"].get("resolution")) in groups
              and phase_parts(r["run"].get("phase", "base")) is not None]
    names = class_names(chosen)
    swaps = pair_columns(pair) if pair else []
    values = ["mAP", "AP50"] + names + swaps
    records = []
    for run in chosen:
        base = _flat_record(run)
        record = {k: base[k] for k in GROUP_KEYS + ["seed", "cell", "mAP", "AP50"]}
        record["model"] = str(run["run"].get("model", "?"))  # one chain: the vanilla row is the phases' start
        # family differs along one chain (vanilla and no-text runs are "vit"): the phase identifies the row
        record["family"] = ""
        per_class = {str(c.get("name")): as_number(c.get(metric)) for c in run.get("per_class") or []}
        record.update({name: per_class.get(name, math.nan) for name in names})
        if pair:
            counts = pair_confusion(run["confusion"], pair) if run.get("confusion") else None
            a, b = pair
            record[swaps[0]] = counts[a][b] if counts else math.nan
            record[swaps[1]] = counts[b][a] if counts else math.nan
        records.append(record)
    table = aggregate_seeds(records, values, with_std=True)
    if len(table):
        order = sorted(range(len(table)), key=lambda i: (str(table.at[i, "model"]), _res_key(table.at[i, "resolution"]),
                                                         _multimodal_rank(table.at[i, "phase"])))
        table = table.iloc[order].reset_index(drop=True)
    for column in values:
        table[f"{column}_delta"] = math.nan
    for i, row in table.iterrows():
        vanilla = table[(table["model"] == row["model"]) & (table["resolution"] == row["resolution"])
                        & (table["phase"] == "base")]
        if row["phase"] != "base" and len(vanilla):
            for column in values:
                table.at[i, f"{column}_delta"] = row[column] - vanilla.iloc[0][column]
    table.insert(table.columns.get_loc("phase") + 1, "phase_label", [phase_label(p) for p in table["phase"]])
    table = table.drop(columns="family")
    table.attrs.update(classes=names, metric=metric, pair=list(pair) if pair else None, values=values)
    return table
