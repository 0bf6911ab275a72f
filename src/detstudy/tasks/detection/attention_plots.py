"""The ViT figures of a DEIMv2 run: where its backbone looks and where its decoder samples.

Each takes the test images and what :func:`detstudy.tasks.detection.models.deimv2_attention.where_deimv2_looks`
read from the model on them; nothing is recomputed here.
"""

from __future__ import annotations

import os
from typing import Any, Mapping

import matplotlib as mpl
import numpy as np
import torch
import torch.nn.functional as F
from matplotlib.lines import Line2D
from matplotlib.patches import Rectangle

from detstudy.engine.figure_style import palette_colors, new_figure, rc_params, save_styled, resolve_style

LEVEL_NAMES = ("1/8", "1/16", "1/32")


def _upsampled(maps: torch.Tensor, size: tuple[int, int]) -> np.ndarray:
    """[n, rows, columns] attention -> [n, H, W] over the image (bilinear), each map 0-1."""
    maps = F.interpolate(maps[None].float(), size=size, mode="bilinear", align_corners=False)[0]
    low = maps.flatten(1).min(1).values[:, None, None]
    high = maps.flatten(1).max(1).values[:, None, None]
    return ((maps - low) / (high - low).clamp(min=1e-12)).numpy()


def plot_backbone_attention(images: list[np.ndarray], looks: list, out_png: str | os.PathLike, *,
                            title: str | None = None, style: Mapping[str, Any] | None = None):
    """One row per image: the image, the class token's last-layer attention averaged over the
    heads, then each head, over the image (each map scaled to its own 0-1)."""
    st = resolve_style(style)
    heads = looks[0].backbone.shape[0]
    columns = 2 + heads
    panel = float(st["panel_width"]) * 0.6
    with mpl.rc_context(rc_params(st)):
        figure = new_figure(st, (panel * columns, panel * len(images) + 0.6))
        axes = figure.subplots(len(images), columns, squeeze=False)
        for row, (image, look) in zip(axes, zip(images, looks)):
            maps = torch.cat([look.backbone.mean(0, keepdim=True), look.backbone])
            shown = _upsampled(maps, image.shape[:2])
            row[0].imshow(image)
            row[0].set_title("image")
            for ax, heat, name in zip(row[1:], shown, ["mean of heads"] + [f"head {h + 1}" for h in range(heads)]):
                ax.imshow(image)
                ax.imshow(heat, cmap="inferno", alpha=0.6, vmin=0, vmax=1)
                ax.set_title(name)
            for ax in row:
                ax.set_axis_off()
        figure.suptitle(title or f"Class-token attention, last ViT layer ({looks[0].patch_grid[0]}x"
                                 f"{looks[0].patch_grid[1]} patches)")
        save_styled(figure, out_png, st)
    return figure


def plot_decoder_sampling(images: list[np.ndarray], looks: list, class_names: list[str], out_png: str | os.PathLike, *,
                          title: str | None = None, style: Mapping[str, Any] | None = None):
    """One row per image, one panel per top detection: its box, and every sampling point of
    the prediction layer's deformable attention (all heads), coloured by feature level, its area
    proportional to its attention weight. For a text-fused run a last row per image gives each
    detection's cosine similarity to every class description."""
    st = resolve_style(style)
    per_image = max(len(look.detections) for look in looks)
    text = any(d.text_similarity is not None for look in looks for d in look.detections)
    rows = len(images) * (2 if text else 1)
    panel = float(st["panel_width"]) * 0.7
    level_colors = palette_colors(len(LEVEL_NAMES), {**st, "palette": "Set1"})
    with mpl.rc_context(rc_params(st)):
        figure = new_figure(st, (panel * per_image, panel * rows + 0.8))
        axes = figure.subplots(rows, per_image, squeeze=False)
        for ax in axes.ravel():
            ax.set_axis_off()
        for i, (image, look) in enumerate(zip(images, looks)):
            row = axes[i * (2 if text else 1)]
            for ax, detection in zip(row, look.detections):
                ax.imshow(image)
                x1, y1, x2, y2 = detection.box
                ax.add_patch(Rectangle((x1, y1), x2 - x1, y2 - y1, fill=False, color=st["pred_color"],
                                       lw=float(st["line_width"])))
                points = detection.points.reshape(-1, 2).numpy()
                weights = detection.weights.reshape(-1).numpy()
                levels = detection.levels.repeat(detection.points.shape[0]).numpy()
                ax.scatter(points[:, 0], points[:, 1], s=4 + 400 * weights, c=[level_colors[l] for l in levels],
                           alpha=0.75, edgecolors="white", linewidths=0.3)
                ax.set_xlim(0, image.shape[1])
                ax.set_ylim(image.shape[0], 0)
                ax.set_title(f"{class_names[detection.label]} {detection.score:.2f}", fontsize=st["font_size"])
            if text:
                for ax, detection in zip(axes[i * 2 + 1], look.detections):
                    ax.set_axis_on()
                    values = detection.text_similarity
                    ax.barh(range(len(values)), values, color=[st["pred_color"] if j == detection.label else "#9e9e9e"
                                                                for j in range(len(values))])
                    ax.set_yticks(range(len(values)), class_names, fontsize=st["font_size"] - 2)
                    ax.invert_yaxis()
                    ax.set_xlabel("cosine similarity", fontsize=st["font_size"] - 2)
        handles = [Line2D([], [], ls="", marker="o", color=c, label=f"sampled at {name}")
                   for c, name in zip(level_colors, LEVEL_NAMES)]
        figure.legend(handles=handles, loc="outside lower center", ncols=len(handles), frameon=False)
        figure.suptitle(title or "Decoder sampling points of the top detections (size: attention weight)")
        save_styled(figure, out_png, st)
    return figure
