"""How far a proxy's ranking of networks can be trusted: rank agreement with full training, the noise
ceiling full training sets itself, and the proxy fidelity measured for each dataset's proxy budget.

A proxy (a short training, or a score computed at initialisation) is judged by how it orders networks
against the order full training gives them:

* :func:`rank_agreement` — Kendall's tau and Spearman's rho, with a bootstrap 95 % interval of tau
  over the networks (resampled with replacement).
* The **noise ceiling** is the same agreement between two independent full-training seeds: no proxy
  can be expected to rank like full training better than full training ranks like itself, so a
  proxy's tau is also read as tau / ceiling.
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
import math
from typing import Any, Sequence

import numpy as np
from scipy import stats as _scipy

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


def tau_difference(first: Sequence[float], second: Sequence[float], reference: Sequence[float],
                   resamples: int = 2000, seed: int = 0) -> tuple[float, float, float]:
    """How much better ``first`` ranks like ``reference`` than ``second`` does: tau(first, reference) -
    tau(second, reference), with a paired bootstrap 95 % interval (the same networks drawn for both, so
    what the two proxies share cancels). Returns (difference, low, high); ``nan`` where undefined."""
    a, b, r = (np.asarray(values, dtype=float) for values in (first, second, reference))

    def tau(x: np.ndarray, y: np.ndarray) -> float:
        return float(_scipy.kendalltau(x, y).statistic) if np.ptp(x) > 0 and np.ptp(y) > 0 else math.nan

    low, high, _ = bootstrap_interval(lambda index: tau(a[index], r[index]) - tau(b[index], r[index]), len(r),
                                      resamples, seed=seed)
    return tau(a, r) - tau(b, r), low, high


def pair_order_share(proxy: Sequence[float], full: Sequence[float], pairs: Sequence[tuple[int, int]]) -> float:
    """Share of ``pairs`` (indices into both lists) that ``proxy`` orders as ``full`` does; a pair that
    either ranking ties counts as wrong. ``nan`` without pairs."""
    if not pairs:
        return math.nan
    right = sum((proxy[a] - proxy[b]) * (full[a] - full[b]) > 0 for a, b in pairs)
    return right / len(pairs)


def matched_pairs(groups: Sequence[tuple[str, float]], macs: Sequence[float], tolerance: float = 0.1,
                  ) -> list[tuple[int, int]]:
    """E2GC/FgGC pairs of comparable MACs: ``groups[i]`` is ``(module, width)`` of network i. Within one
    width, each E2GC network is paired with the FgGC network nearest in MACs, when within ``tolerance``
    (relative), each network in at most one pair, closest pairs first."""
    candidates = sorted(
        (abs(macs[a] / macs[b] - 1), a, b)
        for a, (module_a, width_a) in enumerate(groups) if module_a == "E2GC"
        for b, (module_b, width_b) in enumerate(groups) if module_b == "FgGC" and width_b == width_a)
    used: set[int] = set()
    pairs = []
    for gap, a, b in candidates:
        if gap <= tolerance and a not in used and b not in used:
            pairs.append((a, b))
            used.update((a, b))
    return sorted(pairs)


def pareto_front(cost: Sequence[float], accuracy: Sequence[float]) -> set[int]:
    """Indices of the networks no other network beats on both lower ``cost`` and higher ``accuracy``
    (better on one, at least as good on the other)."""
    front = set()
    for i in range(len(cost)):
        dominated = any(cost[j] <= cost[i] and accuracy[j] >= accuracy[i]
                        and (cost[j] < cost[i] or accuracy[j] > accuracy[i]) for j in range(len(cost)))
        if not dominated:
            front.add(i)
    return front


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


def agreement_sentence(tau: float, trials: int, concordant: int, pairs: int,
                       interval: tuple[float, float] = (math.nan, math.nan)) -> str:
    """What ``tau`` over ``trials`` validated trials means for trusting the proxy, in plain words."""
    if trials < 2 or math.isnan(tau):
        return "Kendall's tau needs two or more validated trials with different accuracies; validate more trials."
    low, high = interval
    shown = "" if math.isnan(low) else f", 95 % interval {low:+.2f} to {high:+.2f}"
    head = f"Kendall's tau = {tau:+.2f} over {trials} trials ({concordant} of {pairs} pairs ordered alike{shown}): "
    if not math.isnan(low) and low <= 0 <= high and trials >= 4:
        return head + ("the interval includes 0, so these trials cannot tell the proxy's ranking from chance; "
                       "validate more trials, or lengthen the proxy (more epochs or images), before trusting the "
                       "front's accuracy axis.")
    if trials < 4:
        return head + (f"with so few trials tau says little (one swapped pair moves it by {2 / max(pairs, 1):.2f}), "
                       "so it neither confirms nor refutes the proxy; validate 4 or more trials (e.g. --top 5).")
    if tau >= 0.7:
        verdict = "the proxy ranks these networks almost as full training does, so picking by proxy top-1 is safe."
    elif tau >= 0.3:
        verdict = ("the proxy gets most pairs right but not all; use it to shortlist, then validate the "
                   "shortlist before choosing.")
    elif tau > -0.3:
        verdict = ("the proxy ranking is close to unrelated to the full-training ranking; do not pick by proxy "
                   "top-1 alone: lengthen the proxy (more epochs or images) or validate more trials.")
    else:
        verdict = ("the proxy ranks these networks largely in reverse; its accuracy objective is misleading here, "
                   "so rethink the proxy budget before trusting the front's accuracy axis.")
    return head + verdict


def ceiling_sentence(ceiling: RankAgreement, tau: float) -> str:
    """The noise ceiling, and the proxy's tau read against it."""
    text = f"Noise ceiling: two full-training seeds agree to Kendall {ceiling.text()}"
    if math.isnan(ceiling.tau) or ceiling.tau <= 0 or math.isnan(tau):
        return text + "; full training does not rank these trials consistently, so no proxy can be judged on them."
    return text + f"; the proxy reaches {tau / ceiling.tau:.2f} of it."


