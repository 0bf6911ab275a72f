"""Check the splits of a segmentation dataset before any training, every problem at once.

``check_split`` reads every image header and every mask of a split and raises one
``DatasetError`` listing all it found, each with the file, the pixel value or size, and the
fix:

* the images or masks folder missing; an empty split;
* an image without a mask, a mask without an image (same stem in both folders);
* an unreadable image or mask;
* an image and its mask of different sizes;
* an RGB(A) mask (class indices are single-channel: convert it), a palette mask when the
  config gives no palette to convert it with (``palette``: one RGB colour per class);
* mask values that are neither a class index (0 .. classes - 1) nor the ignore value.

It returns the per-split counts the statistics need: pixels of each class and images that
contain each class. ``check_classes_present`` warns (``DatasetWarning``) about classes absent
from the training split: the model never sees them, their IoU on test is 0 or absent.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError

from detstudy.tasks.dataset_errors import DatasetError, DatasetWarning, problems_message
from detstudy.tasks.images import probe_image
from detstudy.tasks.segmentation.data.layout import MaskSplit

MAX_LISTED = 20  # problems listed per kind; the rest are counted


@dataclass
class SplitCounts:
    """What a checked split holds: per class, its pixels and the images that contain it
    (ignore pixels counted apart)."""

    name: str
    images: int
    pixels: np.ndarray  # [C] int64
    images_with: np.ndarray  # [C] int64
    ignored: int

    def to_dict(self, class_names: list[str]) -> dict:
        return {"images": self.images, "ignored_pixels": self.ignored,
                "per_class": [{"id": k, "name": name, "pixels": int(self.pixels[k]), "images": int(self.images_with[k])}
                              for k, name in enumerate(class_names)]}


def read_mask(path: Path, num_classes: int, palette: list[tuple[int, int, int]] | None = None) -> np.ndarray:
    """A mask file as a [H, W] uint8/uint16 array of pixel values; a palette (``P``) mask is
    mapped through ``palette`` (colour -> class index) when given. Raises ``DatasetError``
    with the fix for masks that are not class indices."""
    with Image.open(path) as image:
        mode = image.mode
        if mode == "P" and palette is not None:
            rgb = np.asarray(image.convert("RGB"))
            return _colours_to_classes(rgb, palette, path)
        if mode in ("RGB", "RGBA", "P", "LA", "CMYK", "YCbCr"):
            how = ("give the palette in the config (dataset.palette: one [r, g, b] per class) to convert it, or "
                   if mode == "P" else "")
            raise DatasetError(f"{path}: a {mode} mask; a mask holds one class index per pixel (single channel, "
                               f"mode L). Fix: {how}convert it, e.g. Image.fromarray(index_array.astype('uint8')).save(...) "
                               "with each colour replaced by its class index")
        if mode == "1":
            return np.asarray(image, dtype=np.uint8)
        return np.asarray(image)


def _colours_to_classes(rgb: np.ndarray, palette, path: Path) -> np.ndarray:
    codes = (rgb[..., 0].astype(np.int64) << 16) | (rgb[..., 1].astype(np.int64) << 8) | rgb[..., 2]
    table = {(r << 16) | (g << 8) | b: k for k, (r, g, b) in enumerate(palette)}
    out = np.full(codes.shape, -1, dtype=np.int64)
    for code, k in table.items():
        out[codes == code] = k
    if (out < 0).any():
        unknown = sorted({tuple(int(v) for v in rgb[y, x]) for y, x in zip(*np.nonzero(out < 0))})[:5]
        raise DatasetError(f"{path}: colours {unknown} are not in the palette. Fix: add them to dataset.palette "
                           "or repaint those pixels")
    return out.astype(np.uint8)


def check_split(split: MaskSplit, name: str, num_classes: int, ignore_index: int = 255,
                palette: list[tuple[int, int, int]] | None = None) -> SplitCounts:
    """Every problem of one split (see the module docstring) in one ``DatasetError``, or its counts."""
    problems: dict[str, list[str]] = {}

    def problem(kind: str, text: str) -> None:
        problems.setdefault(kind, []).append(text)

    for folder, what in ((split.images, "images"), (split.masks, "masks")):
        if not folder.is_dir():
            problem("folder", f"{name}: the {what} folder {folder} does not exist. Fix: point dataset.folders.{name}.{what} at it")
    if problems:
        raise DatasetError(problems_message(name, problems, MAX_LISTED))
    images, masks = split.image_files(), split.mask_files()
    for stem in sorted(set(images) - set(masks)):
        problem("missing mask", f"{images[stem]}: no mask {split.masks / (stem + '.png')}. Fix: add the mask or remove the image")
    for stem in sorted(set(masks) - set(images)):
        problem("extra mask", f"{masks[stem]}: no image of stem {stem!r} in {split.images}. Fix: add the image or remove the mask")
    pairs = split.pairs()
    if not pairs and not problems:
        problem("empty", f"{name}: no image with a mask in {split.images} and {split.masks}. Fix: fill the split")
    pixels = np.zeros(num_classes, dtype=np.int64)
    images_with = np.zeros(num_classes, dtype=np.int64)
    ignored = 0
    for image_path, mask_path in pairs:
        image_size, _, unreadable, _ = probe_image(image_path)
        if unreadable:
            problem("unreadable", f"{image_path}: unreadable image ({unreadable}). Fix: re-export or remove it")
            continue
        try:
            mask = read_mask(mask_path, num_classes, palette)
        except DatasetError as error:
            problem("mask format", str(error))
            continue
        except (OSError, UnidentifiedImageError, SyntaxError) as error:
            problem("unreadable", f"{mask_path}: unreadable mask ({error}). Fix: re-export or remove it")
            continue
        if mask.ndim != 2:
            problem("mask format", f"{mask_path}: a mask of shape {mask.shape}; expected one channel. Fix: save class indices as mode L")
            continue
        if (mask.shape[1], mask.shape[0]) != image_size:
            problem("size", f"{mask_path}: mask {mask.shape[1]}x{mask.shape[0]} px, image {image_path.name} "
                    f"{image_size[0]}x{image_size[1]} px. Fix: resize the mask with nearest-neighbour sampling, or re-export both")
            continue
        counts = np.bincount(mask.ravel().astype(np.int64), minlength=max(num_classes, ignore_index + 1))
        bad = [int(v) for v in np.flatnonzero(counts) if v >= num_classes and v != ignore_index]
        if bad:
            listed = ", ".join(f"{v} ({counts[v]} px)" for v in bad[:8])
            problem("values", f"{mask_path}: values {listed} are neither a class index (0..{num_classes - 1}) nor the "
                    f"ignore value {ignore_index}. Fix: map them to a class or to {ignore_index}, or add the classes")
            continue
        pixels += counts[:num_classes]
        images_with += counts[:num_classes] > 0
        ignored += int(counts[ignore_index]) if ignore_index < len(counts) else 0
    if problems:
        raise DatasetError(problems_message(name, problems, MAX_LISTED))
    return SplitCounts(name=name, images=len(pairs), pixels=pixels, images_with=images_with, ignored=ignored)


def check_classes_present(counts: SplitCounts, class_names: list[str]) -> list[str]:
    """Warnings for classes without a pixel in (the training) split ``counts``."""
    absent = [name for name, n in zip(class_names, counts.pixels) if n == 0]
    messages = []
    if absent:
        messages.append(f"split {counts.name!r}: classes {absent} have no pixel; the model never learns them and "
                        "their test IoU is 0 or absent")
        for message in messages:
            warnings.warn(message, DatasetWarning, stacklevel=2)
    return messages


def class_weights(train_pixels: np.ndarray, method: str = "inverse_log", given: list[float] | None = None) -> np.ndarray:
    """The loss's class weights from the training split's pixel counts: ``inverse_log`` is
    ENet's 1 / ln(1.02 + frequency) (bounded: at most 50 for a class of no pixels, so rare
    classes weigh more without dominating), ``median_frequency`` is SegNet's median frequency
    / frequency (0 for an absent class), ``none`` all 1; ``given`` overrides them."""
    if given is not None:
        weights = np.asarray(given, dtype=np.float64)
        if weights.shape != train_pixels.shape or (weights < 0).any():
            raise ValueError(f"class weights {list(given)}: expected {len(train_pixels)} non-negative numbers, one per class")
        return weights
    frequency = train_pixels / max(int(train_pixels.sum()), 1)
    if method == "inverse_log":
        return 1.0 / np.log(1.02 + frequency)
    if method == "median_frequency":
        present = frequency[frequency > 0]
        median = float(np.median(present)) if len(present) else 0.0
        return np.where(frequency > 0, median / np.where(frequency > 0, frequency, 1), 0.0)
    if method == "none":
        return np.ones_like(frequency)
    raise ValueError(f"class weights method {method!r}: use inverse_log, median_frequency or none")


def loss_class_weights(setting, train_pixels, num_classes: int) -> np.ndarray:
    """The loss's class weights of the config's ``loss.class_weights`` (a method's name, or one
    number per class) from the training split's pixel counts."""
    if not isinstance(setting, str):
        return class_weights(np.zeros(num_classes), given=list(setting))
    if setting == "none":
        return np.ones(num_classes)
    return class_weights(np.asarray(train_pixels, dtype=np.int64), setting)
