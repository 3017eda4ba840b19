"""How far a proxy's ranking of networks can be trusted: rank agreement with full training, and the noise
ceiling full training sets itself.

A proxy (a short training, or a score computed at initialisation) is judged by how it orders networks
against the order full training gives them:

* :func:`rank_agreement` — Kendall's tau and Spearman's rho, with a bootstrap 95 % interval of tau
  over the networks (resampled with replacement).
* The **noise ceiling** (:func:`noise_ceiling`) is the same agreement between independent full
  trainings: two seeds, or the means of two disjoint groups of seeds. No proxy can be expected to rank
  like full training better than full training ranks like itself, so a proxy's tau is also read as
  tau / ceiling, like for like: the proxy against a reference of as many seeds as the ceiling's
  (:func:`tau_against_halves`).
* :func:`pair_order_share` — of given pairs (E2GC vs FgGC networks of comparable MACs, the paper's
  comparison), the share whose order the proxy gets right.
* :func:`front_recovery` — the share of the full-training Pareto front (lower energy, higher top-1)
  that the proxy's front also holds.
* :class:`ReferenceNoise` (:func:`reference_noise`) — why full training disagrees with itself: the
  seed noise against the networks' spread, which predicts the ceiling of a reference of any number of
  seeds and how many seeds it needs to rank networks alike.

What the tool says about a measured fidelity, and the fidelity measured for each dataset's proxy
budget, are in :mod:`.fidelity_notes`.

Example:
    >>> agreement = rank_agreement([1, 2, 3, 4, 5, 6], [1, 3, 2, 4, 6, 5], resamples=500)
    >>> round(agreement.tau, 2), agreement.n, agreement.low < agreement.tau < agreement.high
    (0.73, 6, True)
    >>> pair_order_share([30.0, 20.0, 25.0, 24.0], [40.0, 35.0, 30.0, 31.0], [(0, 1), (2, 3)])
    0.5
"""

from __future__ import annotations

import dataclasses
import itertools
import math
from collections.abc import Sequence

import numpy as np
from scipy import stats as _scipy

from .pareto import nondominated_layers
from .stats import bootstrap_interval, bootstrap_tau


@dataclasses.dataclass(frozen=True)
class RankAgreement:
    """Kendall's tau (with its bootstrap 95 % interval) and Spearman's rho between two rankings of ``n``
    networks; ``nan`` where undefined (fewer than two networks, or a constant ranking)."""

    tau: float
    low: float
    high: float
    rho: float
    n: int

    @property
    def excludes_zero(self) -> bool:
        """True when the whole interval lies above 0: the proxy ranks like full training beyond chance."""
        return not math.isnan(self.low) and self.low > 0

    def text(self) -> str:
        """``tau +0.62 [+0.41, +0.79] over 24 networks``."""
        if math.isnan(self.tau):
            return f"tau undefined over {self.n} networks"
        interval = "" if math.isnan(self.low) else f" [{self.low:+.2f}, {self.high:+.2f}]"
        return f"tau {self.tau:+.2f}{interval} over {self.n} networks"


def rank_agreement(x: Sequence[float], y: Sequence[float], resamples: int = 2000) -> RankAgreement:
    """Rank agreement of ``x`` and ``y`` (one value per network, same order)."""
    xs, ys = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    if len(xs) < 2 or np.ptp(xs) == 0 or np.ptp(ys) == 0:
        return RankAgreement(math.nan, math.nan, math.nan, math.nan, len(xs))
    tau = float(_scipy.kendalltau(xs, ys).statistic)
    rho = float(_scipy.spearmanr(xs, ys).statistic)
    low, high, _ = bootstrap_tau(xs, ys, resamples)
    return RankAgreement(tau, low, high, rho, len(xs))


def seed_splits(seeds: int, half: int | None = None) -> list[tuple[tuple[int, ...], tuple[int, ...]]]:
    """Every way to take two disjoint groups of ``half`` seeds (default ``seeds // 2``) from seeds
    ``0 .. seeds - 1``, each unordered split once.

    Example:
        >>> seed_splits(4)
        [((0, 1), (2, 3)), ((0, 2), (1, 3)), ((0, 3), (1, 2))]
        >>> len(seed_splits(4, half=1)), seed_splits(2)
        (6, [((0,), (1,))])
    """
    half = half or seeds // 2
    splits = []
    for first in itertools.combinations(range(seeds), half):
        rest = [seed for seed in range(seeds) if seed not in first]
        splits += [(first, second) for second in itertools.combinations(rest, half) if first < second]
    return splits


def _tau(x: np.ndarray, y: np.ndarray) -> float:
    return float(_scipy.kendalltau(x, y).statistic) if np.ptp(x) > 0 and np.ptp(y) > 0 else math.nan


