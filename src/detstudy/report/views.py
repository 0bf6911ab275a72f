"""View models of the metric tables: runs, per class, operating points and the multimodal phases.

Each turns a DataFrame from :mod:`detstudy.report.tables` into a generic table (columns,
rows of :func:`~detstudy.report.formatting.cell`, family groups, the best value of a column
in bold) that the HTML, Markdown and LaTeX templates lay out alike.
"""

from __future__ import annotations

import math

import pandas as pd

from detstudy.report.formatting import DASH, cell, fmt_number, interval_text, latex_escape, p_text
from detstudy.report.significance import Significance
from detstudy.report.tables import OPERATING_COLUMNS, Column, is_missing, as_number, family_label, pair_columns, phase_label


def _value_cell(row, col: Column, best: str | None = None, significance: Significance | None = None) -> dict:
    """A metric cell: the mean, its std when several seeds ran, its interval where the comparisons
    have one; bold when it is the column's best (significantly, where the column has statistics)."""
    value = row.get(col.key)
    text = fmt_number(value, col.decimals)
    std = None
    std_value = row.get(f"{col.key}_std")
    if col.show_std and not is_missing(value) and not is_missing(std_value) and row["n_seeds"] > 1:
        std = fmt_number(std_value, col.decimals)
    if significance is not None and col.statistic and row.get("cell") is not None:
        mark = significance.mark(row["cell"], col.statistic)
        return cell(text, std=std, numeric=True, best=mark == "best", tied=mark == "tied",
                    interval=interval_text(significance.interval(row["cell"], col.statistic), col.decimals))
    return cell(text, std=std, best=(best == text and text != DASH), numeric=True)


def _best_values(frame: pd.DataFrame, columns: list[Column], significance: Significance | None = None) -> dict[str, str]:
    """Best displayed value per column (compared after rounding, so ties are all bold). With the
    comparisons, only columns without sampling error are bolded this way (the others by their tests)."""
    best = {}
    for col in columns:
        if col.better is None or col.key not in frame or len(frame) < 2:
            continue
        if significance is not None and not col.exact:
            continue
        values = pd.to_numeric(frame[col.key], errors="coerce").dropna()
        if values.empty:
            continue
        # compare what the reader sees: the numbers as formatted; no bold when all tie
        shown = [fmt_number(v, col.decimals) for v in values]
        if len(set(shown)) < 2:
            continue
        best[col.key] = (max if col.better == "max" else min)(shown, key=float)
    return best


def _key_columns(multi_seed: bool) -> list[dict]:
    columns = [
        {"label": "Family", "tex": "Family", "numeric": False},
        {"label": "Model", "tex": "Model", "numeric": False},
        {"label": "Res. (px)", "tex": "Res.", "numeric": True},
        {"label": "Phase", "tex": "Phase", "numeric": False},
    ]
    if multi_seed:
        columns.append({"label": "Seeds", "tex": "$n$", "numeric": True})
    return columns


def _res_text(resolution) -> str:
    value = as_number(resolution)
    return DASH if math.isnan(value) else str(int(value)) if value.is_integer() else str(resolution)


def _key_cells(row, multi_seed: bool) -> list[dict]:
    cells = [
        cell(family_label(row["family"])),
        cell(row["model"]),
        cell(_res_text(row["resolution"]), numeric=True),
        cell(phase_label(row["phase"])),
    ]
    if multi_seed:
        cells.append(cell(int(row["n_seeds"]), numeric=True))
    return cells


def _baseline_cell(row, significance: Significance, metric: str) -> dict:
    """The difference to the baseline at the row's resolution, with its Holm-adjusted p-value."""
    reference = f"{significance.baseline} · {_res_text(row['resolution'])} px · base"
    if row.get("cell") == reference:
        return cell("baseline", numeric=True)
    found = significance.difference(row.get("cell"), reference, metric, "baseline")
    if not found or found.get("estimate") is None:
        return cell(DASH, numeric=True)
    better = found.get("p_holm") is not None and found["p_holm"] < significance.alpha and found["estimate"] > 0
    return cell(f"{found['estimate']:+.3f} (p {p_text(found.get('p_holm'))}; raw {p_text(found.get('p'))})",
                numeric=True, best=better,
                interval=interval_text((found["low"], found["high"])) if found.get("low") is not None else None)


def metric_table(frame: pd.DataFrame, columns: list[Column], *, caption: str, key: str,
                 group_headers: list[dict] | None = None, significance: Significance | None = None,
                 baseline_metric: str | None = None) -> dict:
    """A table of one row per cell; ``baseline_metric``: add the column of its difference to the
    baseline (where the comparisons name one)."""
    multi_seed = bool(len(frame)) and int(frame["n_seeds"].max()) > 1
    best = _best_values(frame, columns, significance)
    with_baseline = bool(baseline_metric and significance is not None and significance.baseline)
    head = _key_columns(multi_seed) + [
        {"label": c.label, "long": c.long, "tex": c.tex, "numeric": True} for c in columns
    ]
    if with_baseline:
        label = f"Δ{baseline_metric} vs {significance.baseline}"
        head.append({"label": label, "long": f"{label} (Holm p; raw p)", "tex": rf"$\Delta${latex_escape(label[1:])}",
                     "numeric": True})
    rows = []
    previous_family = None
    for _, row in frame.iterrows():
        cells = _key_cells(row, multi_seed)
        cells += [_value_cell(row, col, best.get(col.key), significance) for col in columns]
        if with_baseline:
            cells.append(_baseline_cell(row, significance, baseline_metric))
        family_start = row["family"] != previous_family
        rows.append({
            "cells": cells,
            "family_start": family_start,
            "first_row": previous_family is None,
            "family": family_label(row["family"]),
        })
        previous_family = row["family"]
    table = {
        "key": key,
        "caption": caption,
        "columns": head,
        "rows": rows,
        "n_key_columns": len(_key_columns(multi_seed)),
        "group_headers": group_headers,
        "group_first_column": True,  # the first column (family) groups rows
    }
    return table


