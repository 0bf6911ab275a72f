"""Thesis figures: training curves, per-class AP, PR curves, confusion matrices, prediction pictures,
and the multimodal extension's cross-run figures (text similarity, the confusion of one class pair).

Every function draws on its own :class:`matplotlib.figure.Figure` with the Agg canvas (no pyplot
state, no global backend switch, safe in parallel jobs) and writes a PNG with
:func:`detstudy.engine.io.save_figure`. Looks are set by :data:`STYLE`; each function takes an optional
``style`` dict whose keys override it (e.g. ``style=config["figures"]``), unknown keys are ignored.
"""

from __future__ import annotations

import math
import os
from pathlib import Path
from typing import Any, Mapping

import matplotlib as mpl
import numpy as np
from matplotlib.lines import Line2D
from matplotlib.patches import Patch, Rectangle

from detstudy.tasks.detection.evaluation.error_kinds import ERRORS, SHORT_NAMES
from detstudy.engine.figure_style import STYLE, palette_colors, new_figure, rc_params, save_styled, resolve_style  # noqa: F401 (STYLE re-exported)
from detstudy.tasks.detection.evaluation.class_pairs import pair_confusion
from detstudy.tasks.images import load_rgb
from detstudy.engine.training_curves import plot_training_curves  # noqa: F401 (re-exported)

__all__ = [
    "STYLE",
    "plot_training_curves",
    "plot_per_class_ap",
    "plot_error_breakdown",
    "plot_pr_curves",
    "plot_confusion_matrix",
    "plot_predictions",
    "plot_text_similarity",
    "plot_pair_confusion",
]

def _fmt(value: float | None, digits: int = 3) -> str:
    return "n/a" if value is None else f"{value:.{digits}f}"


# --------------------------------------------------------------------------------------------------
# per-class AP and PR curves
# --------------------------------------------------------------------------------------------------

def plot_per_class_ap(metrics: dict, out_png: str | os.PathLike, *, title: str | None = None,
                      style: Mapping[str, Any] | None = None):
    """Grouped bars of AP50 and AP (.50:.95) per class from ``metrics["per_class"]``, values on the bars."""
    st = resolve_style(style)
    per_class = list(metrics["per_class"])
    names = [str(c["name"]) for c in per_class]
    x = np.arange(len(per_class))
    width = 0.38
    with mpl.rc_context(rc_params(st)):
        figure = new_figure(st, (max(6.0, 1.1 * len(per_class) + 2.0), 4.5))
        ax = figure.subplots()
        for offset, key, color, label in ((-width / 2, "AP50", "#1f77b4", "AP50"),
                                          (width / 2, "AP", "#ff7f0e", "AP (.50:.95)")):
            values = [c.get(key) for c in per_class]
            bars = ax.bar(x + offset, [0.0 if v is None else v for v in values], width, color=color, label=label)
            for bar, value in zip(bars, values):
                ax.annotate("no GT" if value is None else f"{value:.2f}",
                            (bar.get_x() + bar.get_width() / 2, bar.get_height()), xytext=(0, 2),
                            textcoords="offset points", ha="center", va="bottom", fontsize=st["font_size"] - 2)
        ax.set_xticks(x, [f"{n}\n({c.get('gt_boxes', '?')} GT)" if "gt_boxes" in c else n
                          for n, c in zip(names, per_class)],
                      rotation=30 if len(per_class) > 4 else 0, ha="right" if len(per_class) > 4 else "center")
        ax.set_ylim(0, 1.08)
        ax.set_ylabel("average precision")
        ax.set_xlabel("class")
        coco = metrics.get("coco") or {}
        default_title = "Per-class AP"
        if coco.get("AP50") is not None or coco.get("AP") is not None:
            default_title += f" (all classes: AP50 {_fmt(coco.get('AP50'))}, AP {_fmt(coco.get('AP'))})"
        ax.set_title(title or default_title)
        ax.grid(axis="y", alpha=0.3)
        ax.legend(loc="upper right", ncols=2, framealpha=0.85)
        save_styled(figure, out_png, st)
    return figure


