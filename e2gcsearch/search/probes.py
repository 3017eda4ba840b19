"""Noise probes: what every ``run`` measures after its search so that the front's intervals hold the
study's own seed noise and EPF scatter between sittings, without ``--proxy-seeds`` or ``confirm``.

Two estimates need repeated measurements of the same networks:

* **seed noise** (top-1): completed trials are trained again with seeds they have not used,
  :data:`SEED_PROBES` extra trainings in all, so the study has that many degrees of freedom
  (:data:`~e2gcsearch.stats.MIN_POOLED_DF`); the cheapest plan that spreads them over two or more
  trials, at most :data:`MAX_EXTRA_SEEDS` each. With their per-image results the paired test separates
  the seed noise on the population of images from the images the seeds disagree on
  (:func:`e2gcsearch.paired.population_seed_noise`);
* **scatter between sittings** (EPF): :data:`SITTING_PROBES` trials have their EPF at the objectives'
  batch sizes measured again, after the search, in a sitting of their own
  (:func:`e2gcsearch.stats.sitting_noise`; one more network than degrees of freedom).

Both are stored as ``confirm`` stores its measurements (``confirm:trial-<n>``), so ``front``, ``export``
and ``confirm`` read them with no code of their own; the work is metered into the study's bill
(``spent:probes:<run>``). The probes pick the cheapest networks (by the seconds their own training and
measurement took) and keep their estimated cost under :data:`PROBE_SHARE` of the whole run (the
probes included), saying what they left out. A study whose estimates already rest on enough degrees of freedom
(``--proxy-seeds 2``, an earlier run's probes, ``confirm``) gets no probe of that kind.
"""

from __future__ import annotations

import dataclasses
import statistics
import time
from collections.abc import Callable, Iterable
from typing import Any

import optuna
from optuna.trial import TrialState

from ..data import LoadedData
from ..energy import Ledger
from ..paired import PerImage
from ..profiling.implementations import layout_of
from ..report.front import FrontInfo
from ..stats import MIN_POOLED_DF
from ..store import record
from ..store.record import TrialRecord
from ..store.results import front_info, trial_record
from ..store.spending import study_ledger
from ..train import TrainConfig, train_model
from .remeasure import remeasure_epf
from .trial import TrialSettings

PROBE_SHARE = 0.15  # the probes' estimated cost stays below this share of the run's seconds, theirs included
SEED_PROBES = MIN_POOLED_DF  # extra seeds: one degree of freedom each
MAX_EXTRA_SEEDS = 3  # per trial; and two or more trials, so the seed noise rests on more than one network
SITTING_PROBES = MIN_POOLED_DF + 1  # networks measured again: degrees of freedom = networks - 1

Say = Callable[[str], None]


@dataclasses.dataclass(frozen=True)
class ProbeReport:
    """What the probes did: trials trained again, trials measured again, seconds, and what was left out."""

    trained: tuple[int, ...]  # a trial trained with two more seeds is named twice
    measured: tuple[int, ...]
    seconds: float
    run_s: float  # what the run had taken before the probes
    left_out: tuple[str, ...] = ()

    def line(self) -> str:
        done = []
        if self.trained:
            trials = len(set(self.trained))
            done.append(f"trained {trials} trial(s) again with {len(self.trained)} more seed(s)")
        if self.measured:
            done.append(f"measured the EPF of {len(self.measured)} trial(s) again in a sitting of their own")
        what = " and ".join(done) or "nothing to measure"
        total = self.run_s + self.seconds
        share = f" ({100 * self.seconds / total:.0f} % of the run's {total:.0f} s)" if done else ""
        left = f"; {'; '.join(self.left_out)}" if self.left_out else ""
        return f"noise probes: {what} in {self.seconds:.0f} s{share}{left}"


