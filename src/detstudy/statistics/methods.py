"""The bootstrap interval methods by name, free of numerical imports so that the report's
environment (no scipy) can name them too. :mod:`detstudy.statistics.intervals` computes them."""

METHODS = ("basic", "bca", "percentile")
METHOD_NAMES = {"basic": "basic", "bca": "BCa", "percentile": "percentile"}
#: The schema's default (config/schema.yaml ``statistics.method``): the best coverage in
#: benchmarks/bootstrap_coverage.py. Code that computes an interval without a configured method uses it too.
DEFAULT_METHOD = "basic"
