"""Paired comparisons of two models scored on the same questions: more than chance?

For models A and B and their per-question correctness on the same n questions:

* delta: accuracy(A) - accuracy(B), in percentage points;
* a 95% paired bootstrap interval of delta: questions resampled with replacement, the same
  draw for both models (scipy.stats.bootstrap, paired, percentile method, a fixed seed);
* the exact McNemar p-value: a two-sided binomial test (scipy.stats.binomtest) of the
  discordant questions (A right and B wrong against the reverse) at p = 1/2, 1 when none;
* Holm's step-down correction of a table's p-values (family-wise error rate).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy.stats import binomtest, bootstrap

RESAMPLES = 10_000
CONFIDENCE = 0.95
SEED = 0


@dataclass(frozen=True)
class Comparison:
    n: int
    delta: float  # percentage points
    ci_low: float
    ci_high: float
    p_value: float


def compare(a: Sequence[bool], b: Sequence[bool]) -> Comparison:
    """A against B on the same questions, in the same order."""
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    if a.shape != b.shape or a.ndim != 1 or not len(a):
        raise ValueError(
            f"paired comparison needs two equal, non-empty vectors: {a.shape}, {b.shape}"
        )
    delta = 100 * (a.mean() - b.mean())
    if np.array_equal(a, b) or len(a) == 1:
        low = high = delta  # every resample gives the same difference
    else:
        interval = bootstrap(
            (a, b), _mean_difference, paired=True, vectorized=True, n_resamples=RESAMPLES,
            confidence_level=CONFIDENCE, method="percentile", rng=np.random.default_rng(SEED),
        ).confidence_interval  # fmt: skip
        low, high = 100 * interval.low, 100 * interval.high
    return Comparison(len(a), delta, float(low), float(high), mcnemar_exact(a, b))


def _mean_difference(a: np.ndarray, b: np.ndarray, axis: int = -1) -> np.ndarray:
    return a.mean(axis=axis) - b.mean(axis=axis)


def mcnemar_exact(a: Sequence[bool], b: Sequence[bool]) -> float:
    """Two-sided exact McNemar test: the binomial test of A-only against B-only successes."""
    a, b = np.asarray(a, dtype=bool), np.asarray(b, dtype=bool)
    only_a, only_b = int((a & ~b).sum()), int((~a & b).sum())
    if only_a + only_b == 0:
        return 1.0
    return float(binomtest(only_a, only_a + only_b, 0.5, alternative="two-sided").pvalue)


def holm(p_values: Sequence[float]) -> list[float]:
    """Holm-adjusted p-values, in the input order: the k-th smallest of m is multiplied by
    m - k + 1, made non-decreasing, and capped at 1."""
    order = np.argsort(p_values, kind="stable")
    m, adjusted, running = len(p_values), [0.0] * len(p_values), 0.0
    for rank, index in enumerate(order):
        running = max(running, min(1.0, (m - rank) * p_values[index]))
        adjusted[index] = running
    return adjusted
