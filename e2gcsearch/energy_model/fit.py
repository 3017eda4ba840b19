"""Fit the platform parameters of the optimum-group-size model to measured energy per frame.

The form we fit (per batch size B, EPF in mJ/frame):

    EPF(network) = e0 + κ · Σ_l [ M_l^(1−β) · (A_l + P_l)^β  +  γ_l · g_l ]

over every conv and linear layer l of the network (M = MACs, P = weights, A = activations of one
frame, g = groups; see :mod:`e2gcsearch.cost`), with γ_l = γ for dense and grouped layers and
γ_l = γ_dw for depthwise layers.

Why this form:
    * ``M^(1−β)·(A+P)^β`` is Eq. 1's left side: the layer's *balanced work*, a weighted geometric mean
      of compute and data movement with the platform's balance β. Energy grows with it (κ mJ per
      unit), so a platform that pays mostly for data movement fits a large β.
    * ``γ·g``: every group of a grouped conv is a separate small matrix product with a fixed
      cost (loop and packing overhead, a lane-width floor on vectorization) — the group runs at
      efficiency w/(w+γ) for balanced work w per group (Hockney's half-performance size). Without it
      no count-based model has an optimum: MACs and weights only fall as g grows, while measured
      energy falls and then rises again (the paper's observation).
    * With both terms a layer costs κ·(W/g + γ·g) (A neglected, W = its balanced work at g = 1), which
      is minimal where **one group's balanced work equals γ**: Eq. 1 read per group, with γ the
      platform constant. Solved for g this is g* = sqrt(m·n·k²·(h·w)^(1−β)/γ) — Eq. 2 with a square
      root, because each group's M_c and P both shrink with g (:func:`.equations.optimal_groups`).
      For m = n layers G* = m/g* = sqrt(γ / (k²·(h·w)^(1−β))) does not depend on m: a constant G
      within a stage, growing by 2^(1−β) per halving of h and w.
    * Depthwise convs (g = m) run a dedicated kernel in every framework (oneDNN, cuDNN), far cheaper
      per group than a general grouped conv, so they get their own γ_dw.
    * e0: per-frame cost of everything the counts do not see (BN, ReLU, pooling, the optimizer-free
      training step's bookkeeping).

How: for a fixed β the model is linear in (e0, κ, κγ, κγ_dw), solved by non-negative least squares on
relative residuals (each measurement weighs by 1/EPF, so small and large networks count alike); β is
found by a grid over (0, 1) refined by a bounded scalar search. Goodness of fit: R² of EPF in mJ,
mean absolute percentage error, and the same from leave-one-out refits (LOO MAPE, Q², Spearman ρ of
the LOO predictions), which is what the model is for: predicting networks it has not seen.

Example:
    >>> import numpy as np
    >>> from e2gcsearch import ArchConfig
    >>> cfgs = [ArchConfig("mobilenet_v1", group_size=G, width=0.25, num_classes=10) for G in (1, 2, 4, 8, 16, 32)]
    >>> cfgs += [ArchConfig("mobilenet_v1", groups=g, width=0.25, num_classes=10) for g in (2, 8, 32)]
    >>> terms = [config_terms(c, 64) for c in cfgs]
    >>> truth = EnergyFit(batch_size=4, beta=0.4, kappa_mj=2e-5, gamma=300.0, gamma_dw=20.0, e0_mj=0.5)
    >>> fit = fit_energy_model(terms, [truth.predict_mj(t) for t in terms], batch_size=4)
    >>> round(fit.beta, 2), round(fit.gamma), round(fit.r2, 3)
    (0.4, 300, 1.0)
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence
from typing import Any

import numpy as np
from scipy import optimize, stats

from ..config import ArchConfig, from_known_fields
from ..cost import network_cost
from ..errors import DataError

MODEL_FORM = (
    "EPF_B = e0 + kappa * sum_l [ M_l^(1-beta) * (A_l + P_l)^beta + gamma_l * g_l ]; "
    "l over conv and linear layers, M = MACs, P = weights, A = activations per frame, g = groups, "
    "gamma_l = gamma_dw for depthwise layers and gamma otherwise; one fit per batch size B"
)
PARAMETERS = ("beta", "e0_mj", "kappa_mj", "gamma", "gamma_dw")
MIN_CONFIGS = len(PARAMETERS) + 2  # every leave-one-out refit keeps one more point than parameters
BETA_GRID = np.linspace(0.01, 0.99, 99)


@dataclasses.dataclass(frozen=True)
class ConfigTerms:
    """What the model needs of one network at one resolution: per-layer MACs and A+P, group counts."""

    arch_config: ArchConfig
    resolution: int
    macs: np.ndarray  # per layer, MACs of one frame
    memory: np.ndarray  # per layer, A + P elements
    groups: float  # sum of g over dense and grouped layers
    dw_groups: float  # sum of g (= channels) over depthwise layers

    def work(self, beta: float) -> float:
        """Σ_l M_l^(1−β)·(A_l+P_l)^β: the network's balanced work (Eq. 1 left side, summed)."""
        return float(np.exp((1.0 - beta) * np.log(self.macs) + beta * np.log(self.memory)).sum())