def plot_error_breakdown(errors: dict, out_png: str | os.PathLike, *, title: str | None = None,
                         style: Mapping[str, Any] | None = None):
    """TIDE's two panels from ``metrics["errors"]``: the AP50 each error type costs (bars, with
    its count), and what perfect precision and perfect recall would add."""
    st = resolve_style(style)
    with mpl.rc_context(rc_params(st)):
        figure = new_figure(st, (8.5, 3.8))
        main, special = figure.subplots(1, 2, width_ratios=[3, 1.2])
        values = [errors["dAP"][name] or 0.0 for name in ERRORS]  # None: undefined (no objects at all)
        bars = main.bar(range(len(ERRORS)), values, color=palette_colors(len(ERRORS), st))
        for bar, name, value in zip(bars, ERRORS, values):
            main.annotate(f"{value:.3f}\n({errors['counts'][name]})", (bar.get_x() + bar.get_width() / 2, value),
                          xytext=(0, 2), textcoords="offset points", ha="center", va="bottom",
                          fontsize=st["font_size"] - 2)
        main.set_xticks(range(len(ERRORS)), [f"{SHORT_NAMES[n]}\n{n}" for n in ERRORS], fontsize=st["font_size"] - 1)
        main.set_ylabel("dAP50 if fixed (count)")
        extra = [errors["false_positives_dAP"] or 0.0, errors["false_negatives_dAP"] or 0.0]
        top = max(values + extra + [0.01])
        main.set_ylim(0, top * 1.3)
        main.grid(axis="y", alpha=0.3)
        bars = special.bar([0, 1], extra, color=["#7f7f7f", "#bcbd22"])
        for bar, value in zip(bars, extra):
            special.annotate(f"{value:.3f}", (bar.get_x() + bar.get_width() / 2, value), xytext=(0, 2),
                             textcoords="offset points", ha="center", va="bottom", fontsize=st["font_size"] - 2)
        special.set_xticks([0, 1], ["false\npositives", "false\nnegatives"], fontsize=st["font_size"] - 1)
        special.set_ylim(0, top * 1.3)
        special.grid(axis="y", alpha=0.3)
        figure.suptitle(title or f"TIDE errors at IoU {errors['iou_threshold']} (AP50 {_fmt(errors['AP50'])})")
        save_styled(figure, out_png, st)
    return figure


def plot_pr_curves(pr_curves: list[dict], out_png: str | os.PathLike, *, title: str | None = None,
                   style: Mapping[str, Any] | None = None):
    """One precision-recall curve per class (IoU 0.5), AP50 in the legend; classes without GT are listed as such.

    Each curve ends (dot) at the highest recall the class reaches.
    """
    st = resolve_style(style)
    colors = palette_colors(len(pr_curves), st)
    with mpl.rc_context(rc_params(st)):
        figure = new_figure(st, (6.2, 5.4))
        ax = figure.subplots()
        for color, curve in zip(colors, pr_curves):
            recall = np.asarray(curve["recall"], dtype=float)
            precision = np.nan_to_num(np.asarray(curve["precision"], dtype=float), nan=0.0).clip(0, 1)
            ap50 = curve.get("AP50", float(precision.mean()) if precision.size else None)
            if "AP50" in curve and ap50 is None:
                ax.plot([], [], color=color, label=f"{curve['name']} (no GT)")
                continue
            # COCO's interpolated precision is 0 past the highest recall reached: end the curve there instead
            reached = np.flatnonzero(precision > 0)
            end = int(reached[-1]) + 1 if reached.size else 0
            ax.plot(recall[:end], precision[:end], color=color, lw=float(st["line_width"]), clip_on=False,
                    marker="o", markevery=[end - 1] if end else [], ms=4,
                    label=f"{curve['name']} (AP50 {ap50:.3f})")
        ax.set_xlim(0, 1)
        ax.set_ylim(0, 1.03)
        ax.set_xlabel("recall")
        ax.set_ylabel("precision")
        ax.set_title(title or "Precision-recall curves (IoU 0.5)")
        ax.grid(alpha=0.3)
        if pr_curves:
            ax.legend(loc="lower left", framealpha=0.85)
        save_styled(figure, out_png, st)
    return figure


