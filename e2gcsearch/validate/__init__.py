"""Did the proxy lie? Fully train the front's members, re-profile them, and compare rankings.

For each chosen trial (the front's members by proxy top-1, or trials named by number, and with
``spread`` that many more completed trials spread over the proxy's range, so that tau is not measured
on the narrow band of the front alone) this trains the trial's network with the trainer's full mode
(:data:`~e2gcsearch.train.FULL_RECIPE`, ``full_seeds`` seeds, a checkpoint every epoch under
``<studies dir>/checkpoints/<study>/trial-<n>``, resumed when interrupted), measures its EPF again,
and stores ``{"top1", "top5", "epochs", "epf", "backend", ...}`` under the trial's ``full`` user attr.
Kendall's tau between the proxy and the full top-1 of the validated trials says how far the proxy's
ranking can be trusted; with two seeds, tau between the seeds' rankings is the noise ceiling that no
proxy can be expected to beat. An FLGC trial's full training starts from the groups its proxy training learned
(stored on the trial) and goes on learning them; its EPF is that of the deployed grouped network.

Example:
    >>> report = validate_study(study, ValidateSettings(top=3, spread=6))    # doctest: +SKIP
    >>> print(report.sentence)                                               # doctest: +SKIP
"""

from __future__ import annotations

import dataclasses
import json
import math
import re
import statistics
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import optuna

from .. import checks
from ..console import note
from ..data import DataConfig, LoadedData, load_data
from ..energy import Ledger, MeterSpec
from ..errors import ConfigError
from ..fidelity import kendall_tau
from ..fidelity_notes import agreement_sentence  # re-exported: validate's API
from ..paired import PerImage
from ..profiling import ProfileConfig, profile_model, resolve_device
from ..profiling.implementations import layout_of
from ..report import require_trials
from ..store.lost import new_run_id
from ..store.record import ARCH_CONFIG, DUPLICATE_OF, TOP1, TrialRecord, full_key, spent_key
from ..store.results import front_info, get_trial, proxy_fidelity_note, search_implementation, trial_record
from ..store.storage import studies_dir
from ..train import FULL_RECIPE, TrainConfig, train_model
from .report import (  # re-exported: validate's API
    ValidationReport,
    full_result,
    noise_ceiling,
    rank_agreement,
    render_validation,
    validation_frame,
)

DATA_FIELDS = (
    "name",
    "root",
    "classes",
    "train_per_class",
    "val_per_class",
    "resolution",
    "seed",
    "download",
    "cache_dir",
)
Say = Callable[[str], None]


@dataclasses.dataclass(frozen=True)
class ValidateSettings:
    """What to validate and how.

    Args:
        top: validate the ``top`` front members with the best proxy top-1 (``None`` = all of them).
        trials: trial numbers to validate instead of the front.
        spread: also validate this many completed trials spread evenly over the proxy top-1 range.
        full_seeds: train every chosen trial with this many seeds (the training seed and the next ones);
            two or more give the noise ceiling.
        epochs: full-training epochs (``None``: the full recipe's).
        data: DataConfig fields that override the dataset description stored on each trial.
        train: TrainConfig fields (batch_size, lr, seed, device, ...) on top of the full-training preset.
        profile: how to re-measure EPF (resolution is taken from the data); ``None`` skips profiling.
        search_batch_sizes: measure the batch sizes the search measured for each trial (else
            ``profile.batch_sizes``).
        search_impl: measure and train with the implementation and layout the search used, as the study
            stores them (else ``profile.impl`` and ``train["layout"]``, as for a study that does not say).
        retrain: discard an existing checkpoint or stored result and train again from scratch.
        checkpoint_root: folder of the ``trial-<n>`` checkpoint folders.
    """

    top: int | None = None
    trials: tuple[int, ...] | None = None
    spread: int = 0
    full_seeds: int = 1
    epochs: int | None = None
    data: dict[str, Any] = dataclasses.field(default_factory=dict)
    train: dict[str, Any] = dataclasses.field(default_factory=dict)
    profile: ProfileConfig | None = dataclasses.field(default_factory=ProfileConfig)
    search_batch_sizes: bool = True
    search_impl: bool = False
    retrain: bool = False
    checkpoint_root: str | None = None


