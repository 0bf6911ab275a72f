"""detstudy: the library behind the detector comparison workflow.

The Snakemake rules call thin scripts; the scripts call this package, which knows
nothing about Snakemake and is unit-tested on its own.
"""

__version__ = "0.1.0"
