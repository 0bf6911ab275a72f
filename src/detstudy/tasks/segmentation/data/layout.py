"""A segmentation split: a folder of images and a folder of masks with the same file stems
(mmsegmentation's custom-dataset layout). A mask is a single-channel PNG whose pixel values are
class indices, one value (255 by default) meaning "ignore"."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".tif", ".tiff", ".bmp", ".webp")
MASK_SUFFIX = ".png"
DEFAULT_IGNORE_INDEX = 255


@dataclass(frozen=True)
class MaskSplit:
    """Where one split lives: its images folder and its masks folder."""

    images: Path
    masks: Path

    @classmethod
    def of(cls, images, masks) -> "MaskSplit":
        return cls(Path(images), Path(masks))

    def image_files(self) -> dict[str, Path]:
        """Image files by stem (sorted); other files (a README, thumbnails' databases) are skipped."""
        return {p.stem: p for p in sorted(self.images.iterdir()) if p.suffix.lower() in IMAGE_SUFFIXES} \
            if self.images.is_dir() else {}

    def mask_files(self) -> dict[str, Path]:
        return {p.stem: p for p in sorted(self.masks.iterdir()) if p.suffix.lower() in IMAGE_SUFFIXES} \
            if self.masks.is_dir() else {}

    def pairs(self) -> list[tuple[Path, Path]]:
        """(image, mask) of every stem that has both, in stem order."""
        images, masks = self.image_files(), self.mask_files()
        return [(images[stem], masks[stem]) for stem in sorted(images) if stem in masks]
