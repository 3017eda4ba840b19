"""How sure a figure is: 95 % intervals for the three kinds of figure a trial reports.

* **A mean over measurement windows** (EPF, latency): Student's t interval of the mean,
  ``mean ± t(0.975, n-1) · std / √n`` over the n windows. Summaries (n, mean, std) pool exactly, so
  more windows measured later extend a measurement instead of replacing it (:func:`pool`).
* **A top-1 accuracy on a validation set**: two sources of noise. The validation images are a
  sample (binomial: Wilson's score interval for ``correct / n``), and training is random (the
  seeds). The seeds share the validation set, so seed averaging does not shrink the binomial part;
  :func:`accuracy_interval` adds the two half-widths in quadrature, the seed part being
  ``t(0.975, df) · σ / √K`` for the mean of K seeds. σ is the seed standard deviation pooled over
  every trial of a study that ran two or more seeds, once they give :data:`MIN_POOLED_DF` degrees of
  freedom (:func:`pooled_std`; seed noise depends little on the network), else the trial's own; a
  single seed with no pooled estimate has only the binomial part, and the front says so.
* **Between sittings** (EPF): a measurement's windows follow each other within seconds, and a
  second sitting minutes later scatters by more than their spread (``benchmarks/profile_stability.py
  --rounds``). Where trials were measured in two independent sittings (``confirm --remeasure-epf``),
  :func:`sitting_noise` estimates that scatter as a relative std, after removing the shift common to
  every network (a session's drift moves them alike), and :func:`with_sitting_noise` adds
  ``t(0.975, df) · cv · value`` in quadrature to a window interval.
* **Counts** (params, MACs) are exact: their interval is the value itself.

Example:
    >>> low, high = wilson_interval(45, 100)
    >>> round(low, 3), round(high, 3)
    (0.356, 0.548)
    >>> summary = Summary.of([10.0, 11.0, 12.0])
    >>> summary.mean, round(summary.half_width(), 3)
    (11.0, 2.484)
    >>> Summary.of([11.0]).half_width()                 # one window: the spread is unknown
    nan
    >>> pool(summary, Summary.of([11.0, 11.0])).n
    5
"""

from __future__ import annotations

import dataclasses
import math
import statistics
from collections.abc import Callable, Sequence

import numpy as np
from scipy import stats as _scipy

CONFIDENCE = 0.95


def t_quantile(n: int, confidence: float = CONFIDENCE) -> float:
    """Two-sided Student's t quantile for a mean over ``n`` values (``inf`` when n < 2)."""
    return float(_scipy.t.ppf(0.5 + confidence / 2, n - 1)) if n >= 2 else math.inf


@dataclasses.dataclass(frozen=True)
class Summary:
    """n values summarised by their mean and sample standard deviation."""

    n: int
    mean: float
    std: float

    @classmethod
    def of(cls, values: Sequence[float]) -> Summary:
        values = [float(v) for v in values]
        if not values:
            raise ValueError("a summary needs at least one value")
        return cls(len(values), statistics.fmean(values), statistics.stdev(values) if len(values) > 1 else 0.0)

    def half_width(self, confidence: float = CONFIDENCE) -> float:
        """Half the width of the t interval of the mean; ``nan`` (unknown) for fewer than two values."""
        return math.nan if self.n < 2 else t_quantile(self.n, confidence) * self.std / math.sqrt(self.n)

    def interval(self, confidence: float = CONFIDENCE) -> tuple[float, float]:
        half = self.half_width(confidence)
        return self.mean - half, self.mean + half


def pool(first: Summary, second: Summary) -> Summary:
    """The summary of both sets of values together, exactly as if they had been summarised at once
    (both need n >= 1)."""
    n = first.n + second.n
    mean = (first.n * first.mean + second.n * second.mean) / n
    squares = (
        (first.n - 1) * first.std**2
        + (second.n - 1) * second.std**2
        + first.n * (first.mean - mean) ** 2
        + second.n * (second.mean - mean) ** 2
    )
    return Summary(n, mean, math.sqrt(squares / (n - 1)) if n > 1 else 0.0)