# --------------------------------------------------------------------------------------------------
# confusion matrix
# --------------------------------------------------------------------------------------------------

def plot_confusion_matrix(confusion: dict, out_png: str | os.PathLike, normalize: bool = True, *,
                          title: str | None = None, style: Mapping[str, Any] | None = None):
    """Heatmap of a :func:`detstudy.tasks.detection.evaluation.confusion.confusion_matrix` result.

    Rows are ground truth, columns predictions, with the background row (false positives) and
    column (missed GT). Cells show counts; with ``normalize`` colours are row fractions and the
    cells also show the percentage of the row.
    """
    st = resolve_style(style)
    labels = [str(label) for label in confusion["labels"]]
    counts = np.asarray(confusion["matrix"], dtype=float).reshape(len(labels), len(labels))
    if normalize:
        sums = counts.sum(axis=1, keepdims=True)
        values = np.divide(counts, sums, out=np.zeros_like(counts), where=sums > 0)
        vmax = 1.0
    else:
        values = counts
        vmax = max(float(counts.max()), 1.0)
    n = len(labels)
    side = max(4.5, 0.85 * n + 2.5)
    with mpl.rc_context(rc_params(st)):
        figure = new_figure(st, (side + 1.0, side))
        ax = figure.subplots()
        image = ax.imshow(values, cmap=st["cmap"], vmin=0.0, vmax=vmax, aspect="equal")
        colorbar = figure.colorbar(image, ax=ax, shrink=0.8)
        colorbar.set_label("fraction of the row (ground truth)" if normalize else "count")
        cmap = mpl.colormaps[st["cmap"]]
        for i in range(n):
            for j in range(n):
                count = int(counts[i, j])
                if i == n - 1 and j == n - 1:
                    continue
                text = f"{count}\n{values[i, j]:.0%}" if normalize and count else f"{count}"
                r, g, b, _ = cmap(values[i, j] / vmax)
                dark = 0.299 * r + 0.587 * g + 0.114 * b < 0.5
                ax.text(j, i, text, ha="center", va="center", fontsize=st["font_size"] - 1,
                        color="white" if dark else "black", alpha=1.0 if count else 0.45)
        ax.set_xticks(range(n), labels, rotation=40, ha="right")
        ax.set_yticks(range(n), labels)
        ax.set_xlabel("predicted class")
        ax.set_ylabel("ground-truth class")
        # separate the background row/column
        ax.axhline(n - 1.5, color="black", lw=1)
        ax.axvline(n - 1.5, color="black", lw=1)
        thresholds = []
        if confusion.get("score_threshold") is not None:
            thresholds.append(f"score ≥ {confusion['score_threshold']:.2f}")
        if confusion.get("iou_threshold") is not None:
            thresholds.append(f"IoU ≥ {confusion['iou_threshold']:.2f}")
        default_title = "Confusion matrix" + (" (row-normalised)" if normalize else "")
        if thresholds:
            default_title += "\n" + ", ".join(thresholds)
        ax.set_title(title or default_title)
        save_styled(figure, out_png, st)
    return figure


# --------------------------------------------------------------------------------------------------
# prediction pictures
# --------------------------------------------------------------------------------------------------

def _select_images(gt: dict, max_images: int, seed: int) -> list[dict]:
    """Images with GT boxes first (random but seeded order), then images without, up to ``max_images``."""
    with_boxes = {ann["image_id"] for ann in gt["annotations"]}
    images = sorted(gt["images"], key=lambda img: (not isinstance(img["id"], int),
                                                   img["id"] if isinstance(img["id"], int) else str(img["id"])))
    rng = np.random.default_rng(seed)
    first = [img for img in images if img["id"] in with_boxes]
    second = [img for img in images if img["id"] not in with_boxes]
    chosen = [first[i] for i in rng.permutation(len(first))]
    if len(chosen) < max_images:
        chosen += [second[i] for i in rng.permutation(len(second))]
    return chosen[:max(0, int(max_images))]


