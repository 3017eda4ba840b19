"""Successive halving with Pareto promotion (search/halving.py): the rungs, the rule's decisions, and the
rule in replayed searches that share or resume a study on SQLite and journal storage."""

from __future__ import annotations

import dataclasses
import itertools
import multiprocessing

import optuna
import pytest
from optuna.trial import TrialState
from test_search_budget import FOUR_POINTS
from test_search_run import TINY_DATA, tiny_config

from e2gcsearch import ArchConfig
from e2gcsearch.data import load_data
from e2gcsearch.search.halving import HalvingRule, RungScore, rungs, study_entries
from e2gcsearch.search.replay import MeasuredPoint, MeasuredTable, replay
from e2gcsearch.search.trial import TrialRunner
from e2gcsearch.search.twins import repeat
from e2gcsearch.store import record


def test_rungs_divide_the_epochs_by_eta():
    assert rungs(4, 2) == (1, 2) and rungs(8, 2) == (1, 2, 4) and rungs(9, 3) == (1, 3)
    assert rungs(1, 2) == () and rungs(3, 4) == ()


def test_the_rule_keeps_the_best_share_by_pareto_position_and_writes_every_rung():
    written = []
    others = [((float(epf),), top1) for epf, top1 in [(1, 40.0), (2, 50.0), (3, 60.0), (4, 70.0), (5, 80.0)]]
    rule = HalvingRule(4, lambda epoch: others, written.append, eta=2)
    assert rule.verdict(1, 45.0, (6.0,)).startswith("stopped at rung 1 (epoch 1/4): Pareto position 6 of 6")
    assert written[-1] == {1: {"known": [6.0], "top1": 45.0, "position": 6, "of": 6, "promoted": False}}
    # Cheaper than all of them: on the front, at an end of it (infinite crowding): kept.
    rule = HalvingRule(4, lambda epoch: others, written.append, eta=2)
    assert rule.verdict(1, 10.0, (0.5,)) is None and written[-1][1]["promoted"] is True
    assert rule.verdict(3, 10.0, (0.5,)) is None  # not a rung: nothing asked, nothing written
    assert len(written) == 2


def test_nothing_is_stopped_while_the_rung_holds_few_trials():
    rule = HalvingRule(4, lambda epoch: [((1.0,), 90.0)] * 3, eta=2)  # three others, fewer than four
    assert rule.verdict(1, 1.0, (9.0,)) is None and rule.passed[1]["promoted"] is True


def table() -> MeasuredTable:
    """Twelve E2GC points; epoch-1 top-1 already orders them as the final one does."""
    points = []
    for group_size, width in itertools.product((1, 2, 4, 8, 16, 32), (0.25, 0.5)):
        final = 60.0 + 20 * width - group_size / 4
        points.append(
            MeasuredPoint(
                ArchConfig("mobilenet_v1", group_size=group_size, width=width, num_classes=10),
                {16: 10 * width + group_size / 8},
                (final - 20, final - 5, final - 2, final),
                (1.0, 1.0, 1.0, 1.0),
                val_size=400,
                epf_std_mj={16: 0.01},
                truth_top1=final + 1,
            )
        )
    return MeasuredTable.of(points, resolution=48)


def test_a_replay_with_halving_stops_trials_at_rungs_and_says_why():
    measured = table()
    off = replay(measured, "random", seed=0, trials=12, early_stop="off")
    asha = replay(measured, "random", seed=0, trials=12, early_stop="asha")
    assert len(set(asha.measured)) == 12 and len(asha.completed) < 12
    assert asha.train_s < off.train_s == 48.0
    assert off.hypervolume_ratio == pytest.approx(1.0) and off.truth_ratio == pytest.approx(1.0)


def _worker(url: str, seed: int) -> None:
    replay(table(), "random", seed=seed, trials=6, early_stop="asha", storage=url)


