"""What ``validate`` reports: proxy against full top-1 per validated trial, Kendall's tau with its
bootstrap interval, and full training's own noise ceiling, rendered as a table or JSON."""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence
from typing import Any

import optuna
import pandas as pd

from .. import fidelity, fidelity_notes
from ..report.tables import fixed, render, to_json
from ..stats import bootstrap_tau
from ..store.record import full_result as record_full_result
from ..store.results import get_trial, study_objectives, trial_record


@dataclasses.dataclass
class ValidationReport:
    """Proxy vs full top-1 per validated trial (``frame``) and the rank agreement between them."""

    frame: pd.DataFrame
    tau: float
    pairs: int
    concordant: int
    sentence: str
    tau_low: float = math.nan  # bootstrap 95 % interval of tau (trials resampled with replacement)
    tau_high: float = math.nan
    ceiling: fidelity.RankAgreement | None = None  # tau between two full-training seeds (None: one seed)


def full_result(study: optuna.Study, trial: optuna.trial.FrozenTrial) -> dict[str, Any]:
    """The stored full-training result of ``trial`` (``{}`` when it was never validated)."""
    return record_full_result(study, trial.number)


def validation_frame(study: optuna.Study, numbers: Sequence[int]) -> pd.DataFrame:
    """Proxy vs full figures of the trials ``numbers`` (re-read from the study), best proxy first."""
    objectives = study_objectives(study)
    batch = next((o.batch_size for o in objectives if o.metric == "epf" and o.batch_size), None)
    rows = []
    for number in numbers:
        trial = get_trial(study, number)
        record = trial_record(study, trial)
        full = full_result(study, trial)
        reference = batch or (max(record.epf) if record.epf else None)
        full_epf = (full.get("epf") or {}).get(str(reference), {})
        rows.append(
            {
                "trial": record.number,
                "arch": record.arch_config.arch,
                "module": record.arch_config.module,
                "grouping": record.arch_config.grouping,
                "width": record.arch_config.width,
                "proxy_top1": record.top1,
                "full_top1": full.get("top1"),
                "full_top5": full.get("top5"),
                "full_epochs": full.get("epochs"),
                "full_top1_seeds": full.get("top1_seeds") or ([full["top1"]] if full.get("top1") is not None else []),
                "batch_size": reference,
                "search_epf_mj": record.epf_mj(reference) if reference else None,
                "search_backend": record.energy_backend,
                "full_epf_mj": full_epf.get("epf_mj") if full_epf.get("status", "ok") == "ok" else None,
                "full_backend": full.get("backend"),
            }
        )
    frame = pd.DataFrame(rows)
    if frame.empty:
        return frame
    frame["proxy_rank"] = frame["proxy_top1"].rank(ascending=False, method="min")
    frame["full_rank"] = frame["full_top1"].rank(ascending=False, method="min")
    return frame.sort_values(["proxy_rank", "trial"], ignore_index=True)


def rank_agreement(frame: pd.DataFrame) -> ValidationReport:
    """Kendall's tau between proxy and full top-1 over the rows that have both."""
    both = frame.dropna(subset=["proxy_top1", "full_top1"]) if len(frame) else frame
    proxy, full = list(both.get("proxy_top1", [])), list(both.get("full_top1", []))
    tau, pairs, concordant = fidelity.kendall_tau(proxy, full)
    low, high = (math.nan, math.nan) if math.isnan(tau) else bootstrap_tau(proxy, full)[:2]
    sentence = fidelity_notes.agreement_sentence(tau, len(both), concordant, pairs, (low, high))
    ceiling = noise_ceiling(both)
    if ceiling is not None:
        proxies, per_seed = _seeded(both)
        half = len(per_seed) // 2
        tau_like = fidelity.tau_against_halves(proxies, per_seed)
        sentence += " " + fidelity_notes.ceiling_sentence(ceiling, tau_like, half, fidelity.reference_noise(per_seed))
    return ValidationReport(frame, tau, pairs, concordant, sentence, low, high, ceiling)


def _seeded(frame: pd.DataFrame) -> tuple[list[float], list[list[float]]]:
    """Proxy top-1 and full top-1 per seed (``[seed][trial]``) of the trials trained with two or more
    seeds, over as many seeds as every one of them has."""
    rows = [
        (proxy, list(values))
        for proxy, values in zip(frame.get("proxy_top1", []), frame.get("full_top1_seeds", []))
        if len(values) >= 2
    ]
    seeds = min((len(values) for _, values in rows), default=0)
    return [proxy for proxy, _ in rows], [[values[seed] for _, values in rows] for seed in range(seeds)]


def noise_ceiling(frame: pd.DataFrame) -> fidelity.RankAgreement | None:
    """How well full training agrees with itself over the trials trained with two or more seeds: tau
    between two seeds' rankings, or between the means of two halves of the seeds
    (:func:`~e2gcsearch.fidelity.noise_ceiling`); ``None`` with fewer than 3 such trials."""
    _, per_seed = _seeded(frame)
    if not per_seed or len(per_seed[0]) < 3:
        return None
    return fidelity.noise_ceiling(per_seed)


def render_validation(report: ValidationReport, fmt: str) -> str:
    """The proxy-vs-full table followed by the tau sentence (JSON: one document with both)."""
    frame = report.frame
    if fmt == "json":
        ceiling = dataclasses.asdict(report.ceiling) if report.ceiling is not None else None
        return to_json(
            {
                "rows": frame.to_dict(orient="records"),
                "kendall_tau": report.tau,
                "kendall_tau_low": report.tau_low,
                "kendall_tau_high": report.tau_high,
                "noise_ceiling": ceiling,
                "pairs": report.pairs,
                "concordant": report.concordant,
                "meaning": report.sentence,
            }
        )
    if fmt == "csv":
        return render(frame.drop(columns=["full_top1_seeds"], errors="ignore"), "csv")
    batch = next((int(b) for b in frame.get("batch_size", []) if b == b and b is not None), None)
    backends = {"search": _one(frame.get("search_backend")), "full": _one(frame.get("full_backend"))}
    headers = {
        "grouping": "G/g",
        "proxy_top1": "proxy top-1 (%)",
        "full_top1": "full top-1 (%)",
        "proxy_rank": "proxy rank",
        "full_rank": "full rank",
        "full_epochs": "epochs",
        "search_epf_mj": f"EPF@{batch} search (mJ/frame, {backends['search']})",
        "full_epf_mj": f"EPF@{batch} now (mJ/frame, {backends['full']})",
    }
    columns = [
        c
        for c in (
            "trial",
            "arch",
            "module",
            "grouping",
            "width",
            "proxy_top1",
            "full_top1",
            "proxy_rank",
            "full_rank",
            "full_epochs",
            "search_epf_mj",
            "full_epf_mj",
        )
        if c in frame
    ]
    formatters = {
        "width": fixed(2),
        "proxy_top1": fixed(2),
        "full_top1": fixed(2),
        "proxy_rank": fixed(0),
        "full_rank": fixed(0),
        "full_epochs": fixed(0),
        "search_epf_mj": fixed(3),
        "full_epf_mj": fixed(3),
    }
    return render(frame[columns], fmt, formatters, headers) + "\n\n" + report.sentence


def _one(values: Any) -> str:
    found = sorted({v for v in (values if values is not None else []) if isinstance(v, str)})
    return found[0] if len(found) == 1 else ("mixed" if found else "unmeasured")
