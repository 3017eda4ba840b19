"""Search efficiency: --trials N buys N new points, studies of the categorical encoding stay readable,
Pareto-aware early stopping, and the replay of a search against a measured table."""

from __future__ import annotations

import dataclasses
import itertools
import json

import numpy as np
import optuna
import pytest
from optuna.distributions import CategoricalDistribution
from optuna.trial import TrialState
from test_search_robust import CHEAP
from test_search_run import TINY_DATA, tiny_config

from e2gcsearch import ArchConfig, ConfigError
from e2gcsearch.cli import main
from e2gcsearch.data import load_data
from e2gcsearch.search.budget import REPEAT_STREAK, NewPoints
from e2gcsearch.search.early_stop import MIN_COMPLETE, Finished, StoppingRule
from e2gcsearch.search.replay import MeasuredPoint, MeasuredTable, replay
from e2gcsearch.search.run import prepare
from e2gcsearch.search.space import SearchSpace
from e2gcsearch.search.trial import TrialRunner
from e2gcsearch.store import record
from e2gcsearch.store.results import front_info

FOUR_POINTS = SearchSpace(modules=("E2GC",), group_sizes=(1, 2, 4, 8), widths=(0.25,))


# --- --trials N means N new points ---------------------------------------------------------------------


def search_fixed_to(tmp_path, space, point, trials):
    """A cheap search whose sampler (Optuna's own) proposes ``point`` every time, under a budget of
    ``trials`` new points; returns the study, the budget and the lines it said."""
    settings = dataclasses.replace(tiny_config(tmp_path, **{"settings": CHEAP}).settings, space=space)
    data = load_data(TINY_DATA, progress=False)
    sampler = optuna.samplers.PartialFixedSampler(space.params_of(point), optuna.samplers.RandomSampler(seed=0))
    study = optuna.create_study(directions=["minimize", "minimize"], sampler=sampler)
    lines = []
    budget = NewPoints(space, trials, data.num_classes, seed=0, study=study, say=lines.append)
    study.optimize(TrialRunner(settings, data), n_trials=40, catch=(Exception,), callbacks=[budget])
    return study, budget, lines


def test_a_sampler_forced_to_repeat_is_not_charged_and_new_points_are_drawn(tmp_path):
    # every proposal after the first repeats it
    first = ArchConfig("mobilenet_v1", group_size=2, width=0.25, num_classes=10)
    study, budget, lines = search_fixed_to(tmp_path, FOUR_POINTS, first, 3)

    trials = study.get_trials(deepcopy=False)
    new = [t for t in trials if record.DUPLICATE_OF not in t.user_attrs]
    repeats = [t for t in trials if record.DUPLICATE_OF in t.user_attrs]
    assert len(new) == 3 and budget.charged == 3  # the budget bought exactly three new points ...
    assert len({json.dumps(t.user_attrs["arch_config"], sort_keys=True) for t in new}) == 3
    assert len(repeats) == budget.repeats >= REPEAT_STREAK  # ... however often the sampler repeated itself
    for trial in repeats:  # the sampler was told the known result
        twin = study.trials[trial.user_attrs[record.DUPLICATE_OF]]
        assert trial.state == TrialState.COMPLETE and trial.values == twin.values
    assert sum(t.user_attrs.get(record.DRAWN, False) for t in new) == 2  # the others came from the unmeasured ones
    assert any("drawn from the 3 unmeasured points" in line for line in lines)
    # repeats carry no information of their own: `front --all` lists each point once
    assert sorted(front_info(study, include_dominated=True).frame["trial"]) == sorted(t.number for t in new)


def test_a_point_that_cannot_be_built_is_not_charged(tmp_path):
    space = SearchSpace(modules=("E2GC",), group_sizes=(3, 4), widths=(1.0, 0.5))  # G=3 at width 1.0 cannot be built
    bad = ArchConfig("mobilenet_v1", group_size=3, width=1.0, num_classes=10)
    study, budget, lines = search_fixed_to(tmp_path, space, bad, 5)
    assert budget.quota == 3  # the three buildable points

    trials = study.get_trials(deepcopy=False)
    failed = [t for t in trials if t.state == TrialState.FAIL]
    assert budget.charged == 3 and sum(t.state == TrialState.COMPLETE for t in trials) == 3
    assert len(failed) == REPEAT_STREAK * 3  # three failures in a row, then a point drawn from the buildable ones
    assert all("does not divide" in t.user_attrs[record.FAIL_REASON] for t in failed)
    assert any("measured or unbuildable points" in line for line in lines)


