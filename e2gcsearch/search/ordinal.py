"""An ordered search parameter (log2 G, log2 g, width): its allowed values drawn as a number on their
scale with a step, so that samplers which model order see that G = 4 lies between 2 and 8."""

from __future__ import annotations

import dataclasses
import math
from fractions import Fraction
from typing import Any

from optuna.distributions import BaseDistribution, FloatDistribution, IntDistribution


@dataclasses.dataclass(frozen=True)
class Ordinal:
    """An ordered parameter: its allowed values, drawn as a number on their (log2) scale with a step.

    The step is the largest one that holds every allowed value (an integer step when all coded values
    are integers); a draw between allowed values is rounded to the nearest one.

    Example:
        >>> axis = Ordinal("log2_G", (1, 2, 4, 8, 16, 32), log2=True)
        >>> axis.distribution()
        IntDistribution(high=5, log=False, low=0, step=1)
        >>> axis.encode(8), axis.decode(3), Ordinal("width", (0.25, 0.5, 1.0)).decode(0.75)
        (3, 8, 0.5)
    """

    name: str
    values: tuple[float, ...]
    log2: bool = False

    def __post_init__(self) -> None:
        object.__setattr__(self, "values", tuple(sorted(set(self.values))))

    def encode(self, value: float) -> float:
        coded = math.log2(value) if self.log2 else float(value)
        return int(round(coded)) if self._integral() else coded

    def decode(self, coded: float) -> float:
        """The allowed value nearest to ``coded`` on the parameter's scale (the lower one on a tie)."""
        return min(self.values, key=lambda value: (abs(self.encode(value) - float(coded)), value))

    def _integral(self) -> bool:
        return all(float(math.log2(v) if self.log2 else v).is_integer() for v in self.values)

    def distribution(self) -> BaseDistribution:
        coded = [math.log2(v) if self.log2 else float(v) for v in self.values]
        if self._integral():
            ints = [int(round(c)) for c in coded]
            step = math.gcd(*[b - a for a, b in zip(ints, ints[1:])]) or 1
            return IntDistribution(ints[0], ints[-1], step=step)
        if self.log2:  # e.g. log2 of 3 and 4: no common step; continuous, rounded to the nearest
            return FloatDistribution(coded[0], coded[-1])
        fractions = [Fraction(c).limit_denominator(10_000) for c in coded]
        step = _fraction_gcd([b - a for a, b in zip(fractions, fractions[1:])])
        on_grid = (
            step is not None
            and (fractions[-1] - fractions[0]) / step <= 1000
            and all(abs((c - coded[0]) / float(step) - round((c - coded[0]) / float(step))) < 1e-6 for c in coded)
        )
        if not on_grid:  # no common step holds them: continuous, rounded to the nearest
            return FloatDistribution(coded[0], coded[-1])
        return FloatDistribution(coded[0], coded[-1], step=float(step))

    def suggest(self, trial: Any) -> float:
        """Draw this parameter from ``trial`` and return the allowed value it stands for."""
        distribution = self.distribution()
        if isinstance(distribution, IntDistribution):
            coded = trial.suggest_int(self.name, distribution.low, distribution.high, step=distribution.step)
        else:
            coded = trial.suggest_float(self.name, distribution.low, distribution.high, step=distribution.step)
        return self.decode(coded)

    def choices(self) -> list[float]:
        """The coded value of each allowed value (the grid of ``GridSampler``)."""
        return [self.encode(value) for value in self.values]


def _fraction_gcd(differences: list[Fraction]) -> Fraction | None:
    if not differences:
        return None
    numerator = math.gcd(
        *[d.numerator * (math.lcm(*[x.denominator for x in differences]) // d.denominator) for d in differences]
    )
    return Fraction(numerator, math.lcm(*[d.denominator for d in differences]))