def _draw_box(ax, bbox, scale: float, size: tuple[int, int], color, label: str, *, dashed: bool, below: bool,
              font_size: float, lw: float) -> None:
    """Box plus a label above it (GT) or below it (predictions), moved inside near the image borders."""
    x, y, w, h = (float(v) * scale for v in bbox)
    width, height = size
    ax.add_patch(Rectangle((x, y), w, h, fill=False, edgecolor=color, lw=lw, ls="--" if dashed else "-"))
    margin = 0.07 * height
    if below:
        ty, va = (y + h, "top") if y + h < height - margin else (y + h, "bottom")
    else:
        ty, va = (y, "bottom") if y > margin else (y, "top")
    tx, ha = (x, "left") if x < 0.6 * width else (x + w, "right")
    ax.text(tx, ty, label, color="white", fontsize=font_size, va=va, ha=ha,
            bbox={"facecolor": color, "alpha": 0.8, "pad": 1, "edgecolor": "none"}, clip_on=True)


def plot_predictions(gt: dict, detections: list[dict], images_dir: str | os.PathLike, out_png: str | os.PathLike, *,
                     score_threshold: float, max_images: int = 8, seed: int = 0, title: str | None = None,
                     style: Mapping[str, Any] | None = None):
    """Grid of test images: GT boxes (green, solid, class name) and predictions with score >= threshold
    (red-orange, dashed, class name and score). Images with GT boxes are chosen first, deterministically
    from ``seed``. Image files are ``images_dir / image["file_name"]``.
    """

    st = resolve_style(style)
    names = {int(c["id"]): str(c["name"]) for c in gt["categories"]}
    chosen = _select_images(gt, max_images, seed)
    gt_by_image: dict = {}
    for ann in gt["annotations"]:
        gt_by_image.setdefault(ann["image_id"], []).append(ann)
    det_by_image: dict = {}
    for det in detections:
        if float(det["score"]) >= score_threshold:
            det_by_image.setdefault(det["image_id"], []).append(det)

    n = len(chosen)
    cols = min(4, max(n, 1))
    rows = max(1, math.ceil(n / cols))
    panel = float(st["panel_width"])
    small = float(st["font_size"]) - 2
    lw = float(st["line_width"])
    with mpl.rc_context(rc_params(st)):
        figure = new_figure(st, (panel * cols, panel * rows * 0.85 + 0.6))
        axes = np.atleast_1d(figure.subplots(rows, cols, squeeze=False).ravel())
        for ax in axes:
            ax.set_axis_off()
        if n == 0:
            axes[0].text(0.5, 0.5, "no images", ha="center", va="center", transform=axes[0].transAxes)
        for ax, info in zip(axes, chosen):
            path = Path(images_dir) / info["file_name"]
            if not path.is_file():
                raise FileNotFoundError(f"{path}: image of image id {info['id']} not found. "
                                        "Fix: check the images folder of this split in your config.")
            image = load_rgb(path)  # the picture as the model saw it (16-bit greyscale scaled, not saturated)
            scale = min(1.0, float(st["max_image_side"]) / max(image.size))
            if scale < 1.0:
                image = image.resize((max(1, round(image.width * scale)), max(1, round(image.height * scale))))
            ax.imshow(np.asarray(image))
            gts = gt_by_image.get(info["id"], [])
            dets = sorted(det_by_image.get(info["id"], []), key=lambda d: -float(d["score"]))
            for ann in gts:
                _draw_box(ax, ann["bbox"], scale, image.size, st["gt_color"], names.get(int(ann["category_id"]), str(ann["category_id"])),
                          dashed=False, below=False, font_size=small, lw=lw)
            for det in dets:
                label = f"{names.get(int(det['category_id']), str(det['category_id']))} {float(det['score']):.2f}"
                _draw_box(ax, det["bbox"], scale, image.size, st["pred_color"], label, dashed=True, below=True, font_size=small, lw=lw)
            name = Path(str(info["file_name"])).name
            if len(name) > 28:
                name = name[:12] + "…" + name[-14:]
            ax.set_title(f"{name}\nGT {len(gts)} · predicted {len(dets)}", fontsize=st["font_size"])
        handles = [Patch(facecolor="none", edgecolor=st["gt_color"], lw=lw, label="ground truth"),
                   Line2D([], [], color=st["pred_color"], lw=lw, ls="--", label=f"prediction (score ≥ {score_threshold:.2f})")]
        figure.legend(handles=handles, loc="outside lower center", ncols=2, frameon=False)
        if title:
            figure.suptitle(title)
        save_styled(figure, out_png, st)
    return figure


