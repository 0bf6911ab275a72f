"""The statistics figures: every cell's headline metric (AP50, mIoU) with its interval (a forest plot) and the paired
differences to the baseline, from ``comparisons.json``."""

from __future__ import annotations

import os
from typing import Any

from detstudy.engine.figure_style import palette_colors, new_figure, rc_params, save_styled, resolve_style
from detstudy.study.families import family_rank
from detstudy.engine.io import read_json


def _interval(ax, estimate: float, y: float, low: float, high: float, color, **marker):
    """The interval as a line from ``low`` to ``high`` with end caps, and a dot at the estimate.
    Not errorbar: its whiskers are measured from the estimate, so an interval wholly on one side
    of it (basic and BCa ones can be) would be drawn stretched to the estimate."""
    ax.plot([low, high], [y, y], color=color, marker="|", markersize=6)
    ax.plot([estimate], [y], "o", color=color, **marker)


def plot_forest(record: dict, out_png: str | os.PathLike, *, metric: str = "AP50", style: dict | None = None):
    """One row per cell: the value (seeds pooled) and its interval, coloured by family."""
    import matplotlib as mpl

    style = resolve_style(style)
    cells = record["cells"]
    families = sorted({c["family"] for c in cells}, key=family_rank)
    colors = dict(zip(families, palette_colors(len(families), style)))
    settings = record["settings"]
    with mpl.rc_context(rc_params(style)):
        figure = new_figure(style, (7.0, 0.9 + 0.35 * len(cells)))
        ax = figure.add_subplot()
        for row, cell in enumerate(cells):
            value = cell["metrics"][metric]
            if value["estimate"] is None:
                continue
            low = value["low"] if value["low"] is not None else value["estimate"]
            high = value["high"] if value["high"] is not None else value["estimate"]
            _interval(ax, value["estimate"], row, low, high, colors[cell["family"]],
                      label=cell["family"] if cell["family"] not in ax.get_legend_handles_labels()[1] else None)
        ax.set_yticks(range(len(cells)), [c["label"] for c in cells])
        ax.invert_yaxis()
        ax.set_xlabel(f"{metric} with its {round(100 * settings['level'])}% {settings['method']} interval "
                      f"({settings['resamples']} resamples of the test images)")
        ax.grid(axis="x", alpha=0.3)
        if families:
            ax.legend(loc="best")
        ax.set_title(f"{metric} per run, seeds pooled")
    save_styled(figure, out_png, style)
    return figure


def plot_differences(record: dict, out_png: str | os.PathLike, *, metric: str = "AP50", style: dict | None = None):
    """Every cell minus the baseline at its resolution, with the interval and the Holm p-value;
    filled where the difference is significant."""
    import matplotlib as mpl

    style = resolve_style(style)
    rows = record["tables"].get("baseline") or []
    alpha = record["settings"]["alpha"]
    with mpl.rc_context(rc_params(style)):
        figure = new_figure(style, (7.0, 0.9 + 0.35 * max(len(rows), 1)))
        ax = figure.add_subplot()
        for y, row in enumerate(rows):
            found = row["metrics"][metric]
            if found["estimate"] is None:
                continue
            significant = found.get("p_holm") is not None and found["p_holm"] < alpha
            low = found["low"] if found["low"] is not None else found["estimate"]
            high = found["high"] if found["high"] is not None else found["estimate"]
            _interval(ax, found["estimate"], y, low, high, "C0", mfc="C0" if significant else "white")
            if found.get("p_holm") is not None:
                ax.annotate(f"p {found['p_holm']:.3f}", (max(high, found["estimate"]), y), xytext=(4, 0),
                            textcoords="offset points", va="center", fontsize=style["font_size"] - 2)
        ax.axvline(0.0, color="0.4", linestyle="--", linewidth=1)
        ax.set_yticks(range(len(rows)), [row["a"] for row in rows])
        ax.invert_yaxis()
        baseline = record["settings"].get("baseline")
        ax.set_xlabel(f"{metric} minus {baseline} (vanilla, same resolution); filled: Holm p < {alpha:g}")
        ax.grid(axis="x", alpha=0.3)
        ax.set_title(f"Paired differences to the baseline {baseline}" if rows else "No baseline comparisons")
    save_styled(figure, out_png, style)
    return figure


def statistics_figures(*, comparisons_json, forest_png, differences_png, style: dict[str, Any] | None = None,
                       metric: str = "AP50") -> None:
    """The statistics_figures step: both figures of ``comparisons.json`` for ``metric`` (the
    task's headline: AP50, mIoU)."""
    record = read_json(comparisons_json)
    style = {k: v for k, v in (style or {}).items() if k != "prediction_images"}
    plot_forest(record, forest_png, metric=metric, style=style)
    plot_differences(record, differences_png, metric=metric, style=style)