def per_class_view(frame: pd.DataFrame, metric: str, significance: Significance | None = None) -> dict:
    names = frame.attrs.get("classes", [])
    columns = [Column(name, name, latex_escape(name), 3, "max", show_std=False, statistic=f"{metric} {name}")
               for name in names]
    return metric_table(frame, columns, key="per_class", caption=f"Per-class {metric}", significance=significance)


def operating_view(frame: pd.DataFrame, significance: Significance | None = None) -> dict:
    multi_seed = bool(len(frame)) and int(frame["n_seeds"].max()) > 1
    n_keys = len(_key_columns(multi_seed))
    iou = frame["iou_threshold"].dropna().unique().tolist() if len(frame) else []
    iou_text = f" (IoU ≥ {iou[0]:g})" if len(iou) == 1 else ""
    groups = [
        {"label": "", "span": n_keys},
        {"label": "at the best-F1 threshold" + iou_text, "span": 4},
        {"label": "at the configured threshold" + iou_text, "span": 4},
    ]
    return metric_table(frame, OPERATING_COLUMNS, key="operating_points",
                        caption="Operating points", group_headers=groups, significance=significance)


def _delta(value, col: Column) -> tuple[str | None, str]:
    """The difference to the vanilla row as shown (``+0.034``) and whether it is an improvement."""
    if is_missing(value):
        return None, ""
    text = f"{float(value):+.{col.decimals}f}"
    if float(text) == 0:
        return f"{0:+.{col.decimals}f}", ""  # no "-0.000": a change too small to show is no change
    return text, "better" if (float(text) > 0) == (col.better == "max") else "worse"


def _multimodal_columns(frame: pd.DataFrame) -> list[Column]:
    metric = frame.attrs.get("metric", "AP50")
    columns = [Column("mAP", "mAP", "mAP", statistic="AP"), Column("AP50", "AP50", r"AP$_{50}$", statistic="AP50")]
    # per-class values without their std, as in the per-class table: the spread is in mAP and AP50
    columns += [Column(name, name, latex_escape(name), show_std=False, long=f"{metric} {name}",
                     statistic=f"{metric} {name}") for name in frame.attrs["classes"]]
    pair = frame.attrs.get("pair")
    if pair:
        for key, (gt, predicted) in zip(pair_columns(pair), (pair, pair[::-1])):
            # counts are whole numbers with one seed; a mean over seeds needs a decimal
            decimals = 0 if all(float(v).is_integer() for v in frame[key].dropna()) else 1
            columns.append(Column(key, f"{gt} → {predicted}", rf"{latex_escape(gt)}$\to${latex_escape(predicted)}",
                                decimals, "min", long=f"GT {gt} as {predicted}"))
    return columns


def multimodal_view(frame: pd.DataFrame, significance: Significance | None = None) -> dict:
    """The phases/controls table: one group per (model, resolution), every value with its delta
    to the vanilla row (``*``: significant, Holm-adjusted, where the comparisons test it). No value
    is bold: the best of the grid is the runs table's."""
    multi_seed = bool(len(frame)) and int(frame["n_seeds"].max()) > 1
    columns = _multimodal_columns(frame)
    keys = [
        {"label": "Model", "tex": "Model", "numeric": False},
        {"label": "Res. (px)", "tex": "Res.", "numeric": True},
        {"label": "Run", "tex": "Run", "numeric": False},
    ] + ([{"label": "Seeds", "tex": "$n$", "numeric": True}] if multi_seed else [])
    n_classes, n_pair = len(frame.attrs["classes"]), len(columns) - 2 - len(frame.attrs["classes"])
    groups = [{"label": "", "span": len(keys) + 2}, {"label": f"per-class {frame.attrs.get('metric', 'AP50')}",
                                                      "span": n_classes}]
    if n_pair:
        groups.append({"label": "swaps (test boxes)", "span": n_pair})
    rows = []
    previous = None
    for _, row in frame.iterrows():
        cells = [cell(row["model"]), cell(_res_text(row["resolution"]), numeric=True), cell(row["phase_label"])]
        if multi_seed:
            cells.append(cell(int(row["n_seeds"]), numeric=True))
        vanilla = f"{row['model']} · {_res_text(row['resolution'])} px · base"
        for col in columns:
            shown = _value_cell(row, col, significance=significance)
            shown["best"] = shown["tied"] = False
            shown["delta"], shown["delta_class"] = _delta(row.get(f"{col.key}_delta"), col)
            if shown["delta"] and significance is not None and col.statistic and \
                    significance.significant(row.get("cell"), vanilla, col.statistic, "multimodal"):
                shown["delta"] += "*"
            cells.append(shown)
        group = (row["model"], row["resolution"])
        rows.append({"cells": cells, "family_start": group != previous, "first_row": previous is None,
                     "family": row["model"]})
        previous = group
    return {
        "key": "multimodal",
        "caption": "Multimodal extension",
        "columns": keys + [{"label": c.label, "long": c.long, "tex": c.tex, "numeric": True} for c in columns],
        "rows": rows,
        "n_key_columns": len(keys),
        "group_headers": groups,
        "group_first_column": True,  # the model is written once per (model, resolution) group
    }
