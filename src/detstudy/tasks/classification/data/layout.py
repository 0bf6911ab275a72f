"""A classification split: torchvision's ``ImageFolder`` layout (one folder per split, one
sub-folder per class) or a CSV of ``path,label`` rows (paths relative to the CSV's folder).
The classes are the training split's, in sorted order, as ``ImageFolder`` numbers them."""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".tif", ".tiff", ".bmp", ".webp")


@dataclass(frozen=True)
class ImageSplit:
    """Where one split lives: a folder of class folders, or a ``path,label`` CSV file."""

    source: Path

    @classmethod
    def of(cls, source) -> "ImageSplit":
        return cls(Path(source))

    @property
    def is_csv(self) -> bool:
        return self.source.suffix.lower() == ".csv"

    def samples(self) -> list[tuple[Path, str]]:
        """(image file, class name) of every image, sorted by class then file (ImageFolder's order)."""
        if self.is_csv:
            return sorted(self._csv_rows(), key=lambda item: (item[1], str(item[0])))
        return [(path, folder.name) for folder in self.class_folders()
                for path in sorted(folder.iterdir()) if path.is_file() and path.suffix.lower() in IMAGE_SUFFIXES]

    def class_folders(self) -> list[Path]:
        return sorted(p for p in self.source.iterdir() if p.is_dir() and not p.name.startswith(".")) \
            if self.source.is_dir() else []

    def class_names(self) -> list[str]:
        """The classes the split names (a folder without images is still a class: the check says so)."""
        if self.is_csv:
            return sorted({label for _, label in self._csv_rows()})
        return [folder.name for folder in self.class_folders()]

    def _csv_rows(self) -> list[tuple[Path, str]]:
        with open(self.source, newline="") as handle:
            rows = list(csv.DictReader(handle))
        return [(self.source.parent / row["path"], row["label"]) for row in rows]
