"""The predicted masks a segmentation evaluation keeps for the overlay figure (torch-free: the
figure job reads them without the model): the :data:`SAMPLES_KEPT` test images with the most
ground-truth classes, shrunk to at most :data:`SAMPLE_SIDE` px, in ``samples.npz``. A fixed
number, so that the figure's ``figures.prediction_images`` redraws the figure only."""

from __future__ import annotations

import numpy as np

from detstudy.engine.io import atomic_path

SAMPLE_SIDE = 512  # px: the overlay figure's masks are kept at most this large
SAMPLES_KEPT = 16  # images kept by every evaluation; the figure shows figures.prediction_images of them


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

    def __call__(self, index: int, prediction, truth) -> None:
        if self.count <= 0:
            return
        truth = truth.numpy()
        present = np.unique(truth[truth != self.data.ignore_index]).size
        dtype = np.uint8 if self.data.num_classes <= 256 else np.uint16
        self.kept.append((-present, index, shrink(prediction.numpy().astype(dtype))))
        self.kept = sorted(self.kept, key=lambda item: item[:2])[:self.count]

    def store(self, path) -> None:
        """The kept masks, their stems and ranks as ``.npz`` at ``path`` (atomically)."""
        chosen = sorted(self.kept, key=lambda item: item[1])
        arrays = {f"prediction_{k}": mask for k, (_, _, mask) in enumerate(chosen)}
        stems = [self.data.pairs[index][0].stem for _, index, _ in chosen]
        order = sorted(range(len(chosen)), key=lambda k: chosen[k][:2])  # most classes first
        ranks = [order.index(k) for k in range(len(chosen))]
        with atomic_path(path) as tmp:
            with open(tmp, "wb") as handle:
                np.savez_compressed(handle, stems=np.asarray(stems, dtype=str), ranks=np.asarray(ranks), **arrays)


def read_samples(path, count: int | None = None) -> list[tuple[str, np.ndarray]]:
    """(stem, predicted mask) of the kept images, in stem order: all, or the ``count`` with the
    most ground-truth classes."""
    with np.load(path) as stored:
        found = [(str(stem), stored[f"prediction_{k}"], int(rank)) for k, (stem, rank)
                 in enumerate(zip(stored["stems"], stored["ranks"]))]
    chosen = sorted(found, key=lambda item: item[2])[:count] if count is not None else found
    return [(stem, mask) for stem, mask, _ in sorted(chosen, key=lambda item: item[0])]