def config_terms(arch_config: ArchConfig, resolution: int) -> ConfigTerms:
    """The model's inputs for ``arch_config`` at ``resolution`` (from :func:`e2gcsearch.network_cost`)."""
    layers = network_cost(arch_config, resolution).layers
    return ConfigTerms(
        arch_config=arch_config,
        resolution=int(resolution),
        macs=np.array([layer.macs for layer in layers], dtype=float),
        memory=np.array([layer.params + layer.activations for layer in layers], dtype=float),
        groups=float(sum(layer.groups for layer in layers if layer.kind != "depthwise")),
        dw_groups=float(sum(layer.groups for layer in layers if layer.kind == "depthwise")),
    )


@dataclasses.dataclass(frozen=True)
class EnergyFit:
    """Fitted platform parameters for one batch size, with the goodness of fit.

    ``gamma``/``gamma_dw`` are in units of balanced work (MAC^(1−β)·element^β); ``None`` when the data
    could not identify them (e.g. no measured network had a depthwise layer).
    """

    batch_size: int
    beta: float
    kappa_mj: float
    gamma: float | None
    gamma_dw: float | None
    e0_mj: float
    n: int = 0
    r2: float | None = None
    mape: float | None = None
    rmse_mj: float | None = None
    spearman: float | None = None
    loo_mape: float | None = None
    loo_r2: float | None = None
    loo_spearman: float | None = None

    def predict_mj(self, terms: ConfigTerms) -> float:
        """Predicted EPF in mJ/frame."""
        overhead = (self.gamma or 0.0) * terms.groups + (self.gamma_dw or 0.0) * terms.dw_groups
        return self.e0_mj + self.kappa_mj * (terms.work(self.beta) + overhead)

    def layer_mj(self, macs: float, memory: float, groups: int, depthwise: bool) -> float:
        """The model's energy of one layer in mJ/frame (without the network constant e0)."""
        gamma = (self.gamma_dw if depthwise else self.gamma) or 0.0
        return self.kappa_mj * (macs ** (1.0 - self.beta) * memory**self.beta + gamma * groups)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> EnergyFit:
        return from_known_fields(cls, data)


def _design(terms: Sequence[ConfigTerms], works: np.ndarray) -> np.ndarray:
    """Columns 1, work, Σg, Σg_dw for every measurement."""
    ones = np.ones(len(terms))
    return np.column_stack([ones, works, [t.groups for t in terms], [t.dw_groups for t in terms]])


def _active_columns(design: np.ndarray) -> list[int]:
    """The intercept, the work, and the group columns that vary (a constant one is the intercept's)."""
    return [0, 1] + [col for col in (2, 3) if np.ptp(design[:, col]) > 0]


