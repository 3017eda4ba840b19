"""A third network, defined and registered here alone, goes through every command a user runs.

"Adding a network is one file in models/": the toy CNN below (a 3x3 stem, two modules of grouped 3x3
conv + 1x1 conv, pool, linear) is registered for the test with its plan, stages and standalone-builder
text, and nothing else in the package is told about it. ``table``, ``cost``, ``profile``, a one-trial
``run`` on the embedded digits and ``export`` must all work on it through the real command line.
"""

from __future__ import annotations

import dataclasses
import importlib.util
import json
import re

import optuna
import pytest
import torch
from optuna.trial import TrialState
from torch import nn

from e2gcsearch import ArchConfig, ConfigError, create_model, list_models
from e2gcsearch.cli import main
from e2gcsearch.models import ExportRows, ModelEntry, StagePlan, check_resolution, get_entry, registered, stages
from e2gcsearch.models.layers import (
    CHANNEL_DIVISOR,
    create_conv2d,
    grouped_divisor,
    init_weights,
    num_groups,
    scale_channels,
)
from e2gcsearch.paper import GROUP_SIZES, GROUPS, table_configs
from e2gcsearch.store.record import TrialRecord
from e2gcsearch.store.storage import get_storage

pytestmark = pytest.mark.filterwarnings("ignore::optuna.exceptions.ExperimentalWarning")

# --- the toy network: what a network file in models/ would hold ----------------------------------

STEM_CHANNELS = 32
MODULES = ((64, 1), (64, 2))  # (output channels of the 1x1 conv, stride of the grouped 3x3 conv)
STAGE_CHANNELS = (32, 64)  # stock input channels of the grouped conv of each module: one stage each
_LAYER = re.compile(r"^blocks\.(\d+)\.")


@dataclasses.dataclass(frozen=True)
class ToyPlan:
    stem_channels: int
    blocks: tuple[tuple[int, int, int, int], ...]  # (in, out, stride, groups) per module
    num_classes: int


def toy_plan(cfg: ArchConfig) -> ToyPlan:
    stages.check_stage_count(cfg)
    stem = scale_channels(STEM_CHANNELS, cfg.width, grouped_divisor(cfg, 0))
    blocks, in_channels = [], stem
    for index, (out_stock, stride) in enumerate(MODULES):
        is_last = index == len(MODULES) - 1
        out = scale_channels(out_stock, cfg.width, CHANNEL_DIVISOR if is_last else grouped_divisor(cfg, index + 1))
        groups = num_groups(in_channels, cfg, layer=f"blocks.{index}.conv_grouped", stage=index)
        blocks.append((in_channels, out, stride, groups))
        in_channels = out
    return ToyPlan(stem, tuple(blocks), cfg.num_classes)


