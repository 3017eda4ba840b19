"""Inference EPF for the front's break-even column, measured by ``run`` once the search is done.

Break-even (:mod:`e2gcsearch.store.spending`) compares the inference EPF of each front point with that
of its reference, its network's paper baseline. A study whose objectives and constraints name no
``epf_infer`` (the default ``--objective epf,top1``) measured none, so ``run`` measures it afterwards
for the points the front shows and their paper baselines only: forward only, eval mode (the profiler's
``infer`` mode, as an ``epf_infer`` objective measures it), at one batch size, with the study's
measurement settings and EPF backend, answered from the measurement cache when it holds the figure.

Finished Optuna trials are immutable, so the figures are kept on the study (``epf_infer:trial-<n>`` of
:mod:`e2gcsearch.store.record`; :func:`~e2gcsearch.store.results.trial_record` adds them to the trial's
own), and the work is metered as the search's (``spent:inference:<run>``). ``run --no-break-even``
skips it.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

import optuna

from ..devices import resolve_device
from ..metrics import ENERGY_METRICS
from ..profiling import ProfileConfig, profile_model
from ..store import record
from ..store.record import TrialRecord
from ..store.results import front_info, study_objectives, trial_record
from ..store.spending import paper_baselines, study_ledger, study_search_cost
from .trial import epf_figures

BATCH_SIZE = 1  # one frame at a time, as a deployed network usually meets its inputs


def break_even_targets(study: optuna.Study) -> tuple[int, list[TrialRecord]]:
    """The batch size the break-even column will compare, and the front points and paper baselines that
    lack an inference EPF there (none when the study has no energy objective, no recorded search cost,
    or no paper baseline for a front point's network: its column would stay empty anyway)."""
    if not any(o.metric in ENERGY_METRICS for o in study_objectives(study)) or not study_search_cost(study).recorded:
        return BATCH_SIZE, []
    front = front_info(study)
    if front.frame.empty:
        return BATCH_SIZE, []
    trials, attrs = study.get_trials(deepcopy=False), study.user_attrs
    by_number, references = {t.number: t for t in trials}, paper_baselines(study, trials)
    points = [trial_record(study, by_number[int(number)], attrs) for number in front.frame["trial"]]
    points = [stored for stored in points if stored.arch_config.arch in references]
    chosen = {stored.number: stored for stored in points}
    chosen.update({references[arch].number: references[arch] for arch in {p.arch_config.arch for p in points}})
    measured = sorted({batch for stored in references.values() for batch in stored.epf_infer})
    batch = measured[0] if measured else BATCH_SIZE  # the batch size the column compares (store.spending)
    return batch, [stored for _, stored in sorted(chosen.items()) if batch not in stored.epf_infer]


def measure_break_even(study: optuna.Study, profile: ProfileConfig, say: Callable[[str], None]) -> int:
    """Measure the inference EPF that the break-even column of ``study``'s front lacks (see the module
    docstring) with ``profile``'s settings, store it on the study and meter the work on its bill; says
    one line first. Returns how many networks were measured."""
    batch, targets = break_even_targets(study)
    if not targets:
        return 0
    say(
        f"break-even: measuring the inference EPF@{batch} (forward only, eval mode) of {len(targets)} "
        "network(s), the front's and their paper baselines (--no-break-even skips this)"
    )
    ledger, device = study_ledger(study, "inference", profile), resolve_device(profile.device)
    for stored in targets:
        measuring = dataclasses.replace(
            profile, mode="infer", batch_sizes=(batch,), resolution=stored.resolution or profile.resolution
        )
        with ledger.phase("measurement", device, profile.threads) as phase:
            inference = profile_model(stored.arch_config, measuring)
            phase.cached = all(result.cached for result in inference.batches.values())
        figures = {str(size): epf_figures(result) for size, result in inference.batches.items()}
        study.set_user_attr(record.inference_key(stored.number), figures)
    return len(targets)


__all__ = ["BATCH_SIZE", "break_even_targets", "measure_break_even"]
