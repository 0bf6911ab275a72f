"""The predicted masks a segmentation evaluation keeps for the overlay figure (torch-free: the
figure job reads them without the model): the test images with the most ground-truth classes,
shrunk to at most :data:`SAMPLE_SIDE` px, in ``samples.npz``."""

from __future__ import annotations

import numpy as np

from detstudy.engine.io import atomic_path
from detstudy.tasks.segmentation.data.checks import read_mask

SAMPLE_SIDE = 512  # px: the overlay figure's masks are kept at most this large


def shrink(mask: np.ndarray, side: int = SAMPLE_SIDE) -> np.ndarray:
    """Nearest-neighbour subsampling to at most ``side`` px on the longer side (class ids kept)."""
    step = max(1, -(-max(mask.shape[:2]) // side))
    return mask[::step, ::step]


class SampleKeeper:
    """The predicted masks of the ``count`` test images of ``data`` (a ``MaskDataset``) with the
    most ground-truth classes (ties: stem order), shrunk by :func:`shrink`; called with each
    image's index and predicted mask (a tensor) as the evaluation goes."""

    def __init__(self, data, count: int):
        self.data, self.count, self.kept = data, count, []

    def __call__(self, index: int, prediction) -> None:
        if self.count <= 0:
            return
        truth = read_mask(self.data.pairs[index][1], self.data.num_classes, self.data.palette)
        present = np.unique(truth[truth != self.data.ignore_index]).size
        self.kept.append((-present, index, shrink(prediction.numpy().astype(np.uint8))))
        self.kept = sorted(self.kept)[:self.count]

    def save(self, path) -> None:
        chosen = sorted(self.kept, key=lambda item: item[1])
        arrays = {f"prediction_{k}": mask for k, (_, _, mask) in enumerate(chosen)}
        stems = [self.data.pairs[index][0].stem for _, index, _ in chosen]
        with atomic_path(path) as tmp:
            with open(tmp, "wb") as handle:
                np.savez_compressed(handle, stems=np.asarray(stems, dtype=str), **arrays)


def read_samples(path) -> list[tuple[str, np.ndarray]]:
    """(stem, predicted mask) of every kept image, in stem order."""
    with np.load(path) as stored:
        return [(str(stem), stored[f"prediction_{k}"]) for k, stem in enumerate(stored["stems"])]