def checkpoint_root(storage: str, study_name: str) -> Path:
    """``<folder of the storage>/checkpoints/<study>``: where validate keeps full-training checkpoints (a
    study name that is not a plain folder name is refused: it would write elsewhere)."""
    return studies_dir(storage) / "checkpoints" / checks.study_name(study_name)


def select_trials(
    study: optuna.Study, top: int | None = None, numbers: Sequence[int] | None = None, spread: int = 0
) -> list[optuna.trial.FrozenTrial]:
    """The named trials (each must be COMPLETE), else the front's members by proxy top-1, best first;
    then ``spread`` more completed trials spread over the proxy's range (:func:`spread_trials`)."""
    chosen = _named_or_front(study, top, numbers)
    return chosen + spread_trials(study, spread, {trial.number for trial in chosen})


def spread_trials(study: optuna.Study, count: int, taken: set[int]) -> list[optuna.trial.FrozenTrial]:
    """``count`` completed trials with a proxy top-1, not in ``taken``, at evenly spaced places of the
    proxy top-1 order (best and worst included): validating the front alone ranks a narrow band of
    accuracies and understates how well the proxy ranks the space it searched."""
    if count <= 0:
        return []
    complete = study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.COMPLETE,))
    seen = {json.dumps(t.user_attrs.get(ARCH_CONFIG), sort_keys=True) for t in complete if t.number in taken}
    pool = []
    for trial in sorted(complete, key=lambda t: t.number):  # a repeat, or the same network again, adds nothing
        key = json.dumps(trial.user_attrs.get(ARCH_CONFIG), sort_keys=True)
        if trial.user_attrs.get(TOP1) is not None and DUPLICATE_OF not in trial.user_attrs and key not in seen:
            pool.append(trial)
            seen.add(key)
    pool.sort(key=lambda t: (-t.user_attrs[TOP1], t.number))
    if len(pool) <= count:
        return pool
    places = sorted({round(i * (len(pool) - 1) / (count - 1)) for i in range(count)} if count > 1 else {0})
    return [pool[place] for place in places]


def _named_or_front(
    study: optuna.Study, top: int | None, numbers: Sequence[int] | None
) -> list[optuna.trial.FrozenTrial]:
    if numbers:
        return [get_trial(study, number) for number in dict.fromkeys(numbers)]
    front = require_trials(front_info(study))
    trials = [get_trial(study, int(number)) for number in front.frame["trial"]]

    def best_proxy_first(trial: optuna.trial.FrozenTrial) -> tuple[float, int]:
        top1 = trial.user_attrs.get(TOP1)
        return (-top1 if top1 is not None else math.inf), trial.number

    trials.sort(key=best_proxy_first)
    return trials[:top] if top else trials


def data_config_for(record: TrialRecord, overrides: dict[str, Any]) -> DataConfig:
    """The DataConfig of a trial's stored dataset description, with ``overrides`` applied: the same
    classes, validation images and resolution, and every training image (the full recipe) unless
    ``overrides`` names a number per class."""
    stored = record.data or {}
    fields: dict[str, Any] = {
        "name": stored.get("dataset"),
        "root": stored.get("root"),
        "classes": tuple(stored["classes"]) if stored.get("classes") else None,
        "train_per_class": None,
        "val_per_class": _uniform(stored.get("val_per_class")),
        "resolution": stored.get("resolution") or record.resolution or 64,
        "seed": stored.get("seed", 0),
    }
    fields.update({key: value for key, value in overrides.items() if value is not None})
    return DataConfig(**{key: value for key, value in fields.items() if key in DATA_FIELDS})


def _uniform(counts: Any) -> int | None:
    """Images per class from a stored ``{class: count}`` (``None`` = all, when counts differ)."""
    if isinstance(counts, int):
        return counts
    if isinstance(counts, dict) and counts and len(set(counts.values())) == 1:
        return int(next(iter(counts.values())))
    return None


