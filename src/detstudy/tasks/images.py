"""Image files as the models see them: the one decoder for training, evaluation, ``detstudy
predict``, the attention maps and the prediction figures, so that a picture is never fed to a
model one way and drawn or predicted on another.

Its own module, without torch, because the figures run in the torch-free report env
(``CocoDetection`` in :mod:`detstudy.tasks.detection.data.dataset` reads its images with it).
"""

from __future__ import annotations

import os

from PIL import Image

# Greyscale with more than 8 bits per pixel (16-bit PNG and TIFF open as one of these). A plain
# convert("RGB") clips them at 255, so a 16-bit picture comes out nearly all white.
WIDE_GREYSCALE_MODES = frozenset({"I", "I;16", "I;16L", "I;16B", "I;16N"})


def load_rgb(path: str | os.PathLike) -> Image.Image:
    """The image file at ``path`` as an 8-bit RGB Pillow image, decoded in full (the file is closed).

    * 8-bit RGB as it is; greyscale, palette, RGBA (alpha dropped), CMYK and the rest through
      Pillow's ``convert("RGB")``;
    * 16-bit and 32-bit integer greyscale (modes in :data:`WIDE_GREYSCALE_MODES`) taken as a
      0..65535 range and scaled to 0..255 first (the top 8 bits), then repeated in R, G and B;
    * float greyscale (mode ``F``) is taken as 0..255, as Pillow does.

    Raises what Pillow raises for a file it cannot read (``UnidentifiedImageError``, ``OSError``...).
    """
    with Image.open(path) as image:
        if image.mode in WIDE_GREYSCALE_MODES:
            # via mode I: point() refuses the big-endian I;16B
            image = image.convert("I").point(lambda value: value / 256).convert("L")
        return image.convert("RGB")
