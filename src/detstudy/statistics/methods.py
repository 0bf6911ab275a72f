"""The bootstrap interval methods by name, free of numerical imports so that the report's
environment (no scipy) can name them too. :mod:`detstudy.statistics.intervals` computes them."""

METHODS = ("basic", "bca", "percentile")
METHOD_NAMES = {"basic": "basic", "bca": "BCa", "percentile": "percentile"}
