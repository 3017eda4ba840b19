"""Cost model: parameters, MACs, activations and arithmetic intensity, per layer and per network.

Counting conventions (those of the E2GC paper, Tables III/IV):
    * MACs: conv and linear layers only. conv: out_elements · (C_in / groups) · k_h · k_w;
      linear: in_features · out_features. BN, ReLU, pooling, additions and biases are not counted.
    * params: conv + linear weights and biases (the models' convs have no bias, so this is the conv
      and FC weights plus the FC bias). BN parameters are reported apart (``bn_params``).
    * activations: per layer, input elements + output elements (batch size 1); the network figure is
      the sum over conv and linear layers.
    * AI (arithmetic intensity) = MACs / (params + activations).

Shapes come from one forward pass on the ``meta`` device, so no weights are allocated and the
count of ResNeXt-50 at 224x224 takes milliseconds.

FLGC is counted as deployed (:func:`e2gcsearch.models.deploy`), never as its masked dense training
form: balanced FLGC g is the grouped network FgGC g builds (its channels merely permuted), so it has
exactly FgGC g's params and MACs; uneven FLGC depends on the groups it learned, so count the deployed
trained model with :func:`model_cost`.

Example:
    >>> from e2gcsearch import ArchConfig, network_cost
    >>> cost = network_cost(ArchConfig("mobilenet_v1", group_size=1), resolution=224)
    >>> cost.params, cost.macs
    (4210088, 568740352)
"""

from __future__ import annotations

import dataclasses
import functools
from typing import Any

import torch
from torch import nn

from .config import ArchConfig
from .models import check_resolution, create_model, deploy, load_structure


@dataclasses.dataclass(frozen=True)
class LayerCost:
    name: str
    kind: str  # conv | grouped | depthwise | linear
    in_channels: int
    out_channels: int
    kernel: int
    stride: int
    groups: int
    group_size: int  # input channels per group
    out_h: int
    out_w: int
    macs: int
    params: int
    activations: int

    @property
    def ai(self) -> float:
        """Arithmetic intensity: MACs / (params + activations)."""
        return self.macs / (self.params + self.activations)

    def to_dict(self) -> dict[str, Any]:
        return {**dataclasses.asdict(self), "ai": self.ai}


@dataclasses.dataclass(frozen=True)
class NetworkCost:
    arch_config: ArchConfig
    resolution: int
    params: int
    bn_params: int
    macs: int
    activations: int
    layers: tuple[LayerCost, ...]

    @property
    def ai(self) -> float:
        return self.macs / (self.params + self.activations)

    def summary(self) -> dict[str, Any]:
        """Whole-network figures as a flat, JSON-ready dict."""
        return {
            "arch": self.arch_config.arch,
            "module": self.arch_config.module,
            "value": self.arch_config.grouping_value,
            "width": self.arch_config.width,
            "resolution": self.resolution,
            "classes": self.arch_config.num_classes,
            "params": self.params,
            "macs": self.macs,
            "activations": self.activations,
            "ai": self.ai,
            "bn_params": self.bn_params,
        }


def _conv_kind(conv: nn.Conv2d) -> str:
    if conv.groups == 1:
        return "conv"
    if conv.groups == conv.in_channels:
        return "depthwise"
    return "grouped"


def _layer_cost(name: str, module: nn.Module, inp: torch.Tensor, out: torch.Tensor) -> LayerCost:
    params = sum(p.numel() for p in module.parameters(recurse=False))
    activations = inp[0].numel() + out[0].numel()  # batch size 1: one sample in, one out
    if isinstance(module, nn.Linear):
        return LayerCost(
            name,
            "linear",
            module.in_features,
            module.out_features,
            1,
            1,
            1,
            module.in_features,
            1,
            1,
            module.in_features * module.out_features,
            params,
            activations,
        )
    kernel_h, kernel_w = module.kernel_size
    out_h, out_w = out.shape[-2:]
    group_size = module.in_channels // module.groups
    macs = out[0].numel() * group_size * kernel_h * kernel_w
    return LayerCost(
        name,
        _conv_kind(module),
        module.in_channels,
        module.out_channels,
        kernel_h,
        module.stride[0],
        module.groups,
        group_size,
        int(out_h),
        int(out_w),
        int(macs),
        params,
        int(activations),
    )


def _strip_batchnorm(model: nn.Module) -> None:
    for parent in list(model.modules()):
        for child_name, child in parent.named_children():
            if isinstance(child, nn.BatchNorm2d):
                setattr(parent, child_name, nn.Identity())


@functools.lru_cache(maxsize=256)
def network_cost(arch_config: ArchConfig, resolution: int = 224) -> NetworkCost:
    """Count params, MACs, activations and AI of ``arch_config`` (as deployed) at ``resolution`` x ``resolution``."""
    check_resolution(arch_config.arch, resolution)
    with torch.device("meta"):
        model = create_model(arch_config.deployed()).eval()
    return model_cost(model, arch_config, resolution)


def model_cost(model: nn.Module, arch_config: ArchConfig, resolution: int = 224) -> NetworkCost:
    """Count the built ``model`` of ``arch_config`` (e.g. a deployed uneven FLGC network); its layers
    are replaced in place (BN by identities), so pass a copy, or a model built on the ``meta`` device."""
    bn_params = sum(p.numel() for m in model.modules() if isinstance(m, nn.BatchNorm2d) for p in m.parameters())
    _strip_batchnorm(model)  # shape-preserving; saves most of the meta forward's time
    layers: list[LayerCost] = []
    handles = []
    for name, module in model.named_modules():
        if isinstance(module, (nn.Conv2d, nn.Linear)):

            def hook(mod: nn.Module, args: tuple, out: torch.Tensor, name: str = name) -> None:
                layers.append(_layer_cost(name, mod, args[0], out))

            handles.append(module.register_forward_hook(hook))
    device = next(model.parameters()).device
    with torch.no_grad():
        model.eval()(torch.empty(1, 3, resolution, resolution, device=device))
    for handle in handles:
        handle.remove()
    return NetworkCost(
        arch_config=arch_config,
        resolution=resolution,
        params=sum(layer.params for layer in layers),
        bn_params=bn_params,
        macs=sum(layer.macs for layer in layers),
        activations=sum(layer.activations for layer in layers),
        layers=tuple(layers),
    )


def learned_cost(arch_config: ArchConfig, structure: dict[str, Any], resolution: int = 224) -> NetworkCost:
    """Cost of FLGC ``arch_config`` deployed with the groups it learned (``TrainResult.structure``): the
    only way to count uneven FLGC, whose group sizes, and so MACs, come from training."""
    with torch.random.fork_rng(devices=[]):  # the weights are irrelevant; leave the caller's RNG alone
        model = create_model(arch_config)
    load_structure(model, structure)
    return model_cost(deploy(model, inplace=True), arch_config, resolution)


def learned_cost_line(arch_config: ArchConfig, structure: dict[str, Any], resolution: int = 224) -> str:
    """One sentence: what the trained FLGC network costs deployed, against the fixed-group network with its g/G."""
    learned = learned_cost(arch_config, structure, resolution)
    fixed = network_cost(arch_config.replace(module=None), resolution)
    form = (
        "one conv per learned group (uneven sizes)"
        if arch_config.uneven
        else "a standard grouped conv, channels permuted into the 1x1 convs"
    )
    return (
        f"FLGC deployed as {form}: {learned.macs:,} MACs, {learned.params:,} params at {resolution} px; "
        f"{fixed.arch_config.module} {fixed.arch_config.grouping} has {fixed.macs:,} MACs, {fixed.params:,} params"
    )
