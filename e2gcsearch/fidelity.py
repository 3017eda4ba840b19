"""How far a proxy's ranking of networks can be trusted: rank agreement with full training, the noise
ceiling full training sets itself, and the proxy fidelity measured for each dataset's proxy budget.

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

:data:`MEASURED` records what ``benchmarks/proxy_fidelity.py`` measured for a proxy budget on a named
dataset; ``front`` and ``validate`` quote it for studies on that data, and say that the fidelity was
not measured for any other.

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
from typing import Any

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


def agreement_sentence(
    tau: float, trials: int, concordant: int, pairs: int, interval: tuple[float, float] = (math.nan, math.nan)
) -> str:
    """What ``tau`` over ``trials`` validated trials means for trusting the proxy, in plain words."""
    if trials < 2 or math.isnan(tau):
        return "Kendall's tau needs two or more validated trials with different accuracies; validate more trials."
    low, high = interval
    shown = "" if math.isnan(low) else f", 95 % interval {low:+.2f} to {high:+.2f}"
    head = f"Kendall's tau = {tau:+.2f} over {trials} trials ({concordant} of {pairs} pairs ordered alike{shown}): "
    if not math.isnan(low) and low <= 0 <= high and trials >= 4:
        return head + (
            "the interval includes 0, so these trials cannot tell the proxy's ranking from chance; "
            "validate more trials, or lengthen the proxy (more epochs or images), before trusting the "
            "front's accuracy axis."
        )
    if trials < 4:
        return head + (
            f"with so few trials tau says little (one swapped pair moves it by {2 / max(pairs, 1):.2f}), "
            "so it neither confirms nor refutes the proxy; validate 4 or more trials (e.g. --top 5)."
        )
    if tau >= 0.7:
        verdict = "the proxy ranks these networks almost as full training does, so picking by proxy top-1 is safe."
    elif tau >= 0.3:
        verdict = (
            "the proxy gets most pairs right but not all; use it to shortlist, then validate the "
            "shortlist before choosing."
        )
    elif tau > -0.3:
        verdict = (
            "the proxy ranking is close to unrelated to the full-training ranking; do not pick by proxy "
            "top-1 alone: lengthen the proxy (more epochs or images) or validate more trials."
        )
    else:
        verdict = (
            "the proxy ranks these networks largely in reverse; its accuracy objective is misleading here, "
            "so rethink the proxy budget before trusting the front's accuracy axis."
        )
    return head + verdict


def ceiling_sentence(ceiling: RankAgreement, tau: float, half: int = 1) -> str:
    """The noise ceiling (of references of ``half`` seeds each), and ``tau`` read against it: the proxy's
    tau against references of the same size (:func:`tau_against_halves`), like for like."""
    who = (
        "two full-training seeds agree" if half == 1 else f"the means of two groups of {half} full-training seeds agree"
    )
    text = f"Noise ceiling: {who} to Kendall {ceiling.text()}"
    if math.isnan(ceiling.tau) or ceiling.tau <= 0 or math.isnan(tau):
        return text + "; full training does not rank these trials consistently, so no proxy can be judged on them."
    against = "one seed" if half == 1 else f"the mean of {half} seeds"
    return text + f"; against {against} the proxy reaches tau {tau:+.2f}, {tau / ceiling.tau:.2f} of it."


@dataclasses.dataclass(frozen=True)
class MeasuredFidelity:
    """What ``benchmarks/proxy_fidelity.py`` measured for one proxy budget on one dataset.

    Attributes:
        data: the dataset it was measured on (``food101-10``).
        signature: the fields of a study's data description that identify that dataset (``dataset``,
            ``classes``, ``train_size``, ``val_size``).
        epochs, resolution: the proxy budget measured.
        agreement: the proxy's rank agreement with the mean full top-1 over every seed.
        ceiling: the noise ceiling (:func:`noise_ceiling`) between references of ``ceiling_seeds`` seeds.
        ratio: the proxy's tau against references of that size (:func:`tau_against_halves`) / the ceiling.
        cost_ratio: proxy training seconds / full training seconds, same networks.
        reference: the full training it was judged against.
    """

    data: str
    signature: dict[str, Any]
    epochs: int
    resolution: int
    agreement: RankAgreement
    ceiling: RankAgreement
    ceiling_seeds: int
    ratio: float
    cost_ratio: float
    reference: str

    def sentence(self) -> str:
        """One line for ``front`` and ``validate``."""
        a, c = self.agreement, self.ceiling
        who = "two seeds" if self.ceiling_seeds == 1 else f"the means of two groups of {self.ceiling_seeds} seeds"
        return (
            f"proxy fidelity measured on {self.data}: Kendall {a.text()} against full training "
            f"({self.reference}); {self.ratio:.2f} of the noise ceiling ({who} agree to tau {c.tau:+.2f} "
            f"[{c.low:+.2f}, {c.high:+.2f}]), at {100 * self.cost_ratio:.0f} % of full training's cost "
            "(docs/accuracy.md)"
        )

    def short(self) -> str:
        """``food101-10: Kendall tau +0.37 [+0.10, +0.63] over 23 networks (4 epochs, 64 px)``."""
        return f"{self.data}: Kendall {self.agreement.text()} ({self.epochs} epochs, {self.resolution} px)"

    def matches(self, data: dict[str, Any], training: dict[str, Any]) -> bool:
        """True when a study's data description (``dataset``, ``classes``, sizes, ``resolution``) and proxy
        training (``epochs``) are the ones this fidelity was measured with."""
        wanted = {**self.signature, "resolution": self.resolution}
        return all(data.get(key) == value for key, value in wanted.items()) and training.get("epochs") == self.epochs


FOOD101_10_CLASSES = (
    "apple_pie",
    "baby_back_ribs",
    "baklava",
    "beef_carpaccio",
    "beef_tartare",
    "beet_salad",
    "beignets",
    "bibimbap",
    "bread_pudding",
    "breakfast_burrito",
)

# What benchmarks/proxy_fidelity.py measured (docs/accuracy.md has the table, its command and the load):
# the photos' proxy budget (4 epochs, at most 100 images per class, 64 px) on food101-10, the 23 MobileNet-V1
# networks with four seeds of the 24-epoch reference (FULL_RECIPE), against the mean of those seeds; the
# ceiling is the mean of two seeds against the mean of the other two; benchmarks/data/proxy_fidelity_food101-10.csv.
MEASURED: tuple[MeasuredFidelity, ...] = (
    MeasuredFidelity(
        data="food101-10",
        signature={"dataset": "food101", "classes": list(FOOD101_10_CLASSES), "train_size": 1000, "val_size": 750},
        epochs=4,
        resolution=64,
        agreement=RankAgreement(tau=0.366, low=0.099, high=0.633, rho=0.478, n=23),
        ceiling=RankAgreement(tau=0.574, low=0.377, high=0.735, rho=0.742, n=23),
        ceiling_seeds=2,
        ratio=0.61,
        cost_ratio=0.084,
        reference="24 cosine epochs on every image, 64 px, mean of four seeds",
    ),
)


def fidelity_note(
    data: dict[str, Any], training: dict[str, Any], measurements: Sequence[MeasuredFidelity] = MEASURED
) -> str:
    """What is known about the fidelity of a study's proxy: the measurement for its data and budget, or
    that none was made (with the measurement there is and how to measure it on the study)."""
    for measured in measurements:
        if measured.matches(data, training):
            return measured.sentence()
    where = (
        f"{data.get('dataset', 'unknown data')}, {len(data.get('classes') or [])} classes, "
        f"{data.get('train_size', '?')} training images, {data.get('resolution', '?')} px"
    )
    known = f"; measured elsewhere: {measurements[0].short()} (docs/accuracy.md)" if measurements else ""
    return (
        f"the proxy's ranking fidelity was not measured for this data and budget ({where}, "
        f"{training.get('epochs', '?')} epochs){known}; 'e2gcsearch validate --top 3 --spread 6 --full-seeds 2' "
        "measures it on this study"
    )
