"""Measure the EPF of every completed trial of a study again, in one sitting, so that its front compares
EPF measured side by side (``confirm --remeasure-epf``, run before :mod:`e2gcsearch.search.confirm`
measures contested points); :func:`moved_line` says how far the figures had moved.
"""

from __future__ import annotations

import dataclasses
import statistics
from collections.abc import Callable, Collection
from contextlib import nullcontext

import optuna
from optuna.trial import TrialState

from ..devices import resolve_device
from ..energy import Ledger
from ..profiling import ProfileConfig, profile_model
from ..store import record
from ..store.results import trial_record
from .trial import epf_figures

Say = Callable[[str], None]


def remeasure_epf(
    study: optuna.Study,
    profile: ProfileConfig,
    say: Say | None = None,
    ledger: Ledger | None = None,
    numbers: Collection[int] | None = None,
    batch_sizes: Collection[int] | None = None,
    same_impl: bool = False,
) -> list[float]:
    """Measure the training step's EPF of every completed trial of ``study`` again, now, and keep these
    figures in place of whatever the trial and ``confirm`` had (``confirm --remeasure-epf``); each
    trial's measurement is one phase of ``ledger``, when one is given.

    EPF drifts between sessions by more than one sitting's interval, and a study's figures may come
    from several (resumed runs, the profile cache): afterwards its front compares EPF measured in one
    session. The cache entries are replaced too (``ProfileConfig.refresh``), so a later ``confirm``
    pools with these. No training; a constraint on EPF is not judged again. ``numbers`` and
    ``batch_sizes`` narrow it to those trials (a trial stopped early among them) and those batch sizes;
    ``same_impl`` measures each trial with the implementation its figures were measured with (no
    ``--impl auto`` timing again, and the same kernels in both sittings). Returns, per trial
    measured, how far its EPF at its largest batch size moved (new / old - 1; see :func:`moved_line`).
    """
    say = say or (lambda line: None)
    states = (TrialState.COMPLETE,) if numbers is None else (TrialState.COMPLETE, TrialState.PRUNED)
    trials = [
        t
        for t in study.get_trials(deepcopy=False, states=states)
        if record.ARCH_CONFIG in t.user_attrs
        and record.DUPLICATE_OF not in t.user_attrs
        and (numbers is None or t.number in numbers)
    ]
    refresh = dataclasses.replace(profile, use_cache=True, refresh=True)
    moved: list[float] = []
    for index, trial in enumerate(trials, 1):
        stored = trial_record(study, trial)
        sizes = tuple(
            sorted(
                b
                for b, figures in stored.epf.items()
                if figures.get("status", "ok") == "ok" and (batch_sizes is None or b in batch_sizes)
            )
        )
        if not sizes:
            continue
        measuring = dataclasses.replace(refresh, batch_sizes=sizes, resolution=stored.resolution or profile.resolution)
        impls = {stored.epf[b].get("impl") for b in sizes}
        if same_impl and len(impls) == 1 and None not in impls:
            measuring = dataclasses.replace(measuring, impl=impls.pop())
        with ledger.phase("measurement", resolve_device(profile.device), profile.threads) if ledger else nullcontext():
            fresh = profile_model(stored.arch_config, measuring)
        confirmed = dict(record.confirmation(study, trial.number))
        confirmed[record.EPF] = {
            **confirmed.get(record.EPF, {}),
            **{str(b): epf_figures(p) for b, p in fresh.batches.items() if p.status == "ok"},
        }
        study.set_user_attr(record.confirm_key(trial.number), confirmed)
        largest = sizes[-1]
        before, now = stored.epf_mj(largest), fresh.batches[largest]
        if now.status == "ok":
            moved.append(now.epf_mj / before - 1)
        after = f"{now.epf_mj:.4g} mJ/frame ({fresh.backend})" if now.status == "ok" else now.status
        say(
            f"[{index}/{len(trials)}] trial {trial.number} {stored.arch_config.label()}: EPF@{largest} "
            f"{before:.4g} -> {after}"
        )
    return moved


def moved_line(moved: list[float]) -> str:
    """How far :func:`remeasure_epf` found EPF had moved since it was first measured, in one line.

    >>> moved_line([-0.23, 0.02, -0.04, 0.13])[-71:]
    'moved by a median of 8.5 % (-23 % to +13 %) since their earlier sitting'
    """
    if not moved:
        return "no trial had an EPF to measure again"
    median = statistics.median(abs(m) for m in moved)
    return (
        f"{len(moved)} trials measured again: EPF at their largest batch size moved by a median of "
        f"{100 * median:.2g} % ({100 * min(moved):+.0f} % to {100 * max(moved):+.0f} %) since their "
        "earlier sitting"
    )
