"""The text of a standalone model-builder module, written by ``e2gcsearch export --out FILE.py``.

The generated file imports only torch. Its module names and state-dict keys equal those of
e2gcsearch's own networks (``models/mobilenet_v1.py``, ``models/resnext.py``), so the same weights
load into both; ``tests/test_export.py`` checks that in a process where e2gcsearch is not importable.
The code below is therefore a deliberate copy of the models, kept as text.
"""

from __future__ import annotations

HEADER = '''\
"""$title

$summary

Usage (needs only torch):

    from $module import build_model
    model = build_model()                    # freshly initialised, as e2gcsearch initialises it
    model = build_model(weights="$weights")  # a state dict or an e2gcsearch training checkpoint

Module names and state-dict keys equal those of e2gcsearch's own $family, so its weights load as is.
Exported by e2gcsearch $version.
"""

from __future__ import annotations

import torch
from torch import nn

# The network as an e2gcsearch ArchConfig: e2gcsearch.ArchConfig.from_dict(ARCH_CONFIG) rebuilds it there.
ARCH_CONFIG = $arch_config
NUM_CLASSES = $num_classes
STEM_CHANNELS = $stem_channels
'''

MOBILENET = '''
# One row per module (features.N): 3x3 conv in->in with `groups` groups and `stride`, then 1x1 conv
# in->out, each followed by BN + ReLU. Channels per group = in / groups ($grouping).
MODULES = (
    # in, out, stride, groups
$table
)


class GroupedModule(nn.Module):
    """3x3 grouped conv + BN + ReLU, then 1x1 conv + BN + ReLU."""

    def __init__(self, in_channels: int, out_channels: int, stride: int, groups: int) -> None:
        super().__init__()
        self.conv_grouped = conv(in_channels, in_channels, 3, stride=stride, groups=groups)
        self.bn_grouped = nn.BatchNorm2d(in_channels)
        self.conv_pointwise = conv(in_channels, out_channels, 1)
        self.bn_pointwise = nn.BatchNorm2d(out_channels)
        self.relu = nn.ReLU(inplace=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.relu(self.bn_grouped(self.conv_grouped(x)))  # (B, in, H/stride, W/stride)
        return self.relu(self.bn_pointwise(self.conv_pointwise(x)))  # (B, out, H/stride, W/stride)


class MobileNetV1(nn.Module):
    """Stem 3x3 conv (stride 2) -> the modules of MODULES -> global average pool -> linear classifier."""

    def __init__(self, num_classes: int = NUM_CLASSES) -> None:
        super().__init__()
        self.stem = nn.Sequential(conv(3, STEM_CHANNELS, 3, stride=2), nn.BatchNorm2d(STEM_CHANNELS),
                                  nn.ReLU(inplace=True))
        self.features = nn.Sequential(*(GroupedModule(*row) for row in MODULES))
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Linear(MODULES[-1][1], num_classes)
        init_weights(self)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.features(self.stem(x))  # (B, MODULES[-1][1], H/32, W/32)
        return self.classifier(torch.flatten(self.pool(x), 1))  # (B, num_classes)


NETWORK = MobileNetV1
'''

RESNEXT = '''
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

FOOTER = '''

def conv(in_channels: int, out_channels: int, kernel_size: int, stride: int = 1, groups: int = 1) -> nn.Conv2d:
    """Every conv of the network: bias-free, 'same' padding, any number of groups."""
    return nn.Conv2d(in_channels, out_channels, kernel_size, stride=stride, padding=kernel_size // 2,
                     groups=groups, bias=False)


def init_weights(model: nn.Module) -> None:
    """He init for convs (fan-out), unit BN, small normal for the classifier (as torchvision)."""
    for module in model.modules():
        if isinstance(module, nn.Conv2d):
            nn.init.kaiming_normal_(module.weight, mode="fan_out", nonlinearity="relu")
        elif isinstance(module, nn.BatchNorm2d):
            nn.init.ones_(module.weight)
            nn.init.zeros_(module.bias)
        elif isinstance(module, nn.Linear):
            nn.init.normal_(module.weight, 0.0, 0.01)
            nn.init.zeros_(module.bias)


def load_state_dict(path: str) -> dict[str, torch.Tensor]:
    """Weights from ``path``: a plain state dict, or a checkpoint keeping it under "model"/"state_dict"."""
    state = torch.load(path, map_location="cpu", weights_only=True)
    for key in $checkpoint_keys:
        if isinstance(state, dict) and isinstance(state.get(key), dict):
            state = state[key]
            break
    return {name.removeprefix("module."): value for name, value in state.items()}


def build_model(num_classes: int = NUM_CLASSES, weights: str | None = None) -> nn.Module:
    """The network of this file; ``weights`` loads a state dict or checkpoint (strict key match)."""
    model = NETWORK(num_classes)
    if weights is not None:
        model.load_state_dict(load_state_dict(weights))
    return model


if __name__ == "__main__":
    net = build_model().eval()
    print(f"{sum(p.numel() for p in net.parameters()):,} parameters (BN included);",
          "output", tuple(net(torch.zeros(1, 3, 224, 224)).shape))
'''
