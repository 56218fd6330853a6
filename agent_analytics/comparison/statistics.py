"""The statistics of an A/B comparison, on the per-unit values of two versions (numpy arrays).

Which test fits which metric, and why (docs/metric-definitions.md, *A/B comparison*):
- the error rate is a proportion of messages: a two-proportion z-test (pooled standard error)
  for the p-value, a Wald interval (unpooled) for the difference;
- response times, cost and tokens per message and messages per session are skewed (a long
  tail of slow, expensive or long answers), so neither a t-test's nor a normal interval's
  assumptions hold for small samples: the p-value is a Mann-Whitney U test (a rank test, no
  assumption about the shape), the interval of the difference of the shown statistic (mean,
  P50, P95) a percentile bootstrap.
The bootstrap draws the statistic of each version B times from resamples of its units; a
version with more than BOOTSTRAP_MAX_UNITS units draws it from the normal distribution with
the statistic's standard error instead (at that size the two agree, and resampling a million
units B times would take minutes). The seed is fixed, so the same question always gets the
same answer (the command and the HTTP API answer alike).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy import stats

ALPHA = 0.05  # a difference is significant when p < ALPHA and the interval excludes 0
CONFIDENCE = 0.95  # 1 - ALPHA: the intervals are 95% intervals
RESAMPLES = 2000
BOOTSTRAP_MAX_UNITS = 10_000
SEED = 17  # fixed: the same data always gives the same intervals
BATCH_VALUES = 2_000_000  # resampled values held in memory at once

# Below these a test of a version's sample says nothing worth a verdict (docs/metric-definitions.md).
MIN_MESSAGES = 100  # per version, for the metrics per message
MIN_SESSIONS = 30  # per version, for messages per session
MIN_USERS = 20  # per version, for every test: the messages of one user are not independent
MIN_EXPECTED = 5  # expected errors and successes per version under the pooled rate (z-test)

Z = float(stats.norm.ppf(1 - ALPHA / 2))
QUANTILES = {"p50": 0.5, "p95": 0.95}


@dataclass(frozen=True)
class Interval:
    """The difference B - A, its confidence interval and the p-value of the test."""

    difference: float | None
    low: float | None
    high: float | None
    p_value: float | None

    @property
    def significant(self) -> bool:
        return (self.p_value is not None and self.p_value < ALPHA and self.low is not None
                and (self.low > 0 or self.high < 0))


NOTHING = Interval(None, None, None, None)


def two_proportion_test(errors_a: int, n_a: int, errors_b: int, n_b: int) -> Interval:
    """Difference of the proportions errors_b / n_b - errors_a / n_a: the z-test's two-sided
    p-value with the pooled standard error, the Wald interval with the unpooled one. No p-value
    when the pooled proportion is 0 or 1 (no variation: the test has nothing to weigh)."""
    if not n_a or not n_b:
        return NOTHING
    p_a, p_b = errors_a / n_a, errors_b / n_b
    difference = p_b - p_a
    pooled = (errors_a + errors_b) / (n_a + n_b)
    pooled_se = math.sqrt(pooled * (1 - pooled) * (1 / n_a + 1 / n_b))
    p_value = float(2 * stats.norm.sf(abs(difference) / pooled_se)) if pooled_se > 0 else None
    se = math.sqrt(p_a * (1 - p_a) / n_a + p_b * (1 - p_b) / n_b)
    return Interval(difference, difference - Z * se, difference + Z * se, p_value)


def rank_test_p(a: np.ndarray, b: np.ndarray) -> float | None:
    """Two-sided Mann-Whitney U p-value (scipy: exact for small samples without ties, else the
    normal approximation with the tie correction); 1.0 when every value is the same."""
    if not len(a) or not len(b):
        return None
    return float(stats.mannwhitneyu(b, a, alternative="two-sided").pvalue)


def statistic(values: np.ndarray, name: str) -> float | None:
    """`mean`, `p50` or `p95` (continuous percentiles, as DuckDB's quantile_cont) of `values`."""
    if not len(values):
        return None
    return float(values.mean() if name == "mean" else np.quantile(values, QUANTILES[name]))


def statistic_draws(values: np.ndarray, names: tuple[str, ...], rng: np.random.Generator) -> dict[str, np.ndarray]:
    """RESAMPLES draws of each statistic of `names` from its sampling distribution: bootstrap
    resamples (with replacement, of the version's own units) up to BOOTSTRAP_MAX_UNITS units,
    the normal distribution with the statistic's standard error above."""
    n = len(values)
    if n > BOOTSTRAP_MAX_UNITS:
        return {name: statistic(values, name) + standard_error(values, name) * rng.standard_normal(RESAMPLES)
                for name in names}
    draws: dict[str, list[np.ndarray]] = {name: [] for name in names}
    batch = max(1, BATCH_VALUES // n)
    for start in range(0, RESAMPLES, batch):
        resamples = values[rng.integers(0, n, size=(min(batch, RESAMPLES - start), n))]
        for name in names:
            draws[name].append(resamples.mean(axis=1) if name == "mean" else np.quantile(resamples, QUANTILES[name], axis=1))
    return {name: np.concatenate(parts) for name, parts in draws.items()}


def standard_error(values: np.ndarray, name: str) -> float:
    """The standard error of a large sample's statistic: s / sqrt(n) for the mean; for a
    percentile, the width of its distribution-free interval (the order statistics whose ranks
    the binomial bounds around n q) over 2 z."""
    n = len(values)
    if name == "mean":
        return float(values.std(ddof=1) / math.sqrt(n))
    q = QUANTILES[name]
    spread = Z * math.sqrt(n * q * (1 - q))
    low, high = max(math.floor(n * q - spread), 1), min(math.ceil(n * q + spread), n)
    ordered = np.partition(values, (low - 1, high - 1))
    return float(ordered[high - 1] - ordered[low - 1]) / (2 * Z)


def skewed_test(a: np.ndarray, b: np.ndarray, names: tuple[str, ...], seed: int = SEED) -> dict[str, Interval]:
    """For each statistic of `names`: the difference B - A, its percentile interval from the
    draws of each version's statistic, and the Mann-Whitney U p-value of the two samples (one
    test of the samples, shared by their statistics)."""
    if len(a) < 2 or len(b) < 2:  # no spread to resample
        return {name: Interval(_difference(a, b, name), None, None, rank_test_p(a, b)) for name in names}
    rng = np.random.default_rng(seed)
    draws_a, draws_b = statistic_draws(a, names, rng), statistic_draws(b, names, rng)
    p_value = rank_test_p(a, b)
    tails = [100 * ALPHA / 2, 100 * (1 - ALPHA / 2)]
    result = {}
    for name in names:
        low, high = np.percentile(draws_b[name] - draws_a[name], tails)
        result[name] = Interval(_difference(a, b, name), float(low), float(high), p_value)
    return result


def _difference(a: np.ndarray, b: np.ndarray, name: str) -> float | None:
    stat_a, stat_b = statistic(a, name), statistic(b, name)
    return None if stat_a is None or stat_b is None else stat_b - stat_a
