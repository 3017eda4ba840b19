"""ResNeXt-50 32x4d (Xie et al. 2017) in torchvision's layout, with a configurable grouped 3x3 conv.

Bottleneck: 1x1 conv cin→m, 3x3 conv m→m grouped (carries the stride), 1x1 conv m→4·planes;
m = 128/256/512/1024 in the four stages of 3/4/6/3 blocks. FgGC g = 32 is the stock network (same
module names and parameter shapes as ``torchvision.models.resnext50_32x4d``). Stem and FC untouched.
Stage-wise E2GC gives each of the four stages ``layer1`` … ``layer4`` its own G.

The file ends by registering the network (:func:`~.registry.register_model`): its builder, plan,
stages, and the text of its standalone builder for ``e2gcsearch export`` (:data:`EXPORT_BODY`).
"""

from __future__ import annotations

import dataclasses
import re

import torch
from torch import nn

from ..config import ArchConfig
from .flgc import FoldSite
from .layers import create_conv2d, grouped_divisor, init_weights, learned_assignment, num_groups, scale_channels
from .registry import ExportRows, ModelEntry, StagePlan, register_model
from .stages import check_stage_count

STEM_CHANNELS = 64
EXPANSION = 4
# (planes, blocks, stride of the first block); the grouped width is m = 2·planes for 32x4d.
STAGES: tuple[tuple[int, int, int], ...] = ((64, 3, 1), (128, 4, 2), (256, 6, 2), (512, 3, 2))
STAGE_CHANNELS: tuple[int, ...] = tuple(2 * planes for planes, _, _ in STAGES)  # (128, 256, 512, 1024)
_LAYER = re.compile(r"^layer(\d+)\.")


@dataclasses.dataclass(frozen=True)
class BlockSpec:
    """One bottleneck: 1x1 in→mid, 3x3 mid→mid (stride, groups), 1x1 mid→out, projection if needed;
    ``learned``: FLGC's assignment of the grouped conv (``None`` for fixed groups)."""

    in_channels: int
    mid_channels: int
    out_channels: int
    stride: int
    groups: int
    learned: str | None = None

    @property
    def has_projection(self) -> bool:
        return self.stride != 1 or self.in_channels != self.out_channels


@dataclasses.dataclass(frozen=True)
class ResNeXtPlan:
    stem_channels: int
    stages: tuple[tuple[BlockSpec, ...], ...]
    num_classes: int


def plan(arch_config: ArchConfig) -> ResNeXtPlan:
    """Channel counts and groups of every block for ``arch_config`` (validates divisibility)."""
    check_stage_count(arch_config)
    stem = scale_channels(STEM_CHANNELS, arch_config.width)
    stages = []
    in_channels = stem
    for stage_index, (planes, blocks, first_stride) in enumerate(STAGES):
        mid = scale_channels(planes * 2, arch_config.width, grouped_divisor(arch_config, stage_index))
        out = scale_channels(planes * EXPANSION, arch_config.width)
        groups = num_groups(mid, arch_config, layer=f"layer{stage_index + 1}.*.conv2", stage=stage_index)
        stage = []
        for block_index in range(blocks):
            stride = first_stride if block_index == 0 else 1
            stage.append(BlockSpec(in_channels, mid, out, stride, groups, learned_assignment(arch_config)))
            in_channels = out
        stages.append(tuple(stage))
    return ResNeXtPlan(stem, tuple(stages), arch_config.num_classes)


def layer_stage(layer_name: str) -> int | None:
    """Stage of a layer (``layer3.2.conv2`` → 2); ``None`` outside ``layer1`` … ``layer4`` (stem, fc)."""
    match = _LAYER.match(layer_name)
    return int(match.group(1)) - 1 if match else None


class Bottleneck(nn.Module):
    def __init__(self, spec: BlockSpec) -> None:
        super().__init__()
        self.conv1 = create_conv2d(spec.in_channels, spec.mid_channels, 1)
        self.bn1 = nn.BatchNorm2d(spec.mid_channels)
        self.conv2 = create_conv2d(
            spec.mid_channels, spec.mid_channels, 3, stride=spec.stride, groups=spec.groups, learned=spec.learned
        )
        self.bn2 = nn.BatchNorm2d(spec.mid_channels)
        self.conv3 = create_conv2d(spec.mid_channels, spec.out_channels, 1)
        self.bn3 = nn.BatchNorm2d(spec.out_channels)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = None
        if spec.has_projection:
            self.downsample = nn.Sequential(
                create_conv2d(spec.in_channels, spec.out_channels, 1, stride=spec.stride),
                nn.BatchNorm2d(spec.out_channels),
            )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        identity = x if self.downsample is None else self.downsample(x)  # (B, out, H/s, W/s)
        out = self.relu(self.bn1(self.conv1(x)))  # (B, mid, H, W)
        out = self.relu(self.bn2(self.conv2(out)))  # (B, mid, H/s, W/s)
        out = self.bn3(self.conv3(out))  # (B, out, H/s, W/s)
        return self.relu(out + identity)


