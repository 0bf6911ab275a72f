"""The ``text_embeddings`` step: the class descriptions embedded (``detstudy.tasks.detection.multimodal.embeddings``)."""

from detstudy.tasks.detection.multimodal.embeddings import text_embeddings

__all__ = ["text_embeddings"]