def _rho(x: np.ndarray, y: np.ndarray) -> float:
    return float(_scipy.spearmanr(x, y).statistic) if np.ptp(x) > 0 and np.ptp(y) > 0 else math.nan


def _mean(values: list[float]) -> float:
    """The mean of the defined values; ``nan`` when none is."""
    defined = [value for value in values if not math.isnan(value)]
    return sum(defined) / len(defined) if defined else math.nan


def noise_ceiling(
    per_seed: Sequence[Sequence[float]],
    half: int | None = None,
    resamples: int = 2000,
) -> RankAgreement:
    """How well full training agrees with itself: Kendall's tau between the mean top-1 of one group of
    ``half`` seeds and that of another, disjoint group (``per_seed[s][i]``: seed ``s``, network ``i``),
    averaged over every such split (:func:`seed_splits`), with a bootstrap interval over networks.
    ``half`` = 1 (two single seeds) up to ``len(per_seed) // 2`` (the default): the ceiling of a
    reference that averages that many seeds, which a proxy judged against such a reference cannot be
    expected to beat."""
    values = np.asarray(per_seed, dtype=float)
    splits = [(list(a), list(b)) for a, b in seed_splits(len(values), half)]
    if not splits or values.shape[1] < 2:
        return RankAgreement(math.nan, math.nan, math.nan, math.nan, values.shape[1] if values.ndim == 2 else 0)

    def statistic(index: np.ndarray, rank=_tau) -> float:
        return _mean([rank(values[a][:, index].mean(0), values[b][:, index].mean(0)) for a, b in splits])

    every = np.arange(values.shape[1])
    low, high, _ = bootstrap_interval(statistic, values.shape[1], resamples)
    return RankAgreement(statistic(every), low, high, statistic(every, _rho), values.shape[1])


@dataclasses.dataclass(frozen=True)
class ReferenceNoise:
    """Why full training disagrees with itself: each network's top-1 moves by ``seed_sd`` points from
    seed to seed, while the networks' true top-1 (what infinitely many seeds would average to) spread
    by ``spread_sd`` points; estimated from ``seeds`` seeds of ``networks`` networks.

    Two references that average ``k`` seeds each correlate by ``r = spread² / (spread² + seed² / k)``;
    for normal noise Kendall's tau is then ``2 / pi * asin(r)`` (Greiner's relation). This predicts the
    measured noise ceilings and says how many seeds a reference needs to rank networks alike."""

    seed_sd: float
    spread_sd: float
    seeds: int
    networks: int

    def tau(self, k: int) -> float:
        """The expected tau between two independent references of ``k`` seeds each."""
        total = self.spread_sd**2 + self.seed_sd**2 / k
        return 2 / math.pi * math.asin(self.spread_sd**2 / total) if total > 0 else math.nan

    def seeds_for(self, tau: float) -> float:
        """How many seeds each of two references needs to agree to ``tau`` (``inf`` when the networks do
        not differ at all)."""
        r = math.sin(math.pi * tau / 2)
        return self.seed_sd**2 * r / (self.spread_sd**2 * (1 - r)) if self.spread_sd > 0 else math.inf

    def text(self) -> str:
        """``seed std 2.23 points against a spread of 2.66 points in the networks' true top-1 (4 seeds of 26
        networks): references of one seed are expected to agree to tau +0.40, of two seeds to +0.53, and
        tau +0.70 needs 6 seeds each``."""
        k = self.seeds_for(0.7)
        needed = (
            "no number of seeds reaches tau +0.70" if math.isinf(k) else f"tau +0.70 needs {math.ceil(k)} seeds each"
        )
        return (
            f"seed std {self.seed_sd:.2f} points against a spread of {self.spread_sd:.2f} points in the networks' "
            f"true top-1 ({self.seeds} seeds of {self.networks} networks): references of one seed are expected to "
            f"agree to tau {self.tau(1):+.2f}, of two seeds to {self.tau(2):+.2f}, and {needed}"
        )


def reference_noise(per_seed: Sequence[Sequence[float]]) -> ReferenceNoise:
    """The seed noise and the networks' spread behind :func:`noise_ceiling` (``per_seed[s][i]``: seed
    ``s``, network ``i``; two or more seeds): the pooled within-network variance over seeds, and the
    variance of the networks' seed means less the part of it those seeds' noise explains (one-way
    analysis of variance; a spread below zero is read as none)."""
    values = np.asarray(per_seed, dtype=float)
    seeds, networks = values.shape
    seed_var = float(values.var(axis=0, ddof=1).mean())
    spread_var = float(values.mean(axis=0).var(ddof=1)) - seed_var / seeds
    return ReferenceNoise(math.sqrt(seed_var), math.sqrt(max(spread_var, 0.0)), seeds, networks)


