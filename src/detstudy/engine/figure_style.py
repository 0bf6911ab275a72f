"""The figure style every plot of the workflow shares (``figures.*`` in the config) and the
helpers that apply it: one matplotlib Figure per plot, no pyplot state, saved atomically."""

from __future__ import annotations

import os
from typing import Any, Mapping

import matplotlib as mpl
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from detstudy.engine.io import save_figure

#: Default figure style; pass ``style={...}`` to any function to override some keys.
STYLE: dict[str, Any] = {
    "dpi": 150,                 # PNG resolution
    "font_size": 10,            # base font size (titles +2, box labels -2)
    "cmap": "Blues",            # confusion-matrix colormap
    "diverging_cmap": "RdBu_r", # signed values (text similarity): blue negative, red positive
    "palette": "tab10",         # qualitative colormap for classes / curves
    "gt_color": "#00c853",      # ground-truth boxes (green)
    "pred_color": "#ff5722",    # predicted boxes (red-orange)
    "line_width": 1.8,
    "panel_width": 4.0,         # inches per prediction-grid panel
    "max_image_side": 1024,     # prediction images are downscaled to this for drawing
}


def resolve_style(style: Mapping[str, Any] | None) -> dict[str, Any]:
    merged = dict(STYLE)
    if style:
        merged.update({k: v for k, v in style.items() if k in STYLE and v is not None})
    return merged


def rc_params(style: dict[str, Any]) -> dict[str, Any]:
    size = float(style["font_size"])
    return {
        "font.size": size,
        "axes.titlesize": size + 2,
        "axes.labelsize": size + 1,
        "legend.fontsize": size - 1,
        "xtick.labelsize": size,
        "ytick.labelsize": size,
        "figure.titlesize": size + 3,
    }


def new_figure(style: dict[str, Any], figsize: tuple[float, float]) -> Figure:
    figure = Figure(figsize=figsize, layout="constrained")
    FigureCanvasAgg(figure)
    return figure


def save_styled(figure: Figure, out_png: str | os.PathLike, style: dict[str, Any]) -> None:
    save_figure(figure, out_png, dpi=int(style["dpi"]))


def palette_colors(n: int, style: dict[str, Any]) -> list:
    cmap = mpl.colormaps[style["palette"]]
    count = getattr(cmap, "N", 256)
    if count <= 20:
        return [cmap(i % count) for i in range(n)]
    return [cmap(i / max(n - 1, 1)) for i in range(n)]
