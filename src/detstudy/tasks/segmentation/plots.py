"""The segmentation figures: the dataset's class balance, one run's overlays (image | ground
truth | prediction with a legend of class colours), its row-normalised confusion matrix and
per-class IoU bars (the confusion matrix: :func:`detstudy.figures.confusion.plot_normalised_confusion`). Each draws on its own Agg figure (no pyplot state), styled by
:mod:`detstudy.engine.figure_style`; training curves are the engine's
(:func:`detstudy.engine.training_curves.plot_training_curves`).
"""

from __future__ import annotations

import os
from typing import Any, Mapping

import matplotlib as mpl
import numpy as np
from matplotlib.patches import Patch

from detstudy.engine.figure_style import new_figure, palette_colors, rc_params, resolve_style, save_styled

IGNORE_COLOR = (255, 255, 255)


def colorize(mask: np.ndarray, colors: list, ignore_index: int = 255) -> np.ndarray:
    """[H, W, 3] uint8: each class index painted in its colour, ignore pixels white."""
    table = np.zeros((max(int(mask.max(initial=0)), ignore_index, len(colors) - 1) + 1, 3), dtype=np.uint8)
    table[:len(colors)] = np.asarray(colors, dtype=np.uint8)
    table[ignore_index] = IGNORE_COLOR
    return table[mask.astype(np.int64)]


def plot_mask_statistics(statistics: dict, out_png: str | os.PathLike, *, style: Mapping[str, Any] | None = None):
    """Per class and split: the share of labelled pixels (log scale) and the images containing it."""
    st = resolve_style(style)
    names = statistics["classes"]
    splits = list(statistics["splits"])
    x = np.arange(len(names))
    width = 0.8 / max(len(splits), 1)
    with mpl.rc_context(rc_params(st)):
        figure = new_figure(st, (max(8.0, 0.8 * len(names) + 3.0), 7.0))
        ax_pixels, ax_images = figure.subplots(2, 1, sharex=True)
        for k, (split, color) in enumerate(zip(splits, palette_colors(len(splits), st))):
            entries = statistics["splits"][split]["per_class"]
            offset = (k - (len(splits) - 1) / 2) * width
            ax_pixels.bar(x + offset, [max(e["pixel_share"], 1e-7) for e in entries], width, color=color, label=split)
            ax_images.bar(x + offset, [e["images"] for e in entries], width, color=color, label=split)
        ax_pixels.set_yscale("log")
        ax_pixels.set_ylabel("share of labelled pixels")
        ax_pixels.set_title("Class balance per split (ignore pixels left out)")
        ax_pixels.legend()
        ax_images.set_ylabel("images containing the class")
        ax_images.set_xticks(x, names, rotation=35, ha="right")
        for ax in (ax_pixels, ax_images):
            ax.grid(axis="y", alpha=0.3)
        save_styled(figure, out_png, st)
    return figure


def plot_overlays(samples: list[dict], class_names: list[str], colors: list, out_png: str | os.PathLike, *,
                  ignore_index: int = 255, alpha: float = 0.55, title: str | None = None,
                  style: Mapping[str, Any] | None = None):
    """One row per sample (``image`` [H, W, 3] uint8, ``truth`` and ``prediction`` [H, W], ``name``):
    the image, the ground truth over it and the prediction over it, with a legend of the classes."""
    st = resolve_style(style)
    with mpl.rc_context(rc_params(st)):
        figure = new_figure(st, (11.0, 3.3 * max(len(samples), 1) + 0.8))
        axes = np.atleast_2d(figure.subplots(max(len(samples), 1), 3, squeeze=False))
        for row, sample in zip(axes, samples):
            image = sample["image"].astype(np.float32)
            panels = [image, *(image * (1 - alpha) + alpha * colorize(sample[key], colors, ignore_index)
                               for key in ("truth", "prediction"))]
            for ax, panel, label in zip(row, panels, ("image", "ground truth", "prediction")):
                ax.imshow(np.clip(panel, 0, 255).astype(np.uint8), interpolation="nearest")
                ax.set_title(f"{sample['name']}: {label}" if label == "image" else label, fontsize=st["font_size"] - 1)
                ax.set_axis_off()
        for ax in axes.ravel()[3 * len(samples):]:
            ax.set_axis_off()
        handles = [Patch(color=np.asarray(c) / 255, label=name) for name, c in zip(class_names, colors)]
        handles.append(Patch(facecolor="white", edgecolor="0.5", label="ignore"))
        figure.legend(handles=handles, loc="outside lower center", ncols=min(len(handles), 6),
                      fontsize=st["font_size"] - 2, frameon=False)
        if title:
            figure.suptitle(title)
        save_styled(figure, out_png, st)
    return figure


def plot_per_class_iou(metrics: dict, out_png: str | os.PathLike, *, title: str | None = None,
                       style: Mapping[str, Any] | None = None):
    """Each class's IoU and Dice as bars; a class absent from ground truth and prediction is
    marked "absent" (left out of the means), not drawn as 0."""
    st = resolve_style(style)
    entries = metrics["per_class"]
    x = np.arange(len(entries))
    with mpl.rc_context(rc_params(st)):
        figure = new_figure(st, (max(7.0, 0.75 * len(entries) + 3.0), 4.6))
        ax = figure.subplots()
        for k, (key, color) in enumerate(zip(("IoU", "Dice"), palette_colors(2, st))):
            values = [entry[key] if entry[key] is not None else 0.0 for entry in entries]
            ax.bar(x + (k - 0.5) * 0.4, values, 0.4, color=color, label=key)
        for xi, entry in zip(x, entries):
            if entry["IoU"] is None:
                ax.text(xi, 0.01, "absent", rotation=90, ha="center", va="bottom", fontsize=st["font_size"] - 2)
        ax.axhline(metrics["mIoU"] or 0.0, color="0.3", ls="--", lw=1, label=f"mIoU {metrics['mIoU'] or 0:.3f}")
        ax.set_xticks(x, [entry["name"] for entry in entries], rotation=35, ha="right")
        ax.set_ylim(0, 1)
        ax.set_ylabel("test score")
        ax.legend()
        ax.grid(axis="y", alpha=0.3)
        ax.set_title(title or "Per-class IoU and Dice (test)")
        save_styled(figure, out_png, st)
    return figure