def wilson_interval(correct: float, n: int, confidence: float = CONFIDENCE) -> tuple[float, float]:
    """Wilson's score interval of the proportion ``correct / n`` (as fractions in [0, 1])."""
    if n <= 0:
        return 0.0, 1.0
    z = float(_scipy.norm.ppf(0.5 + confidence / 2))
    p = min(max(correct / n, 0.0), 1.0)
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    spread = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return max(0.0, centre - spread), min(1.0, centre + spread)


@dataclasses.dataclass(frozen=True)
class SeedNoise:
    """A standard deviation of top-1 between training seeds (percentage points) and its degrees of freedom."""

    std: float
    df: int


MIN_POOLED_DF = 4  # below this, a study-wide seed noise would rest on too few seeds (t(0.975, 1) = 12.7)


def pooled_std(groups: Sequence[Sequence[float]], min_df: int = MIN_POOLED_DF) -> SeedNoise | None:
    """The within-group standard deviation pooled over ``groups`` of two or more values each
    (``None`` when they give fewer than ``min_df`` degrees of freedom)."""
    used = [Summary.of(group) for group in groups if len(group) >= 2]
    df = sum(summary.n - 1 for summary in used)
    if df < max(1, min_df):
        return None
    return SeedNoise(math.sqrt(sum((s.n - 1) * s.std**2 for s in used) / df), df)


@dataclasses.dataclass(frozen=True)
class SittingNoise:
    """How far one sitting's EPF scatters between sittings beyond its windows: a relative std (0.04 is
    4 %) and its degrees of freedom (networks measured twice, less one)."""

    cv: float
    df: int


def sitting_noise(pairs: Sequence[tuple[Summary, Summary]], min_df: int = MIN_POOLED_DF) -> SittingNoise | None:
    """The between-sitting relative std from ``pairs`` of independent sittings of one network each
    (``None`` below ``min_df`` degrees of freedom).

    With ``d = ln(second / first)`` per network, ``var(d) = 2 cv² + (within-sitting variance of
    both means)``; the mean of ``d`` (the session's common drift) is removed, and what the windows
    explain is subtracted.

    Example:
        >>> pairs = [(Summary(3, m, 0.0), Summary(3, m * f, 0.0))
        ...          for m, f in ((10, 1.10), (20, 1.02), (30, 1.06), (40, 1.14), (50, 1.06))]
        >>> noise = sitting_noise(pairs)
        >>> round(noise.cv, 3), noise.df
        (0.03, 4)
    """
    used = [(a, b) for a, b in pairs if a.n >= 1 and b.n >= 1 and a.mean > 0 and b.mean > 0]
    df = len(used) - 1
    if df < max(1, min_df):
        return None
    shifts = [math.log(b.mean / a.mean) for a, b in used]
    spread = statistics.variance(shifts)
    within = statistics.fmean((a.std / a.mean) ** 2 / a.n + (b.std / b.mean) ** 2 / b.n for a, b in used)
    return SittingNoise(math.sqrt(max(0.0, spread - within) / 2), df)


def with_sitting_noise(
    low: float, high: float, value: float, noise: SittingNoise | None, confidence: float = CONFIDENCE
) -> tuple[float, float]:
    """The window interval ``(low, high)`` of ``value`` widened by the between-sitting noise.

    >>> with_sitting_noise(9.0, 11.0, 10.0, SittingNoise(cv=0.05, df=8))
    (8.47..., 11.52...)
    """
    if noise is None or math.isnan(low) or math.isnan(high):
        return low, high
    extra = t_quantile(noise.df + 1, confidence) * noise.cv * abs(value)
    return value - math.hypot(value - low, extra), value + math.hypot(high - value, extra)


