"""The synthetic defect world every task's embedded demo is drawn from.

The real datasets of the studies are private, so the workflow ships this painter to run end
to end on a fresh machine. It paints textured metal and plastic parts under uneven lighting
with sensor noise, and draws the six classes on them:

* NORMAL: a raised machined plate (intact surface, annotated like the real data does),
* DEFORMACIONES: dents and bulges, a smooth blob lit on one side and shadowed on the other,
* ROTURA_FRACTURA: dark jagged cracks, sometimes branching, with a shadowed edge,
* RAYONES_ARANAZOS: thin, shallow, mostly straight light or dark lines,
* PERFORACIONES: dark round or elliptic holes with a lit rim,
* CONTAMINACION: coloured irregular stains or clusters of specks.

Cracks and scratches are both thin and elongated on purpose: they are the hard pair of the
study. Every class is contrasted enough for a small model trained for minutes on a CPU.

:func:`render_image` gives one image with its objects' boxes (the detection demo) and its
label map, the class of every pixel that a defect visibly changes (the segmentation demo):
the same world seen as boxes or as masks. Everything is deterministic: each image draws from
its own generator seeded by (seed, split, index) (:func:`image_rng`). Only numpy and Pillow
are used.
"""

from __future__ import annotations

import math
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np
from PIL import Image, ImageDraw

from detstudy.study.classes import CATEGORIES
from detstudy.engine.io import atomic_path

MAX_IOU = 0.3  # placements overlapping an earlier box more than this are rejected
MAX_CONTAINED = 0.4  # ... and so are those covering this fraction of a smaller box
MIN_BOX_SIDE = 2.0

_SS = 4  # supersampling factor: shapes are drawn 4x larger and averaged down, for soft edges
_PLACEMENT_TRIES = 30
_OVERHANG = 0.15  # an object may stick out of the frame by this fraction, as parts do in photos


def class_names() -> list[str]:
    """The six class names, in dataset-id order."""
    return [category["name"] for category in CATEGORIES]


# ---------------------------------------------------------------------------------------------
# Containers


@dataclass(frozen=True)
class Surface:
    """What the drawing functions need to know about the part they draw on."""

    base: np.ndarray  # mean RGB colour of the part, shape (3,)
    light: tuple[float, float]  # unit vector towards the light, image axes (x right, y down)
    scale: float  # image_size / 256: every size in this module is given for 256 px images
    grain_horizontal: bool  # direction of the brushing, so a machined plate can cross it

    @property
    def luminance(self) -> float:
        return float(self.base @ np.array([0.299, 0.587, 0.114]))


@dataclass
class Mark:
    """One object, drawn in its own small patch and composited onto the image.

    Three layers, applied in this order: ``alpha`` paints ``colour`` over the surface
    (material that hides it: holes, crack cores, stains, a machined plate), ``shade``
    multiplies the result (relief lit by the light), ``add`` adds grey levels (shallow marks).
    """

    shade: np.ndarray | None = None  # (h, w), 1 = untouched
    add: np.ndarray | None = None  # (h, w) grey levels
    alpha: np.ndarray | None = None  # (h, w) coverage in [0, 1]
    colour: np.ndarray | None = None  # (3,) or (h, w, 3)

    @property
    def shape(self) -> tuple[int, int]:
        layer = next(a for a in (self.shade, self.add, self.alpha) if a is not None)
        return layer.shape[:2]

    def visible(self) -> np.ndarray:
        """Pixels that visibly change: the box is fitted to these, so it is tight."""
        mask = np.zeros(self.shape, dtype=bool)
        if self.shade is not None:
            mask |= np.abs(self.shade - 1.0) > 0.06
        if self.add is not None:
            mask |= np.abs(self.add) > 10.0
        if self.alpha is not None:
            mask |= self.alpha > 0.2
        return mask


# ---------------------------------------------------------------------------------------------
# Small raster helpers (patch coordinates are in pixels, origin at the patch's top-left corner)


