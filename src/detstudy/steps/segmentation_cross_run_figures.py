"""The ``segmentation_cross_run_figures`` step: the figures comparing every segmentation run (``detstudy.figures.cross_run``)."""

from detstudy.figures.cross_run import segmentation_cross_run_figures

__all__ = ["segmentation_cross_run_figures"]
