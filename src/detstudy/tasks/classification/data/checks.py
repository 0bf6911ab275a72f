"""Check a classification split before any training, every problem at once.

``check_split`` reads every image of a split and raises one ``DatasetError`` listing all it
found, each with the file and the fix:

* the split's folder or CSV missing; a CSV without ``path`` and ``label`` columns; a listed file
  that is not there; an empty split;
* an unreadable image (every image is decoded later the one way the workflow decodes images:
  grayscale, palette, RGBA and 16-bit converted to 8-bit RGB, ``detstudy.tasks.images``);
* a class of the training split with no image in this split, a class folder without images,
  a class this split has that the training split lacks;
* an image whose content is also in the training split (leakage: the same file under another
  name in val or test inflates every test number).

It returns the split's classes, the images per class and the content digest of every image (the
next splits' leakage check reads the training split's).
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field

from detstudy.tasks.classification.data.layout import ImageSplit
from detstudy.tasks.dataset_errors import DatasetError, DatasetWarning, problems_message
from detstudy.tasks.images import probe_image

MAX_LISTED = 20  # problems listed per kind; the rest are counted


@dataclass
class SplitCounts:
    name: str
    classes: list[str]
    images_per_class: dict[str, int]
    digests: dict[str, str] = field(repr=False)  # content SHA-256 -> the first file with it
    duplicates: list[str] = field(default_factory=list)
    files: list[tuple[str, str, str]] = field(default_factory=list, repr=False)  # (path, class, SHA-256) of each image

    def to_dict(self) -> dict:
        return {"images": sum(self.images_per_class.values()), "classes": self.classes,
                "per_class": [{"name": name, "images": self.images_per_class.get(name, 0)} for name in self.classes],
                "duplicates_within": self.duplicates}


def check_split(split: ImageSplit, name: str, reference: SplitCounts | None = None,
                also: SplitCounts | None = None) -> SplitCounts:
    """Every problem of one split in one ``DatasetError``, or its counts. ``reference``: the
    training split's counts (its classes and image digests), for val and test; ``also``: another
    split whose images this one must not share (val's, for test: a model selected on images it
    is then scored on)."""
    problems: dict[str, list[str]] = {}

    def problem(kind: str, text: str) -> None:
        problems.setdefault(kind, []).append(text)

    source = split.source
    if split.is_csv:
        if not source.is_file():
            problem("missing", f"{name}: the CSV file {source} does not exist. Fix: point the config's {name} split at it")
        else:
            with open(source, newline="") as handle:
                header = handle.readline().strip().split(",")
            if not {"path", "label"} <= {column.strip() for column in header}:
                problem("csv", f"{source}: columns {header}; expected a header line with path and label. Fix: "
                        "write one row per image, path (relative to the CSV's folder) and label")
    elif not source.is_dir():
        problem("missing", f"{name}: the folder {source} does not exist. Fix: point the config's {name} split at a folder "
                "with one sub-folder per class")
    if problems:
        raise DatasetError(problems_message(name, problems, MAX_LISTED))
    samples = split.samples()
    classes = split.class_names()
    counts = {label: 0 for label in classes}
    digests: dict[str, str] = {}
    duplicates, files = [], []
    for path, label in samples:
        if not path.is_file():
            problem("missing file", f"{path} (class {label}): listed but not there. Fix: restore it or remove its row")
            continue
        _, _, unreadable, digest = probe_image(path)  # the digest of the bytes it read
        if unreadable:
            problem("unreadable", f"{path}: unreadable image ({unreadable}). Fix: re-export or remove it")
            continue
        files.append((str(path), label, digest))
        for other in (reference, also):
            if other is not None and digest in other.digests:
                problem("leakage", f"{path}: the same image as the {other.name} split's {other.digests[digest]}. "
                        f"Fix: keep each image in one split only (remove it from {name} or from {other.name})")
        if digest in digests:
            duplicates.append(f"{path} = {digests[digest]}")
        else:
            digests[digest] = str(path)
        counts[label] += 1
    for label in classes:
        if counts[label] == 0:
            problem("empty class", f"{name}: class {label!r} has no image. Fix: add its images or remove the class "
                    "from every split")
    if not samples and not problems:
        problem("empty", f"{name}: no images in {source}. Fix: fill the split")
    if reference is not None:
        for label in sorted(set(reference.classes) - set(classes)):
            problem("class missing", f"{name}: no class {label!r}, which the training split has. Fix: add its "
                    "images to this split (every split holds every class)")
        for label in sorted(set(classes) - set(reference.classes)):
            problem("unknown class", f"{name}: class {label!r} is not in the training split, so no model learns it. "
                    "Fix: add it to train or remove it here")
    if problems:
        raise DatasetError(problems_message(name, problems, MAX_LISTED))
    if duplicates:
        warnings.warn(f"split {name!r}: {len(duplicates)} images repeat another of the split ({duplicates[0]}, ...)",
                      DatasetWarning, stacklevel=2)
    return SplitCounts(name=name, classes=classes, images_per_class=counts, digests=digests, duplicates=duplicates,
                       files=files)


__all__ = ["SplitCounts", "check_split"]
