"""Where a dataset's image files are, known without opening them.

Dependency-free (standard library only): the Snakefile uses them while it parses, so that an
edited image reruns the jobs that read it: the synthetic generator's files are rule outputs
and inputs, a user dataset's images are stamped (name, size, date) into a parameter.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

from detstudy.study.splits import DEFAULT_SPLIT_SIZES, synthetic_file_name, synthetic_split_sizes

__all__ = ["DEFAULT_SPLIT_SIZES", "synthetic_file_name", "synthetic_split_sizes"]


def synthetic_image_files(images_dir: str | os.PathLike, split: str, size: int) -> list[str]:
    """The files the generator writes for one split (it names them by index)."""
    return [str(Path(images_dir) / synthetic_file_name(split, index)) for index in range(int(size))]


def listed_image_files(annotations: str | os.PathLike) -> list[str] | None:
    """The file names a COCO annotation file lists, sorted; None when it cannot be read (the
    dataset check reports why, naming the file and the fix)."""
    try:
        with open(annotations) as handle:
            images = json.load(handle)["images"]
        return sorted({str(image["file_name"]) for image in images})
    except (OSError, ValueError, KeyError, TypeError):
        return None


def image_files_stamp(annotations: str | os.PathLike, images_dir: str | os.PathLike) -> str | None:
    """A digest of (file name, size, modification time) of every image the split lists.

    Given to the split's check as a parameter, it makes Snakemake rerun the check when an image
    is replaced, added or removed, for the price of one stat() per image: listing 50 000 image
    files as inputs instead costs Snakemake minutes at every start (benchmarks/dataset_inputs.py).
    """
    names = listed_image_files(annotations)
    if names is None:
        return None
    digest = hashlib.sha256()
    for name in names:
        try:
            info = os.stat(os.path.join(images_dir, name))
            stamp = f"{info.st_size}:{info.st_mtime_ns}"
        except OSError:
            stamp = "missing"  # the check names it
        digest.update(f"{name}\0{stamp}\n".encode())
    return digest.hexdigest()
