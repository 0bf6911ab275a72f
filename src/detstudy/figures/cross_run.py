"""The figures that compare runs: accuracy against cost with the Pareto front, per-class AP50
as a heatmap, AP by object size, each class's PR curves across runs, and the validation curves
of each family. One point, bar or line per cell (seeds averaged), in report order.
"""

from __future__ import annotations

import math
import os
from typing import Any, Mapping

import matplotlib as mpl
import numpy as np

from detstudy.study.families import family_label
from detstudy.engine.history import read_history
from detstudy.study.grid import cell_label
from detstudy.engine.figure_style import palette_colors, new_figure, rc_params, save_styled, resolve_style
from detstudy.report.significance import Significance
from detstudy.report.task_tables import (CLASSIFICATION_COLUMNS, MODEL_COST_COLUMNS, SEGMENTATION_COLUMNS, cell_table,
                                                 class_metric_table, load_task_runs)
from detstudy.report.tables import class_names, costs_table, load_runs, per_class_table, runs_table

FAMILY_MARKERS = {"cnn": "s", "hybrid": "D", "vit": "o", "multimodal": "^"}


def pareto_front(costs: list[float], values: list[float]) -> list[int]:
    """Indices of the points no other point beats (lower or equal cost and higher or equal value,
    one of them strictly), by increasing cost."""
    points = [(c, v, i) for i, (c, v) in enumerate(zip(costs, values)) if np.isfinite(c) and np.isfinite(v)]
    front = []
    for c, v, i in points:
        if not any((c2 <= c and v2 >= v) and (c2 < c or v2 > v) for c2, v2, _ in points):
            front.append((c, i))
    return [i for _, i in sorted(front)]


def _cell_palette_colors(frame, style) -> dict[str, Any]:
    return dict(zip(frame["cell"], palette_colors(len(frame), style)))


def plot_accuracy_cost(table, significance: Significance | None, out_png: str | os.PathLike, *,
                       metric: str = "AP50", style: Mapping[str, Any] | None = None):
    """``metric`` (AP50, mIoU) against latency and against GFLOPs: each cell a point with its interval (bootstrap,
    where the statistics ran; else the seeds' sd), the Pareto front as a step line."""
    st = resolve_style(style)
    colors = _cell_palette_colors(table, st)
    with mpl.rc_context(rc_params(st)):
        figure = new_figure(st, (11.0, 4.8))
        axes = figure.subplots(1, 2)
        for ax, cost, label in zip(axes, ("latency_ms", "gflops"), ("latency (ms/image, batch 1)", "GFLOPs")):
            xs, ys = table[cost].to_numpy(float), table[metric].to_numpy(float)
            for (_, row), x, y in zip(table.iterrows(), xs, ys):
                if not (np.isfinite(x) and np.isfinite(y)):
                    continue
                interval = significance.interval(row["cell"], metric) if significance else None
                if interval is not None:  # a basic/BCa interval may exclude the estimate: no negative whisker
                    error = [[max(y - interval[0], 0.0)], [max(interval[1] - y, 0.0)]]
                else:
                    sd = row.get(f"{metric}_std")
                    error = [[sd], [sd]] if sd is not None and np.isfinite(sd) else None
                ax.errorbar([x], [y], yerr=error, fmt=FAMILY_MARKERS.get(row["family"], "D"), color=colors[row["cell"]],
                            capsize=3, markersize=7, label=row["cell"])
            front = pareto_front(list(xs), list(ys))
            if len(front) > 1:
                ax.step(xs[front], ys[front], where="post", color="#616161", lw=1, ls="--", label="Pareto front")
            elif front:
                ax.plot(xs[front], ys[front], ls="", marker="o", mfc="none", mec="#616161", ms=14, label="Pareto front")
            ax.set_xlabel(label)
            ax.set_ylabel(f"test {metric}")
            ax.grid(alpha=0.3)
        handles, labels = axes[0].get_legend_handles_labels()
        figure.legend(handles, labels, loc="outside right center", fontsize=st["font_size"] - 2, frameon=False)
        figure.suptitle("Accuracy against cost (whiskers: " +
                        ("the bootstrap interval" if significance else "the seeds' sd") + ")")
        save_styled(figure, out_png, st)
    return figure


