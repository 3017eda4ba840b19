"""Creating or resuming a study: sampler, compatibility checks and the paper baselines.

Optuna does the searching; this module only wires e2gcsearch's choices into it (the storage a search
writes to is opened by :func:`e2gcsearch.store.storage.open_search_storage`):

* samplers: ``tpe`` (Optuna's multi-objective default), ``nsga2``, ``nsga3``, ``gp``, ``random``
  and ``grid`` (the whole space);
* resuming: the stored objectives, space and dataset must equal the requested ones — a mismatch is
  an error, never a silent mix of incomparable trials.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from typing import Any

import optuna
from optuna.storages import BaseStorage

from ..config import ArchConfig
from ..console import note
from ..errors import ConfigError, UnknownNameError
from ..metrics import Metric
from ..models import get_entry
from ..store import record
from ..store.lost import fail_lost_trials
from ..store.queue import enqueue_once, queued_archs
from ..store.storage import open_search_storage, redact
from ..train.runtime import derived_seed
from ..version import __version__
from .search_config import SearchConfig
from .space import Space


def _startup_trials(trials: int | None) -> int:
    """Random trials before a model-based sampler (TPE, GP) starts modelling: a third of the budget, 3..10."""
    return min(10, max(3, (trials or 30) // 3))


def _population(trials: int | None) -> int:
    """The population of NSGA-II/III: a third of the budget, 4..50, so a short run sees a few generations."""
    return max(4, min(50, (trials or 50) // 3))


SamplerFactory = Callable[[int | None, Space, int | None], optuna.samplers.BaseSampler]
# name -> factory(seed, space, trials); a new sampler is one row here (and ``--sampler`` lists it)
SAMPLER_FACTORIES: dict[str, SamplerFactory] = {
    "tpe": lambda seed, space, trials: optuna.samplers.TPESampler(seed=seed, n_startup_trials=_startup_trials(trials)),
    "nsga2": lambda seed, space, trials: optuna.samplers.NSGAIISampler(seed=seed, population_size=_population(trials)),
    "nsga3": lambda seed, space, trials: optuna.samplers.NSGAIIISampler(seed=seed, population_size=_population(trials)),
    # log2_G and log2_g are conditional on the module: GP draws them independently, by design here
    "gp": lambda seed, space, trials: optuna.samplers.GPSampler(
        seed=seed, n_startup_trials=_startup_trials(trials), warn_independent_sampling=False
    ),
    "random": lambda seed, space, trials: optuna.samplers.RandomSampler(seed=seed),
    "grid": lambda seed, space, trials: optuna.samplers.GridSampler(space.choices(), seed=seed),
}
SAMPLERS = tuple(SAMPLER_FACTORIES)


def sampler_seed(seed: int | None, trials_so_far: int, worker: int = 0) -> int | None:
    """The sampler seed of a (resumed) run: a fresh stream per resume point and worker, so that a resume
    continues the search instead of proposing the first run's points again."""
    if seed is None:
        return None
    if trials_so_far == 0 and worker == 0:
        return seed
    return derived_seed(seed, "sampler", trials_so_far, worker) % 2**32


def create_sampler(name: str, seed: int | None, space: Space, trials: int | None) -> optuna.samplers.BaseSampler:
    """The Optuna sampler called ``name`` (a row of :data:`SAMPLER_FACTORIES`)."""
    factory = SAMPLER_FACTORIES.get(name)
    if factory is None:
        raise UnknownNameError(f"unknown sampler {name!r}; choose one of: {', '.join(SAMPLERS)}")
    return factory(seed, space, trials)


def open_search_study(
    config: SearchConfig, space: Space, data: dict[str, Any], fingerprint: dict[str, Any]
) -> optuna.Study:
    """The study ``run`` writes to: its storage opened (with Optuna's heartbeat), created or resumed
    after the comparability check, with a sampler that continues the stored stream, and the trials of
    workers that died failed with that reason."""
    storage = open_search_storage(config.storage)
    sampler = create_sampler(config.sampler, config.seed, space, config.trials)
    study = open_or_create_study(
        storage, config.study_name, config.settings.objectives, space, data, sampler, config.storage, fingerprint
    )
    study.sampler = create_sampler(config.sampler, sampler_seed(config.seed, len(study.trials)), space, config.trials)
    for line in fail_lost_trials(study):
        note(line)
    return study


def study_attrs(
    objectives: tuple[Metric, ...], space: Space, data: dict[str, Any], fingerprint: dict[str, Any] | None = None
) -> dict[str, Any]:
    """What identifies a study's trials as comparable (checked on every resume); ``fingerprint`` adds
    the training, measurement and device keys (:func:`e2gcsearch.store.fingerprint.study_fingerprint`)."""
    return {
        record.OBJECTIVES: [o.to_dict() for o in objectives],
        record.SPACE: space.describe(),
        record.DATA: data,
        **(fingerprint or {}),
    }


def _mismatch(stored: dict[str, Any], wanted: dict[str, Any]) -> list[str]:
    """The keys that differ; for a dict, as ``key.field`` (``training.epochs``)."""
    differs = []
    for key, value in wanted.items():
        if key not in stored or stored[key] == value:
            continue
        if isinstance(value, dict) and isinstance(stored[key], dict):
            fields = sorted(f for f in set(value) | set(stored[key]) if value.get(f) != stored[key].get(f))
            differs += [f"{key}.{field}" for field in fields]
        else:
            differs.append(key)
    return differs


