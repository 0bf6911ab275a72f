"""The training curves of any task's run, drawn from its ``history.csv`` (the engine's record).

Drawn on its own :class:`matplotlib.figure.Figure` with the Agg canvas (no pyplot state), styled
by :mod:`detstudy.engine.figure_style`.
"""

from __future__ import annotations

import os
from typing import Any, Mapping

import matplotlib as mpl
import numpy as np

from detstudy.engine.figure_style import new_figure, palette_colors, rc_params, resolve_style, save_styled
from detstudy.engine.history import read_history

#: Detection's validation columns and their labels, in legend order.
DETECTION_VALIDATION = (("val_AP50", "val AP50"), ("val_AP", "val AP (.50:.95)"))


def plot_training_curves(history_csv: str | os.PathLike, out_png: str | os.PathLike, *,
                         best_by: str = "val_AP50", best_epoch: int | None = None, title: str | None = None,
                         validation: tuple[tuple[str, str], ...] = DETECTION_VALIDATION, metric_name: str = "AP",
                         style: Mapping[str, Any] | None = None):
    """Two panels from a ``history.csv`` (epoch, lr, loss, loss_*, val_<metric>..., seconds).

    Left: total loss (bold) and its components vs epoch, learning rate on a right axis.
    Right: the ``validation`` columns ((column, label), detection's AP50 and AP by default;
    segmentation's mIoU and mDice) vs epoch, with ``best_epoch`` marked (the epoch the best
    checkpoint holds; without it, the first maximum of ``best_by`` among the trained epochs:
    epoch 0, a fine-tuning run's start, is never a candidate). Missing columns and empty cells
    (epochs without validation) are tolerated. Returns the (closed) figure.
    """
    import pandas as pd

    st = resolve_style(style)
    history = pd.DataFrame(read_history(history_csv))  # the one reader: numbers, empty cells missing
    epochs = history["epoch"] if "epoch" in history else pd.Series(np.arange(1, len(history) + 1))
    lw = float(st["line_width"])

    with mpl.rc_context(rc_params(st)):
        figure = new_figure(st, (11.0, 4.2))
        ax_loss, ax_val = figure.subplots(1, 2)

        components = [c for c in history.columns if c.startswith("loss_")]
        colors = palette_colors(len(components) + 1, st)
        handles = []
        if "loss" in history:
            handles += ax_loss.plot(epochs, history["loss"], color="black", lw=lw + 0.6, label="loss (total)")
        for color, column in zip(colors[1:] if len(colors) > 1 else colors, components):
            handles += ax_loss.plot(epochs, history[column], color=color, lw=lw * 0.8, alpha=0.9,
                                    label=column.removeprefix("loss_").replace("_", " "))
        ax_loss.set_xlabel("epoch")
        ax_loss.set_ylabel("training loss")
        ax_loss.set_title("Training loss")
        ax_loss.grid(alpha=0.3)
        if "lr" in history and history["lr"].notna().any():
            ax_lr = ax_loss.twinx()
            handles += ax_lr.plot(epochs, history["lr"], color="grey", ls=":", lw=lw * 0.8, label="learning rate")
            ax_lr.set_ylabel("learning rate", color="grey")
            ax_lr.tick_params(axis="y", colors="grey")
            ax_lr.ticklabel_format(axis="y", style="sci", scilimits=(-2, 3))
        if handles:
            ax_loss.legend(handles=handles, loc="upper right", framealpha=0.85)

        plotted = False
        for (column, label), color in zip(validation, ("#1f77b4", "#d62728", "#2ca02c", "#9467bd")):
            if column in history and history[column].notna().any():
                valid = history[column].notna()
                ax_val.plot(epochs[valid], history[column][valid], marker="o", ms=3, color=color, lw=lw, label=label)
                plotted = True
        criterion = best_by if best_by in history and history[best_by].notna().any() else None
        if criterion is None:
            criterion = next((c for c, _ in validation if c in history and history[c].notna().any()), None)
        candidates = history[criterion].where(epochs >= 1) if criterion is not None else None
        if best_epoch is None and candidates is not None and candidates.notna().any():
            best_epoch = epochs.iloc[int(candidates.idxmax())]  # first maximum, as the training picks it
        marked = history[criterion][epochs == best_epoch].dropna() if criterion and best_epoch is not None else []
        if len(marked):
            best_value = marked.iloc[0]
            ax_val.axvline(best_epoch, color="grey", ls="--", lw=1)
            ax_val.plot([best_epoch], [best_value], marker="*", ms=14, color="gold", mec="black", ls="none",
                        label=f"best epoch {best_epoch:g} ({criterion.removeprefix('val_')} {best_value:.3f})")
        if not plotted:
            ax_val.text(0.5, 0.5, "no validation results", ha="center", va="center", transform=ax_val.transAxes)
        ax_val.set_xlabel("epoch")
        ax_val.set_ylabel(f"validation {metric_name}")
        ax_val.set_ylim(0, 1)
        ax_val.set_title(f"Validation {metric_name}")
        ax_val.grid(alpha=0.3)
        if plotted:
            ax_val.legend(loc="lower right", framealpha=0.85)
        if title:
            figure.suptitle(title)
        save_styled(figure, out_png, st)
    return figure
