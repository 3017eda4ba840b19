"""The text of a standalone model-builder module, written by ``e2gcsearch export --out FILE.py``.

The generated file is ``HEADER + body + FOOTER``: the header and footer below are the same for every
network; the body, the network's classes as text, is its registry entry's
:attr:`~e2gcsearch.models.registry.ExportRows.body` and lives in the network's own file next to the
code it copies (``models/mobilenet_v1.py``, ``models/resnext.py``). The file imports only torch. Its
module names and state-dict keys equal those of e2gcsearch's own networks, so the same weights load
into both (a network built by torchvision or a user's factory is written by ``models/rewrite.py`` as
that constructor call plus its regrouping, and imports that package too); ``tests/test_export.py`` checks that in a process where e2gcsearch is not importable.
The bodies are therefore deliberate copies of the models, kept as text.
"""

from __future__ import annotations

HEADER = '''\
"""$title

$summary

Usage (needs $needs):

    from $module import build_model
    model = build_model()                    # freshly initialised, as e2gcsearch initialises it
    model = build_model(weights="$weights")  # a state dict or an e2gcsearch training checkpoint

Module names and state-dict keys equal those of $keys_of, so its weights load as is.
Exported by e2gcsearch $version.
"""

from __future__ import annotations

import torch
from torch import nn
$imports
# The network as an e2gcsearch ArchConfig: e2gcsearch.ArchConfig.from_dict(ARCH_CONFIG) rebuilds it there.
ARCH_CONFIG = $arch_config
NUM_CLASSES = $num_classes
STEM_CHANNELS = $stem_channels
# How the search ran this network when it measured it: $measured_as
MEMORY_FORMAT = $memory_format
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


def build_model(num_classes: int = NUM_CLASSES, weights: str | None = None,
                memory_format: torch.memory_format = MEMORY_FORMAT) -> nn.Module:
    """The network of this file in the memory layout it was measured in; ``weights`` loads a state dict
    or checkpoint (strict key match).

    Measured as: $measured_as. Give it inputs in the same layout,
    ``x.contiguous(memory_format=MEMORY_FORMAT)``, so that it runs as it was measured.
    """
    model = NETWORK(num_classes)
    if weights is not None:
        model.load_state_dict(load_state_dict(weights))
    return model.to(memory_format=memory_format)


if __name__ == "__main__":
    net = build_model().eval()
    print(f"{sum(p.numel() for p in net.parameters()):,} parameters (BN included);",
          "output", tuple(net(torch.zeros(1, 3, 224, 224)).shape))
'''
