"""The ``import_checkpoint`` step: an official DEIMv2 checkpoint as a vanilla run (``detstudy.tasks.detection.checkpoint_import``)."""

from detstudy.tasks.detection.checkpoint_import import import_checkpoint

__all__ = ["import_checkpoint"]
