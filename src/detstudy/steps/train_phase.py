"""The ``train_phase`` step: a multimodal phase or control trained (``detstudy.tasks.detection.multimodal.phases``)."""

from detstudy.tasks.detection.multimodal.phases import train_phase

__all__ = ["train_phase"]