def run_probes(study: optuna.Study, settings: TrialSettings, data: LoadedData, run_s: float, say: Say) -> ProbeReport:
    """Measure what the study needs for its seed noise and EPF sitting scatter (module docstring);
    ``run_s``: the seconds the run has taken so far, of which the probes may add :data:`PROBE_SHARE`
    of the total."""
    start = time.perf_counter()
    budget = PROBE_SHARE / (1 - PROBE_SHARE) * run_s
    attrs = study.user_attrs
    trials = {t.number: t for t in _measured(study)}
    records = {number: trial_record(study, t, attrs) for number, t in trials.items()}
    completed = {n: stored for n, stored in records.items() if stored.state == "COMPLETE"}
    front = front_info(study, include_dominated=True)
    ledger = study_ledger(study, "probes", settings.profile)
    left_out: list[str] = []
    seeds = _seed_candidates(front, completed) if settings.needs_training else []
    sittings = _sitting_candidates(front, records, settings)
    seed_cost = sum(_train_s(records[n]) for n in seeds)
    sitting_cost = sum(_measure_s(records[n], records.values(), settings) for n in sittings)
    if seeds and seed_cost > budget:  # an estimate needs every probe of its kind: drop a kind that cannot fit
        left_out.append(f"seed noise left to 'confirm' (about {seed_cost:.0f} s of training, over the budget)")
        seeds, seed_cost = [], 0.0
    if sittings and seed_cost + sitting_cost > budget:
        left_out.append("EPF scatter between sittings left to 'confirm --remeasure-epf' (over the budget)")
        sittings = []
    trained = [n for n in seeds if _train_again(study, trials[n], settings.train, data, ledger)]
    if sittings:
        sizes = _epf_batches(settings)
        remeasure_epf(study, settings.profile, ledger=ledger, numbers=sittings, batch_sizes=sizes, same_impl=True)
    report = ProbeReport(tuple(trained), tuple(sittings), time.perf_counter() - start, run_s, tuple(left_out))
    say(report.line())
    return report


def with_seed(
    stored: TrialRecord, confirmed: dict[str, Any], train: TrainConfig, data: LoadedData, ledger: Ledger
) -> dict[str, Any] | None:
    """Trial ``stored``'s ``confirm`` attr ``confirmed`` with one more training: the next seed it has not
    used, metered by ``ledger``, its top-1 and per-image results added; ``None`` when the training did
    not finish. Nothing is stored here."""
    confirmed = dict(confirmed)
    seeds = stored.top1_values()
    used = confirmed.get(record.TOP1_SEED_IDS) or [train.seed + k for k in range(len(seeds))]
    seed = max(used) + 1
    config = dataclasses.replace(train, seed=seed, layout=_layout(stored, train.layout))
    trained = train_model(stored.arch_config, data, config, metering=ledger.metering("training"))
    if not trained.ok or trained.top1 != trained.top1:
        return None
    earlier, more = PerImage.from_dict(confirmed.get(record.TOP1_CORRECT)), PerImage.of_runs([trained])
    if more is not None:  # the new seed's images, after those of confirm's earlier seeds
        confirmed[record.TOP1_CORRECT] = earlier.extended(PerImage.from_dict(more)).to_dict() if earlier else more
    confirmed[record.TOP1_SEEDS] = [*seeds, trained.top1]
    confirmed[record.TOP1_SEED_IDS] = [*used, seed]
    return confirmed


def _layout(stored: TrialRecord, layout: str) -> str:
    """The layout the trial trained in: as asked, or for ``auto`` that of the implementation its training
    step was measured with at its largest batch size (as the search chose it, so it is not timed again)."""
    if layout != "auto":
        return layout
    measured = [figures for _, figures in sorted(stored.epf.items()) if figures.get("impl")]
    return layout_of(measured[-1]["impl"]) if measured else layout


def _train_again(study: optuna.Study, trial: Any, train: TrainConfig, data: LoadedData, ledger: Ledger) -> bool:
    stored = trial_record(study, trial)  # read again: an earlier probe may have added a seed
    confirmed = with_seed(stored, record.confirmation(study, stored.number), train, data, ledger)
    if confirmed is not None:
        study.set_user_attr(record.confirm_key(stored.number), confirmed)
    return confirmed is not None


