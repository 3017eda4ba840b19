"""A search replayed against a table of measured points: the loop of ``e2gcsearch run`` without training.

Each point of the space was measured once (EPF, top-1 after every epoch, seconds per epoch; see
``benchmarks/search_replay.py``). :func:`replay` then runs the real pieces of a search — the sampler
(:func:`.study.create_sampler`), the baselines and the energy model's warm start queued first, the
new-point budget (:mod:`.budget`), repeats answered from the study and the early-stopping rule
(:mod:`.early_stop`) — with each trial's objectives looked up in the table, so a sampler's progress
can be judged against the exhaustive front over many seeds in seconds.

Objectives are EPF at one batch size (minimised) and top-1 (maximised). The hypervolume is taken
in the exhaustive table's own normalisation: each objective scaled to [0, 1] between its best and
its worst value over the table, the reference point 10 % beyond the worst.

Example:
    >>> table = MeasuredTable.read("benchmarks/data/search_space_digits.csv")      # doctest: +SKIP
    >>> replay(table, "tpe", seed=0, trials=8).hypervolume_ratio                   # doctest: +SKIP
    0.97
"""

from __future__ import annotations

import csv
import dataclasses
import functools
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import optuna
import pandas as pd

from ..config import ArchConfig
from ..energy_model import EpfDataset, EpfMeasurement, calibration_configs, fit_device_profile, warm_start_configs
from ..fidelity import pareto_layers
from ..metrics import Metric
from ..report.dominance import front_status
from ..report.front import HV_MARGIN, hypervolume
from ..stats import Summary, accuracy_interval
from ..store import record
from .budget import NewPoints
from .early_stop import known_losses, rule_for, top1_margin
from .halving import RungScore, halving_rule
from .space import SearchSpace
from .study import create_sampler, enqueue_baselines, sampler_seed
from .twins import measured_twin, repeat
from .warm_start import enqueue_warm_start


@dataclasses.dataclass(frozen=True)
class MeasuredPoint:
    """One point of the space as measured once: EPF per batch size (mJ/frame), top-1 (%) and
    seconds after each epoch."""

    arch_config: ArchConfig
    epf_mj: dict[int, float]
    top1_curve: tuple[float, ...]
    epoch_s: tuple[float, ...]
    val_size: int
    epf_std_mj: dict[int, float] = dataclasses.field(default_factory=dict)
    repeats: int = 3  # measurement windows behind each EPF figure
    truth_top1: float | None = None  # full-training top-1 (%) where measured: what the search is judged by
    scores: dict[str, tuple[float, float]] = dataclasses.field(default_factory=dict)  # name: (value, seconds)

    def top1(self, truth: bool = False) -> float:
        """The final proxy top-1, or the full-training top-1 with ``truth``."""
        if truth and self.truth_top1 is None:
            raise ValueError(f"{self.arch_config.label()} has no full-training top-1 in the table")
        return self.truth_top1 if truth else self.top1_curve[-1]


