"""McNemar's exact test, the classic paired test of two classifiers on one test set (Dietterich,
1998): only the images exactly one of them gets right count."""

from __future__ import annotations

from typing import Any

import numpy as np
from scipy.stats import binomtest


def mcnemar_from_counts(a_only: int, b_only: int) -> dict[str, Any]:
    """McNemar's exact test from the discordant images: the two-sided binomial p-value of
    ``a_only`` right by a only against ``b_only`` right by b only under ``p = 1/2`` (none: p = 1)."""
    p = binomtest(a_only, a_only + b_only, 0.5).pvalue if a_only + b_only else 1.0
    return {"a_only": int(a_only), "b_only": int(b_only), "p": float(p)}


def mcnemar_exact(correct_a, correct_b) -> dict[str, Any]:
    """McNemar's exact test of two classifiers on the same images (which each got right)."""
    a, b = np.asarray(correct_a, dtype=bool), np.asarray(correct_b, dtype=bool)
    if a.shape != b.shape:
        raise ValueError(f"McNemar: {a.shape} and {b.shape} predictions; the runs must share the test images")
    return mcnemar_from_counts(int((a & ~b).sum()), int((~a & b).sum()))
