"""The ``train_joint`` step: strategy 2 of the multimodal chain trained from the model's initial
weights (``detstudy.tasks.detection.multimodal.phases``)."""

from detstudy.tasks.detection.multimodal.phases import train_joint

__all__ = ["train_joint"]
