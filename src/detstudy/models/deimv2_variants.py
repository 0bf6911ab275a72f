"""DEIMv2 variant sizes: the table lives in the torch-free spec (``detstudy.spec``), which the
Snakefile reads while it parses; this module names it for the model code."""

from __future__ import annotations

from detstudy.spec import DEIMV2_ARCHITECTURES, VARIANTS

__all__ = ["DEIMV2_ARCHITECTURES", "VARIANTS"]
