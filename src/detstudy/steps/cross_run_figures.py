"""The ``cross_run_figures`` step: the figures comparing every run (``detstudy.figures.cross_run``)."""

from detstudy.figures.cross_run import cross_run_figures

__all__ = ["cross_run_figures"]