@pytest.mark.parametrize("kind", ["sqlite", "journal"])
def test_workers_and_resumed_runs_share_the_rungs_each_trial_deciding_once(tmp_path, kind):
    url = f"sqlite:///{tmp_path / 'study.db'}" if kind == "sqlite" else str(tmp_path / "study.log")
    storage = (
        url if kind == "sqlite" else optuna.storages.JournalStorage(optuna.storages.journal.JournalFileBackend(url))
    )
    # A first run, then two more resuming it: at once on a journal; one after the other on SQLite, which
    # 'run' refuses to share between workers (two processes there can pop one queued trial twice).
    _worker(url if kind == "sqlite" else storage, 0)
    context = multiprocessing.get_context("spawn")
    workers = [context.Process(target=_worker_by_kind, args=(kind, url, seed)) for seed in (1, 2)]
    for worker in workers:
        worker.start()
        if kind == "sqlite":
            worker.join(120)
    for worker in workers:
        worker.join(120)
        assert worker.exitcode == 0
    study = optuna.load_study(study_name="replay", storage=storage)
    trials = [
        t for t in study.get_trials() if record.ARCH_CONFIG in t.user_attrs and record.DUPLICATE_OF not in t.user_attrs
    ]
    assert not [t for t in study.get_trials() if t.state == TrialState.RUNNING]
    decided = [t for t in trials if record.HALVING in t.user_attrs]
    assert decided and any(t.state == TrialState.PRUNED for t in decided)
    for trial in decided:
        passed = trial.user_attrs[record.HALVING]
        assert set(passed) <= {"1", "2"}  # one entry per rung, written by the one process that ran the trial
        if trial.state == TrialState.PRUNED:
            last = passed[max(passed, key=int)]
            assert last["promoted"] is False and trial.user_attrs[record.EARLY_STOP].startswith("stopped at rung")
        else:
            assert all(entry["promoted"] for entry in passed.values())
    # A later trial's rung counts the earlier runs' entries (the resumed study goes on with its rungs).
    later = max(decided, key=lambda t: t.number)
    entries = study_entries(study, table().objectives, later.number)(1)
    assert later.user_attrs[record.HALVING]["1"]["of"] <= len(entries) + 1 and len(entries) >= 6


def test_a_repeat_is_marked_before_it_carries_its_twins_rung_entry():
    """A repeat copies its twin's attrs one write at a time; a worker deciding a rung in between must
    count the twin's entry once, never the repeat's copy as another point."""
    study = optuna.create_study(directions=["minimize", "maximize"])
    arch_config = ArchConfig("mobilenet_v1", group_size=8, width=0.25, num_classes=10)
    twin = study.ask()
    for key, value in record.user_attrs(arch_config=arch_config, top1_curve=[50.0, 60.0], top1=60.0).items():
        twin.set_user_attr(key, value)
    twin.set_user_attr(record.HALVING, {"1": {"known": [5.0], "top1": 50.0, "position": 1, "of": 1, "promoted": True}})
    study.tell(twin, [5.0, 60.0])
    deciding, repeating = study.ask(), study.ask()  # another worker at its rung; a repeat of the twin
    entries = study_entries(study, table().objectives, deciding.number)
    counted, write = [], repeating.set_user_attr

    def watched(key, value):
        write(key, value)
        counted.append(len(entries(1)))

    repeating.set_user_attr = watched
    repeat(repeating, study.get_trials()[twin.number])
    assert repeating.user_attrs[record.DUPLICATE_OF] == twin.number and record.HALVING in repeating.user_attrs
    assert set(counted) == {1}  # the twin's own entry, after every single write


def _worker_by_kind(kind: str, url: str, seed: int) -> None:
    if kind == "journal":
        url = optuna.storages.JournalStorage(optuna.storages.journal.JournalFileBackend(url))
    _worker(url, seed)


def _run_after_four_planted(tmp_path, halving=None, **changes):
    """One real trial of the tiny data (MobileNet-V1 G=8 w=0.25, 2 epochs) after four planted trials that cost
    nothing and reached 100 % after one epoch (with ``halving`` as each one's rung entries); the trial."""
    config = tiny_config(tmp_path)
    settings = dataclasses.replace(
        config.settings,
        space=FOUR_POINTS,
        train=dataclasses.replace(config.settings.train, epochs=2, threads=1),
        early_stop="asha",
        **changes,
    )
    study = optuna.create_study(
        directions=["minimize", "maximize"],
        sampler=optuna.samplers.PartialFixedSampler(
            FOUR_POINTS.params_of(ArchConfig("mobilenet_v1", group_size=8, width=0.25)),
            optuna.samplers.RandomSampler(seed=0),
        ),
    )
    for group_size in (1, 2, 4, 8):
        arch_config = ArchConfig("mobilenet_v1", group_size=group_size, width=0.5, num_classes=10)
        attrs = record.user_attrs(arch_config=arch_config, top1_curve=[100.0, 100.0], top1=100.0)
        if halving is not None:
            attrs[record.HALVING] = halving
        study.add_trial(optuna.trial.create_trial(params={}, distributions={}, values=[1e-6, 100.0], user_attrs=attrs))
    study.optimize(TrialRunner(settings, load_data(TINY_DATA, progress=False)), n_trials=1)
    return study.trials[-1]