def test_failures_before_measuring_stop_the_search():
    from e2gcsearch.search.budget import GIVE_UP_FAILED

    space = SearchSpace(modules=("E2GC",), group_sizes=(1, 2), widths=(0.25,))
    study = optuna.create_study(directions=["minimize", "minimize"])
    lines = []
    budget = NewPoints(space, 2, 10, seed=0, study=study, say=lines.append)

    def broken(trial):  # fails before anything is measured, whatever the point
        space.sample(trial, 10)
        raise RuntimeError("the factory is broken")

    study.optimize(broken, n_trials=100, catch=(Exception,), callbacks=[budget])
    assert len(study.trials) == GIVE_UP_FAILED and budget.charged == 0
    assert "failed before measuring anything; stopping" in lines[-1]


def test_queued_baselines_keep_the_params_constraint():
    from e2gcsearch.cost import network_cost
    from e2gcsearch.search.objectives import cost_feasible, parse_constraint
    from e2gcsearch.search.study import enqueue_baselines

    space = SearchSpace(modules=("E2GC",), group_sizes=(1, 2), widths=(0.25, 0.5, 0.75))
    at = {w: ArchConfig("mobilenet_v1", group_size=1, width=w, num_classes=10) for w in space.widths}
    cap = network_cost(at[0.5], 48).params  # the baseline at 0.75 breaks it, at 0.5 keeps it
    study = optuna.create_study(directions=["minimize", "maximize"])
    lines = enqueue_baselines(study, space, 10, cost_feasible([parse_constraint(f"params<={cap}")], 48))
    assert lines == ["queued mobilenet_v1 G=1 (paper baseline) at width 0.5"]
    (queued,) = study.get_trials(states=(TrialState.WAITING,))
    assert space.to_config(queued.system_attrs["fixed_params"], 10) == at[0.5]
    lines = enqueue_baselines(
        optuna.create_study(directions=["minimize", "maximize"]),
        space,
        10,
        cost_feasible([parse_constraint("params<=1000")], 48),
    )
    assert len(lines) == 1 and "breaks the params/MACs constraints at every width" in lines[0]
    # a resume without the constraint does not add the baseline at another width
    assert enqueue_baselines(study, space, 10) == [] and len(study.get_trials(states=(TrialState.WAITING,))) == 1
    # a configuration that cannot be built is left to its trial, which names why
    assert cost_feasible([parse_constraint("params<=1000")], 48)(
        ArchConfig("mobilenet_v1", group_size=3, width=1.0, num_classes=10)
    )


def test_run_queues_the_baseline_that_keeps_the_constraint(tmp_path):
    from e2gcsearch.cost import network_cost
    from e2gcsearch.search.objectives import parse_constraint

    space = SearchSpace(modules=("E2GC",), group_sizes=(1, 2), widths=(0.25, 0.5))
    small = ArchConfig("mobilenet_v1", group_size=1, width=0.25, num_classes=10)
    cap = network_cost(small, 32).params
    study, _ = prepare(
        tiny_config(tmp_path, settings={"space": space, "constraints": (parse_constraint(f"params<={cap}"),)})
    )
    (queued,) = study.get_trials(states=(TrialState.WAITING,))
    assert space.to_config(queued.system_attrs["fixed_params"], 10) == small and record.BASELINE in queued.user_attrs


def test_a_space_with_no_point_within_the_params_constraint_is_refused_before_any_work(tmp_path):
    from e2gcsearch.search.objectives import parse_constraint
    from e2gcsearch.search.preflight import PreflightError

    config = tiny_config(tmp_path, settings={"constraints": (parse_constraint("params<=1000"),)})
    with pytest.raises(PreflightError, match=r"no point of the space keeps params<=1000 \(the space spans params "):
        prepare(config)
    assert not (tmp_path / "study.db").exists()


