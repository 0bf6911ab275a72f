"""The ``classification_cross_run_figures`` step: the figures comparing every classification run (``detstudy.figures.cross_run``)."""

from detstudy.figures.cross_run import classification_cross_run_figures

__all__ = ["classification_cross_run_figures"]
