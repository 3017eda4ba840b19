"""Where the energy model meets a study: the EPF a search measured, as data to fit the model to, and
the model's predicted best points, queued on a study (``run --warm-start``).

The energy model (:mod:`e2gcsearch.energy_model`) fits and predicts without knowing studies; these
functions read and write one.

Example:
    >>> dataset = dataset_from_study("sqlite:///studies/e2gcsearch.db", "e2gcsearch")   # doctest: +SKIP
    >>> enqueue_warm_start(study, space, warm_start_configs(profile, space, 10))       # doctest: +SKIP
"""

from __future__ import annotations

import collections
import json
from collections.abc import Callable, Sequence
from typing import Any

from optuna.trial import TrialState

from ..config import ArchConfig
from ..energy_model import EpfDataset, EpfMeasurement
from ..errors import DataError, UserError
from ..profiling import DeviceFingerprint
from ..store import record
from ..store.queue import enqueue_once
from ..store.record import TrialRecord
from ..store.spending import study_ledger
from ..store.storage import open_study
from .space import Space

Progress = Callable[[str], None]


def _fingerprint_key(fingerprint: dict[str, Any]) -> str:
    return json.dumps(fingerprint, sort_keys=True)


def dataset_from_study(storage_url: str, study_name: str, progress: Progress | None = None) -> EpfDataset:
    """The EPF of a study's complete trials (one device: the most common fingerprint is kept)."""
    study = open_study(storage_url, study_name)
    records = []
    for trial in study.get_trials(deepcopy=False):
        if trial.state != TrialState.COMPLETE or record.ARCH_CONFIG not in trial.user_attrs:
            continue
        stored = TrialRecord.from_trial(trial)
        if stored.resolution and any(stored.epf_mj(b) for b in stored.epf):
            records.append(stored)
    if not records:
        raise DataError(
            f"study {study_name!r} has no complete trial with measured EPF; run the search first "
            "(e2gcsearch run) or fit a sweep (e2gcsearch model fit --sweep)"
        )
    counts = collections.Counter(_fingerprint_key(r.fingerprint) for r in records)
    kept_key, _ = counts.most_common(1)[0]
    kept = [r for r in records if _fingerprint_key(r.fingerprint) == kept_key]
    if len(kept) < len(records) and progress:
        progress(
            f"note: kept the {len(kept)} trials measured on the most common device; "
            f"{len(records) - len(kept)} from other devices or settings were left out"
        )
    measurements = [
        EpfMeasurement(
            r.arch_config,
            int(r.resolution),
            {b: v for b in r.epf if (v := r.epf_mj(b))},
            {b: f["epf_std_mj"] for b, f in r.epf.items() if f.get("epf_std_mj") is not None},
        )
        for r in kept
    ]
    return EpfDataset(
        kept[0].energy_backend or "unknown",
        bool(kept[0].energy_is_estimate),
        DeviceFingerprint.from_dict(kept[0].fingerprint),
        measurements,
        source=f"study {study_name!r}",
    )


def enqueue_warm_start(
    study: Any, space: Space, configs: Sequence[ArchConfig], note: str = "energy model"
) -> list[str]:
    """Queue ``configs`` on an Optuna study once (resuming queues none twice); returns the labels queued."""
    return [
        arch_config.label()
        for arch_config in enqueue_once(
            study, space, [(arch_config, {record.WARM_START: note}) for arch_config in configs]
        )
    ]


def warm_start_study(
    study: Any,
    space: Space,
    num_classes: int,
    profile_config: Any,
    mode: str = "model",
    given: Any = None,
    say: Progress | None = None,
    keep: Callable[[ArchConfig], bool] | None = None,
) -> list[str]:
    """Queue the optimum-group-size model's predicted best points on ``study`` (calibrating the model
    first when this device has no cached profile and none is ``given``, a loaded
    :class:`~e2gcsearch.energy_model.DeviceProfile`); returns the labels
    queued. Candidates ``keep`` rejects (:func:`~e2gcsearch.search.objectives.cost_feasible`: a params
    or MACs constraint) are not queued (see :func:`~e2gcsearch.energy_model.warm_start_configs`).
    ``mode`` ``auto``: a model that cannot be calibrated leaves the sampler alone, with a note;
    ``model``: that is an error. A calibration's energy is recorded on the study (``spent:calibration:*``)."""
    from ..energy_model import load_or_calibrate, warm_start_configs

    say = say or (lambda line: None)
    ledger = study_ledger(study, "calibration", profile_config)
    try:
        profile = given or load_or_calibrate(space, num_classes, profile_config, progress=say, ledger=ledger)
        seeds = warm_start_configs(profile, space, num_classes, k=3, resolution=profile_config.resolution, keep=keep)
    except UserError as exc:
        if mode != "auto" or given:  # a profile given by name must serve, whatever the mode
            raise
        say(
            f"note: no warm start from the energy model ({exc}); the sampler starts alone "
            "(--warm-start none skips the calibration)"
        )
        return []
    if not seeds and keep is not None:
        say("note: no candidate of the energy model keeps the params/MACs constraints; nothing queued from it")
    queued = enqueue_warm_start(study, space, seeds)
    for label in queued:
        say(f"queued {label} (predicted by the energy model)")
    return queued


__all__ = ["dataset_from_study", "enqueue_warm_start", "warm_start_study"]