@dataclasses.dataclass(frozen=True)
class MeasuredFidelity:
    """What ``benchmarks/proxy_fidelity.py`` measured for one proxy budget on one dataset.

    Attributes:
        data: the dataset it was measured on (``food101-10``).
        signature: the fields of a study's data description that identify that dataset (``dataset``,
            ``classes``, ``train_size``, ``val_size``).
        epochs, resolution: the proxy budget measured.
        agreement: the proxy's rank agreement with the mean full top-1 over seeds.
        ceiling_tau: tau between two full-training seeds (the noise ceiling), ``ceiling_low``/``high``
            its bootstrap interval.
        cost_ratio: proxy training seconds / full training seconds, same networks.
        reference: the full training it was judged against.
    """

    data: str
    signature: dict[str, Any]
    epochs: int
    resolution: int
    agreement: RankAgreement
    ceiling_tau: float
    ceiling_low: float
    ceiling_high: float
    cost_ratio: float
    reference: str

    def sentence(self) -> str:
        """One line for ``front`` and ``validate``."""
        a = self.agreement
        return (f"proxy fidelity measured on {self.data}: Kendall {a.text()} against full training "
                f"({self.reference}); {a.tau / self.ceiling_tau:.2f} of the noise ceiling (two full-training "
                f"seeds agree to tau {self.ceiling_tau:+.2f} [{self.ceiling_low:+.2f}, {self.ceiling_high:+.2f}]), "
                f"at {100 * self.cost_ratio:.0f} % of full training's cost (docs/accuracy.md)")

    def short(self) -> str:
        """``food101-10: Kendall tau +0.48 [+0.26, +0.69] over 26 networks (4 epochs, 64 px)``."""
        return f"{self.data}: Kendall {self.agreement.text()} ({self.epochs} epochs, {self.resolution} px)"

    def matches(self, data: dict[str, Any], training: dict[str, Any]) -> bool:
        """True when a study's data description (``dataset``, ``classes``, sizes, ``resolution``) and proxy
        training (``epochs``) are the ones this fidelity was measured with."""
        wanted = {**self.signature, "resolution": self.resolution}
        return (all(data.get(key) == value for key, value in wanted.items())
                and training.get("epochs") == self.epochs)


FOOD101_10_CLASSES = ("apple_pie", "baby_back_ribs", "baklava", "beef_carpaccio", "beef_tartare", "beet_salad",
                      "beignets", "bibimbap", "bread_pudding", "breakfast_burrito")

# What benchmarks/proxy_fidelity.py measured (docs/accuracy.md has the table, its command and the load):
# the photos' proxy budget (4 epochs, at most 100 images per class, 64 px) on food101-10, 26 MobileNet-V1
# networks, against the mean of two full-training seeds; benchmarks/data/proxy_fidelity_food101-10.csv.
MEASURED: tuple[MeasuredFidelity, ...] = (
    MeasuredFidelity(
        data="food101-10",
        signature={"dataset": "food101", "classes": list(FOOD101_10_CLASSES), "train_size": 1000, "val_size": 750},
        epochs=4, resolution=64,
        agreement=RankAgreement(tau=0.478, low=0.263, high=0.686, rho=0.671, n=26),
        ceiling_tau=0.336, ceiling_low=0.079, ceiling_high=0.569, cost_ratio=0.151,
        reference="12 cosine epochs on every image, 64 px, mean of two seeds"),
)


def fidelity_note(data: dict[str, Any], training: dict[str, Any],
                  measurements: Sequence[MeasuredFidelity] = MEASURED) -> str:
    """What is known about the fidelity of a study's proxy: the measurement for its data and budget, or
    that none was made (with the measurement there is and how to measure it on the study)."""
    for measured in measurements:
        if measured.matches(data, training):
            return measured.sentence()
    where = f"{data.get('dataset', 'unknown data')}, {len(data.get('classes') or [])} classes, " \
            f"{data.get('train_size', '?')} training images, {data.get('resolution', '?')} px"
    known = f"; measured elsewhere: {measurements[0].short()} (docs/accuracy.md)" if measurements else ""
    return (f"the proxy's ranking fidelity was not measured for this data and budget ({where}, "
            f"{training.get('epochs', '?')} epochs){known}; 'e2gcsearch validate --top 3 --spread 6 --full-seeds 2' "
            "measures it on this study")