def plot_class_heatmap(per_class, out_png: str | os.PathLike, *, style: Mapping[str, Any] | None = None):
    """A per-class metric (``per_class.attrs["metric"]``: AP50, IoU), cells x classes, each value
    written in its square ("–": the class is absent from the run's test ground truth and predictions)."""
    st = resolve_style(style)
    classes = per_class.attrs["classes"]
    values = per_class[classes].to_numpy(float) if classes else np.zeros((len(per_class), 0))
    with mpl.rc_context(rc_params(st)):
        figure = new_figure(st, (1.2 * len(classes) + 4.0, 0.45 * len(per_class) + 1.8))
        ax = figure.subplots()
        image = ax.imshow(np.ma.masked_invalid(values), cmap="viridis", vmin=0, vmax=1, aspect="auto")
        for (i, j), value in np.ndenumerate(values):
            ax.text(j, i, "–" if not np.isfinite(value) else f"{value:.2f}", ha="center", va="center",
                    color="white" if np.isfinite(value) and value < 0.6 else "black", fontsize=st["font_size"] - 2)
        ax.set_xticks(range(len(classes)), classes, rotation=30, ha="right")
        ax.set_yticks(range(len(per_class)), per_class["cell"])
        metric = per_class.attrs.get("metric", "AP50")
        figure.colorbar(image, ax=ax, label=f"test {metric}")
        ax.set_title(f"Per-class {metric}")
        save_styled(figure, out_png, st)
    return figure


def plot_ap_by_size(table, out_png: str | os.PathLike, *, style: Mapping[str, Any] | None = None):
    """AP (.50:.95) of small, medium and large objects per cell (no bar where the split has none)."""
    st = resolve_style(style)
    sizes = (("APs", "small"), ("APm", "medium"), ("APl", "large"))
    width = 0.8 / len(sizes)
    x = np.arange(len(table))
    with mpl.rc_context(rc_params(st)):
        figure = new_figure(st, (max(6.0, 0.9 * len(table) + 2.5), 4.6))
        ax = figure.subplots()
        for k, ((column, name), color) in enumerate(zip(sizes, palette_colors(len(sizes), st))):
            values = table[column].to_numpy(float)
            ax.bar(x + (k - 1) * width, np.nan_to_num(values, nan=0.0), width, color=color, label=name)
            for xi, value in zip(x + (k - 1) * width, values):
                if not np.isfinite(value):
                    ax.text(xi, 0.005, "none", rotation=90, ha="center", va="bottom", fontsize=st["font_size"] - 3)
        ax.set_xticks(x, table["cell"], rotation=35, ha="right", fontsize=st["font_size"] - 1)
        ax.set_ylabel("test AP (.50:.95)")
        ax.set_title("AP by object size (COCO areas: small < 32², large > 96² px)")
        ax.legend(ncols=3)
        ax.grid(axis="y", alpha=0.3)
        save_styled(figure, out_png, st)
    return figure


def _mean_curves(runs: list[dict]) -> dict[str, dict[str, np.ndarray]]:
    """cell -> class name -> the mean interpolated precision over the cell's seeds (recall grid 0..1)."""
    curves: dict[str, dict[str, list]] = {}
    for run in runs:
        meta = run["run"]
        cell = cell_label(meta.get("model"), meta.get("resolution"), meta.get("phase", "base"))
        for curve in run.get("pr_curves") or []:
            curves.setdefault(cell, {}).setdefault(str(curve["name"]), []).append(np.asarray(curve["precision"], float))
    return {cell: {name: np.mean(values, axis=0) for name, values in by_class.items()}
            for cell, by_class in curves.items()}


def plot_pr_by_class(runs: list[dict], cells: list[str], out_png: str | os.PathLike, *,
                     style: Mapping[str, Any] | None = None):
    """One panel per class: every cell's precision-recall curve at IoU 0.5 (seeds averaged)."""
    st = resolve_style(style)
    names = class_names(runs)
    curves = _mean_curves(runs)
    recall = np.linspace(0, 1, 101)
    colors = dict(zip(cells, palette_colors(len(cells), st)))
    columns = min(3, max(len(names), 1))
    rows = max(1, math.ceil(len(names) / columns))
    with mpl.rc_context(rc_params(st)):
        figure = new_figure(st, (4.2 * columns + 2.5, 3.4 * rows + 0.5))
        axes = np.atleast_1d(figure.subplots(rows, columns, squeeze=False).ravel())
        for ax in axes[len(names):]:
            ax.set_axis_off()
        for ax, name in zip(axes, names):
            for cell in cells:
                precision = curves.get(cell, {}).get(name)
                if precision is not None:
                    ax.plot(recall[:len(precision)], precision, color=colors[cell], lw=1.4, label=cell)
            ax.set_title(name)
            ax.set_xlim(0, 1)
            ax.set_ylim(0, 1.02)
            ax.set_xlabel("recall")
            ax.set_ylabel("precision")
            ax.grid(alpha=0.3)
        handles, labels = axes[0].get_legend_handles_labels()
        figure.legend(handles, labels, loc="outside right center", fontsize=st["font_size"] - 2, frameon=False)
        figure.suptitle("Precision-recall at IoU 0.5 per class, every cell")
        save_styled(figure, out_png, st)
    return figure


def _validation(history_csv, metric: str = "AP50") -> tuple[list[int], list[float]]:
    rows = [row for row in read_history(history_csv) if f"val_{metric}" in row]
    return [int(row["epoch"]) for row in rows], [row[f"val_{metric}"] for row in rows]


