"""The ``train_cnn`` / ``train_vit`` step: one run of the grid trained, a CUDA out-of-memory
error turned into advice (``detstudy.tasks.detection.training.train``)."""

from detstudy.tasks.detection.training import train

__all__ = ["train"]