def store_full_result(study: optuna.Study, trial: optuna.trial.FrozenTrial, value: dict[str, Any]) -> None:
    """Record ``value`` as the full-training result of the finished ``trial``.

    Optuna keeps finished trials immutable, so the result is a study attr ``full:trial-<n>`` written
    through Optuna's public API: the same on every storage (SQLite, PostgreSQL, journal files).
    """
    study.set_user_attr(full_key(trial.number), value)


def reload(study: optuna.Study) -> optuna.Study:
    """A fresh view of ``study`` (attrs written by another handle become visible)."""
    return optuna.load_study(study_name=study.study_name, storage=study._storage)


def _full_result(
    record: TrialRecord, data: LoadedData, settings: ValidateSettings, folder: Path, say: Say, ledger: Ledger
) -> dict[str, Any]:
    arch_config = record.arch_config
    if arch_config.num_classes != data.num_classes:
        say(
            f"trial {record.number}: {data.num_classes} classes in the data, {arch_config.num_classes} in the search; "
            "training with the data's"
        )
        arch_config = arch_config.replace(num_classes=data.num_classes)
    epochs = settings.epochs or FULL_RECIPE.epochs
    first_seed = settings.train.get("seed") or 0
    runs = [
        _train_seed(record, arch_config, data, settings, seed_folder(folder, offset), first_seed + offset, say, ledger)
        for offset in range(settings.full_seeds)
    ]
    top1 = [run.top1 for run in runs if run.ok]
    trained = runs[0]
    described = data.description()
    full: dict[str, Any] = {
        "top1": statistics.fmean(top1) if len(top1) == len(runs) else None,
        "top5": trained.top5,
        "epochs": epochs,
        "top1_seeds": top1,
        "top1_correct": PerImage.of_runs(runs) if len(top1) == len(runs) else None,
        "seeds": [first_seed + offset for offset in range(len(runs))],
        "recipe": f"{epochs} epochs, {runs[0].train_size} training images, {data.resolution} px",
        "status": next((run.status for run in runs if not run.ok), "ok"),
        "checkpoint": trained.checkpoint,
        "train_s": round(sum(run.wall_s for run in runs), 2),
        "data": {
            key: described[key]
            for key in ("dataset", "classes", "resolution", "seed", "train_size", "val_size")
            if key in described
        },
    }
    if settings.profile is not None:
        sizes = (settings.search_batch_sizes and tuple(sorted(record.epf))) or settings.profile.batch_sizes
        config = dataclasses.replace(settings.profile, resolution=data.resolution, batch_sizes=sizes)
        with ledger.phase("full measurement", resolve_device(config.device), config.threads) as phase:
            measured = profile_model(arch_config, config)
            phase.cached = all(batch.cached for batch in measured.batches.values())
        full["epf"] = {
            str(b): {
                "epf_mj": p.epf_mj,
                "epf_std_mj": p.epf_std_mj,
                "latency_ms": p.latency_ms,
                "status": p.status,
                "impl": p.impl,
                "measured_at": p.measured_at,
                **p.load_figures(),
            }
            for b, p in sorted(measured.batches.items())
        }
        full.update(backend=measured.backend, is_estimate=measured.is_estimate, resolution=data.resolution)
    return full


def seed_folder(folder: Path, offset: int) -> Path:
    """The checkpoint folder of a trial's ``offset``-th full-training seed (the first keeps ``trial-<n>``)."""
    return folder if offset == 0 else folder.with_name(f"{folder.name}-seed{offset}")


def _train_seed(
    record: TrialRecord,
    arch_config: Any,
    data: LoadedData,
    settings: ValidateSettings,
    folder: Path,
    seed: int,
    say: Say,
    ledger: Ledger,
) -> Any:
    if settings.retrain and (folder / "last.pt").exists():
        (folder / "last.pt").unlink()
    config = TrainConfig.full_training(
        settings.epochs, checkpoint_dir=str(folder), resume=True, **{**settings.train, "seed": seed}
    )
    say(
        f"trial {record.number}: full training of {arch_config.label()} for {config.epochs} epochs, seed {seed} "
        f"(checkpoints in {folder})"
    )
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="no checkpoint at", category=RuntimeWarning)
        try:
            return train_model(  # FLGC: from the learned groups
                arch_config, data, config, structure=record.flgc_structure, metering=ledger.metering("full training")
            )
        except ConfigError as exc:  # e.g. a checkpoint left by a run with other settings
            reason = re.sub(r";[^;]*--checkpoint-dir[^;]*", "", str(exc))  # validate picks the folder itself
            raise ConfigError(
                f"trial {record.number}: {reason}; rerun validate with the settings it was started "
                "with, or pass --retrain to start its full training over"
            ) from None