def _blur(array: np.ndarray, sigma: float) -> np.ndarray:
    """Separable Gaussian blur of a 2-D float array (Pillow cannot blur float images)."""
    if sigma <= 0:
        return array
    radius = max(1, int(math.ceil(3 * sigma)))
    taps = np.exp(-0.5 * (np.arange(-radius, radius + 1) / sigma) ** 2)
    taps /= taps.sum()
    out = array.astype(np.float32)
    for axis in (0, 1):
        pad = [(0, 0), (0, 0)]
        pad[axis] = (radius, radius)
        padded = np.pad(out, pad, mode="edge")
        length = out.shape[axis]
        out = sum(
            weight * np.take(padded, np.arange(i, i + length), axis=axis) for i, weight in enumerate(taps)
        ).astype(np.float32)
    return out


def _value_noise(rng: np.random.Generator, h: int, w: int, cells_y: int, cells_x: int) -> np.ndarray:
    """Smooth noise in about [-1, 1]: a coarse random grid, upsampled bicubically."""
    grid = rng.uniform(-1.0, 1.0, size=(max(2, cells_y), max(2, cells_x))).astype(np.float32)
    return np.asarray(Image.fromarray(grid).resize((w, h), Image.Resampling.BICUBIC), dtype=np.float32)


def _streaks(rng: np.random.Generator, h: int, w: int, horizontal: bool) -> np.ndarray:
    """Brushing marks: every row its own noise, slowly varying along the row."""
    if not horizontal:
        return _streaks(rng, w, h, True).T
    along = _value_noise(rng, h, w, h, max(3, w // 24))
    rows = rng.normal(0.0, 0.6, size=(h, 1)).astype(np.float32)
    return along + rows


def _raster(h: int, w: int, paint: Callable[[ImageDraw.ImageDraw], None]) -> np.ndarray:
    """Antialiased coverage in [0, 1] of what ``paint`` draws in supersampled coordinates."""
    image = Image.new("L", (w * _SS, h * _SS), 0)
    paint(ImageDraw.Draw(image))
    return np.asarray(image.reduce(_SS), dtype=np.float32) / 255.0


def _scaled(points) -> list[tuple[float, float]]:
    return [(float(x) * _SS, float(y) * _SS) for x, y in points]


def _polygon_mask(h: int, w: int, points) -> np.ndarray:
    return _raster(h, w, lambda draw: draw.polygon(_scaled(points), fill=255))


def _polyline_mask(h: int, w: int, paths, width: float) -> np.ndarray:
    """Thick polylines with round joints and caps (one mask for several paths)."""
    line_width = max(1, int(round(width * _SS)))
    cap = line_width / 2

    def paint(draw: ImageDraw.ImageDraw) -> None:
        for path in paths:
            points = _scaled(path)
            draw.line(points, fill=255, width=line_width, joint="curve")
            for x, y in (points[0], points[-1]):
                draw.ellipse((x - cap, y - cap, x + cap, y + cap), fill=255)

    return _raster(h, w, paint)


def _dots_mask(h: int, w: int, centres: np.ndarray, radii: np.ndarray) -> np.ndarray:
    def paint(draw: ImageDraw.ImageDraw) -> None:
        for (x, y), r in zip(centres * _SS, radii * _SS):
            draw.ellipse((x - r, y - r, x + r, y + r), fill=255)

    return _raster(h, w, paint)


def _ellipse_points(cx: float, cy: float, rx: float, ry: float, angle: float, n: int = 48) -> np.ndarray:
    t = np.linspace(0.0, 2 * np.pi, n, endpoint=False)
    x, y = rx * np.cos(t), ry * np.sin(t)
    c, s = math.cos(angle), math.sin(angle)
    return np.stack([cx + c * x - s * y, cy + s * x + c * y], axis=1)


def _grid(h: int, w: int, cx: float, cy: float) -> tuple[np.ndarray, np.ndarray]:
    """Pixel-centre coordinates relative to (cx, cy)."""
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    return xx + 0.5 - cx, yy + 0.5 - cy


def _frame(points: np.ndarray, margin: float) -> tuple[np.ndarray, int, int]:
    """Shift points into a patch that holds them with ``margin`` pixels around; return (points, h, w)."""
    low = points.min(axis=0) - margin
    high = points.max(axis=0) + margin
    w, h = (np.ceil(high - low).astype(int) + 1).tolist()
    return points - low, h, w


# ---------------------------------------------------------------------------------------------
# One drawing function per class: (rng, surface) -> Mark


def draw_machined_patch(rng: np.random.Generator, surface: Surface) -> Mark:
    """NORMAL: a raised, rectangular machined plate of intact surface.

    A consistent look (flat tone, grain across the part's brushing, crisp bevelled edges and a
    cast shadow) so a detector can learn it, as the real NORMAL boxes are easy (AP50 98).
    """
    s = surface.scale
    low, high = (26, 70) if rng.random() < 0.5 else (60, 130)
    bw, bh = s * rng.uniform(low, high), s * rng.uniform(low, high)
    if max(bw, bh) / min(bw, bh) > 2.5:  # keep it a plate, not a strip that looks like a scratch
        bh = min(max(bh, bw / 2.5), bw * 2.5)
    step = max(1.5, 2.0 * s)  # bevel width
    margin = 2 * step + 2
    w, h = int(math.ceil(bw + 2 * margin)), int(math.ceil(bh + 2 * margin))
    radius = s * rng.uniform(2, 6)
    lx, ly = surface.light

    def plate(dx: float, dy: float) -> np.ndarray:
        box = ((margin + dx) * _SS, (margin + dy) * _SS, (margin + dx + bw) * _SS, (margin + dy + bh) * _SS)
        return _raster(h, w, lambda draw: draw.rounded_rectangle(box, radius=radius * _SS, fill=255))

    inside = plate(0, 0)
    towards, away = plate(-lx * step, -ly * step), plate(lx * step, ly * step)
    # an edge faces the light where the pixel one bevel towards the light is off the plate
    lit, dark = np.clip(inside - towards, 0, 1), np.clip(inside - away, 0, 1)
    cast = np.clip(towards - inside, 0, 1)  # shadow thrown beside the plate, away from the light
    # the plate replaces the part's texture: its own tone, machined across the brushing
    grain = _streaks(rng, h, w, not surface.grain_horizontal)
    level = rng.choice([-1.0, 1.0]) * rng.uniform(0.1, 0.18)
    colour = surface.base * (1.0 + level + 0.05 * grain)[..., None]
    shade = 1.0 + 0.45 * lit - 0.45 * dark - 0.35 * cast
    return Mark(alpha=inside, colour=colour.astype(np.float32), shade=shade.astype(np.float32))


def draw_dent(rng: np.random.Generator, surface: Surface) -> Mark:
    """DEFORMACIONES: a smooth dent or bulge, bright on one side and dark on the other."""
    s = surface.scale
    radius = s * (rng.uniform(14, 32) if rng.random() < 0.5 else rng.uniform(32, 70))
    aspect, angle = rng.uniform(0.65, 1.0), rng.uniform(0, np.pi)
    n = int(math.ceil(2 * radius)) + 4
    x, y = _grid(n, n, n / 2, n / 2)
    c, si = math.cos(angle), math.sin(angle)
    u = (c * x + si * y) / radius
    v = (-si * x + c * y) / (radius * aspect)
    height = np.clip(1.0 - (u * u + v * v), 0.0, None) ** 2  # smooth bump with a compact footprint
    gy, gx = np.gradient(height)
    slope = gx * surface.light[0] + gy * surface.light[1]
    slope /= max(float(np.abs(slope).max()), 1e-6)
    sign = rng.choice([-1.0, 1.0])  # dent or bulge: the lit side swaps
    amplitude = rng.uniform(0.35, 0.55)
    # a slight overall darkening of the deformed area keeps the blob visible across the light too
    shade = 1.0 + sign * amplitude * slope - 0.1 * np.sqrt(height)
    return Mark(shade=shade.astype(np.float32))


def _jagged_path(rng: np.random.Generator, start: np.ndarray, heading: float, length: float,
                 step: float) -> np.ndarray:
    """A zig-zag: segments alternate their turn about the overall heading, like a crack front."""
    points = [np.asarray(start, dtype=np.float64)]
    travelled, side = 0.0, rng.choice([-1.0, 1.0])
    while travelled < length:
        segment = step * rng.uniform(0.6, 1.4)
        side = -side if rng.random() < 0.75 else side
        turn = side * rng.uniform(0.15, 0.75)
        points.append(points[-1] + segment * np.array([math.cos(heading + turn), math.sin(heading + turn)]))
        travelled += segment
    return np.stack(points)


def draw_fracture(rng: np.random.Generator, surface: Surface) -> Mark:
    """ROTURA_FRACTURA: a dark, jagged crack, sometimes branching, with a shadowed edge.

    Thin and elongated like a scratch (the study's hardest pair), but darker, wider, zig-zag
    and with relief: a shadow on the side away from the light, a lit lip on the other.
    """
    s = surface.scale
    length = s * rng.uniform(40, 180)
    heading = rng.uniform(0, 2 * np.pi)
    step = s * rng.uniform(4, 8)
    paths = [_jagged_path(rng, np.zeros(2), heading, length, step)]
    if rng.random() < 0.5:
        for _ in range(int(rng.integers(1, 3))):
            root = paths[0][int(rng.integers(1, max(2, len(paths[0]) - 1)))]
            turn = rng.choice([-1.0, 1.0]) * rng.uniform(0.45, 1.0)
            paths.append(_jagged_path(rng, root, heading + turn, length * rng.uniform(0.2, 0.45), step * 0.8))
    offset = np.array(surface.light) * max(1.0, 1.8 * s)
    width = s * rng.uniform(1.8, 3.0)
    all_points, h, w = _frame(np.concatenate(paths), margin=width + 3 * s + 4)
    shift = all_points[0] - paths[0][0]
    paths = [path + shift for path in paths]

    core = _polyline_mask(h, w, paths[:1], width)
    if len(paths) > 1:  # branches are thinner than the main crack
        core = np.maximum(core, _polyline_mask(h, w, paths[1:], 0.65 * width))
    shadow = _blur(_polyline_mask(h, w, [p - offset for p in paths], width + 1.5 * s), 0.8 * s)
    lip = _polyline_mask(h, w, [p + offset for p in paths], max(1.0, 0.7 * width))
    depth = rng.uniform(10, 35)
    colour = np.full(3, depth, dtype=np.float32)
    return Mark(shade=(1.0 - 0.5 * shadow).astype(np.float32), add=(30.0 * lip * (1 - core)).astype(np.float32),
                alpha=core, colour=colour)


def draw_scratch(rng: np.random.Generator, surface: Surface) -> Mark:
    """RAYONES_ARANAZOS: a thin, shallow, long line, mostly straight, light or dark."""
    s = surface.scale
    length = s * rng.uniform(30, 130)
    heading = rng.uniform(0, np.pi)
    direction = np.array([math.cos(heading), math.sin(heading)])
    normal = np.array([-direction[1], direction[0]])
    bend = rng.uniform(-0.07, 0.07) * length  # slight curvature of a sliding tool
    t = np.linspace(-0.5, 0.5, 33)[:, None]
    points = t * length * direction + (1 - 4 * t * t) * bend * normal
    points, h, w = _frame(points, margin=3 * s + 3)
    width = max(1.2, s * rng.uniform(1.2, 2.0))
    line = _polyline_mask(h, w, [points], width)
    # the line fades at its ends and flickers along its length, like a skipping tool tip
    x, y = _grid(h, w, *points[len(points) // 2])
    along = (x * direction[0] + y * direction[1]) / (length / 2)
    fade = np.clip((1.0 - np.abs(along)) * 5.0, 0.0, 1.0)
    flicker = 0.8 + 0.2 * np.cos(along * rng.uniform(6, 18) + rng.uniform(0, 2 * np.pi))
    light = surface.luminance < 160 and rng.random() < 0.6
    amount = (1.0 if light else -1.0) * rng.uniform(70, 110)
    return Mark(add=(amount * line * fade * flicker).astype(np.float32))


def draw_hole(rng: np.random.Generator, surface: Surface) -> Mark:
    """PERFORACIONES: a dark round or elliptic hole with a raised rim lit from one side."""
    s = surface.scale
    radius = max(1.5, s * (rng.uniform(2.5, 8) if rng.random() < 0.6 else rng.uniform(8, 20)))
    aspect, angle = rng.uniform(0.65, 1.0), rng.uniform(0, np.pi)
    rim = radius * rng.uniform(1.3, 1.5) + 1.0
    n = int(math.ceil(2 * rim)) + 4
    inner = _polygon_mask(n, n, _ellipse_points(n / 2, n / 2, radius, radius * aspect, angle))
    outer = _polygon_mask(n, n, _ellipse_points(n / 2, n / 2, rim, rim * aspect, angle))
    ring = np.clip(outer - inner, 0.0, 1.0)
    x, y = _grid(n, n, n / 2, n / 2)
    facing = (x * surface.light[0] + y * surface.light[1]) / (np.hypot(x, y) + 1e-6)
    shade = 1.0 + ring * (0.15 + 0.4 * facing)
    # inside, the wall opposite the light catches a little of it
    inside = rng.uniform(8, 35) + 30.0 * np.clip(-facing, 0.0, None) * np.clip(np.hypot(x, y) / radius, 0, 1)
    colour = inside[..., None] + 0.1 * surface.base
    return Mark(shade=shade.astype(np.float32), alpha=inner, colour=colour.astype(np.float32))


# stains that show on both light and dark parts: rust, oil, soot, green residue, yellow glue, blue ink
_STAIN_COLOURS = np.array(
    [[140, 70, 30], [60, 42, 25], [30, 30, 32], [80, 120, 40], [200, 170, 50], [50, 70, 150]], dtype=np.float32
)


def _stain_colour(rng: np.random.Generator, base: np.ndarray) -> np.ndarray:
    """One of the three stain colours farthest from the part's colour, slightly varied."""
    distance = np.linalg.norm(_STAIN_COLOURS - base, axis=1)
    farthest = np.argsort(-distance, kind="stable")[:3]
    colour = _STAIN_COLOURS[farthest[int(rng.integers(3))]]
    return np.clip(colour + rng.uniform(-12, 12, size=3), 0, 255).astype(np.float32)


def draw_contamination(rng: np.random.Generator, surface: Surface) -> Mark:
    """CONTAMINACION: an irregular coloured blotch, or a cluster of specks."""
    s = surface.scale
    colour = _stain_colour(rng, surface.base)
    if rng.random() < 0.6:
        radius = s * (rng.uniform(6, 18) if rng.random() < 0.45 else rng.uniform(18, 55))
        t = np.linspace(0, 2 * np.pi, 72, endpoint=False)
        wobble = sum(rng.uniform(0, 0.3) / k * np.cos(k * t + rng.uniform(0, 2 * np.pi)) for k in range(2, 7))
        r = radius * (1.0 + wobble) * rng.uniform(0.9, 1.1, size=t.size)
        points, h, w = _frame(np.stack([r * np.cos(t), r * np.sin(t)], axis=1), margin=3 * s + 3)
        mask = _blur(_polygon_mask(h, w, points), 1.0 * s)
        mottle = 0.75 + 0.25 * _value_noise(rng, h, w, max(2, h // 6), max(2, w // 6))
        alpha = mask * mottle * rng.uniform(0.7, 0.92)
    else:
        # a compact cluster (uniform in a disc), so its box has a well-defined extent
        count = int(rng.integers(10, 26))
        spread = s * rng.uniform(5, 14)
        angle, radius = rng.uniform(0, 2 * np.pi, count), spread * np.sqrt(rng.uniform(0, 1, count))
        centres = np.stack([radius * np.cos(angle), radius * np.sin(angle)], axis=1)
        radii = s * rng.uniform(0.8, 2.6, size=count) + 0.5
        centres, h, w = _frame(centres, margin=float(radii.max()) + 2)
        alpha = _dots_mask(h, w, centres, radii) * rng.uniform(0.85, 1.0)
    return Mark(alpha=alpha.astype(np.float32), colour=colour)


# class name -> drawing function; the generator picks classes uniformly from this registry
DRAWERS: dict[str, Callable[[np.random.Generator, Surface], Mark]] = {
    "NORMAL": draw_machined_patch,
    "DEFORMACIONES": draw_dent,
    "ROTURA_FRACTURA": draw_fracture,
    "RAYONES_ARANAZOS": draw_scratch,
    "PERFORACIONES": draw_hole,
    "CONTAMINACION": draw_contamination,
}


# ---------------------------------------------------------------------------------------------
# Surface, lighting and noise

# plastic colours: grey, beige, blue, green, red, near-white, dark grey
_PLASTIC_COLOURS = np.array(
    [[128, 128, 128], [190, 178, 150], [70, 100, 150], [85, 125, 95], [160, 65, 55], [205, 205, 200],
     [85, 85, 90]], dtype=np.float32
)


def _surface(rng: np.random.Generator, size: int) -> tuple[np.ndarray, Surface]:
    """A part's surface as float RGB (before lighting): brushed metal, matte plastic or cast metal."""
    material = rng.choice(3, p=[0.45, 0.35, 0.2])
    grain_horizontal = bool(rng.random() < 0.5)
    low = _value_noise(rng, size, size, 4, 4)
    if material == 0:  # brushed metal: fine streaks along one direction
        grey = rng.uniform(100, 185)
        base = grey + rng.uniform(-6, 6, size=3)
        texture = 0.06 * _streaks(rng, size, size, grain_horizontal) + 0.04 * low
    elif material == 1:  # matte plastic: fine isotropic grain
        base = _PLASTIC_COLOURS[int(rng.integers(len(_PLASTIC_COLOURS)))] + rng.uniform(-15, 15, size=3)
        grain = _blur(rng.normal(0.0, 1.0, size=(size, size)).astype(np.float32), 0.7)
        texture = 0.07 * grain + 0.05 * low
    else:  # cast or painted metal: orange-peel relief
        grey = rng.uniform(90, 170)
        base = grey * np.array([1.0, 1.0, 1.0]) + rng.uniform(-12, 12, size=3)
        peel = _blur(rng.normal(0.0, 1.0, size=(size, size)).astype(np.float32), 1.8)
        texture = 0.25 * peel + 0.05 * low
    base = np.clip(base, 0, 255).astype(np.float32)
    heading = rng.uniform(0, 2 * np.pi)
    surface = Surface(base=base, light=(math.cos(heading), math.sin(heading)),
                      scale=size / 256.0, grain_horizontal=grain_horizontal)
    image = base[None, None, :] * (1.0 + texture[..., None])
    return image.astype(np.float32), surface


def _light_and_noise(rng: np.random.Generator, image: np.ndarray, surface: Surface) -> np.ndarray:
    """Uneven lighting (gradient towards the light, vignetting, a soft highlight), then sensor noise."""
    size = image.shape[0]
    x, y = _grid(size, size, size / 2, size / 2)
    x, y = x / (size / 2), y / (size / 2)
    lx, ly = surface.light
    gradient = 1.0 + rng.uniform(0.05, 0.22) * (x * lx + y * ly)
    vignette = 1.0 - rng.uniform(0.0, 0.3) * (x * x + y * y) / 2
    centre = np.array([lx, ly]) * rng.uniform(0.1, 0.8) + rng.uniform(-0.3, 0.3, size=2)
    spread = rng.uniform(0.25, 0.6)
    highlight = rng.uniform(0, 40) * np.exp(-((x - centre[0]) ** 2 + (y - centre[1]) ** 2) / (2 * spread**2))
    lit = image * (gradient * vignette)[..., None] + highlight[..., None]
    noisy = lit + rng.normal(0.0, rng.uniform(1.5, 5.0), size=lit.shape)
    return np.clip(np.rint(noisy), 0, 255).astype(np.uint8)


# ---------------------------------------------------------------------------------------------
# Placement and one image


def _overlaps(a: tuple[float, float, float, float], b: tuple[float, float, float, float]) -> bool:
    """Whether two [x, y, w, h] boxes overlap heavily: IoU above MAX_IOU, or one mostly inside
    the other (a small hole inside a big stain has a low IoU but would hide or blur both)."""
    ix = max(0.0, min(a[0] + a[2], b[0] + b[2]) - max(a[0], b[0]))
    iy = max(0.0, min(a[1] + a[3], b[1] + b[3]) - max(a[1], b[1]))
    inter = ix * iy
    area_a, area_b = a[2] * a[3], b[2] * b[3]
    return inter > MAX_IOU * (area_a + area_b - inter) or inter > MAX_CONTAINED * min(area_a, area_b)


def _place(rng: np.random.Generator, size: int, mark: Mark, boxes: list) -> tuple[int, int, tuple] | None:
    """Find a patch offset whose tight (clipped) box overlaps no earlier box heavily."""
    visible = mark.visible()
    rows, cols = np.nonzero(visible)
    if rows.size == 0:
        return None
    top, left = int(rows.min()), int(cols.min())
    bh, bw = int(rows.max()) + 1 - top, int(cols.max()) + 1 - left
    h, w = visible.shape
    for _ in range(_PLACEMENT_TRIES):
        x0 = int(rng.integers(-int(_OVERHANG * bw), max(-int(_OVERHANG * bw), size - bw + int(_OVERHANG * bw)) + 1))
        y0 = int(rng.integers(-int(_OVERHANG * bh), max(-int(_OVERHANG * bh), size - bh + int(_OVERHANG * bh)) + 1))
        ox, oy = x0 - left, y0 - top
        # the box of what stays inside the image once the patch is clipped
        clipped = visible[max(0, -oy):max(0, min(h, size - oy)), max(0, -ox):max(0, min(w, size - ox))]
        rows, cols = np.nonzero(clipped)
        if rows.size == 0:
            continue
        bx, by = max(0, ox) + int(cols.min()), max(0, oy) + int(rows.min())
        box = (float(bx), float(by), float(int(cols.max()) + 1 - cols.min()), float(int(rows.max()) + 1 - rows.min()))
        if box[2] < MIN_BOX_SIDE or box[3] < MIN_BOX_SIDE:
            continue
        if not any(_overlaps(box, other) for other in boxes):
            return ox, oy, box
    return None


def _composite(image: np.ndarray, mark: Mark, ox: int, oy: int) -> None:
    """Apply a mark's layers to the image in place, clipping the patch to the frame."""
    h, w = mark.shape
    size_y, size_x = image.shape[:2]
    y0, x0, y1, x1 = max(0, oy), max(0, ox), min(size_y, oy + h), min(size_x, ox + w)
    if y1 <= y0 or x1 <= x0:
        return
    region = image[y0:y1, x0:x1]
    local = (slice(y0 - oy, y1 - oy), slice(x0 - ox, x1 - ox))
    if mark.alpha is not None:
        alpha = mark.alpha[local][..., None]
        colour = mark.colour if mark.colour.ndim == 1 else mark.colour[local]
        region[...] = region * (1.0 - alpha) + colour * alpha
    if mark.shade is not None:
        region *= mark.shade[local][..., None]
    if mark.add is not None:
        region += mark.add[local][..., None]


def _object_count(rng: np.random.Generator, max_defects: int, empty_fraction: float) -> int:
    """0 with probability empty_fraction, else 1..max_defects, fewer more likely (p ~ 1/k)."""
    empty = rng.random() < empty_fraction
    if empty or max_defects < 1:
        return 0
    counts = np.arange(1, max_defects + 1)
    weights = 1.0 / counts
    return int(rng.choice(counts, p=weights / weights.sum()))


def render_image(rng: np.random.Generator, size: int, max_defects: int = 4,
                 empty_fraction: float = 0.05) -> tuple[np.ndarray, list[tuple[str, tuple]], np.ndarray]:
    """One image as uint8 RGB, its objects as (class name, [x, y, w, h]) and its label map
    (uint8, ``size`` x ``size``): 0 where the surface is intact, else the 1-based index in
    :data:`DRAWERS` order (the dataset's category id) of the object that visibly changed the
    pixel, the later object where two touch. Drawing the labels takes no random numbers, so the
    image and boxes are those of the same generator without them."""
    image, surface = _surface(rng, size)
    labels = np.zeros((size, size), dtype=np.uint8)
    names = list(DRAWERS)
    objects: list[tuple[str, tuple]] = []
    for _ in range(_object_count(rng, max_defects, empty_fraction)):
        name = names[int(rng.integers(len(names)))]
        mark = DRAWERS[name](rng, surface)
        placed = _place(rng, size, mark, [box for _, box in objects])
        if placed is None:  # no room left without heavy overlap: fewer objects in this image
            continue
        ox, oy, box = placed
        _composite(image, mark, ox, oy)
        _label(labels, mark, ox, oy, names.index(name) + 1)
        objects.append((name, box))
    return _light_and_noise(rng, image, surface), objects, labels


def _label(labels: np.ndarray, mark: Mark, ox: int, oy: int, value: int) -> None:
    """Write ``value`` where the mark visibly changes the image (its box is fitted to the same pixels)."""
    h, w = mark.shape
    size_y, size_x = labels.shape
    y0, x0, y1, x1 = max(0, oy), max(0, ox), min(size_y, oy + h), min(size_x, ox + w)
    if y1 <= y0 or x1 <= x0:
        return
    visible = mark.visible()[y0 - oy:y1 - oy, x0 - ox:x1 - ox]
    labels[y0:y1, x0:x1][visible] = value


def image_rng(seed: int, split: str, index: int) -> np.random.Generator:
    """The generator of one image: crc32 is stable across runs and Python versions, unlike
    hash(); it keeps splits independent of each other's sizes."""
    return np.random.default_rng([int(seed), zlib.crc32(split.encode()), int(index)])


def save_png(path: Path, pixels: np.ndarray) -> None:
    """An image or label map as PNG, atomically; fixed options and no metadata chunks, so the
    bytes depend on the pixels only."""
    with atomic_path(path) as tmp:
        Image.fromarray(pixels).save(tmp, format="PNG", compress_level=6)


# The generator's bounds; config/schema.yaml states the same (tested).
MIN_IMAGE_SIZE = 32
MIN_DEFECTS = 0


def check_world_settings(image_size: int, max_defects: int, empty_fraction: float) -> None:
    if image_size < MIN_IMAGE_SIZE:
        raise ValueError(f"image_size must be at least {MIN_IMAGE_SIZE} px, got {image_size}")
    if max_defects < MIN_DEFECTS:
        raise ValueError(f"max_defects must be >= {MIN_DEFECTS}, got {max_defects}")
    if not 0.0 <= empty_fraction <= 1.0:
        raise ValueError(f"empty_fraction must be in [0, 1], got {empty_fraction}")
