"""The search space and the parsing of objectives and constraints."""

from __future__ import annotations

import optuna
import pytest

from e2gcsearch import ArchConfig, ConfigError, UnknownNameError, create_model
from e2gcsearch.search.objectives import parse_constraint, parse_objectives
from e2gcsearch.search.space import SearchSpace
from e2gcsearch.search.stagewise import StagewiseSearchSpace


@pytest.mark.parametrize(
    "params, expected",
    [
        (
            {"arch": "mobilenet_v1", "module": "E2GC", "log2_G": 2, "width": 0.5},
            ArchConfig("mobilenet_v1", group_size=4, width=0.5, num_classes=10),
        ),
        (
            {"arch": "mobilenet_v1", "module": "FgGC", "log2_g": 3, "width": 0.25},
            ArchConfig("mobilenet_v1", groups=8, width=0.25, num_classes=10),
        ),
        (
            {"arch": "resnext50", "module": "FgGC", "log2_g": 5, "width": 0.75},
            ArchConfig("resnext50", groups=32, width=0.75, num_classes=10),
        ),
        (
            {"arch": "resnext50", "module": "E2GC", "log2_G": 0, "width": 0.25},
            ArchConfig("resnext50", group_size=1, width=0.25, num_classes=10),
        ),
    ],
)
def test_fixed_trial_gives_the_expected_arch_config(params, expected):
    space = SearchSpace(archs=("mobilenet_v1", "resnext50"))
    assert space.sample(optuna.trial.FixedTrial(params), num_classes=10) == expected
    assert space.params_of(expected) == params
    assert space.to_config(params, num_classes=10) == expected


def test_g_and_width_are_ordered_numbers_for_the_sampler():
    space = SearchSpace()
    trial = optuna.create_study().ask()
    space.sample(trial, num_classes=10)
    distributions = trial.distributions
    grouping = distributions.get("log2_G") or distributions["log2_g"]
    assert isinstance(grouping, optuna.distributions.IntDistribution) and grouping.step == 1
    assert distributions["width"] == optuna.distributions.FloatDistribution(0.25, 0.75, step=0.25)
    # log2 of G = 1, 4, 16 lies on a step of 2; a set without a common step is drawn and rounded to the nearest
    assert SearchSpace(group_sizes=(1, 4, 16)).axes()["E2GC"].distribution() == optuna.distributions.IntDistribution(
        0, 4, step=2
    )
    gappy = SearchSpace(modules=("E2GC",), group_sizes=(1, 2, 16), widths=(0.25, 0.5, 1.0))
    assert [gappy.axes()["E2GC"].decode(v) for v in range(5)] == [1, 2, 2, 16, 16]  # log2: 0, 1, 4
    assert gappy.axes()["width"].decode(0.75) == 0.5  # a tie goes to the lower value
    points = {
        gappy.sample(
            optuna.trial.FixedTrial({"arch": "mobilenet_v1", "module": "E2GC", "log2_G": g, "width": w}), num_classes=10
        )
        for g in range(5)
        for w in (0.25, 0.5, 0.75, 1.0)
    }
    assert points == set(gappy.points(num_classes=10))  # every draw is a point of the space, and every point is drawn


def test_parameters_of_studies_before_the_ordinal_encoding_still_read():
    old = {"arch": "mobilenet_v1", "grouping": "g=16", "width": 0.5}
    assert SearchSpace().to_config(old, num_classes=10) == ArchConfig(
        "mobilenet_v1", groups=16, width=0.5, num_classes=10
    )


def test_every_grid_point_builds():
    space = SearchSpace(archs=("mobilenet_v1", "resnext50"), widths=(0.25, 0.5, 0.75, 1.0))
    assert space.size == 2 * 11 * 4
    assert space.impossible(num_classes=10) == []
    # Actually build a spread of them (validate_config alone would trust the plan).
    for cfg in space.points(num_classes=10)[::9]:
        create_model(cfg)


