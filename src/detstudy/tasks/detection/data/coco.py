"""COCO annotation files and the mapping from dataset category ids to model labels.

Datasets number their categories however they like (1-based, with gaps). Models
want contiguous labels. ``CategoryMap`` converts both ways, so everything a
person reads is reported with the dataset's own ids and names.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from detstudy.engine.io import file_digest
from detstudy.tasks.dataset_errors import DatasetError



@dataclass(frozen=True)
class SplitPaths:
    """Where one split lives: the COCO JSON and the folder its file names are relative to."""

    annotations: Path
    images: Path

    @classmethod
    def of(cls, annotations: str | Path, images: str | Path) -> "SplitPaths":
        return cls(Path(annotations), Path(images))


def load_coco_json(path: str | Path) -> dict[str, Any]:
    """Read a COCO annotation file, failing with a message that names it."""
    path = Path(path)
    if not path.is_file():
        raise DatasetError(f"{path}: annotation file not found. Fix: check the dataset paths in your config.")
    try:
        with open(path) as handle:
            data = json.load(handle)
    except json.JSONDecodeError as error:
        raise DatasetError(
            f"{path}: not valid JSON ({error.msg} at line {error.lineno}, column {error.colno}). "
            "Fix: export the split again as a COCO JSON file."
        ) from None
    if not isinstance(data, dict):
        raise DatasetError(f"{path}: top level is {type(data).__name__}, expected a COCO object. "
                           "Fix: export the split as a COCO JSON file with 'images', 'annotations', 'categories'.")
    for key in ("images", "annotations", "categories"):
        if not isinstance(data.get(key), list):
            raise DatasetError(f"{path}: missing the list '{key}'. "
                               "Fix: export the split as a COCO JSON file with 'images', 'annotations', 'categories'.")
    return data


@dataclass(frozen=True)
class CategoryMap:
    """Dataset category ids <-> contiguous indices 0..K-1 (sorted by dataset id)."""

    ids: tuple[int, ...]
    names: tuple[str, ...]

    @classmethod
    def from_coco(cls, data: dict[str, Any]) -> "CategoryMap":
        categories = sorted(data["categories"], key=lambda c: c["id"])
        return cls(tuple(int(c["id"]) for c in categories), tuple(str(c["name"]) for c in categories))

    def __len__(self) -> int:
        return len(self.ids)

    def index(self, category_id: int) -> int:
        """Contiguous 0-based index of a dataset category id."""
        return self.ids.index(int(category_id))

    def category_id(self, index: int) -> int:
        return self.ids[int(index)]

    def name(self, category_id: int) -> str:
        return self.names[self.index(category_id)]

    def as_list(self) -> list[dict[str, Any]]:
        return [{"id": i, "name": n} for i, n in zip(self.ids, self.names)]


def images_digest(digests: list[tuple[str, str]]) -> str:
    """One SHA-256 for a split's images from (file name, file SHA-256) pairs, in file-name order."""
    combined = hashlib.sha256()
    for name, digest in sorted(digests):
        combined.update(name.encode() + b"\0" + digest.encode())
    return combined.hexdigest()


def split_checksum(split: SplitPaths) -> dict[str, Any]:
    """SHA-256 of the annotation file and of the split's images, reading every image (the
    split's check computes the same ``images_sha256`` from the bytes it reads anyway)."""
    names = sorted(str(image["file_name"]) for image in load_coco_json(split.annotations)["images"])
    return {"annotations": str(split.annotations), "annotations_sha256": file_digest(split.annotations),
            "images": len(names), "images_sha256": images_digest([(n, file_digest(split.images / n)) for n in names])}
