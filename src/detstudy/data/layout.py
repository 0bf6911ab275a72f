"""Where a dataset's image files are, known without opening them.

Dependency-free (standard library only): the Snakefile lists these files as rule inputs
while it parses, so that an edited image reruns the jobs that read it.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

#: Images per split of the synthetic demo when the config does not say.
DEFAULT_SPLIT_SIZES = {"train": 160, "val": 32, "test": 64}


def synthetic_file_name(split: str, index: int) -> str:
    return f"{split}_{index:05d}.png"


def synthetic_split_sizes(overrides: dict[str, int] | None = None) -> dict[str, int]:
    return {**DEFAULT_SPLIT_SIZES, **(overrides or {})}


def synthetic_image_files(images_dir: str | os.PathLike, split: str, size: int) -> list[str]:
    """The files the generator writes for one split (it names them by index)."""
    return [str(Path(images_dir) / synthetic_file_name(split, index)) for index in range(int(size))]


def listed_image_files(annotations: str | os.PathLike, images_dir: str | os.PathLike) -> list[str]:
    """The image files a COCO annotation file lists that exist, in file-name order.

    An unreadable file or a missing image yields fewer paths, not an error: the dataset
    check reports those problems with the file, the item and the fix.
    """
    try:
        with open(annotations) as handle:
            images = json.load(handle)["images"]
        names = sorted({str(image["file_name"]) for image in images})
    except (OSError, ValueError, KeyError, TypeError):
        return []
    paths = (os.path.join(images_dir, name) for name in names)
    return [path for path in paths if os.path.isfile(path)]
