"""What e2gcsearch says about a proxy's fidelity: plain-words readings of a measured tau and of the noise
ceiling, and the fidelity ``benchmarks/proxy_fidelity.py`` measured for a proxy budget on a named dataset.

:data:`MEASURED` records those measurements; ``front``, ``run`` and ``validate`` quote the one that
matches a study's data and proxy budget (:func:`fidelity_note`), and say that the fidelity was not
measured for any other. The statistics themselves are in :mod:`.fidelity`.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence
from typing import Any

from .fidelity import RankAgreement, ReferenceNoise


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


def ceiling_sentence(ceiling: RankAgreement, tau: float, half: int = 1, noise: ReferenceNoise | None = None) -> str:
    """The noise ceiling (of references of ``half`` seeds each), and ``tau`` read against it: the proxy's
    tau against references of the same size (:func:`~.fidelity.tau_against_halves`), like for like; with
    ``noise`` (:func:`~.fidelity.reference_noise`), also where the ceiling comes from and how many seeds
    would raise it."""
    who = (
        "two full-training seeds agree" if half == 1 else f"the means of two groups of {half} full-training seeds agree"
    )
    text = f"Noise ceiling: {who} to Kendall {ceiling.text()}"
    why = "" if noise is None else f" Where the ceiling comes from: {noise.text()}."
    if math.isnan(ceiling.tau) or ceiling.tau <= 0 or math.isnan(tau):
        text += "; full training does not rank these trials consistently, so no proxy can be judged on them."
        return text + why
    against = "one seed" if half == 1 else f"the mean of {half} seeds"
    return text + f"; against {against} the proxy reaches tau {tau:+.2f}, {tau / ceiling.tau:.2f} of it." + why


@dataclasses.dataclass(frozen=True)
class MeasuredFidelity:
    """What ``benchmarks/proxy_fidelity.py`` measured for one proxy budget on one dataset.

    Attributes:
        data: the dataset it was measured on (``food101-10``).
        signature: the fields of a study's data description that identify that dataset (``dataset``,
            ``classes``, ``train_size``, ``val_size``).
        epochs, resolution: the proxy budget measured.
        agreement: the proxy's rank agreement with the mean full top-1 over every seed.
        ceiling: the noise ceiling (:func:`~.fidelity.noise_ceiling`) between references of ``ceiling_seeds`` seeds.
        ratio: the proxy's tau against references of that size (:func:`~.fidelity.tau_against_halves`) / the
            ceiling.
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
        """``food101-10: Kendall tau +0.42 [+0.18, +0.66] over 26 networks (4 epochs, 64 px)``."""
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
# the photos' proxy budget (4 epochs, at most 100 images per class, 64 px) on food101-10, the 26 MobileNet-V1
# networks with four seeds of the 24-epoch reference (FULL_RECIPE), against the mean of those seeds; the
# ceiling is the mean of two seeds against the mean of the other two; benchmarks/data/proxy_fidelity_food101-10.csv.
MEASURED: tuple[MeasuredFidelity, ...] = (
    MeasuredFidelity(
        data="food101-10",
        signature={"dataset": "food101", "classes": list(FOOD101_10_CLASSES), "train_size": 1000, "val_size": 750},
        epochs=4,
        resolution=64,
        agreement=RankAgreement(tau=0.424, low=0.180, high=0.664, rho=0.561, n=26),
        ceiling=RankAgreement(tau=0.555, low=0.379, high=0.693, rho=0.734, n=26),
        ceiling_seeds=2,
        ratio=0.70,
        cost_ratio=0.081,
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
