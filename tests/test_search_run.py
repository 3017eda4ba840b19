"""End-to-end searches on a tiny setting: real Optuna, real SQLite/journal files, real training and
profiling (estimate backend) on the embedded digits."""

from __future__ import annotations

import dataclasses
import json
import os
import signal
import subprocess
import sys
import time

import optuna
import pytest
from optuna.trial import TrialState

from e2gcsearch import ArchConfig, ConfigError
from e2gcsearch.data import DataConfig
from e2gcsearch.profiling import ProfileConfig
from e2gcsearch.search.objectives import parse_constraint, parse_objectives
from e2gcsearch.search.run import SearchConfig, prepare, run_search
from e2gcsearch.search.space import SearchSpace
from e2gcsearch.search.trial import TrialSettings
from e2gcsearch.store import record
from e2gcsearch.store.storage import get_storage
from e2gcsearch.train import TrainConfig

TINY_DATA = DataConfig(name="digits", train_per_class=12, val_per_class=6, resolution=32)
TINY_SPACE = SearchSpace(modules=("E2GC", "FgGC"), group_sizes=(1, 8), groups=(2, 16), widths=(0.25,))
REQUIRED_ATTRS = {
    "arch_config",
    "params",
    "macs",
    "resolution",
    "epf",
    "energy_backend",
    "energy_is_estimate",
    "latency_ms",
    "fingerprint",
    "top1",
    "loss_curve",
    "train_status",
    "data",
    "wall_s",
    "infeasible",
}


def tiny_config(tmp_path, **changes) -> SearchConfig:
    settings = TrialSettings(
        objectives=parse_objectives("epf@4,top1"),
        constraints=(),
        space=TINY_SPACE,
        profile=ProfileConfig(
            batch_sizes=(2, 4),
            resolution=32,
            backend="estimate",
            device="cpu",
            repeats=2,
            min_window_s=0.02,
            cache_dir=str(tmp_path / "profiles"),
        ),
        train=TrainConfig(epochs=1, batch_size=16, progress=False, device="cpu"),
    )
    settings = dataclasses.replace(settings, **changes.pop("settings", {}))
    base = SearchConfig(
        settings=settings,
        data=TINY_DATA,
        storage=f"sqlite:///{tmp_path}/study.db",
        study_name="tiny",
        trials=3,
        seed=1,
        progress=False,
    )
    return dataclasses.replace(base, **changes)


def states(study):
    return [t.state for t in study.get_trials(deepcopy=False)]


@pytest.mark.slow
@pytest.mark.parametrize("sampler", ["tpe", "nsga2", "random"])
def test_end_to_end_search(tmp_path, sampler):
    study = run_search(tiny_config(tmp_path, sampler=sampler))
    assert states(study) == [TrialState.COMPLETE] * len(study.trials)
    assert sum(record.DUPLICATE_OF not in t.user_attrs for t in study.trials) == 3  # three new points
    assert study.metric_names == ["epf@4", "top1"]
    assert [d.name for d in study.directions] == ["MINIMIZE", "MAXIMIZE"]
    assert study.best_trials
    baseline = [t for t in study.trials if record.BASELINE in t.user_attrs]
    assert len(baseline) == 1 and baseline[0].number == 0
    assert baseline[0].params == {"arch": "mobilenet_v1", "module": "E2GC", "log2_G": 0, "width": 0.25}
    for trial in study.trials:
        assert REQUIRED_ATTRS <= set(trial.user_attrs)
        rec = record.TrialRecord.from_trial(trial)
        assert rec.energy_backend == "estimate" and rec.energy_is_estimate is True
        assert set(rec.epf) == {2, 4} and rec.epf_mj(4) == pytest.approx(trial.values[0])
        assert 0.0 <= rec.top1 <= 100.0 and rec.top1 == trial.values[1]
        assert rec.data["dataset"] == "digits"


def test_resume_adds_trials_without_duplicate_baselines(tmp_path):
    config = tiny_config(tmp_path, trials=2, sampler="random")
    run_search(config)
    study = run_search(config)
    new = [t for t in study.trials if record.DUPLICATE_OF not in t.user_attrs]
    assert len(new) == 4 and set(states(study)) == {TrialState.COMPLETE}  # repeats are not charged
    assert sum(record.BASELINE in t.user_attrs for t in study.trials) == 1


def test_a_space_with_fewer_unmeasured_points_than_asked_is_measured_whole(tmp_path, capsys):
    two_points = SearchSpace(modules=("E2GC",), group_sizes=(1, 8), widths=(0.25,))
    config = tiny_config(tmp_path, trials=5, settings={"space": two_points})
    study = run_search(config)
    assert (
        "only 2 unmeasured point(s) remain in the space of 2; measuring them all instead of 5"
        in capsys.readouterr().err
    )
    measured = {
        t.user_attrs["arch_config"]["group_size"] for t in study.trials if record.DUPLICATE_OF not in t.user_attrs
    }
    assert measured == {1, 8} and set(states(study)) == {TrialState.COMPLETE}
    run_search(config)
    assert "every point of the space (2) is measured already; nothing to run" in capsys.readouterr().err


def test_resume_with_other_objectives_is_an_error(tmp_path):
    run_search(tiny_config(tmp_path, trials=1))
    other = tiny_config(tmp_path, settings={"objectives": parse_objectives("params,top1")})
    with pytest.raises(ConfigError, match="created for a different search"):
        prepare(other)