@dataclasses.dataclass(frozen=True)
class MeasuredTable:
    """Every point of ``space`` measured, with the resolution and batch size of the EPF objective."""

    space: SearchSpace
    points: tuple[MeasuredPoint, ...]
    resolution: int
    batch_size: int = 16
    measured: tuple[MeasuredPoint, ...] = ()  # every row measured (the calibration may lie outside the space)

    @classmethod
    def read(
        cls,
        path: str | Path,
        num_classes: int = 10,
        resolution: int = 48,
        batch_size: int = 16,
        modules: Sequence[str] | None = None,
    ) -> MeasuredTable:
        """Read a table written by ``benchmarks/search_replay.py measure`` (lines starting with # are notes;
        ``score_<name>`` and ``score_<name>_s`` columns, where present, are a training-free score and its
        seconds), keeping the rows of ``modules`` (default: all)."""
        with Path(path).open() as handle:
            rows = list(csv.DictReader(line for line in handle if not line.startswith("#")))
        points = []
        for row in rows:
            family = "group_size" if row["module"] == "E2GC" else "groups"
            arch_config = ArchConfig(
                row["arch"],
                width=float(row["width"]),
                num_classes=num_classes,
                module="FLGC" if row["module"] == "FLGC" else None,
                **{family: int(row["value"])},
            )
            epochs = sorted(int(key[6:]) for key in row if key.startswith("top1_e"))
            points.append(
                MeasuredPoint(
                    arch_config,
                    {
                        int(key[len("epf_mj_b") :]): float(value)
                        for key, value in row.items()
                        if key.startswith("epf_mj_b") and value
                    },
                    tuple(float(row[f"top1_e{e}"]) for e in epochs),
                    tuple(float(row[f"epoch_s_e{e}"]) for e in epochs),
                    int(row["val_size"]),
                    {
                        int(key[len("epf_std_mj_b") :]): float(value)
                        for key, value in row.items()
                        if key.startswith("epf_std_mj_b") and value
                    },
                    int(row.get("epf_repeats") or 3),
                    scores={
                        key[len("score_") :]: (float(value), float(row[f"{key}_s"]))
                        for key, value in row.items()
                        if key.startswith("score_") and not key.endswith("_s") and value
                    },
                )
            )
        kept = [p for p in points if modules is None or p.arch_config.module in modules]
        return dataclasses.replace(cls.of(kept, resolution, batch_size), measured=tuple(points))

    @classmethod
    def of(cls, points: Sequence[MeasuredPoint], resolution: int, batch_size: int = 16) -> MeasuredTable:
        """The table of ``points``, over the smallest network-level space that holds them all."""
        configs = [p.arch_config for p in points]
        space = SearchSpace(
            archs=tuple(dict.fromkeys(c.arch for c in configs)),
            modules=tuple(dict.fromkeys(c.module for c in configs)),
            group_sizes=tuple(sorted({c.group_size for c in configs if c.group_size})) or (1,),
            groups=tuple(sorted({c.groups for c in configs if c.groups})) or (2,),
            widths=tuple(sorted({c.width for c in configs})),
        )
        if space.size != len(points):
            raise ValueError(
                f"the table holds {len(points)} points, but the space they span has {space.size}; "
                "measure every point of the space"
            )
        return cls(space, tuple(points), resolution, batch_size)

    def lookup(self, arch_config: ArchConfig) -> MeasuredPoint:
        return next(p for p in self.points if p.arch_config == arch_config)

    @property
    def objectives(self) -> tuple[Metric, Metric]:
        return Metric.of("epf", self.batch_size), Metric.of("top1")

    @property
    def has_truth(self) -> bool:
        return all(p.truth_top1 is not None for p in self.points)

    def losses(self, points: Sequence[MeasuredPoint], truth: bool = False) -> np.ndarray:
        """(n, 2) EPF and -top-1 (proxy, or full training with ``truth``), normalised as in the module docstring."""
        every = np.array([[p.epf_mj[self.batch_size], -p.top1(truth)] for p in self.points])
        low, high = every.min(axis=0), every.max(axis=0)
        span = np.where(high > low, high - low, 1.0)
        chosen = np.array([[p.epf_mj[self.batch_size], -p.top1(truth)] for p in points]).reshape(-1, 2)
        return (chosen - low) / (span * (1 + HV_MARGIN))

    @functools.cached_property
    def warm_start(self) -> list[ArchConfig]:
        """The energy model's 3 predicted best points, the model fitted to the table's EPF of its own
        calibration networks (the sweep ``--warm-start model`` measures; those the table holds)."""
        num_classes = self.points[0].arch_config.num_classes
        measured = {p.arch_config: p for p in self.measured or self.points}
        sweep = [
            EpfMeasurement(c, self.resolution, dict(measured[c].epf_mj))
            for c in calibration_configs(self.space, num_classes)
            if c in measured
        ]
        profile = fit_device_profile(EpfDataset("table", True, {}, sweep, source="replay table"))
        return warm_start_configs(profile, self.space, num_classes, k=3, resolution=self.resolution)

    def foresight_saving(self, beyond_noise: bool = True) -> float:
        """The share of the whole grid's training time a stopping rule with perfect foresight saves: every
        point that some point with lower or equal EPF beats on final top-1 (by more than the noise margin
        the rule adds, with ``beyond_noise``) stopped after its first epoch. A rule that sees only the
        curves so far cannot save more on this table."""
        margin = top1_margin(self.points[0].val_size, None) if beyond_noise else (lambda top1: 0.0)
        total = saved = 0.0
        for point in self.points:
            epf, final = point.epf_mj[self.batch_size], point.top1_curve[-1]
            total += sum(point.epoch_s)
            if any(
                other.epf_mj[self.batch_size] <= epf and other.top1_curve[-1] > final + margin(final)
                for other in self.points
                if other is not point
            ):
                saved += sum(point.epoch_s[1:])
        return saved / total if total else 0.0

    def largest_gains(self) -> list[float]:
        """The largest top-1 gain from after each epoch (1 .. last - 1) to the end over the table's curves:
        what the stopping rule adds to a trial's top-1 once every point has completed."""
        return [
            max(p.top1_curve[-1] - p.top1_curve[epoch - 1] for p in self.points)
            for epoch in range(1, len(self.points[0].top1_curve))
        ]

    def hypervolume(self, points: Sequence[MeasuredPoint], truth: bool = False) -> float:
        return hypervolume(self.losses(points, truth), np.ones(2)) if points else 0.0

    def judged_by_truth(self, points: Sequence[MeasuredPoint]) -> float:
        """The hypervolume, judged by full-training top-1, of the front a search over ``points`` shows (its
        proxy front) ÷ the exhaustive full-training front's; NaN when the table has no full training."""
        if not self.has_truth:
            return math.nan
        shown = [
            p
            for p, layer in zip(
                points, pareto_layers([p.epf_mj[self.batch_size] for p in points], [p.top1() for p in points])
            )
            if layer == 0
        ]
        return self.hypervolume(shown, truth=True) / self.hypervolume(self.points, truth=True)

    def front_status(self, points: Sequence[MeasuredPoint]) -> dict[ArchConfig, str]:
        """Each point's status among ``points`` (front, tied or dominated; see report.dominance), with
        the EPF's t interval over its windows and top-1's Wilson interval."""
        epf, top1 = self.objectives
        rows = []
        for p in points:
            value = p.epf_mj[self.batch_size]
            half = Summary(p.repeats, value, p.epf_std_mj.get(self.batch_size, 0.0)).half_width()
            interval = accuracy_interval([p.top1_curve[-1]], p.val_size)
            rows.append(
                {
                    "feasible": True,
                    epf.name: value,
                    f"{epf.name}_low": value - half,
                    f"{epf.name}_high": value + half,
                    top1.name: interval.mean,
                    f"{top1.name}_low": interval.low,
                    f"{top1.name}_high": interval.high,
                }
            )
        return dict(zip([p.arch_config for p in points], front_status(pd.DataFrame(rows), self.objectives)))


