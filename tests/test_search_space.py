"""The search space and the parsing of objectives and constraints."""

from __future__ import annotations

import optuna
import pytest

from e2gcsearch import ArchConfig, ConfigError, UnknownNameError, create_model
from e2gcsearch.search.objectives import parse_constraint, parse_objectives
from e2gcsearch.search.space import SearchSpace


@pytest.mark.parametrize("params, expected", [
    ({"arch": "mobilenet_v1", "grouping": "G=4", "width": 0.5}, ArchConfig("mobilenet_v1", group_size=4, width=0.5, num_classes=10)),
    ({"arch": "mobilenet_v1", "grouping": "g=8", "width": 0.25}, ArchConfig("mobilenet_v1", groups=8, width=0.25, num_classes=10)),
    ({"arch": "resnext50", "grouping": "g=32", "width": 0.75}, ArchConfig("resnext50", groups=32, width=0.75, num_classes=10)),
    ({"arch": "resnext50", "grouping": "G=1", "width": 0.25}, ArchConfig("resnext50", group_size=1, width=0.25, num_classes=10)),
])
def test_fixed_trial_gives_the_expected_arch_config(params, expected):
    space = SearchSpace(archs=("mobilenet_v1", "resnext50"))
    assert space.sample(optuna.trial.FixedTrial(params), num_classes=10) == expected
    assert SearchSpace.params_of(expected) == params


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


@pytest.mark.parametrize("text, fragment", [
    ("epf,accuracy", "unknown metric 'accuracy'; valid metrics: epf@B, epf_infer@B, top1, params, macs, latency@B"),
    ("epf,top1,epf@16", "epf@16 is given twice"),
    ("top1@4", "takes no batch size"),
    ("epf@x", "bad batch size"),
    ("", "at least one objective"),
])
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