def test_a_real_trial_is_stopped_at_its_rung_with_its_entry_and_reason(tmp_path):
    stopped = _run_after_four_planted(tmp_path)
    assert stopped.state == TrialState.PRUNED
    assert stopped.user_attrs[record.EARLY_STOP].startswith("stopped at rung 1 (epoch 1/2): Pareto position 5 of 5")
    entry = stopped.user_attrs[record.HALVING]["1"]
    assert entry["promoted"] is False and entry["of"] == 5 and len(stopped.user_attrs[record.TOP1_CURVE]) == 1


def test_rung_0_ranks_by_the_score_before_training_and_writes_its_entry():
    written = []
    others = [((float(epf),), score) for epf, score in [(1, 40.0), (2, 50.0), (3, 60.0), (4, 70.0), (5, 80.0)]]
    computed = []

    def score(value: float) -> RungScore:
        return RungScore("grad_norm", lambda: computed.append(value) or value)

    rule = HalvingRule(4, lambda epoch: others if epoch == 0 else [], written.append, eta=2, score=score(45.0))
    reason = rule.before_training((6.0,))  # dearer than all five and scored below four of them
    assert reason.startswith("stopped at rung 0 (before training): Pareto position 6 of 6")
    assert "grad_norm at initialisation" in reason and computed == [45.0]
    assert written[-1] == {
        0: {"known": [6.0], "score": 45.0, "score_name": "grad_norm", "position": 6, "of": 6, "promoted": False}
    }
    kept = HalvingRule(4, lambda epoch: others, written.append, eta=2, score=score(90.0))
    assert kept.before_training((6.0,)) is None and written[-1][0]["promoted"] is True  # the best score
    few = HalvingRule(4, lambda epoch: others[:3], eta=2, score=score(0.0))
    assert few.before_training((9.0,)) is None and few.passed[0]["promoted"] is True  # three others: too few
    unscored = HalvingRule(4, lambda epoch: others, written.append, eta=2)
    assert unscored.before_training((9.0,)) is None and len(computed) == 3 and not unscored.passed


def test_rung_0_counts_only_the_trials_scored_by_the_same_score():
    study = optuna.create_study(directions=["minimize", "maximize"])
    arch_config = ArchConfig("mobilenet_v1", group_size=1, width=0.5, num_classes=10)
    for number, name in enumerate(("grad_norm", "naswot", None)):
        attrs = record.user_attrs(arch_config=arch_config, top1_curve=[50.0, 60.0], top1=60.0)
        if name is not None:
            attrs[record.HALVING] = {"0": {"known": [1.0], "score": float(number), "score_name": name}}
        study.add_trial(optuna.trial.create_trial(params={}, distributions={}, values=[1.0, 60.0], user_attrs=attrs))
    entries = study_entries(study, table().objectives, own=-1, score_name="grad_norm")
    assert entries(0) == [((1.0,), 0.0)]  # the naswot entry and the trial of an older study are not counted
    assert len(entries(1)) == 3  # at the epoch rungs every completed curve counts, as before


def test_a_replay_with_rung_0_stops_trials_before_training_and_charges_the_scores():
    scored = dataclasses.replace(
        table(),
        points=tuple(dataclasses.replace(p, scores={"grad_norm": (p.top1(), 0.5)}) for p in table().points),
    )
    asha = replay(scored, "random", seed=0, trials=12, early_stop="asha")
    first = replay(scored, "random", seed=0, trials=12, early_stop="asha", rung0_score="grad_norm")
    assert len(set(first.measured)) == 12 and len(first.completed) < 12
    assert first.train_s < asha.train_s
    dear = dataclasses.replace(
        scored, points=tuple(dataclasses.replace(p, scores={"grad_norm": (1.0, 100.0)}) for p in scored.points)
    )
    assert replay(dear, "random", seed=0, trials=12, rung0_score="grad_norm").train_s >= 12 * 100.0
    with pytest.raises(ValueError, match="naswot score"):
        replay(scored, "random", seed=0, trials=4, rung0_score="naswot")


def test_a_real_trial_is_stopped_at_rung_0_without_training(tmp_path):
    planted = {"0": {"known": [1e-6], "score": 1e12, "score_name": "grad_norm", "promoted": True}}  # far above
    stopped = _run_after_four_planted(tmp_path, planted, rung0_score="grad_norm")
    assert stopped.state == TrialState.PRUNED
    reason = stopped.user_attrs[record.EARLY_STOP]
    assert reason.startswith("stopped at rung 0 (before training): Pareto position 5 of 5")
    entry = stopped.user_attrs[record.HALVING]["0"]
    assert entry["promoted"] is False and entry["score_name"] == "grad_norm" and 0 < entry["score"] < 1e12
    assert set(stopped.user_attrs[record.HALVING]) == {"0"}  # never reached an epoch
    assert stopped.user_attrs[record.TOP1_CURVE] == [] and "loss_curve" not in stopped.user_attrs
