"""The cost model against independent references: formulas, torchvision, torch's FLOP counter,
the published sizes and the paper's anchor rows."""

from __future__ import annotations

import pytest
import torch
import torchvision
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from e2gcsearch import ArchConfig, create_model, network_cost
from e2gcsearch.paper import cost_table


def test_single_grouped_conv_by_formula():
    # features.1 of MobileNet-V1: 3x3 conv 64->64, stride 2, 112x112 -> 56x56; G = 4 -> 16 groups.
    cost = network_cost(ArchConfig("mobilenet_v1", group_size=4), resolution=224)
    layer = next(row for row in cost.layers if row.name == "features.1.conv_grouped")
    assert (layer.in_channels, layer.groups, layer.group_size, layer.stride) == (64, 16, 4, 2)
    assert (layer.out_h, layer.out_w) == (56, 56)
    assert layer.macs == 56 * 56 * 64 * 4 * 3 * 3
    assert layer.params == 64 * 4 * 3 * 3
    assert layer.activations == 64 * 112 * 112 + 64 * 56 * 56
    assert layer.ai == pytest.approx(layer.macs / (layer.params + layer.activations))
    assert layer.kind == "grouped"


def test_kinds_are_named():
    kinds = {row.name: row.kind for row in network_cost(ArchConfig("mobilenet_v1", group_size=1)).layers}
    assert kinds["features.0.conv_grouped"] == "depthwise"
    assert kinds["features.0.conv_pointwise"] == "conv"
    assert kinds["classifier"] == "linear"


def test_resnext50_g32_matches_torchvision():
    ours = create_model(ArchConfig("resnext50", groups=32))
    reference = torchvision.models.resnext50_32x4d(weights=None)
    weights = sum(
        p.numel()
        for m in reference.modules()
        if isinstance(m, (nn.Conv2d, nn.Linear))
        for p in m.parameters(recurse=False)
    )
    assert network_cost(ArchConfig("resnext50", groups=32)).params == weights == 24_960_680
    # Same layout: every torchvision weight loads into ours.
    assert {k: v.shape for k, v in ours.state_dict().items()} == {k: v.shape for k, v in reference.state_dict().items()}


def test_stock_mobilenet_v1_matches_its_published_size():
    # Howard et al. 2017, Table 1/8: 4.2 million parameters, 569 million mult-adds at 224, 1000 classes.
    cost = network_cost(ArchConfig("mobilenet_v1", group_size=1))
    assert round(cost.params / 1e6, 1) == 4.2
    assert round(cost.macs / 1e6) == 569


@pytest.mark.parametrize(
    "cfg",
    [
        ArchConfig("mobilenet_v1", group_size=2, width=0.5, num_classes=10),
        ArchConfig("mobilenet_v1", groups=8, width=0.25, num_classes=10),
        ArchConfig("resnext50", group_size=16, width=0.25, num_classes=10),
    ],
    ids=str,
)
def test_macs_agree_with_torch_flop_counter(cfg):
    model = create_model(cfg).eval()
    counter = FlopCounterMode(display=False)
    with counter, torch.no_grad():
        model(torch.randn(1, 3, 96, 96))
    # torch counts 2 FLOPs per MAC for conv and linear (and nothing for BN/ReLU/pool).
    assert network_cost(cfg, resolution=96).macs * 2 == counter.get_total_flops()


def test_bn_params_are_reported_apart():
    cfg = ArchConfig("mobilenet_v1", group_size=1)
    cost = network_cost(cfg)
    everything = sum(p.numel() for p in create_model(cfg).parameters())
    assert cost.params + cost.bn_params == everything


def test_paper_table_anchor_rows():
    table = cost_table().set_index(["arch", "module", "value"])
    assert len(table) == 22
    mobilenet = table.loc[("mobilenet_v1", "E2GC", 1)]
    assert round(mobilenet.params / 1e6, 1) == 4.2 and round(mobilenet.macs / 1e6, 2) == 568.74
    resnext = table.loc[("resnext50", "FgGC", 32)]
    assert round(resnext.params / 1e6, 2) == 24.96 and round(resnext.macs / 1e9, 2) == 4.23
    # E2GC cost grows with G; FgGC cost falls with g.
    for arch in ("mobilenet_v1", "resnext50"):
        assert table.loc[arch].loc["E2GC"].macs.is_monotonic_increasing
        assert table.loc[arch].loc["FgGC"].macs.is_monotonic_decreasing
