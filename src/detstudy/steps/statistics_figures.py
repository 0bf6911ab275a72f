"""The ``statistics_figures`` step: the forest plot and the differences (``detstudy.figures.intervals``)."""

from detstudy.figures.intervals import statistics_figures

__all__ = ["statistics_figures"]
