"""Every registered architecture builds, runs and keeps its grouped convs divisible."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from e2gcsearch import ArchConfig, ConfigError, UnknownNameError, create_model, list_models
from e2gcsearch.models import check_resolution, get_entry, validate_config

# Networks built from e2gcsearch's own plans; those regrouped from a stock module (torchvision's) have
# their builder's width rule and their own tests (test_torchvision_nets.py).
PLANNED = [name for name in list_models() if not get_entry(name).regrouped]
GROUPINGS = [dict(group_size=1), dict(group_size=8), dict(groups=2), dict(groups=32)]


def grouped_convs(model: nn.Module) -> list[nn.Conv2d]:
    return [m for m in model.modules() if isinstance(m, nn.Conv2d) and m.kernel_size == (3, 3) and m.in_channels > 3]


@pytest.mark.parametrize("arch", PLANNED)
@pytest.mark.parametrize("grouping", GROUPINGS, ids=lambda g: "-".join(f"{k}{v}" for k, v in g.items()))
def test_builds_and_runs_forward(arch, grouping):
    cfg = ArchConfig(arch, width=0.25, num_classes=7, **grouping)
    model = create_model(cfg).eval()
    with torch.no_grad():
        out = model(torch.randn(2, 3, 48, 48))
    assert out.shape == (2, 7)
    assert torch.isfinite(out).all()


@pytest.mark.parametrize("arch", PLANNED)
def test_grouping_is_applied_to_every_grouped_conv(arch):
    e2gc = create_model(ArchConfig(arch, group_size=4, width=0.25))
    assert all(conv.in_channels // conv.groups == 4 for conv in grouped_convs(e2gc))
    fggc = create_model(ArchConfig(arch, groups=8, width=0.25))
    assert all(conv.groups == 8 for conv in grouped_convs(fggc))


@pytest.mark.parametrize("arch", PLANNED)
@pytest.mark.parametrize("width", [0.3, 0.5, 0.75, 1.3])
@pytest.mark.parametrize("grouping", [dict(group_size=3), dict(group_size=16), dict(groups=12)])
def test_width_rounding_keeps_grouped_layers_divisible(arch, width, grouping):
    model = create_model(ArchConfig(arch, width=width, **grouping))
    convs = grouped_convs(model)
    assert convs
    for conv in convs:
        assert conv.in_channels % conv.groups == 0
        if "group_size" in grouping:
            assert conv.in_channels // conv.groups == grouping["group_size"]
        else:
            assert conv.groups == grouping["groups"]
    for conv in (m for m in model.modules() if isinstance(m, nn.Conv2d)):
        assert conv.out_channels % 8 == 0


def test_width_scales_channels_close_to_the_multiplier():
    full = create_model(ArchConfig("mobilenet_v1", group_size=1))
    half = create_model(ArchConfig("mobilenet_v1", group_size=1, width=0.5))
    assert half.classifier.in_features == full.classifier.in_features // 2


def test_arch_config_json_round_trip_rebuilds_identical_network():
    for cfg in [
        ArchConfig("mobilenet_v1", group_size=4, width=0.5, num_classes=10),
        ArchConfig("resnext50", groups=16, width=0.25, num_classes=3),
    ]:
        again = ArchConfig.from_json(cfg.to_json())
        assert again == cfg and hash(again) == hash(cfg)
        shapes = {k: v.shape for k, v in create_model(cfg).state_dict().items()}
        assert shapes == {k: v.shape for k, v in create_model(again).state_dict().items()}


def test_create_model_accepts_a_name_and_fields():
    model = create_model("mobilenet_v1", groups=4, width=0.25, num_classes=5)
    assert model.classifier.out_features == 5


@pytest.mark.parametrize(
    "kwargs, fragment",
    [
        (dict(group_size=3), "does not divide the 32 channels"),
        (dict(groups=64), "does not divide the 32 channels"),
        (dict(group_size=64), "does not divide"),
    ],
)
def test_grouping_that_does_not_divide_is_a_clear_error(kwargs, fragment):
    with pytest.raises(ConfigError, match=fragment):
        validate_config(ArchConfig("mobilenet_v1", **kwargs))


@pytest.mark.parametrize(
    "kwargs",
    [
        dict(),
        dict(group_size=2, groups=2),
        dict(group_size=0),
        dict(groups=-1),
        dict(group_size=1, width=0.0),
        dict(group_size=1, width=-1.0),
        dict(group_size=1, num_classes=0),
    ],
)
def test_invalid_configs_are_rejected(kwargs):
    with pytest.raises(ConfigError):
        ArchConfig("mobilenet_v1", **kwargs)


def test_unknown_arch_lists_the_known_ones():
    with pytest.raises(
        UnknownNameError,
        match=r"choose one of: .*mobilenet_v1, .*resnext50, .*or your own network "
        r"as module:function",
    ):
        create_model(ArchConfig("vgg16", group_size=1))


def test_resolution_below_total_stride_is_rejected():
    check_resolution("resnext50", 32)
    with pytest.raises(ConfigError, match="too small"):
        check_resolution("resnext50", 16)