@dataclasses.dataclass(frozen=True)
class AccuracyInterval:
    """Top-1 (in %) over K seeds on ``val_size`` images: mean, the seeds' std and the 95 % interval."""

    mean: float
    std: float
    seeds: int
    val_size: int
    low: float
    high: float


def accuracy_interval(
    top1_pct: Sequence[float], val_size: int, seed_noise: SeedNoise | None = None, confidence: float = CONFIDENCE
) -> AccuracyInterval:
    """The interval of a mean top-1 over seeds (see the module docstring); ``seed_noise`` is the
    study's pooled seed noise, else the seeds' own spread is used.

    Example:
        >>> one = accuracy_interval([91.0], val_size=400)              # binomial part only
        >>> round(one.low, 1), round(one.high, 1)
        (87.8, 93.4)
        >>> noisy = accuracy_interval([91.0], 400, SeedNoise(std=2.0, df=8))
        >>> round(noisy.low, 1), round(noisy.high, 1)
        (85.4, 96.2)
    """
    seeds = Summary.of(top1_pct)
    wilson_low, wilson_high = wilson_interval(seeds.mean / 100 * val_size, val_size, confidence)
    below, above = seeds.mean - 100 * wilson_low, 100 * wilson_high - seeds.mean
    if seed_noise is None and seeds.n >= 2:  # no study-wide estimate: the trial's own seeds (few df, wide)
        seed_noise = SeedNoise(seeds.std, seeds.n - 1)
    seed_half = (
        0.0 if seed_noise is None else (t_quantile(seed_noise.df + 1, confidence) * seed_noise.std / math.sqrt(seeds.n))
    )
    low = seeds.mean - math.hypot(below, seed_half)
    high = seeds.mean + math.hypot(above, seed_half)
    return AccuracyInterval(seeds.mean, seeds.std, seeds.n, int(val_size), max(0.0, low), min(100.0, high))


def bootstrap_tau(
    x: Sequence[float], y: Sequence[float], resamples: int = 2000, confidence: float = CONFIDENCE, seed: int = 0
) -> tuple[float, float, int]:
    """Percentile interval of Kendall's tau between ``x`` and ``y`` over items drawn with replacement
    (a fixed RNG seed, so the interval is reproducible). Resamples with fewer than two distinct items
    or an undefined tau are skipped; returns (low, high, usable resamples), ``nan`` bounds if none.

    Example:
        >>> low, high, used = bootstrap_tau([1, 2, 3, 4, 5, 6], [1, 3, 2, 4, 6, 5])
        >>> low < 0.6 < high <= 1.0 and used > 1000
        True
    """
    xs, ys = np.asarray(x, dtype=float), np.asarray(y, dtype=float)

    def tau(index: np.ndarray) -> float:
        return _scipy.kendalltau(xs[index], ys[index]).statistic if len(set(index.tolist())) > 1 else math.nan

    return bootstrap_interval(tau, len(xs), resamples, confidence, seed)


def bootstrap_interval(
    statistic: Callable[[np.ndarray], float],
    items: int,
    resamples: int = 2000,
    confidence: float = CONFIDENCE,
    seed: int = 0,
) -> tuple[float, float, int]:
    """Percentile interval of ``statistic(index)`` over ``resamples`` draws of ``items`` indices with
    replacement (a fixed RNG seed, so reproducible); draws where it is ``nan`` are skipped. Returns
    (low, high, usable draws), ``nan`` bounds if none."""
    rng = np.random.default_rng(seed)
    values = [
        value for value in (statistic(rng.integers(0, items, items)) for _ in range(resamples)) if not math.isnan(value)
    ]
    if not values:
        return math.nan, math.nan, 0
    tail = 100 * (1 - confidence) / 2
    low, high = np.percentile(values, [tail, 100 - tail])
    return float(low), float(high), len(values)
