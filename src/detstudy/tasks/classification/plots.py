"""The classification figures of one run: the training curves (train against validation loss and
accuracy, the seed study's table as a picture), per-class precision, recall and F1, the
reliability diagram and the most confident mistakes (the confusion matrix is
:func:`detstudy.figures.confusion.plot_normalised_confusion`). Each draws on its own Agg figure,
styled by :mod:`detstudy.engine.figure_style`.
"""

from __future__ import annotations

import os
from typing import Any, Mapping

import matplotlib as mpl
import numpy as np

from detstudy.engine.figure_style import new_figure, palette_colors, rc_params, resolve_style, save_styled
from detstudy.engine.history import read_history

#: (column, label) of each panel of the training curves; absent columns are left out.
CURVES = {"loss": (("loss", "train"), ("val_loss", "validation")),
          "accuracy": (("train_accuracy", "train"), ("val_accuracy", "validation"), ("val_macro_F1", "validation macro F1"))}


def plot_classification_curves(history_csv, out_png: str | os.PathLike, *, best_epoch: int | None = None,
                                title: str | None = None, style: Mapping[str, Any] | None = None):
    """Loss (left) and accuracy (right) per epoch, train against validation, the best epoch marked.
    Train accuracy is on the un-mixed labels of the augmented batches (MixUp/CutMix lower it)."""
    st = resolve_style(style)
    rows = read_history(history_csv)
    colors = palette_colors(3, st)
    with mpl.rc_context(rc_params(st)):
        figure = new_figure(st, (11.0, 4.2))
        for ax, (panel, series) in zip(figure.subplots(1, 2), CURVES.items()):
            for (column, label), color in zip(series, colors):
                points = [(row["epoch"], row[column]) for row in rows if column in row]
                if points:
                    epochs, values = zip(*points)
                    ax.plot(epochs, values, marker=".", color=color, lw=float(st["line_width"]), label=label)
            if best_epoch:
                ax.axvline(best_epoch, color="0.4", ls=":", lw=1, label=f"best epoch {best_epoch}")
            ax.set_xlabel("epoch")
            ax.set_ylabel(panel)
            if panel == "accuracy":
                ax.set_ylim(0, 1.02)
            ax.grid(alpha=0.3)
            ax.legend(fontsize=st["font_size"] - 2)
        figure.suptitle(title or "Training curves")
        save_styled(figure, out_png, st)
    return figure


def plot_per_class_scores(metrics: dict, out_png: str | os.PathLike, *, title: str | None = None,
                          style: Mapping[str, Any] | None = None):
    """Each class's precision, recall and F1 as bars, its test images (support) under its name,
    the macro F1 as a line."""
    st = resolve_style(style)
    entries = metrics["per_class"]
    x = np.arange(len(entries))
    with mpl.rc_context(rc_params(st)):
        figure = new_figure(st, (max(7.0, 0.9 * len(entries) + 3.0), 4.6))
        ax = figure.subplots()
        for k, (key, color) in enumerate(zip(("precision", "recall", "F1"), palette_colors(3, st))):
            ax.bar(x + (k - 1) * 0.27, [entry[key] for entry in entries], 0.27, color=color, label=key)
        ax.axhline(metrics["macro_F1"] or 0.0, color="0.3", ls="--", lw=1, label=f"macro F1 {metrics['macro_F1'] or 0:.3f}")
        ax.set_xticks(x, [f"{entry['name']}\n(n={entry['support']})" for entry in entries], rotation=30, ha="right")
        ax.set_ylim(0, 1.05)
        ax.set_ylabel("test score")
        ax.legend(fontsize=st["font_size"] - 2)
        ax.grid(axis="y", alpha=0.3)
        ax.set_title(title or "Per-class precision, recall and F1 (test)")
        save_styled(figure, out_png, st)
    return figure


def plot_reliability(metrics: dict, out_png: str | os.PathLike, *, title: str | None = None,
                     style: Mapping[str, Any] | None = None):
    """The reliability diagram: each confidence bin's accuracy against its mean confidence (bars;
    the diagonal is perfect calibration), the images per bin below, the ECE in the title."""
    st = resolve_style(style)
    bins = metrics["calibration_bins"]
    centres = np.array([(b["low"] + b["high"]) / 2 for b in bins])
    width = bins[0]["high"] - bins[0]["low"]
    accuracy = np.array([b["accuracy"] if b["accuracy"] is not None else 0.0 for b in bins])
    confidence = np.array([b["confidence"] if b["confidence"] is not None else c for b, c in zip(bins, centres)])
    counts = np.array([b["images"] for b in bins])
    color, gap = palette_colors(2, st)
    with mpl.rc_context(rc_params(st)):
        figure = new_figure(st, (5.6, 6.2))
        top, bottom = figure.subplots(2, 1, sharex=True, gridspec_kw={"height_ratios": (3, 1)})
        filled = counts > 0
        top.bar(centres[filled], accuracy[filled], width * 0.95, color=color, label="accuracy")
        top.bar(centres[filled], np.abs(confidence - accuracy)[filled], width * 0.95,
                bottom=np.minimum(confidence, accuracy)[filled], facecolor="none", edgecolor=gap, hatch="//",
                label="gap to the bin's mean confidence")
        top.plot([0, 1], [0, 1], color="0.3", ls="--", lw=1, label="perfect calibration")
        top.set_ylim(0, 1)
        top.set_ylabel("accuracy")
        top.legend(fontsize=st["font_size"] - 2, loc="upper left")
        top.set_title(title or f"Reliability (ECE {metrics['ECE']:.3f})")
        bottom.bar(centres, counts, width * 0.95, color="0.5")
        bottom.set_xlim(0, 1)
        bottom.set_xlabel("confidence (highest probability)")
        bottom.set_ylabel("images")
        save_styled(figure, out_png, st)
    return figure


def most_confident_mistakes(true, probabilities, count: int) -> list[int]:
    """Indices of the wrongly classified images, the most confident first (ties: the first image)."""
    probabilities = np.asarray(probabilities)
    predicted = probabilities.argmax(axis=1)
    wrong = np.flatnonzero(predicted != np.asarray(true))
    order = np.argsort(-probabilities[wrong, predicted[wrong]], kind="stable")
    return [int(i) for i in wrong[order][:count]]


def plot_mistakes(items: list[dict], out_png: str | os.PathLike, *, title: str | None = None,
                  style: Mapping[str, Any] | None = None):
    """A grid of images (``image`` [H, W, 3] uint8, ``truth``, ``predicted``, ``confidence``, ``name``),
    each titled with its true and predicted class; an empty grid says there is no mistake."""
    st = resolve_style(style)
    columns = min(4, max(len(items), 1))
    rows = max(1, -(-len(items) // columns))
    with mpl.rc_context(rc_params(st)):
        figure = new_figure(st, (3.0 * columns, 3.2 * rows + 0.6))
        axes = np.atleast_1d(figure.subplots(rows, columns, squeeze=False).ravel())
        for ax, item in zip(axes, items):
            ax.imshow(item["image"], interpolation="nearest")
            ax.set_title(f"{item['name']}\ntrue {item['truth']}\npredicted {item['predicted']} ({item['confidence']:.0%})",
                         fontsize=st["font_size"] - 2)
        for ax in axes:
            ax.set_axis_off()
        if not items:
            axes[0].text(0.5, 0.5, "no mistakes on the test split", ha="center", va="center")
        figure.suptitle(title or "The most confident mistakes (test)")
        save_styled(figure, out_png, st)
    return figure
