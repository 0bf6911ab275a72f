"""The ``comparisons`` step: every cell of the grid with its seeds pooled, and the paired differences (``detstudy.statistics.comparisons``)."""

from detstudy.statistics.comparisons import comparisons

__all__ = ["comparisons"]
