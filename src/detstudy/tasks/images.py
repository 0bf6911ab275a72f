"""Image files as the models see them: the one decoder for training, evaluation, ``detstudy
predict``, the attention maps and the prediction figures, so that a picture is never fed to a
model one way and drawn or predicted on another.

Its own module, without torch, because the figures run in the torch-free report env
(``CocoDetection`` in :mod:`detstudy.tasks.detection.data.dataset` reads its images with it).
"""

from __future__ import annotations

import hashlib
import io
import os

from PIL import Image, UnidentifiedImageError

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


def probe_image(path: str | os.PathLike) -> tuple[tuple[int, int] | None, str | None, str | None, str]:
    """A dataset check's look at one image file, cheap but thorough enough to catch a broken
    file before training meets it: ``((width, height), mode, problem, SHA-256 of the bytes)``,
    ``problem`` ``None`` when it reads. The bytes are read once, for the checksum and for Pillow;
    a PNG's chunks and CRCs are verified, a JPEG decoded at 1/8 scale (``verify`` alone passes a
    truncated JPEG), anything else decoded in full."""
    try:
        with open(path, "rb") as handle:
            data = handle.read()
    except OSError as error:  # permissions, a broken link, an I/O error
        return None, None, f"cannot be read ({type(error).__name__}: {error})", ""
    digest = hashlib.sha256(data).hexdigest()
    try:
        with Image.open(io.BytesIO(data)) as image:
            size, mode, fmt = image.size, image.mode, image.format
            if fmt == "PNG":
                image.verify()  # walks the chunks and checks their CRCs, without decoding
            else:
                if fmt == "JPEG":
                    image.draft(image.mode, (max(1, size[0] // 8), max(1, size[1] // 8)))
                image.load()
    except UnidentifiedImageError:
        return None, None, "cannot be read (not an image format Pillow can identify)", digest
    except Exception as error:  # noqa: BLE001 - Pillow raises many types for broken files
        return None, None, f"cannot be read ({type(error).__name__}: {error})", digest
    return size, mode, None, digest
