"""The E2GC paper's optimum-group-size model in closed form: Table II quantities, Eq. 1–4, Fig. 3 data.

Notation (Section III-B of the paper): a k x k conv with m input and n output channels, output size
h x w (input h_in x w_in), split into g groups of G = m / g input channels.

Table II quantities of one grouped conv (the cost model's conventions, :mod:`e2gcsearch.cost`):
    M_c = n·h·w·(m/g)·k²                 MACs
    P   = n·(m/g)·k²                     weights
    A   = m·h_in·w_in + n·h·w            activations read and written
    AI  = M_c / (A + P)                  arithmetic intensity

Eq. 1  M_c^(1−β) · (A+P)^β = γ: β ∈ (0, 1) weighs data movement against compute on a platform,
       γ is a platform constant. We call the left side the *balanced work* of a layer.
Eq. 2  g = m·n·k²·(h·w)^(1−β) / γ: Eq. 1 solved for g when the memory term is the weights
       (A neglected): M_c^(1−β)·P^β = m·n·k²·(h·w)^(1−β) / g.
Eq. 3/4 Under the usual rule "halve h and w, double the channels" (m = n of a grouped 3x3 conv
       double), Eq. 2 changes G = m/g by a factor 2^(1−2β) per stage: G is constant for β = 1/2,
       which is the paper's E2GC design (Eq. 4).

This module is the *paper's* model, literal. :mod:`.fit` fits a network energy model whose
optimality condition is Eq. 1 read per group; :func:`optimal_groups` gives its optimum. Both are here
so that the two readings can be compared on the same shapes.

Example:
    >>> q = table2(m=512, n=512, kernel=3, h=14, w=14, groups=128)   # G = 4
    >>> q["macs"], q["params"], q["activations"]
    (3612672, 18432, 200704)
    >>> eq2_groups(m=512, n=512, kernel=3, h=14, w=14, beta=0.5, gamma=258048.0)
    128.0
"""

from __future__ import annotations

import math
from typing import Any

import pandas as pd

from ..errors import ConfigError

FIG3_SHAPE: dict[str, int] = {"m": 512, "n": 512, "kernel": 3, "h": 14, "w": 14}  # the paper's Fig. 3 layer


def _check_beta(beta: float) -> None:
    if not 0.0 < float(beta) < 1.0:
        raise ConfigError(f"beta must lie strictly between 0 and 1 (the compute/memory balance), got {beta!r}")


def _check_positive(**values: float) -> None:
    for name, value in values.items():
        if not value > 0 or not math.isfinite(value):
            raise ConfigError(f"{name} must be a positive number, got {value!r}")


def table2(m: int, n: int, kernel: int, h: int, w: int, groups: int, stride: int = 1) -> dict[str, Any]:
    """Table II quantities of one grouped conv: MACs, weights, activations and AI.

    Args:
        m, n: input and output channels.
        kernel: kernel size k (k x k).
        h, w: output height and width; the input is ``h·stride`` x ``w·stride``.
        groups: number of groups g (must divide m and n).
        stride: spatial stride of the conv.
    """
    if m % groups or n % groups:
        raise ConfigError(f"g={groups} groups must divide both m={m} and n={n}")
    macs = n * h * w * (m // groups) * kernel * kernel
    params = n * (m // groups) * kernel * kernel
    activations = m * (h * stride) * (w * stride) + n * h * w
    return {
        "m": m,
        "n": n,
        "kernel": kernel,
        "h": h,
        "w": w,
        "stride": stride,
        "groups": groups,
        "group_size": m // groups,
        "macs": macs,
        "params": params,
        "activations": activations,
        "ai": macs / (activations + params),
    }


def balanced_work(macs: float, memory: float, beta: float) -> float:
    """Left side of Eq. 1: ``macs^(1−β) · memory^β`` with ``memory`` = A + P (elements)."""
    _check_beta(beta)
    return float(macs) ** (1.0 - beta) * float(memory) ** beta


def eq2_groups(m: int, n: int, kernel: int, h: int, w: int, beta: float, gamma: float) -> float:
    """Eq. 2 of the paper: the number of groups g = m·n·k²·(h·w)^(1−β) / γ (real-valued)."""
    _check_beta(beta)
    _check_positive(gamma=gamma)
    return m * n * kernel * kernel * (h * w) ** (1.0 - beta) / gamma


def eq4_group_size_ratio(beta: float) -> float:
    """Eq. 3/4: G_next / G between two stages under "halve h, w; double m = n" (1 at β = 1/2)."""
    _check_beta(beta)
    return 2.0 ** (1.0 - 2.0 * beta)


def eq2_group_sizes_by_stage(
    stage_shapes: list[tuple[int, int]], beta: float, gamma: float, kernel: int = 3
) -> list[float]:
    """G = m/g from Eq. 2 for m = n layers of shape (m, h=w), e.g. MobileNet-V1's stages."""
    return [m / eq2_groups(m, m, kernel, hw, hw, beta, gamma) for m, hw in stage_shapes]


def optimal_groups(m: int, n: int, kernel: int, h: int, w: int, beta: float, gamma: float) -> float:
    """The fitted model's continuous optimum: Eq. 1 read per group (see :mod:`.fit`).

    One group of a grouped conv does M_c/g MACs on P/g weights; the model charges each group a fixed
    overhead of γ units of balanced work, so a layer costs ``M_c^(1−β)·P^β + γ·g`` (A neglected, as in
    Eq. 2), minimal where one group's balanced work equals γ:
    g* = sqrt(m·n·k²·(h·w)^(1−β) / γ).
    """
    _check_beta(beta)
    _check_positive(gamma=gamma)
    return math.sqrt(m * n * kernel * kernel * (h * w) ** (1.0 - beta) / gamma)


def power_of_two_divisors(channels: int) -> list[int]:
    """1, 2, 4, … up to the largest power of two dividing ``channels``."""
    out, value = [], 1
    while channels % value == 0 and value <= channels:
        out.append(value)
        value *= 2
    return out


def fig3_frame(m: int = 512, n: int = 512, kernel: int = 3, h: int = 14, w: int = 14) -> pd.DataFrame:
    """The paper's Fig. 3: M_c, AI and 1/AI of one layer against its group size G, each normalized
    to the depthwise case (G = 1). Rows: every power-of-two G that divides m and n."""
    rows = []
    for size in power_of_two_divisors(math.gcd(m, n)):
        rows.append(table2(m, n, kernel, h, w, groups=m // size))
    frame = pd.DataFrame(rows)
    base = frame.iloc[0]  # G = 1, depthwise
    frame["macs_norm"] = frame["macs"] / base["macs"]
    frame["params_norm"] = frame["params"] / base["params"]
    frame["memory_norm"] = (frame["activations"] + frame["params"]) / (base["activations"] + base["params"])
    frame["ai_norm"] = frame["ai"] / base["ai"]
    frame["inv_ai_norm"] = base["ai"] / frame["ai"]
    return frame