def _solve(design: np.ndarray, active: list[int], epf: np.ndarray) -> tuple[np.ndarray, float]:
    """Non-negative least squares on relative residuals; returns (coefficients, Σ relative residual²)."""
    x = design[:, active]
    scale = np.where(x.max(axis=0) > 0, x.max(axis=0), 1.0)
    weighted = x / scale / epf[:, None]
    coef, rnorm = optimize.nnls(weighted, np.ones(len(epf)))
    full = np.zeros(4)
    full[active] = coef / scale
    return full, float(rnorm) ** 2


def work_grid(terms: Sequence[ConfigTerms], betas: np.ndarray = BETA_GRID) -> np.ndarray:
    """``[i, j]`` = balanced work of configuration i at β = ``betas[j]`` (computed once per fit)."""
    return np.stack(
        [np.exp(np.outer(1.0 - betas, np.log(t.macs)) + np.outer(betas, np.log(t.memory))).sum(axis=1) for t in terms]
    )


def _best_beta(
    terms: Sequence[ConfigTerms], epf: np.ndarray, active: list[int], grid: np.ndarray
) -> tuple[float, np.ndarray]:
    """β by a grid (``grid`` = :func:`work_grid` of ``terms``) then a bounded refinement; returns (β, coefficients)."""

    def loss(beta: float) -> float:
        return _solve(_design(terms, np.array([t.work(beta) for t in terms])), active, epf)[1]

    losses = [_solve(_design(terms, grid[:, j]), active, epf)[1] for j in range(len(BETA_GRID))]
    best = int(np.argmin(losses))
    low, high = BETA_GRID[max(best - 1, 0)], BETA_GRID[min(best + 1, len(BETA_GRID) - 1)]
    refined = optimize.minimize_scalar(
        loss, bounds=(max(low - 0.009, 1e-3), min(high + 0.009, 1 - 1e-3)), method="bounded", options={"xatol": 1e-4}
    )
    beta = float(refined.x) if refined.fun <= losses[best] else float(BETA_GRID[best])
    return beta, _solve(_design(terms, np.array([t.work(beta) for t in terms])), active, epf)[0]


def _to_fit(beta: float, coef: np.ndarray, active: list[int], batch_size: int) -> EnergyFit:
    e0, kappa, kappa_gamma, kappa_gamma_dw = coef
    if kappa <= 0:
        raise DataError(
            "the measured EPF does not grow with the networks' work (the fitted kappa is 0), so the "
            "model cannot be fitted; measure configurations that differ in MACs, e.g. E2GC G=1..32"
        )
    return EnergyFit(
        batch_size=batch_size,
        beta=beta,
        kappa_mj=float(kappa),
        e0_mj=float(e0),
        gamma=float(kappa_gamma / kappa) if 2 in active else None,
        gamma_dw=float(kappa_gamma_dw / kappa) if 3 in active else None,
    )


def check_fit_data(terms: Sequence[ConfigTerms], epf_mj: Sequence[float]) -> np.ndarray:
    """Reject data the model cannot be fitted to, with the reason and the fix; returns EPF as an array."""
    epf = np.asarray(epf_mj, dtype=float)
    if len(terms) != len(epf):
        raise ValueError(f"got {len(terms)} configurations but {len(epf)} EPF values")
    distinct = {(t.arch_config, t.resolution) for t in terms}
    if len(distinct) < MIN_CONFIGS:
        raise DataError(
            f"fitting the energy model needs EPF of at least {MIN_CONFIGS} different configurations "
            f"({len(PARAMETERS)} parameters + 2 for leave-one-out), got {len(distinct)}; measure more, "
            "e.g. 'e2gcsearch model fit --sweep' (E2GC G=1..32 and FgGC g=2..32)"
        )
    if not np.all(np.isfinite(epf)) or np.any(epf <= 0):
        raise DataError(
            "every EPF value must be a positive number of mJ/frame; drop failed or out-of-memory "
            "measurements before fitting"
        )
    if np.ptp(epf) <= 1e-12 * float(np.max(epf)):
        raise DataError(
            "all measured EPF values are equal, so there is nothing to fit (degenerate data); "
            "check that the measurements are of different networks on a working meter"
        )
    works = np.array([t.work(0.5) for t in terms])
    if np.ptp(works) <= 1e-12 * float(np.max(works)):
        raise DataError(
            "all measured configurations have the same cost (degenerate data); "
            "measure networks with different group sizes or widths"
        )
    return epf