# --- studies stored with the categorical encoding ------------------------------------------------------


def _categorical_study(url: str) -> None:
    """A study as the categorical encoding stored it: params 'grouping': 'G=8', a space without 'encoding'."""
    study = optuna.create_study(study_name="old", storage=url, directions=["minimize", "maximize"])
    study.set_user_attr(
        record.OBJECTIVES,
        [
            {"name": "epf@4", "metric": "epf", "batch_size": 4, "direction": "minimize", "unit": "mJ/frame"},
            {"name": "top1", "metric": "top1", "batch_size": None, "direction": "maximize", "unit": "%"},
        ],
    )
    study.set_user_attr(
        record.SPACE, {"archs": ["mobilenet_v1"], "groupings": ["G=1", "G=8", "g=2", "g=16"], "widths": [0.25]}
    )
    for grouping, epf, top1 in [("G=8", 12.0, 80.0), ("g=16", 15.0, 70.0)]:
        symbol, _, value = grouping.partition("=")
        arch_config = ArchConfig(
            "mobilenet_v1", width=0.25, num_classes=10, **{"group_size" if symbol == "G" else "groups": int(value)}
        )
        attrs = record.user_attrs(
            arch_config=arch_config,
            params=100_000,
            macs=2_000_000,
            resolution=32,
            epf={4: {"epf_mj": epf, "epf_std_mj": 0.5, "repeats": 2, "status": "ok"}},
            energy_backend="estimate",
            energy_is_estimate=True,
            top1=top1,
            val_size=60,
        )
        study.add_trial(
            optuna.trial.create_trial(
                params={"arch": "mobilenet_v1", "grouping": grouping, "width": 0.25},
                distributions={
                    "arch": CategoricalDistribution(["mobilenet_v1"]),
                    "grouping": CategoricalDistribution(["G=1", "G=8", "g=2", "g=16"]),
                    "width": CategoricalDistribution([0.25]),
                },
                values=[epf, top1],
                user_attrs=attrs,
            )
        )


def test_a_study_of_the_categorical_encoding_is_read_and_refused_on_resume(tmp_path, capsys):
    url = f"sqlite:///{tmp_path}/old.db"
    _categorical_study(url)
    assert main(["front", "--study", "old", "--storage", url, "--all", "--format", "csv"]) == 0
    shown = capsys.readouterr().out
    assert "G=8" in shown and "g=16" in shown
    out = tmp_path / "model.json"
    assert main(["export", "--study", "old", "--storage", url, "--trial", "0", "--out", str(out)]) == 0
    assert ArchConfig.from_json(out.read_text()).group_size == 8
    with pytest.raises(ConfigError, match="drew G, g and width as categories .* start a new study with --study"):
        prepare(tiny_config(tmp_path, storage=url, study_name="old", settings=CHEAP))


# --- the stopping rule, on hand-made curves ------------------------------------------------------------


def _finished(count: int, epf: float = 10.0, top1: float = 95.0, curve=(40.0, 80.0, 95.0)) -> list[Finished]:
    return [Finished(trial=i, known=(epf + i,), top1=top1, curve=tuple(curve)) for i in range(count)]


def test_the_rule_stops_a_hopeless_trial():
    rule = StoppingRule(_finished(MIN_COMPLETE), epochs=3, margin=lambda top1: 2.5)
    reason = rule.verdict(2, top1=60.0, known=(20.0,))  # 60 + 15 + 2.5 < 95, and trial 0 has lower EPF
    assert reason.startswith("stopped after epoch 2/3: top-1 60.0 % + largest remaining gain 15.0 + noise 2.5")