def _measured(study: optuna.Study) -> list[Any]:
    """The trials that measured a point: completed and feasible, or stopped early (EPF without top-1)."""
    return [
        t
        for t in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE, TrialState.PRUNED))
        if record.ARCH_CONFIG in t.user_attrs
        and record.DUPLICATE_OF not in t.user_attrs
        and not t.user_attrs.get(record.INFEASIBLE)
    ]


def _seed_candidates(front: FrontInfo, records: dict[int, TrialRecord]) -> list[int]:
    """The trials to train again, one entry per extra seed, as many as the seed noise still lacks
    degrees of freedom: the cheapest plan that spreads them over two or more trials, each trained at
    most :data:`MAX_EXTRA_SEEDS` more times (those with per-image results first); ``[]`` when the
    study has too few trials."""
    noise = front.paired.seed_noise if front.paired is not None else None
    need = SEED_PROBES - (noise.df if noise is not None else 0)
    single = [n for n, stored in records.items() if len(stored.top1_values()) == 1]
    single.sort(key=lambda n: (records[n].per_image() is None, _train_s(records[n]), n))
    plans = []
    for count in range(2, need + 1):
        if len(single) < count or count * MAX_EXTRA_SEEDS < need:
            continue
        extra = dict.fromkeys(single[:count], 1)  # one each, then the rest to the cheapest, up to the cap
        for number in single[:count]:
            more = min(MAX_EXTRA_SEEDS - 1, need - sum(extra.values()))
            extra[number] += more
        plan = sorted(n for n, k in extra.items() for _ in range(k))
        plans.append((sum(_train_s(records[n]) for n in plan), plan))
    return min(plans)[1] if need > 0 and plans else []


def _sitting_candidates(front: FrontInfo, records: dict[int, TrialRecord], settings: TrialSettings) -> list[int]:
    """The cheapest trials to measure again in a sitting of their own (measured in an earlier minute than
    this one), unless every EPF objective's scatter between sittings is known already."""
    batches = _epf_batches(settings)
    known = [f"epf@{b}_sitting_cv" for b in batches]
    if not batches or all(c in front.frame and front.frame[c].notna().any() for c in known):
        return []
    now = time.strftime("%Y-%m-%d %H:%M", time.gmtime())
    objectives = [o for o in settings.objectives if o.metric == "epf" and o.batch_size in batches]
    earlier = [
        n
        for n, stored in records.items()
        if all(stored.epf_mj(b) is not None for b in batches)
        and all(now not in (stored.measured_at(o) or [now]) for o in objectives)
    ]
    if len(earlier) < SITTING_PROBES:
        return []
    cost = {n: _measure_s(records[n], records.values(), settings) for n in earlier}
    return sorted(earlier, key=lambda n: (cost[n], n))[:SITTING_PROBES]


def _epf_batches(settings: TrialSettings) -> tuple[int, ...]:
    return tuple(sorted({o.batch_size for o in settings.objectives if o.metric == "epf" and o.batch_size}))


def _train_s(stored: TrialRecord) -> float:
    return float(stored.wall_s.get("train") or 0.0) / max(1, len(stored.top1_values()))


def _measure_s(stored: TrialRecord, every: Iterable[TrialRecord], settings: TrialSettings) -> float:
    """The seconds a sitting at the objectives' batch sizes takes, estimated from the trial's own
    measurement (one answered from the profile cache took none: then the median of the others)."""
    share = len(_epf_batches(settings)) / max(1, len(settings.batch_sizes))
    own = float(stored.wall_s.get("profile") or 0.0)
    if own <= 0:
        others = [float(r.wall_s.get("profile") or 0.0) for r in every]
        own = statistics.median([s for s in others if s > 0] or [0.0])
    return own * share
