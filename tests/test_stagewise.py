"""Stage-wise E2GC: one group size per network stage, in the config, the models and the search space."""

from __future__ import annotations

import optuna
import pytest
import torch

from e2gcsearch import ArchConfig, ConfigError, create_model, network_cost
from e2gcsearch.models import stages, validate_config
from e2gcsearch.search.space import SearchSpace
from e2gcsearch.search.stagewise import StagewiseSearchSpace


def test_stagewise_config_round_trips_and_hashes():
    cfg = ArchConfig("mobilenet_v1", stage_group_sizes=[1, 2, 4, 4, 8, 8], width=0.5, num_classes=10)
    assert cfg.stage_group_sizes == (1, 2, 4, 4, 8, 8)  # list stored as a tuple
    back = ArchConfig.from_json(cfg.to_json())
    assert back == cfg and hash(back) == hash(cfg)
    assert cfg.module == "E2GC" and cfg.is_stagewise
    assert cfg.label() == "mobilenet_v1 E2GC G=1-2-4-4-8-8 w=0.50"
    assert cfg.replace(group_size=4) == ArchConfig("mobilenet_v1", group_size=4, width=0.5, num_classes=10)
    # A uniform config's JSON is unchanged (cache keys and stored trials stay valid).
    assert "stage_group_sizes" not in ArchConfig("mobilenet_v1", group_size=4).to_json()


@pytest.mark.parametrize(
    "kwargs",
    [
        dict(group_size=2, stage_group_sizes=(1,) * 6),
        dict(stage_group_sizes=()),
        dict(stage_group_sizes=(1, 0)),
        dict(stage_group_sizes="1,2"),
    ],
)
def test_bad_stagewise_configs_are_rejected(kwargs):
    with pytest.raises(ConfigError):
        ArchConfig("mobilenet_v1", **kwargs)


def test_wrong_number_of_stages_names_the_stages():
    with pytest.raises(ConfigError, match="mobilenet_v1 has 6 stages .*32, 64, 128, 256, 512, 1024"):
        validate_config(ArchConfig("mobilenet_v1", stage_group_sizes=(1, 2, 4, 8)))
    with pytest.raises(ConfigError, match="resnext50 has 4 stages"):
        validate_config(ArchConfig("resnext50", stage_group_sizes=(1,) * 6))


def test_each_stage_gets_its_own_group_size():
    cfg = ArchConfig("mobilenet_v1", stage_group_sizes=(1, 2, 4, 8, 16, 32))
    grouped = [row for row in network_cost(cfg, 224).layers if row.name.endswith("conv_grouped")]
    by_stage = {stages.layer_stage("mobilenet_v1", row.name): row.group_size for row in grouped}
    assert by_stage == {0: 1, 1: 2, 2: 4, 3: 8, 4: 16, 5: 32}
    assert [stages.layer_stage("mobilenet_v1", row.name) for row in grouped] == [0, 1, 2, 2, 3, 3] + [4] * 6 + [5]
    resnext = ArchConfig("resnext50", stage_group_sizes=(1, 2, 4, 8), width=0.25, num_classes=10)
    convs = {row.name: row.group_size for row in network_cost(resnext, 64).layers if row.name.endswith("conv2")}
    assert (convs["layer1.0.conv2"], convs["layer2.3.conv2"], convs["layer3.5.conv2"], convs["layer4.2.conv2"]) == (
        1,
        2,
        4,
        8,
    )


def test_uniform_stage_sizes_build_the_uniform_network():
    uniform = network_cost(ArchConfig("mobilenet_v1", group_size=4, width=0.5, num_classes=10), 64)
    staged = network_cost(ArchConfig("mobilenet_v1", stage_group_sizes=(4,) * 6, width=0.5, num_classes=10), 64)
    assert (staged.params, staged.macs) == (uniform.params, uniform.macs)


def test_stagewise_network_trains_a_step():
    model = create_model(ArchConfig("mobilenet_v1", stage_group_sizes=(1, 2, 2, 4, 8, 8), width=0.25, num_classes=5))
    out = model(torch.randn(2, 3, 32, 32))
    out.sum().backward()
    assert out.shape == (2, 5) and torch.isfinite(out).all()


def test_stagewise_space_samples_one_parameter_per_stage():
    space = StagewiseSearchSpace(archs=("mobilenet_v1", "resnext50"), group_sizes=(1, 2, 4), widths=(0.25, 0.5))
    assert space.size == (3**6 + 3**4) * 2
    # log2 of G per stage, ordered integers: the sampler sees that G = 2 lies between 1 and 4
    params = {
        "arch": "resnext50",
        "width": 0.25,
        "log2_G_stage0": 0,
        "log2_G_stage1": 1,
        "log2_G_stage2": 2,
        "log2_G_stage3": 2,
    }
    cfg = space.sample(optuna.trial.FixedTrial(params), num_classes=10)
    assert cfg == ArchConfig("resnext50", stage_group_sizes=(1, 2, 4, 4), width=0.25, num_classes=10)
    assert space.params_of(cfg) == params and space.contains(cfg)
    study = optuna.create_study()
    trial = study.ask()
    sampled = space.sample(trial, num_classes=10)
    assert set(trial.params) == {"arch", "width"} | {f"log2_G_stage{i}" for i in range(stages.num_stages(sampled.arch))}
    assert isinstance(trial.distributions["log2_G_stage0"], optuna.distributions.IntDistribution)
    assert isinstance(trial.distributions["width"], optuna.distributions.FloatDistribution)
    uniform = ArchConfig("mobilenet_v1", group_size=2, width=0.5, num_classes=10)
    assert space.contains(uniform) and not space.contains(uniform.replace(groups=8))
    assert set(space.choices()) == {"arch", "width"} | {f"log2_G_stage{i}" for i in range(6)}
    assert space.describe()["kind"] == "stagewise"


def test_stagewise_space_reports_impossible_stage_values_once():
    space = StagewiseSearchSpace(group_sizes=(1, 64), widths=(1.0, 0.5))
    bad = space.impossible(num_classes=10)
    assert [cfg.label() for cfg, _ in bad] == ["mobilenet_v1 E2GC G=64-1-1-1-1-1 w=1.00"]
    assert "does not divide the 32 channels" in bad[0][1]
    small = StagewiseSearchSpace(group_sizes=(1, 2), widths=(0.5,))
    assert len(small.points(10)) == 2**6 and all(small.contains(p) for p in small.points(10))


def test_uniform_space_is_unchanged_and_labels_stagewise_configs():
    cfg = ArchConfig("mobilenet_v1", stage_group_sizes=(1, 2, 4, 4, 8, 8), width=0.5, num_classes=10)
    assert not SearchSpace().contains(cfg)
    assert cfg.grouping == "G=1-2-4-4-8-8" and cfg.label() == "mobilenet_v1 E2GC G=1-2-4-4-8-8 w=0.50"