def test_failing_trial_is_recorded_and_the_study_continues(tmp_path):
    # A learning rate this large makes the proxy loss non-finite: a real failure, not an injected one.
    exploding = TrainConfig(epochs=1, batch_size=16, progress=False, device="cpu", lr=1e12)
    config = tiny_config(tmp_path, trials=2, settings={"train": exploding})
    study = run_search(config)
    assert states(study) == [TrialState.FAIL, TrialState.FAIL]
    for trial in study.trials:
        assert "non-finite loss" in trial.user_attrs[record.FAIL_REASON]


def test_constraint_on_cheap_metric_skips_training(tmp_path):
    from e2gcsearch.cost import network_cost

    smallest = ArchConfig("mobilenet_v1", group_size=1, width=0.25, num_classes=10)  # the queued baseline
    bound = network_cost(smallest, 32).params
    constraint = parse_constraint(f"params<={bound}")  # every other MobileNet-V1 here has more
    config = tiny_config(tmp_path, trials=2, settings={"constraints": (constraint,)})
    study = run_search(config)
    new = [t for t in study.trials if record.DUPLICATE_OF not in t.user_attrs]
    assert len(new) == 2 and all(t.state == TrialState.COMPLETE for t in new)
    baseline, other = new
    assert record.BASELINE in baseline.user_attrs and baseline.user_attrs["infeasible"] is False
    assert other.user_attrs["infeasible"] is True
    assert other.user_attrs["train_status"] == "skipped (infeasible)"
    assert other.user_attrs["violations"][0].startswith(f"{constraint.text} (got")
    assert other.constraints[constraint.text] > 0
    assert [t.number for t in study.best_trials] == [baseline.number]  # infeasible trials never reach the front


@pytest.mark.slow
def test_two_workers_share_a_journal_storage(tmp_path):
    config = tiny_config(tmp_path, storage=str(tmp_path / "study.log"), workers=2, trials=4, sampler="random")
    study = run_search(config)
    trials = study.get_trials(deepcopy=False)
    assert sum(record.DUPLICATE_OF not in t.user_attrs for t in trials) == 4  # the queued baseline is one of the four
    assert sorted(t.number for t in trials) == list(range(len(trials)))
    # a trial that drew the point the other worker was measuring left it to that worker (not charged)
    assert all(
        t.state == TrialState.COMPLETE or (t.state == TrialState.PRUNED and record.LEFT_TO in t.user_attrs)
        for t in trials
    ), [(t.number, t.state, t.user_attrs.get(record.FAIL_REASON)) for t in trials]
    # No point is measured twice: of two trials that record one point in the same instant, the later
    # number sees the other once both records have settled, and leaves it.
    by_point: dict[str, list] = {}
    for t in trials:
        if record.DUPLICATE_OF not in t.user_attrs:
            by_point.setdefault(json.dumps(t.user_attrs[record.ARCH_CONFIG], sort_keys=True), []).append(t)
    assert all(len(group) == 1 for group in by_point.values()), [g for g in by_point.values() if len(g) > 1]
    assert sum(record.BASELINE in t.user_attrs for t in trials) == 1


def test_sqlite_refuses_several_workers(tmp_path):
    with pytest.raises(ConfigError, match="journal file"):
        prepare(tiny_config(tmp_path, workers=2))


def _wait_for(predicate, timeout_s: float) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.5)
    return False


@pytest.mark.slow
def test_sigkill_mid_trial_leaves_a_resumable_storage(tmp_path):
    url = f"sqlite:///{tmp_path}/killed.db"
    argv = [
        sys.executable,
        "-m",
        "e2gcsearch",
        "run",
        "--objective",
        "epf@4,top1",
        "--storage",
        url,
        "--study",
        "killed",
        "--trials",
        "3",
        "--data",
        "digits",
        "--train-per-class",
        "12",
        "--val-per-class",
        "6",
        "--resolution",
        "32",
        "--epochs",
        "20",
        "--batch-sizes",
        "2,4",
        "--repeats",
        "1",
        "--backend",
        "estimate",
        "--widths",
        "0.25",
        "--sampler",
        "random",
    ]
    env = {**os.environ, "E2GCSEARCH_HEARTBEAT_S": "1"}
    victim = subprocess.Popen(argv, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    def running() -> bool:
        try:
            study = optuna.load_study(study_name="killed", storage=get_storage(url))
        except Exception:  # noqa: BLE001 - not created yet
            return False
        return any(t.state == TrialState.RUNNING for t in study.get_trials(deepcopy=False))

    try:
        assert _wait_for(running, 120), "the search never started a trial"
    finally:
        victim.send_signal(signal.SIGKILL)
        victim.wait()
    time.sleep(3)  # past the heartbeat's grace period (2 x 1 s)
    resumed = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=600)  # the same settings
    assert resumed.returncode == 0, resumed.stderr
    study = optuna.load_study(study_name="killed", storage=get_storage(url))
    trials = study.get_trials(deepcopy=False)
    assert trials[0].state == TrialState.FAIL  # the killed trial, failed at the next start, with the reason
    assert (
        trials[0].user_attrs[record.FAIL_REASON].startswith("worker lost: ")
    )  # killed before or after it tagged the trial
    assert sum(t.state == TrialState.COMPLETE for t in trials) >= 3
    assert not any(t.state == TrialState.RUNNING for t in trials)
