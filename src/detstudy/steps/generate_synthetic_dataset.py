"""The ``generate_synthetic_dataset`` step: the demo dataset drawn (``detstudy.tasks.detection.data.synthetic``)."""

from detstudy.tasks.detection.data.synthetic import generate_synthetic_dataset

__all__ = ["generate_synthetic_dataset"]
