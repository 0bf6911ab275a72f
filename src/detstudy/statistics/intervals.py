"""Bootstrap confidence intervals from precomputed replicates: basic, BCa and percentile.

* percentile: the replicates' quantiles. The bootstrap of AP on a small test set is biased
  upwards (resampling duplicates images, and AP on fewer distinct images is higher), and the
  percentile interval carries that bias.
* basic (Davison and Hinkley, *Bootstrap Methods and their Application*, 1997, ch. 5): the
  replicates' spread around the estimate, mirrored (``2 * estimate - quantiles``), which
  removes the bootstrap's bias once.
* BCa (Efron and Tibshirani, *An Introduction to the Bootstrap*, 1993, ch. 14): the percentile
  interval's ends moved by the median bias ``z0`` and the acceleration ``a`` (from the
  jackknife, leave one test image out).

``benchmarks/bootstrap_coverage.py`` measures how often each covers the AP of a population.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.special import ndtr, ndtri

from detstudy.statistics.methods import DEFAULT_METHOD, METHODS


@dataclass(frozen=True)
class Interval:
    estimate: float  # the statistic on the test set itself
    low: float
    high: float
    bias: float  # mean of the replicates minus the estimate
    se: float  # standard deviation of the replicates
    method: str
    level: float

    def to_dict(self) -> dict:
        return {key: json_number(getattr(self, key)) for key in ("estimate", "low", "high", "bias", "se")}


def json_number(value):
    """A JSON number: NaN and infinities (undefined) as None."""
    return None if value is None or not np.isfinite(value) else float(value)


def acceleration(jackknife: np.ndarray) -> float:
    """BCa's acceleration from the leave-one-out values (0 when they do not vary)."""
    values = np.asarray(jackknife, dtype=float)
    values = values[np.isfinite(values)]
    if len(values) < 3:
        return 0.0
    deviation = values.mean() - values
    spread = np.sum(deviation ** 2)
    return float(np.sum(deviation ** 3) / (6.0 * spread ** 1.5)) if spread > 0 else 0.0


def bias_correction(replicates: np.ndarray, estimate: float) -> float:
    """BCa's ``z0``: the normal quantile of the share of replicates below the estimate (ties
    count half: AP takes few distinct values on a small test set)."""
    share = (np.sum(replicates < estimate) + 0.5 * np.sum(replicates == estimate)) / len(replicates)
    share = np.clip(share, 0.5 / len(replicates), 1 - 0.5 / len(replicates))
    return float(ndtri(share))


def interval(replicates, estimate: float, *, jackknife=None, level: float = 0.95, method: str = DEFAULT_METHOD,
             bounds: tuple[float, float] | None = None) -> Interval:
    """The ``level`` interval of a statistic from its bootstrap ``replicates`` (NaN replicates,
    resamples where it is undefined, are left out). ``jackknife``: its leave-one-out values, for BCa.
    ``bounds``: the statistic's range (AP: 0 to 1); the basic interval, mirrored around the
    estimate, can leave it (an AP of 0.16 with a lower bound of -0.13), so it is cut there."""
    if method not in METHODS:
        raise ValueError(f"unknown interval method {method!r}; use one of {', '.join(METHODS)}")
    values = np.asarray(replicates, dtype=float)
    values = values[np.isfinite(values)]
    if not np.isfinite(estimate) or len(values) < 2:
        return Interval(float(estimate), np.nan, np.nan, np.nan, np.nan, method, level)
    tails = np.array([(1 - level) / 2, (1 + level) / 2])
    if method == "bca":
        if jackknife is None:
            raise ValueError("a BCa interval needs the jackknife values")
        z0, a = bias_correction(values, estimate), acceleration(jackknife)
        z = ndtri(tails)
        tails = ndtr(z0 + (z0 + z) / (1 - a * (z0 + z)))
    low, high = np.quantile(values, tails)
    if method == "basic":  # the replicates' spread around the estimate, mirrored: corrects the bias once
        low, high = 2 * estimate - high, 2 * estimate - low
    if bounds is not None:
        low, high = min(max(low, bounds[0]), bounds[1]), min(max(high, bounds[0]), bounds[1])
    return Interval(float(estimate), float(low), float(high), float(values.mean() - estimate),
                    float(values.std(ddof=1)), method, level)


def p_value(differences, estimate: float) -> float:
    """Two-sided bootstrap p-value of "no difference": the share of the difference's replicates,
    shifted to the null (``replicate - estimate``), at least as far from 0 as the observed
    difference (Efron and Tibshirani, ch. 16), with the usual +1 so that it is never 0."""
    values = np.asarray(differences, dtype=float)
    values = values[np.isfinite(values)]
    if not np.isfinite(estimate) or not len(values):
        return float("nan")
    extreme = np.sum(np.abs(values - estimate) >= abs(estimate))
    return float((extreme + 1) / (len(values) + 1))


def holm(p_values) -> list[float]:
    """Holm's step-down adjustment of p-values for several comparisons (NaN left out and kept)."""
    values = np.asarray(p_values, dtype=float)
    adjusted = np.full(len(values), np.nan)
    finite = np.flatnonzero(np.isfinite(values))
    order = finite[np.argsort(values[finite], kind="mergesort")]
    running = 0.0
    for rank, index in enumerate(order):
        running = max(running, min(1.0, (len(order) - rank) * values[index]))
        adjusted[index] = running
    return adjusted.tolist()