@dataclasses.dataclass(frozen=True)
class Replay:
    """A replayed search: the new points in the order they were measured, which of them completed
    (the others were stopped early), the training seconds spent, and the repeats answered from the study."""

    measured: tuple[ArchConfig, ...]
    completed: tuple[ArchConfig, ...]
    train_s: float
    repeats: int
    hypervolume_ratio: float
    truth_ratio: float = math.nan  # the shown front judged by full training (MeasuredTable.judged_by_truth)


def replay(
    table: MeasuredTable,
    sampler: str,
    seed: int,
    trials: int,
    warm_start: bool = False,
    early_stop: str = "asha",
    baselines: bool = True,
    storage: str | optuna.storages.BaseStorage | None = None,
    rung0_score: str | None = None,
) -> Replay:
    """Replay ``e2gcsearch run --sampler SAMPLER --seed SEED --trials TRIALS --early-stop EARLY_STOP
    --rung0-score RUNG0_SCORE`` on ``table``, with ``--warm-start model`` when ``warm_start`` (the CLI's
    default, auto) and ``--warm-start none`` otherwise. A rung-0 score is looked up in the points' ``scores``
    and its seconds count as training seconds. With ``storage`` (an Optuna storage URL) the replay joins the
    study ``replay`` there, as a second worker or a resumed run would; the result counts the trials added
    since it joined."""
    if rung0_score is not None and any(rung0_score not in p.scores for p in table.points):
        raise ValueError(f"the table does not hold every point's {rung0_score} score; replay without a rung 0")
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    space, num_classes = table.space, table.points[0].arch_config.num_classes
    study = optuna.create_study(
        directions=["minimize", "maximize"],
        sampler=create_sampler(sampler, seed, space, trials),
        storage=storage,
        study_name="replay" if storage else None,
        load_if_exists=storage is not None,
    )
    before = {t.number for t in study.get_trials(deepcopy=False)}
    if baselines:
        enqueue_baselines(study, space, num_classes)
    if warm_start:
        _enqueue_warm_start(study, table)
    budget = NewPoints(space, trials, num_classes, sampler_seed(seed, len(study.trials)), study)  # as run does
    spent = {"train_s": 0.0}
    study.optimize(
        lambda trial: _objective(trial, table, early_stop, rung0_score, spent), n_trials=None, callbacks=[budget]
    )
    new = [
        t
        for t in study.get_trials(deepcopy=False)
        if record.DUPLICATE_OF not in t.user_attrs and t.number not in before and record.ARCH_CONFIG in t.user_attrs
    ]
    configs = [ArchConfig.from_dict(t.user_attrs[record.ARCH_CONFIG]) for t in new]
    completed = [c for c, t in zip(configs, new) if t.state == optuna.trial.TrialState.COMPLETE]
    points = [table.lookup(c) for c in completed]
    found = table.hypervolume(points)
    return Replay(
        tuple(configs),
        tuple(completed),
        spent["train_s"],
        budget.repeats,
        found / table.hypervolume(table.points),
        table.judged_by_truth(points),
    )