class ToyBlock(nn.Module):
    def __init__(self, in_channels: int, out_channels: int, stride: int, groups: int) -> None:
        super().__init__()
        self.conv_grouped = create_conv2d(in_channels, in_channels, 3, stride=stride, groups=groups)
        self.bn_grouped = nn.BatchNorm2d(in_channels)
        self.conv_pointwise = create_conv2d(in_channels, out_channels, 1)
        self.bn_pointwise = nn.BatchNorm2d(out_channels)
        self.relu = nn.ReLU(inplace=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.relu(self.bn_grouped(self.conv_grouped(x)))
        return self.relu(self.bn_pointwise(self.conv_pointwise(x)))


class ToyNet(nn.Module):
    def __init__(self, net: ToyPlan) -> None:
        super().__init__()
        self.stem = nn.Sequential(
            create_conv2d(3, net.stem_channels, 3, stride=2), nn.BatchNorm2d(net.stem_channels), nn.ReLU(inplace=True)
        )
        self.blocks = nn.Sequential(*(ToyBlock(*row) for row in net.blocks))
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(net.blocks[-1][1], net.num_classes)
        init_weights(self)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(torch.flatten(self.pool(self.blocks(self.stem(x))), 1))


def toy_layer_stage(layer_name: str) -> int | None:
    match = _LAYER.match(layer_name)
    return int(match.group(1)) if match else None


def toy_table(net: ToyPlan) -> str:
    return "\n".join(f"    {row}," for row in net.blocks)


TOY_BODY = """
# (in, out, stride, groups) per module ($grouping).
BLOCKS = (
$table
)


class ToyBlock(nn.Module):
    def __init__(self, in_channels: int, out_channels: int, stride: int, groups: int) -> None:
        super().__init__()
        self.conv_grouped = conv(in_channels, in_channels, 3, stride=stride, groups=groups)
        self.bn_grouped = nn.BatchNorm2d(in_channels)
        self.conv_pointwise = conv(in_channels, out_channels, 1)
        self.bn_pointwise = nn.BatchNorm2d(out_channels)
        self.relu = nn.ReLU(inplace=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.relu(self.bn_grouped(self.conv_grouped(x)))
        return self.relu(self.bn_pointwise(self.conv_pointwise(x)))


class ToyNet(nn.Module):
    def __init__(self, num_classes: int = NUM_CLASSES) -> None:
        super().__init__()
        self.stem = nn.Sequential(conv(3, STEM_CHANNELS, 3, stride=2), nn.BatchNorm2d(STEM_CHANNELS),
                                  nn.ReLU(inplace=True))
        self.blocks = nn.Sequential(*(ToyBlock(*row) for row in BLOCKS))
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(BLOCKS[-1][1], num_classes)
        init_weights(self)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(torch.flatten(self.pool(self.blocks(self.stem(x))), 1))


NETWORK = ToyNet
"""

TOY = ModelEntry(
    name="toy",
    build=lambda cfg: ToyNet(toy_plan(cfg)),
    plan=toy_plan,
    total_stride=4,
    baseline=ArchConfig("toy", group_size=1),
    description="a test's own CNN: two modules of grouped 3x3 + 1x1 conv",
    display_name="Toy-CNN",
    stages=StagePlan(STAGE_CHANNELS, toy_layer_stage),
    export=ExportRows(TOY_BODY, toy_table),
)


@pytest.fixture
def toy(tmp_path, monkeypatch):
    """The toy registered for one test, with caches in the test's own folder."""
    monkeypatch.setenv("E2GCSEARCH_CACHE_DIR", str(tmp_path / "cache"))
    with registered(TOY):
        yield TOY


def weight_count(model: nn.Module) -> int:
    """Params as the paper counts them, independently of cost.py: conv and linear weights + FC bias."""
    layers = [m for m in model.modules() if isinstance(m, (nn.Conv2d, nn.Linear))]
    return sum(m.weight.numel() for m in layers) + sum(m.bias.numel() for m in layers if m.bias is not None)


# --- the registry ----------------------------------------------------------------------------------


def test_registering_is_enough_and_is_undone(toy):
    assert "toy" in list_models() and get_entry("toy").display_name == "Toy-CNN"
    assert stages.num_stages("toy") == 2
    assert [
        stages.layer_stage("toy", n) for n in ("stem.0", "blocks.0.conv_grouped", "blocks.1.conv_grouped", "fc")
    ] == [None, 0, 1, None]
    net = create_model(ArchConfig("toy", stage_group_sizes=(2, 8), width=0.5, num_classes=3))
    assert [b.conv_grouped.in_channels // b.conv_grouped.groups for b in net.blocks] == [2, 8]
    with pytest.raises(ConfigError, match="toy has 2 stages"):
        create_model(ArchConfig("toy", stage_group_sizes=(2, 4, 8)))
    check_resolution("toy", 4)
    with pytest.raises(ConfigError, match="total stride is 4"):
        check_resolution("toy", 2)
    assert "toy" not in {cfg.arch for cfg in table_configs()}  # not one of the paper's networks


def test_registered_restores_the_registry():
    before = list_models()
    with registered(TOY):
        assert list_models() == sorted([*before, "toy"])
    assert list_models() == before


# --- the command line -----------------------------------------------------------------------------


def test_table_lists_the_toy_rows(toy, capsys):
    assert main(["table", "--arch", "toy", "--resolution", "32", "--classes", "10", "--format", "csv"]) == 0
    header, *rows = capsys.readouterr().out.strip().splitlines()
    assert header.startswith("arch,module,value,params,macs")
    cells = [row.split(",") for row in rows]
    assert [(c[0], c[1], int(c[2])) for c in cells] == [("toy", "E2GC", G) for G in GROUP_SIZES] + [
        ("toy", "FgGC", g) for g in GROUPS
    ]
    for c in cells:
        grouping = {"group_size": int(c[2])} if c[1] == "E2GC" else {"groups": int(c[2])}
        assert int(c[3]) == weight_count(create_model(ArchConfig("toy", num_classes=10, **grouping)))


def test_cost_of_the_toy(toy, capsys):
    assert (
        main(
            [
                "cost",
                "toy",
                "--group-size",
                "2",
                "--resolution",
                "32",
                "--classes",
                "10",
                "--per-layer",
                "--format",
                "json",
            ]
        )
        == 0
    )
    document = json.loads(capsys.readouterr().out)
    assert document["summary"]["params"] == weight_count(create_model(ArchConfig("toy", group_size=2, num_classes=10)))
    grouped = {layer["name"]: layer["groups"] for layer in document["layers"] if "conv_grouped" in layer["name"]}
    assert grouped == {"blocks.0.conv_grouped": 16, "blocks.1.conv_grouped": 32}


def test_profile_of_the_toy(toy, capsys):
    assert (
        main(
            [
                "profile",
                "toy",
                "--group-size",
                "2",
                "--classes",
                "10",
                "--resolution",
                "16",
                "--batch-sizes",
                "2",
                "--backend",
                "estimate",
                "--device",
                "cpu",
                "--repeats",
                "1",
                "--min-window-s",
                "0.01",
                "--warmup",
                "1",
                "--threads",
                "1",
                "--no-cache",
                "--format",
                "json",
            ]
        )
        == 0
    )
    document = json.loads(capsys.readouterr().out)
    assert document["arch"] == ArchConfig("toy", group_size=2, num_classes=10).to_dict()
    assert document["backend"] == "estimate" and document["batches"][0]["epf_mj"] > 0


def test_search_and_export_of_the_toy(toy, tmp_path, capsys):
    url = f"sqlite:///{tmp_path / 'toy.db'}"
    assert (
        main(
            [
                "run",
                "--arch",
                "toy",
                "--trials",
                "1",
                "--storage",
                url,
                "--study",
                "toy",
                "--sampler",
                "random",
                "--objective",
                "epf@2,top1",
                "--modules",
                "E2GC",
                "--group-sizes",
                "1,2",
                "--widths",
                "1.0",
                "--data",
                "digits",
                "--train-per-class",
                "8",
                "--val-per-class",
                "4",
                "--resolution",
                "16",
                "--epochs",
                "1",
                "--batch-sizes",
                "2",
                "--repeats",
                "1",
                "--backend",
                "estimate",
                "--device",
                "cpu",
            ]
        )
        == 0
    )
    study = optuna.load_study(study_name="toy", storage=get_storage(url))
    (trial,) = study.get_trials(states=(TrialState.COMPLETE,))  # the energy model's warm start waits in the queue
    assert trial.params == {
        "arch": "toy",
        "module": "E2GC",
        "log2_G": 0,
        "width": 1.0,
    }  # the toy's baseline, queued first
    arch = TrialRecord.from_trial(trial).arch_config

    out = tmp_path / "model.py"
    assert main(["export", "--storage", url, "--study", "toy", "--trial", "0", "--out", str(out)]) == 0
    capsys.readouterr()
    spec = importlib.util.spec_from_file_location("exported_toy", out)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    exported, ours = module.build_model().eval(), create_model(arch).eval()
    assert sum(p.numel() for p in exported.parameters()) == sum(p.numel() for p in ours.parameters())
    exported.load_state_dict(ours.state_dict())  # same module names, so e2gcsearch's weights load as is
    x = torch.randn(2, 3, 16, 16)
    with torch.no_grad():
        torch.testing.assert_close(exported(x), ours(x))