def _lookup(attrs: dict[str, Any], dotted: str) -> Any:
    key, _, field = dotted.partition(".")
    value = attrs.get(key)
    return value.get(field) if field and isinstance(value, dict) else value


def open_or_create_study(
    storage: BaseStorage,
    study_name: str,
    objectives: tuple[Metric, ...],
    space: Space,
    data: dict[str, Any],
    sampler: optuna.samplers.BaseSampler,
    storage_url: str = "",
    fingerprint: dict[str, Any] | None = None,
) -> optuna.Study:
    """Create the study, or resume it after checking it was made for the same search.

    A study made before ``fingerprint``'s keys were stored is resumed with a warning (its trials
    cannot be checked against them)."""
    directions = [o.direction for o in objectives]
    wanted = study_attrs(objectives, space, data, fingerprint)
    exists = study_name in optuna.study.get_all_study_names(storage=storage)
    study = optuna.create_study(
        study_name=study_name, storage=storage, sampler=sampler, directions=directions, load_if_exists=True
    )
    if not exists:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            study.set_metric_names([o.name for o in objectives])
        for key, value in wanted.items():
            study.set_user_attr(key, value)
        study.set_user_attr(record.VERSION, __version__)
        return study
    stored = study.user_attrs
    if record.OBJECTIVES not in stored:
        raise ConfigError(
            f"study {study_name!r} in {redact(storage_url)} was not made by 'e2gcsearch run'; "
            "choose another name with --study NAME"
        )
    _check_encoding(study_name, stored.get(record.SPACE) or {}, wanted[record.SPACE])
    differs = _mismatch(stored, wanted)
    if [d.name.lower() for d in study.directions] != directions:
        differs.insert(0, record.OBJECTIVES)
    _refuse(
        study_name,
        stored,
        wanted,
        differs,
        "rerun with the same options to resume it, or start a new study with --study NEW_NAME",
    )
    missing = [key for key in wanted if key not in stored]
    if missing:
        note(
            f"warning: study {study_name!r} predates the stored {', '.join(missing)} settings; resuming "
            "without checking them, so keep the options it was started with"
        )
    return study


def check_comparable(study: optuna.Study, fingerprint: dict[str, Any], fix: str) -> None:
    """Refuse (:class:`ConfigError`, saying ``fix``) when ``study`` was searched with other training,
    measurement or device settings than ``fingerprint`` (see :mod:`e2gcsearch.store.fingerprint`): what
    is measured now would be pooled with figures it cannot be compared with."""
    _refuse(study.study_name, study.user_attrs, fingerprint, _mismatch(study.user_attrs, fingerprint), fix)


def _refuse(study_name: str, stored: dict[str, Any], wanted: dict[str, Any], differs: list[str], fix: str) -> None:
    if differs:
        details = "; ".join(
            f"{key}: stored {_short(_lookup(stored, key))}, asked {_short(_lookup(wanted, key))}"
            for key in dict.fromkeys(differs)
        )
        raise ConfigError(f"study {study_name!r} was created for a different search ({details}); {fix}")


def _check_encoding(study_name: str, stored: dict[str, Any], wanted: dict[str, Any]) -> None:
    """A study whose points were drawn another way cannot be resumed: its sampler history would not fit."""
    if stored.get("encoding") != wanted.get("encoding"):
        raise ConfigError(
            f"study {study_name!r} was made by an earlier e2gcsearch that drew G, g and width as categories "
            "('G=4'); this version draws them as ordered numbers (log2 G, log2 g, width), so it cannot resume "
            "that study. 'front', 'export' and 'validate' still read it; start a new study with --study NEW_NAME"
        )


def _short(value: Any) -> str:
    if isinstance(value, list) and value and isinstance(value[0], dict) and "name" in value[0]:
        return ",".join(item["name"] for item in value)
    return str(value)


def enqueue_baselines(
    study: optuna.Study, space: Space, num_classes: int, keep: Callable[[ArchConfig], bool] | None = None
) -> list[str]:
    """Queue the paper baseline of each network of the space (its registry entry's ``baseline``) once;
    returns a line for each: what was queued, or why nothing was.

    A baseline is queued at the width of the space closest to 1.0 that ``keep`` accepts (e.g. the
    search's params/MACs constraints, :func:`~e2gcsearch.search.objectives.cost_feasible`), and not
    again on resume, even when the constraints changed since (a failed baseline is queued again).
    """
    widths = sorted(space.widths, key=lambda w: abs(w - 1.0))
    items, lines = [], []
    have = queued_archs(study, record.BASELINE)
    for arch in (arch for arch in space.archs if arch not in have):
        baselines = [get_entry(arch).baseline.replace(width=width, num_classes=num_classes) for width in widths]
        baselines = [baseline for baseline in baselines if space.contains(baseline)]
        kept = [baseline for baseline in baselines if keep is None or keep(baseline)]
        if kept:
            items.append((kept[0], {record.BASELINE: f"{arch} {kept[0].grouping} (paper baseline)"}))
        elif baselines:
            lines.append(
                f"note: {arch} {baselines[0].grouping} (paper baseline) breaks the params/MACs constraints "
                "at every width of the space; not queued"
            )
    return [
        f"queued {arch_config.arch} {arch_config.grouping} (paper baseline) at width {arch_config.width:g}"
        for arch_config in enqueue_once(study, space, items)
    ] + lines