def validate_trials(
    study: optuna.Study,
    trials: Sequence[optuna.trial.FrozenTrial],
    settings: ValidateSettings,
    checkpoints: Path,
    say: Say = note,
) -> None:
    """Fully train and re-profile ``trials``, storing each result under the trial's ``full`` attr and the
    energy each training and measurement used under ``spent:validate:<run>:trial-<n>``."""
    settings = _with_search_implementation(study, settings, say)
    loaded: dict[DataConfig, LoadedData] = {}
    run = new_run_id()
    profile = settings.profile
    spec = MeterSpec(profile.backend, profile.power_w) if profile is not None else MeterSpec()
    for trial in trials:
        record = trial_record(study, trial)
        full = full_result(study, trial)
        epochs = settings.epochs or FULL_RECIPE.epochs
        done = (
            full.get("epochs") == epochs
            and full.get("top1") is not None
            and len(full.get("top1_seeds") or [full["top1"]]) >= settings.full_seeds
        )
        if done and not settings.retrain:
            say(
                f"trial {record.number}: already validated with {epochs} epochs "
                f"(top-1 {full['top1']:.2f} %); pass --retrain to train again"
            )
            continue
        data_config = data_config_for(record, settings.data)
        if data_config not in loaded:
            loaded[data_config] = load_data(data_config)
        key = spent_key("validate", f"{run}:trial-{record.number}")
        ledger = Ledger(spec, lambda phases, key=key: study.set_user_attr(key, phases))
        full = _full_result(record, loaded[data_config], settings, checkpoints / f"trial-{record.number}", say, ledger)
        store_full_result(study, trial, full)
        top1 = "failed: " + full["status"] if full["top1"] is None else f"{full['top1']:.2f} %"
        say(f"trial {record.number}: full top-1 {top1} (proxy {_percent(record.top1)})")


def _with_search_implementation(study: optuna.Study, settings: ValidateSettings, say: Say) -> ValidateSettings:
    impl, layout = search_implementation(study)
    if not settings.search_impl or impl is None:
        return settings
    layout = layout or layout_of("nchw" if impl == "compile" else impl)
    say(f"implementation: {impl}, training layout {layout}, as the search ran (--impl to choose another)")
    profile = settings.profile and dataclasses.replace(settings.profile, impl=impl)
    return dataclasses.replace(settings, profile=profile, train={**settings.train, "layout": layout})


def _percent(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f} %"


def validate_study(
    study: optuna.Study, settings: ValidateSettings, checkpoints: Path | None = None, say: Say = note
) -> ValidationReport:
    """Select, fully train, re-profile and store; then compare proxy and full rankings."""
    trials = select_trials(study, settings.top, settings.trials, settings.spread)
    root = Path(settings.checkpoint_root or checkpoints or Path("studies") / "checkpoints" / study.study_name)
    say(f"validating {len(trials)} trial(s) of study {study.study_name!r}: {', '.join(str(t.number) for t in trials)}")
    validate_trials(study, trials, settings, root, say)
    report = rank_agreement(validation_frame(reload(study), [t.number for t in trials]))
    fidelity_text = proxy_fidelity_note(study)
    if fidelity_text:
        report.sentence += f"\n{fidelity_text[0].upper()}{fidelity_text[1:]}."
    return report


__all__ = [
    "ValidateSettings",
    "ValidationReport",
    "agreement_sentence",
    "checkpoint_root",
    "data_config_for",
    "full_result",
    "kendall_tau",
    "noise_ceiling",
    "rank_agreement",
    "render_validation",
    "select_trials",
    "store_full_result",
    "validate_study",
    "validate_trials",
    "validation_frame",
]