def _objective(
    trial: Any, table: MeasuredTable, early_stop: str, rung0_score: str | None, spent: dict[str, float]
) -> list[float]:
    arch_config = table.space.sample(trial, table.points[0].arch_config.num_classes)
    twin = measured_twin(trial, arch_config)
    if twin is not None:
        return repeat(trial, twin)
    point = table.lookup(arch_config)
    epf = point.epf_mj[table.batch_size]
    trial.set_user_attr(record.ARCH_CONFIG, arch_config.to_dict())
    epochs = len(point.top1_curve)
    score = None
    if rung0_score is not None:
        value, seconds = point.scores[rung0_score]

        def computed() -> float:  # looked up, not computed: its seconds are charged as training seconds
            spent["train_s"] += seconds
            return value

        score = RungScore(rung0_score, computed)
    rule = {
        "rule": lambda: rule_for(trial.study, table.objectives, epochs, point.val_size),
        "asha": lambda: halving_rule(trial, table.objectives, epochs, score=score),
        "off": lambda: None,
    }[early_stop]()
    known = known_losses(table.objectives, [epf, 0.0])
    if early_stop == "asha":
        _stop_if(trial, rule.before_training(known), [])
    for epoch, top1 in enumerate(point.top1_curve, start=1):
        spent["train_s"] += point.epoch_s[epoch - 1]
        if rule is not None:
            _stop_if(trial, rule.verdict(epoch, top1, known), list(point.top1_curve[:epoch]))
    trial.set_user_attr(record.TOP1_CURVE, list(point.top1_curve))
    return [epf, point.top1_curve[-1]]


def _stop_if(trial: Any, reason: str | None, curve: list[float]) -> None:
    """Prune ``trial`` with ``reason`` (and its curve so far), if there is one."""
    if reason:
        for key, value in record.user_attrs(top1_curve=curve, early_stop=reason).items():
            trial.set_user_attr(key, value)
        raise optuna.TrialPruned(reason)


def _enqueue_warm_start(study: optuna.Study, table: MeasuredTable) -> None:
    enqueue_warm_start(study, table.space, table.warm_start)


def summary(values: Sequence[float]) -> tuple[float, float]:
    """Mean and sample standard deviation (0 for one value)."""
    mean = sum(values) / len(values)
    return mean, math.sqrt(sum((v - mean) ** 2 for v in values) / (len(values) - 1)) if len(values) > 1 else 0.0