def _spearman(x: np.ndarray, y: np.ndarray) -> float | None:
    if len(x) < 3 or np.ptp(x) == 0 or np.ptp(y) == 0:
        return None
    return float(stats.spearmanr(x, y).statistic)


def _r2(pred: np.ndarray, epf: np.ndarray) -> float:
    return float(1.0 - np.sum((pred - epf) ** 2) / np.sum((epf - epf.mean()) ** 2))


def fit_energy_model(
    terms: Sequence[ConfigTerms], epf_mj: Sequence[float], batch_size: int, leave_one_out: bool = True
) -> EnergyFit:
    """Fit β, κ, γ, γ_dw and e0 to measured EPF (mJ/frame) of several configurations on one device.

    Args:
        terms: :func:`config_terms` of every measured configuration.
        epf_mj: the measured EPF of each, at ``batch_size``.
        batch_size: the batch size the EPF was measured at (recorded with the fit).
        leave_one_out: also refit without each point to report LOO MAPE, Q² and Spearman ρ.

    Raises:
        DataError: too few configurations (the message says how many are needed), non-positive or
            identical EPF values, or configurations that do not differ in cost.
    """
    epf = check_fit_data(terms, epf_mj)
    active = _active_columns(_design(terms, np.ones(len(terms))))
    grid = work_grid(terms)
    beta, coef = _best_beta(terms, epf, active, grid)
    fit = _to_fit(beta, coef, active, batch_size)
    pred = np.array([fit.predict_mj(t) for t in terms])
    figures: dict[str, Any] = {
        "n": len(terms),
        "r2": _r2(pred, epf),
        "mape": float(np.mean(np.abs(pred - epf) / epf)),
        "rmse_mj": float(math.sqrt(np.mean((pred - epf) ** 2))),
        "spearman": _spearman(pred, epf),
    }
    if leave_one_out:
        loo = leave_one_out_predictions(terms, epf, active, grid)
        figures.update(
            loo_mape=float(np.mean(np.abs(loo - epf) / epf)), loo_r2=_r2(loo, epf), loo_spearman=_spearman(loo, epf)
        )
    return dataclasses.replace(fit, **figures)


def fit_and_predict(
    train: Sequence[ConfigTerms], train_epf: Sequence[float], test: Sequence[ConfigTerms]
) -> np.ndarray:
    """EPF of ``test`` predicted by the model fitted to ``train`` (no checks, no goodness of fit).

    Unlike :func:`fit_energy_model` this never refuses a fit whose κ is 0 (the work term then drops
    out and the group terms and e0 still predict), so a held-out evaluation always gets a number.
    """
    epf = np.asarray(train_epf, dtype=float)
    active = _active_columns(_design(train, np.ones(len(train))))
    beta, coef = _best_beta(train, epf, active, work_grid(train))
    works = np.array([t.work(beta) for t in test])
    return _design(test, works) @ coef


def leave_one_out_predictions(
    terms: Sequence[ConfigTerms], epf: np.ndarray, active: list[int], grid: np.ndarray
) -> np.ndarray:
    """EPF of each point predicted by a fit to all the others (``grid`` = :func:`work_grid` of ``terms``)."""
    out = np.empty(len(terms))
    for index in range(len(terms)):
        keep = [i for i in range(len(terms)) if i != index]
        rest = [terms[i] for i in keep]
        rest_active = [col for col in active if col < 2 or np.ptp(_design(rest, np.ones(len(rest)))[:, col]) > 0]
        beta, coef = _best_beta(rest, epf[keep], rest_active, grid[keep])
        out[index] = float((_design([terms[index]], np.array([terms[index].work(beta)])) @ coef)[0])
    return out