def test_impossible_points_are_reported_before_any_work():
    space = SearchSpace(modules=("E2GC",), group_sizes=(3, 4), widths=(1.0, 0.5))
    bad = space.impossible(num_classes=10)
    assert [cfg.label() for cfg, _ in bad] == ["mobilenet_v1 E2GC G=3 w=1.00"]
    assert "does not divide" in bad[0][1]


def test_space_rejects_bad_parts():
    with pytest.raises(UnknownNameError):
        SearchSpace(archs=("vgg",))
    with pytest.raises(ConfigError):
        SearchSpace(modules=("XGC",))
    with pytest.raises(ConfigError):
        SearchSpace(widths=(0.0,))


def test_objectives_parse_with_units_and_directions():
    objectives = parse_objectives("epf, top1,params,macs,latency@4")
    assert [o.name for o in objectives] == ["epf@16", "top1", "params", "macs", "latency@4"]
    assert [o.direction for o in objectives] == ["minimize", "maximize", "minimize", "minimize", "minimize"]
    assert objectives[0].unit == "mJ/frame"
    assert [o.name for o in parse_objectives("epf@4", reference_batch=8)] == ["epf@4"]
    assert [o.name for o in parse_objectives("epf", reference_batch=8)] == ["epf@8"]


@pytest.mark.parametrize(
    "text, fragment",
    [
        ("epf,accuracy", "unknown metric 'accuracy'; valid metrics: epf@B, epf_infer@B, top1, params, macs, latency@B"),
        ("epf,top1,epf@16", "epf@16 is given twice"),
        ("top1@4", "takes no batch size"),
        ("epf@x", "bad batch size"),
        ("", "at least one objective"),
    ],
)
def test_bad_objectives(text, fragment):
    with pytest.raises(ConfigError, match=fragment.replace("(", r"\(")):
        parse_objectives(text)


def test_constraints():
    c = parse_constraint("params<=5e6")
    assert (c.metric.name, c.op, c.bound) == ("params", "<=", 5e6)
    assert c.violation(4e6) < 0 < c.violation(6e6)
    c = parse_constraint(" top1 >= 40 ")
    assert c.violation(50) < 0 < c.violation(30)
    assert parse_constraint("epf@4<=2.5").metric.name == "epf@4"
    for bad in ("params<5e6", "params<=", "foo<=3", "params<=abc"):
        with pytest.raises(ConfigError):
            parse_constraint(bad)


@pytest.mark.parametrize(
    "space", [SearchSpace(), StagewiseSearchSpace(group_sizes=(1, 2), widths=(0.5,))], ids=["network", "stagewise"]
)
def test_both_spaces_implement_the_protocol_the_search_takes(space):
    from e2gcsearch.search.space import Space

    assert isinstance(space, Space)
    members = [name for name in vars(Space) if not name.startswith("_")]
    assert {"size", "sample", "to_config", "params_of", "points", "impossible", "describe"} <= set(members)
    for name in members:
        assert hasattr(space, name), name
    point = space.points(num_classes=10)[0]
    assert space.contains(point) and space.to_config(space.params_of(point), num_classes=10) == point


@pytest.mark.parametrize("name", ["tpe", "nsga2", "nsga3", "gp", "random", "grid"])
def test_every_sampler_of_the_table_is_built(name):
    from e2gcsearch.search.study import SAMPLERS, create_sampler

    assert name in SAMPLERS
    sampler = create_sampler(name, seed=0, space=SearchSpace(widths=(0.5,)), trials=8)
    assert sampler.__class__.__module__.startswith("optuna.samplers")


def test_an_unknown_sampler_names_the_known_ones():
    from e2gcsearch.errors import UnknownNameError
    from e2gcsearch.search.study import create_sampler

    with pytest.raises(UnknownNameError, match="choose one of: tpe, nsga2"):
        create_sampler("cmaes", seed=0, space=SearchSpace(), trials=8)