@pytest.mark.parametrize(
    "case", ["cheaper than every completed trial", "could still catch up", "too few completed", "last epoch"]
)
def test_the_rule_lets_a_trial_go_on(case):
    finished = _finished(MIN_COMPLETE - 1 if case == "too few completed" else MIN_COMPLETE)
    rule = StoppingRule(finished, epochs=3, margin=lambda top1: 2.5)
    epoch, top1, epf = {
        "cheaper than every completed trial": (2, 20.0, 9.0),
        "could still catch up": (2, 78.0, 20.0),
        "too few completed": (2, 20.0, 20.0),
        "last epoch": (3, 20.0, 20.0),
    }[case]
    assert rule.verdict(epoch, top1, (epf,)) is None


def test_the_rule_never_stops_a_trial_that_would_reach_the_front():
    rng = np.random.default_rng(0)
    epochs, checked = 4, 0
    for _ in range(300):
        curves = np.sort(rng.uniform(5, 98, size=(7, epochs)), axis=1)  # rising top-1 curves
        epfs = rng.uniform(1, 10, size=7)
        finished = [
            Finished(i, (float(epfs[i]),), float(curves[i, -1]), tuple(map(float, curves[i]))) for i in range(6)
        ]
        rule = StoppingRule(finished, epochs, margin=lambda top1: 1.0)
        curve, epf = curves[6], float(epfs[6])
        # a final point that no completed trial dominates is on the front: it must never be stopped
        on_front = not any(f.known[0] <= epf and f.top1 >= curve[-1] for f in finished)
        within_seen_gains = all(curve[-1] - curve[e] <= rule.largest_gain(e + 1) for e in range(epochs - 1))
        if on_front and within_seen_gains:
            checked += 1
            assert all(rule.verdict(e, float(curve[e - 1]), (epf,)) is None for e in range(1, epochs + 1))
    assert checked > 30  # the property was exercised, not skipped


def test_an_early_stopped_trial_is_pruned_with_its_reason_and_partial_curve(tmp_path):
    config = tiny_config(tmp_path)
    settings = dataclasses.replace(
        config.settings,
        space=FOUR_POINTS,
        train=dataclasses.replace(config.settings.train, epochs=2, threads=1),
        early_stop="rule",
    )
    data = load_data(TINY_DATA, progress=False)
    study = optuna.create_study(
        directions=["minimize", "maximize"],
        sampler=optuna.samplers.PartialFixedSampler(
            FOUR_POINTS.params_of(ArchConfig("mobilenet_v1", group_size=8, width=0.25)),
            optuna.samplers.RandomSampler(seed=0),
        ),
    )
    # Completed trials that cost almost nothing and reached 100 % at once: no new trial can beat them.
    for number in range(MIN_COMPLETE):
        arch_config = ArchConfig("mobilenet_v1", group_size=[1, 2, 4, 8][number], width=0.5, num_classes=10)
        study.add_trial(
            optuna.trial.create_trial(
                params={},
                distributions={},
                values=[1e-6, 100.0],
                user_attrs=record.user_attrs(arch_config=arch_config, top1_curve=[100.0, 100.0], top1=100.0),
            )
        )
    study.optimize(TrialRunner(settings, data), n_trials=1)
    stopped = study.trials[-1]
    assert stopped.state == TrialState.PRUNED
    assert stopped.user_attrs["early_stop"].startswith("stopped after epoch 1/2: top-1 ")
    assert len(stopped.user_attrs["top1_curve"]) == 1 and stopped.user_attrs["train_status"] == "stopped early"
    study.sampler = optuna.samplers.PartialFixedSampler(
        FOUR_POINTS.params_of(ArchConfig("mobilenet_v1", group_size=4, width=0.25)), optuna.samplers.RandomSampler()
    )
    study.optimize(TrialRunner(dataclasses.replace(settings, early_stop="off"), data), n_trials=1)
    assert study.trials[-1].state == TrialState.COMPLETE and len(study.trials[-1].user_attrs["top1_curve"]) == 2


# --- replay on a 6-point table -------------------------------------------------------------------------