# --------------------------------------------------------------------------------------------------
# multimodal extension: text similarity and the confusion of one class pair across runs
# --------------------------------------------------------------------------------------------------

def plot_text_similarity(panels: list[tuple[str, dict]], out_png: str | os.PathLike, *, title: str | None = None,
                         style: Mapping[str, Any] | None = None):
    """One heatmap per text run: ``(label, metrics["text_similarity"])`` with rows the ground-truth class of
    the test boxes' matched queries (and how many were matched), columns the class descriptions, cells the
    mean cosine similarity. One diverging colour scale for all panels (symmetric about 0, so the colours
    of two runs compare); the diagonal, where each class should be most similar to its own
    description, is outlined. A panel whose ``descriptions`` say that class j was fused with
    another class's text (the shuffled control) labels its columns so. Returns the (closed) figure.
    """
    st = resolve_style(style)
    matrices = [np.asarray([[math.nan if v is None else v for v in row] for row in sim["matrix"]], dtype=float)
                for _, sim in panels]
    finite = [np.abs(m[np.isfinite(m)]) for m in matrices]
    limit = min(1.0, max([float(f.max()) for f in finite if f.size] + [1e-3]))
    n_classes = max([len(sim["classes"]) for _, sim in panels] + [1])
    cols = min(3, max(len(panels), 1))
    rows = max(1, math.ceil(len(panels) / cols))
    side = max(3.8, 0.7 * n_classes + 2.2)
    with mpl.rc_context(rc_params(st)):
        figure = new_figure(st, (side * cols + 1.2, side * rows))
        axes = figure.subplots(rows, cols, squeeze=False).ravel()
        for ax in axes[len(panels):]:
            ax.set_axis_off()
        if not panels:
            axes[0].text(0.5, 0.5, "no run with text fusion", ha="center", va="center", transform=axes[0].transAxes)
        image = None
        for ax, (label, sim), values in zip(axes, panels, matrices):
            names = [str(c) for c in sim["classes"]]
            matched = sim.get("matched") or [None] * len(names)
            image = ax.imshow(values, cmap=st["diverging_cmap"], vmin=-limit, vmax=limit, aspect="equal")
            for i in range(values.shape[0]):
                for j in range(values.shape[1]):
                    value = values[i, j]
                    dark = math.isfinite(value) and abs(value) > 0.6 * limit
                    ax.text(j, i, "–" if not math.isfinite(value) else f"{value:.2f}", ha="center", va="center",
                            fontsize=st["font_size"] - 2, color="white" if dark else "black",
                            fontweight="bold" if i == j else "normal")
                if i < values.shape[1]:
                    ax.add_patch(Rectangle((i - 0.5, i - 0.5), 1, 1, fill=False, edgecolor="black", lw=1.6))
            texts = sim.get("descriptions") or names  # the shuffled control's columns hold other classes' texts
            ax.set_xticks(range(len(names)), [n if t == n else f"{n}: text of {t}" for n, t in zip(names, texts)],
                          rotation=40, ha="right")
            ax.set_yticks(range(len(names)), [f"{n} ({m if m is not None else '?'})" for n, m in zip(names, matched)])
            ax.set_xlabel("class score fused with the description")
            ax.set_ylabel("ground-truth class (matched boxes)")
            details = [f"{key} {sim[key]:.3g}" for key in ("gate", "temperature") if sim.get(key) is not None]
            ax.set_title(label + (f"\n{', '.join(details)}" if details else ""))
        if image is not None:
            figure.colorbar(image, ax=list(axes[:len(panels)]), shrink=0.8, label="mean cosine similarity")
        iou = next((sim.get("iou_threshold") for _, sim in panels if sim.get("iou_threshold") is not None), None)
        figure.suptitle((title or "Query features vs class descriptions on the test set")
                        + (f"\nqueries matched to test boxes at IoU ≥ {iou:.2f}" if iou is not None else ""))
        save_styled(figure, out_png, st)
    return figure


