"""The row-normalised confusion matrix of any task (segmentation: pixels; classification: images),
drawn on its own Agg figure, styled by :mod:`detstudy.engine.figure_style`."""

from __future__ import annotations

import os
from typing import Any, Mapping

import matplotlib as mpl
import numpy as np

from detstudy.engine.figure_style import new_figure, rc_params, resolve_style, save_styled


def plot_normalised_confusion(confusion, class_names: list[str], out_png: str | os.PathLike, *, unit: str = "pixels",
                              title: str | None = None, style: Mapping[str, Any] | None = None):
    """A confusion matrix of ``unit`` (pixels, images), each ground-truth row normalised to 1 (a
    class without any: an empty row)."""
    st = resolve_style(style)
    counts = np.asarray(confusion, dtype=float)
    sums = counts.sum(axis=1, keepdims=True)
    values = np.divide(counts, sums, out=np.zeros_like(counts), where=sums > 0)
    n = len(class_names)
    side = max(4.5, 0.7 * n + 2.5)
    with mpl.rc_context(rc_params(st)):
        figure = new_figure(st, (side + 1.2, side))
        ax = figure.subplots()
        image = ax.imshow(values, cmap=st["cmap"], vmin=0.0, vmax=1.0, aspect="equal")
        figure.colorbar(image, ax=ax, shrink=0.8, label=f"fraction of the ground-truth class's {unit}")
        for (i, j), value in np.ndenumerate(values):
            if sums[i, 0] > 0 and (value >= 0.005 or i == j):
                ax.text(j, i, f"{value:.0%}", ha="center", va="center", fontsize=st["font_size"] - 2,
                        color="white" if value > 0.5 else "black")
        ax.set_xticks(range(n), class_names, rotation=40, ha="right")
        ax.set_yticks(range(n), [name if sums[k, 0] > 0 else f"{name} (no {unit})" for k, name in enumerate(class_names)])
        ax.set_xlabel("predicted class")
        ax.set_ylabel("ground-truth class")
        ax.set_title(title or f"Confusion matrix (row-normalised, {unit})")
        save_styled(figure, out_png, st)
    return figure