class ResNeXt(nn.Module):
    def __init__(self, net: ResNeXtPlan) -> None:
        super().__init__()
        self.conv1 = create_conv2d(3, net.stem_channels, 7, stride=2)
        self.bn1 = nn.BatchNorm2d(net.stem_channels)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(kernel_size=3, stride=2, padding=1)
        for index, stage in enumerate(net.stages, start=1):
            self.add_module(f"layer{index}", nn.Sequential(*(Bottleneck(spec) for spec in stage)))
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(net.stages[-1][-1].out_channels, net.num_classes)
        init_weights(self)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))  # (B, 64·w, H/4, W/4)
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))  # (B, 2048·w, H/32, W/32)
        return self.fc(torch.flatten(self.avgpool(x), 1))  # (B, classes)

    def fold_sites(self) -> list[FoldSite]:
        """Where each bottleneck's grouped conv2 sits (for :func:`~.flgc.deploy`): between conv1 + bn1
        and bn2 + conv3 of its own block."""
        return [
            FoldSite(block, "conv2", (block.conv1, block.bn1), (block.bn2, block.conv3))
            for stage in (self.layer1, self.layer2, self.layer3, self.layer4)
            for block in stage
        ]


def build(arch_config: ArchConfig) -> ResNeXt:
    return ResNeXt(plan(arch_config))


def export_table(net: ResNeXtPlan) -> str:
    """The ``STAGES`` rows of the standalone builder: one tuple per stage of (in, mid, out, stride,
    groups) per bottleneck."""
    lines = []
    for s, stage in enumerate(net.stages, start=1):
        lines.append(f"    (  # layer{s}: in, mid, out, stride, groups")
        lines += [
            f"        ({b.in_channels}, {b.mid_channels}, {b.out_channels}, {b.stride}, {b.groups}),"
            f"  # layer{s}.{i}, {b.mid_channels // b.groups} channels per group"
            for i, b in enumerate(stage)
        ]
        lines.append("    ),")
    return "\n".join(lines)


# The standalone builder's copy of the classes above (see e2gcsearch.export.template); keep in step.
EXPORT_BODY = '''
EXPANSION = 4
# One row per bottleneck (layerS.N): 1x1 conv in->mid, 3x3 conv mid->mid with `groups` groups and
# `stride`, 1x1 conv mid->out; a 1x1 projection (downsample) when stride != 1 or in != out.
# Channels per group = mid / groups ($grouping).
STAGES = (
$table
)


class Bottleneck(nn.Module):
    def __init__(self, in_channels: int, mid_channels: int, out_channels: int, stride: int, groups: int) -> None:
        super().__init__()
        self.conv1 = conv(in_channels, mid_channels, 1)
        self.bn1 = nn.BatchNorm2d(mid_channels)
        self.conv2 = conv(mid_channels, mid_channels, 3, stride=stride, groups=groups)
        self.bn2 = nn.BatchNorm2d(mid_channels)
        self.conv3 = conv(mid_channels, out_channels, 1)
        self.bn3 = nn.BatchNorm2d(out_channels)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = None
        if stride != 1 or in_channels != out_channels:
            self.downsample = nn.Sequential(conv(in_channels, out_channels, 1, stride=stride),
                                            nn.BatchNorm2d(out_channels))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        identity = x if self.downsample is None else self.downsample(x)  # (B, out, H/stride, W/stride)
        out = self.relu(self.bn1(self.conv1(x)))  # (B, mid, H, W)
        out = self.relu(self.bn2(self.conv2(out)))  # (B, mid, H/stride, W/stride)
        return self.relu(self.bn3(self.conv3(out)) + identity)


class ResNeXt(nn.Module):
    """torchvision's ResNeXt layout: 7x7 stem + max pool, four stages of STAGES, pool, linear."""

    def __init__(self, num_classes: int = NUM_CLASSES) -> None:
        super().__init__()
        self.conv1 = conv(3, STEM_CHANNELS, 7, stride=2)
        self.bn1 = nn.BatchNorm2d(STEM_CHANNELS)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(kernel_size=3, stride=2, padding=1)
        for index, stage in enumerate(STAGES, start=1):
            self.add_module(f"layer{index}", nn.Sequential(*(Bottleneck(*row) for row in stage)))
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(STAGES[-1][-1][2], num_classes)
        init_weights(self)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))  # (B, STEM_CHANNELS, H/4, W/4)
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))  # (B, out of the last stage, H/32, W/32)
        return self.fc(torch.flatten(self.avgpool(x), 1))  # (B, num_classes)


NETWORK = ResNeXt
'''


register_model(
    ModelEntry(
        name="resnext50",
        build=build,
        plan=plan,
        total_stride=32,
        baseline=ArchConfig("resnext50", groups=32),
        description="ResNeXt-50 32x4d: 16 bottlenecks with a grouped 3x3 conv; g=32 is the stock network",
        display_name="ResNeXt-50",
        stages=StagePlan(STAGE_CHANNELS, layer_stage),
        export=ExportRows(EXPORT_BODY, export_table),
        in_paper_tables=True,
    )
)