def plot_pair_confusion(runs: list[tuple[str, dict]], pair: tuple[str, str], out_png: str | os.PathLike, *,
                        title: str | None = None, style: Mapping[str, Any] | None = None):
    """The confusion of one class pair (a, b) before and after: for each run ``(label, metrics)``, in the
    given order, stacked bars of the test boxes of GT class a (left panel) and GT class b (right panel)
    detected as the other class of the pair (hatched, on the baseline so the swaps compare directly),
    as themselves, as another class, or missed (from ``metrics["confusion"]``).

    Raises ValueError naming the classes and the config key when a pair class is not in a run's matrix.
    """

    st = resolve_style(style)
    counts = [pair_confusion(metrics["confusion"], pair) for _, metrics in runs]
    a, b = (str(name) for name in pair)
    colors = {a: "#1f77b4", b: "#ff7f0e", "other": "#9e9e9e", "missed": "#dcdcdc"}
    legend = {a: f"detected as {a}", b: f"detected as {b}", "other": "detected as another class",
              "missed": "missed (score or IoU too low)"}
    x = np.arange(len(runs))
    with mpl.rc_context(rc_params(st)):
        figure = new_figure(st, (max(8.0, 1.3 * len(runs) + 3.0), 4.8))
        axes = figure.subplots(1, 2, sharey=True)
        for ax, gt in zip(axes, (a, b)):
            swap = b if gt == a else a
            bottom = np.zeros(len(runs))
            for part in (swap, gt, "other", "missed"):
                heights = np.array([c[gt][part] for c in counts], dtype=float)
                bars = ax.bar(x, heights, 0.6, bottom=bottom, color=colors[part], edgecolor="black", lw=0.5,
                              hatch="//" if part == swap else None)
                for bar, height in zip(bars, heights):
                    if height:
                        ax.text(bar.get_x() + bar.get_width() / 2, bar.get_y() + height / 2, f"{height:g}",
                                ha="center", va="center", fontsize=st["font_size"] - 2)
                bottom += heights
            total = int(bottom.max()) if len(runs) else 0
            ax.set_title(f"ground truth {gt} ({total} boxes)" if bottom.min() == bottom.max() else f"ground truth {gt}")
            ax.set_xticks(x, [label for label, _ in runs], rotation=30 if len(runs) > 3 else 0,
                          ha="right" if len(runs) > 3 else "center")
            ax.grid(axis="y", alpha=0.3)
        axes[0].set_ylabel("test boxes")
        handles = [Patch(facecolor=colors[p], edgecolor="black", label=legend[p]) for p in (a, b, "other", "missed")]
        handles.append(Patch(facecolor="white", edgecolor="black", hatch="//", label="hatched: swapped within the pair"))
        figure.legend(handles=handles, loc="outside lower center", ncols=3, frameon=False)
        confusion = runs[0][1]["confusion"] if runs else {}
        details = [f"{name} ≥ {confusion[key]:.2f}" for key, name in (("score_threshold", "score"),
                                                                      ("iou_threshold", "IoU"))
                   if confusion.get(key) is not None]
        figure.suptitle((title or f"{a} / {b} confusion per run") + (f"\n{', '.join(details)}" if details else ""))
        save_styled(figure, out_png, st)
    return figure