def six_point_table() -> MeasuredTable:
    """E2GC G = 1, 2, 4 at widths 0.25 and 0.5; G=4 w0.5 is the most expensive and hopeless."""
    points = []
    for group_size, width in itertools.product((1, 2, 4), (0.25, 0.5)):
        epf = 40 * width + group_size
        final = 95.0 - 2 * group_size + 4 * width
        curve = (20.0, 50.0, 70.0) if (group_size, width) == (4, 0.5) else (30.0, final - 2, final)
        points.append(
            MeasuredPoint(
                ArchConfig("mobilenet_v1", group_size=group_size, width=width, num_classes=10),
                {16: epf},
                curve,
                (1.0, 1.0, 1.0),
                val_size=400,
                epf_std_mj={16: 0.1},
            )
        )
    return MeasuredTable.of(points, resolution=48)


@pytest.mark.parametrize("sampler", ["tpe", "nsga2", "random"])  # gp: in benchmarks/search_replay.py (slow)
def test_replay_measures_the_points_the_budget_buys(sampler):
    table = six_point_table()
    whole = replay(table, sampler, seed=0, trials=6, early_stop="off")
    assert len(set(whole.measured)) == 6 and whole.hypervolume_ratio == pytest.approx(1.0)
    assert whole.train_s == pytest.approx(18.0)
    half = replay(table, sampler, seed=1, trials=3, early_stop="off")
    assert len(set(half.measured)) == 3 and 0.0 < half.hypervolume_ratio <= 1.0


def test_replay_with_early_stopping_saves_time_and_keeps_the_front():
    table = six_point_table()
    hopeless = ArchConfig("mobilenet_v1", group_size=4, width=0.5, num_classes=10)
    assert table.front_status(table.points)[hopeless] == "dominated"
    runs = [replay(table, "random", seed, trials=6, early_stop="rule") for seed in range(6)]
    assert all(r.hypervolume_ratio == pytest.approx(1.0) for r in runs)  # the front is whole in every run
    late = [r for r in runs if r.measured.index(hopeless) >= MIN_COMPLETE]
    assert late and all(hopeless not in r.completed and r.train_s < 18.0 for r in late)


def test_foresight_bounds_what_early_stopping_can_save():
    table = six_point_table()
    # beaten beyond the ~2.5-point margin by a cheaper point: G=4 w0.25 (88 % < G=1 w0.25's 94 %) and
    # G=4 w0.5 (70 %); stopping each after its first 1 s epoch saves 2 s apiece of the grid's 18 s
    assert table.foresight_saving() == pytest.approx(4 / 18)
    # without the margin G=2 at both widths (92 < 94, 93 < 95) counts as well
    assert table.foresight_saving(beyond_noise=False) == pytest.approx(8 / 18)
    assert table.largest_gains() == [pytest.approx(65.0), pytest.approx(20.0)]  # 30 -> 95, 50 -> 70


def test_a_point_another_worker_is_measuring_is_left_to_it_uncharged(tmp_path):
    """Two workers that draw the same point (two queued baselines, or a sampler's repeat) while the first
    still measures it: the later trial leaves it to the earlier one and is not charged."""
    point = ArchConfig("mobilenet_v1", group_size=2, width=0.25, num_classes=10)
    settings = dataclasses.replace(tiny_config(tmp_path, **{"settings": CHEAP}).settings, space=FOUR_POINTS)
    data = load_data(TINY_DATA, progress=False)
    study = optuna.create_study(directions=["minimize", "minimize"])
    elsewhere = study.ask()  # another worker's trial, measuring the point now
    elsewhere.set_user_attr(record.ARCH_CONFIG, point.to_dict())
    study.enqueue_trial(FOUR_POINTS.params_of(point))
    budget = NewPoints(FOUR_POINTS, 1, data.num_classes, seed=0, study=study, say=lambda _: None)
    study.optimize(TrialRunner(settings, data), n_trials=1, catch=(Exception,), callbacks=[budget])
    mine = study.trials[1]
    assert mine.state == TrialState.PRUNED and mine.user_attrs[record.LEFT_TO] == elsewhere.number
    assert mine.user_attrs[record.DUPLICATE_OF] == elsewhere.number  # left out of the front, like a repeat
    assert budget.charged == 0 and record.EPF not in mine.user_attrs  # nothing measured, nothing charged