def plot_validation_curves(runs: list[dict], histories: dict[str, str], out_png: str | os.PathLike, *,
                           metric: str = "AP50", style: Mapping[str, Any] | None = None):
    """One panel per family: every run's validation ``metric`` (AP50, mIoU) per epoch (a multimodal run fine-tuned
    from a checkpoint from its epoch 0, the validation of its starting weights)."""
    st = resolve_style(style)
    families = list(dict.fromkeys(run["run"].get("family", "other") for run in runs))
    cells = list(dict.fromkeys(cell_label(r["run"].get("model"), r["run"].get("resolution"), r["run"].get("phase"))
                               for r in runs))
    colors = dict(zip(cells, palette_colors(len(cells), st)))
    with mpl.rc_context(rc_params(st)):
        figure = new_figure(st, (5.0 * max(len(families), 1) + 2.5, 4.2))
        axes = np.atleast_1d(figure.subplots(1, max(len(families), 1), squeeze=False).ravel())
        for ax, family in zip(axes, families):
            shown = set()
            for run in runs:
                meta = run["run"]
                if meta.get("family", "other") != family or run["metrics_path"] not in histories:
                    continue
                cell = cell_label(meta.get("model"), meta.get("resolution"), meta.get("phase"))
                epochs, values = _validation(histories[run["metrics_path"]], metric)
                ax.plot(epochs, values, color=colors[cell], lw=1.4, marker=".", label=None if cell in shown else cell)
                shown.add(cell)
            ax.set_title(family_label(family))
            ax.set_xlabel("epoch")
            ax.set_ylabel(f"validation {metric}")
            ax.grid(alpha=0.3)
            ax.legend(fontsize=st["font_size"] - 2)
        figure.suptitle(f"Validation {metric} during training, per family (each seed a line)")
        save_styled(figure, out_png, st)
    return figure


def cross_run_figures(*, metrics_paths: list, histories: list, comparisons_json, outputs: dict[str, str],
                      style: dict[str, Any] | None = None) -> None:
    """Write the five figures named in ``outputs`` (accuracy_cost, class_heatmap, ap_by_size,
    pr_by_class, validation_curves); ``histories[i]`` is the history.csv of ``metrics_paths[i]``."""
    if len(histories) != len(metrics_paths):
        raise ValueError(f"{len(histories)} history files for {len(metrics_paths)} metrics files: "
                         "the rule must give one history.csv per run, in the same order")
    runs = load_runs(metrics_paths)
    history_of = {str(m): str(h) for m, h in zip(metrics_paths, histories)}
    significance = Significance.load(comparisons_json)
    table = runs_table(runs).merge(costs_table(runs)[["cell", "gflops"]], on="cell", how="left")
    plot_accuracy_cost(table, significance, outputs["accuracy_cost"], style=style)
    plot_class_heatmap(per_class_table(runs, "AP50"), outputs["class_heatmap"], style=style)
    plot_ap_by_size(table, outputs["ap_by_size"], style=style)
    plot_pr_by_class(runs, list(table["cell"]), outputs["pr_by_class"], style=style)
    plot_validation_curves(runs, history_of, outputs["validation_curves"], style=style)


def task_cross_run_figures(*, metrics_paths: list, histories: list, comparisons_json, outputs: dict[str, str],
                           columns: list, metric: str, class_metric: str,
                           style: dict[str, Any] | None = None) -> None:
    """The segmentation or classification study's figures named in ``outputs``: accuracy_cost
    (``metric`` against latency and GFLOPs, with the Pareto front), class_heatmap (each class's
    ``class_metric``, cells x classes) and validation_curves (validation ``metric`` per family);
    ``columns``: the task's result columns (``detstudy.report.task_tables``)."""
    if len(histories) != len(metrics_paths):
        raise ValueError(f"{len(histories)} history files for {len(metrics_paths)} metrics files: "
                         "the rule must give one history.csv per run, in the same order")
    runs = load_task_runs(metrics_paths)
    significance = Significance.load(comparisons_json)
    table = cell_table(runs, columns).merge(
        cell_table(runs, MODEL_COST_COLUMNS)[["cell", "gflops"]], on="cell", how="left")
    plot_accuracy_cost(table, significance, outputs["accuracy_cost"], metric=metric, style=style)
    plot_class_heatmap(class_metric_table(runs, class_metric), outputs["class_heatmap"], style=style)
    plot_validation_curves(runs, {str(m): str(h) for m, h in zip(metrics_paths, histories)},
                           outputs["validation_curves"], metric=metric, style=style)


def segmentation_cross_run_figures(**arguments) -> None:
    """:func:`task_cross_run_figures` with mIoU and each class's IoU."""
    task_cross_run_figures(columns=SEGMENTATION_COLUMNS, metric="mIoU", class_metric="IoU", **arguments)


def classification_cross_run_figures(**arguments) -> None:
    """:func:`task_cross_run_figures` with accuracy and each class's F1."""
    task_cross_run_figures(columns=CLASSIFICATION_COLUMNS, metric="accuracy", class_metric="F1", **arguments)