def tau_against_halves(proxy: Sequence[float], per_seed: Sequence[Sequence[float]], half: int | None = None) -> float:
    """Kendall's tau of ``proxy`` against the mean of ``half`` seeds, averaged over every group of seeds that
    :func:`noise_ceiling` uses: the proxy's side of a like-for-like ``tau / ceiling``."""
    values, x = np.asarray(per_seed, dtype=float), np.asarray(proxy, dtype=float)
    groups = {group for split in seed_splits(len(values), half) for group in split}
    return _mean([_tau(x, values[list(group)].mean(0)) for group in sorted(groups)])


def tau_difference(
    first: Sequence[float], second: Sequence[float], reference: Sequence[float], resamples: int = 2000, seed: int = 0
) -> tuple[float, float, float]:
    """How much better ``first`` ranks like ``reference`` than ``second`` does: tau(first, reference) -
    tau(second, reference), with a paired bootstrap 95 % interval (the same networks drawn for both, so
    what the two proxies share cancels). Returns (difference, low, high); ``nan`` where undefined."""
    a, b, r = (np.asarray(values, dtype=float) for values in (first, second, reference))
    low, high, _ = bootstrap_interval(
        lambda index: _tau(a[index], r[index]) - _tau(b[index], r[index]), len(r), resamples, seed=seed
    )
    return _tau(a, r) - _tau(b, r), low, high


def pair_order_share(proxy: Sequence[float], full: Sequence[float], pairs: Sequence[tuple[int, int]]) -> float:
    """Share of ``pairs`` (indices into both lists) that ``proxy`` orders as ``full`` does; a pair that
    either ranking ties counts as wrong. ``nan`` without pairs."""
    if not pairs:
        return math.nan
    right = sum((proxy[a] - proxy[b]) * (full[a] - full[b]) > 0 for a, b in pairs)
    return right / len(pairs)


def matched_pairs(
    groups: Sequence[tuple[str, float]],
    macs: Sequence[float],
    tolerance: float = 0.1,
) -> list[tuple[int, int]]:
    """E2GC/FgGC pairs of comparable MACs: ``groups[i]`` is ``(module, width)`` of network i. Within one
    width, each E2GC network is paired with the FgGC network nearest in MACs, when within ``tolerance``
    (relative), each network in at most one pair, closest pairs first."""
    candidates = sorted(
        (abs(macs[a] / macs[b] - 1), a, b)
        for a, (module_a, width_a) in enumerate(groups)
        if module_a == "E2GC"
        for b, (module_b, width_b) in enumerate(groups)
        if module_b == "FgGC" and width_b == width_a
    )
    used: set[int] = set()
    pairs = []
    for gap, a, b in candidates:
        if gap <= tolerance and a not in used and b not in used:
            pairs.append((a, b))
            used.update((a, b))
    return sorted(pairs)


def pareto_layers(cost: Sequence[float], accuracy: Sequence[float]) -> list[int]:
    """Non-dominated sorting on lower ``cost`` x higher ``accuracy``: each network's layer, 0 for the Pareto
    front, 1 for the front of the rest, and so on.

    >>> pareto_layers([1, 2, 3, 2], [10, 20, 30, 15])
    [0, 0, 0, 1]
    """
    return nondominated_layers([(c, -a) for c, a in zip(cost, accuracy)])


def pareto_front(cost: Sequence[float], accuracy: Sequence[float]) -> set[int]:
    """Indices of the networks no other network beats on both lower ``cost`` and higher ``accuracy``
    (better on one, at least as good on the other)."""
    return {i for i, layer in enumerate(pareto_layers(cost, accuracy)) if layer == 0}


def front_recovery(cost: Sequence[float], proxy: Sequence[float], full: Sequence[float]) -> float:
    """Share of the full-training front (``cost`` x ``full``) that the proxy's front (``cost`` x ``proxy``)
    holds too."""
    truth = pareto_front(cost, full)
    return len(truth & pareto_front(cost, proxy)) / len(truth) if truth else math.nan


def kendall_tau(x: Sequence[float], y: Sequence[float]) -> tuple[float, int, int]:
    """Kendall's tau-b between two rankings (``scipy.stats.kendalltau``), with the number of pairs and
    of concordant pairs (ordered alike, no tie in either list).

    ``nan`` when fewer than two values, or when either list is constant.
    """
    pairs = len(x) * (len(x) - 1) // 2
    if len(x) < 2:  # scipy would warn about the sample size; the sentence already asks for more trials
        return math.nan, pairs, 0
    xs, ys = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    same_order = np.sign(xs[:, None] - xs[None, :]) * np.sign(ys[:, None] - ys[None, :]) > 0
    concordant = int(np.triu(same_order, k=1).sum())
    return float(_scipy.kendalltau(xs, ys).statistic), pairs, concordant
