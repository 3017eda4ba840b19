"""Layer times for ``profile --per-layer``: :class:`LayerTime` (one row), one layer timed alone, and
what that says about layouts: would choosing the memory layout per conv layer beat one layout for
the whole network?

:func:`layer_seconds` times a layer's forward (+ backward) on a random input of its shape under one
implementation; :func:`plan_layouts` finds the cheapest layout per conv layer along the forward order,
conversions between layouts included, against the network's own layout. On MobileNet-V1 (CPU) the
best plan saves under 5 %, so one layout per network is kept (:data:`PLAN_MARGIN`).

Example:
    >>> layer = torch.nn.Conv2d(8, 8, 3, padding=1, groups=2)
    >>> layer_seconds(layer, (2, 8, 16, 16), "nchw", "train", "cpu", torch.float32, lambda: None) > 0
    True
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable

import torch
from torch import nn

from ..train.layout import LAYOUTS, memory_format
from .implementations import IMPLEMENTATIONS, prepare

LAYER_STEPS = 5  # steps of one layer alone, per implementation or layout


@dataclasses.dataclass(frozen=True)
class LayerTime:
    """One leaf module's mean time per step (ms), and its forward MACs for the whole batch."""

    name: str
    kind: str  # conv | grouped | depthwise | linear, else the module's class name
    forward_ms: float
    backward_ms: float
    macs: int
    group_size: int | None = None

    @property
    def total_ms(self) -> float:
        return self.forward_ms + self.backward_ms

    @property
    def ps_per_mac(self) -> float | None:
        return 1e9 * self.total_ms / self.macs if self.macs else None


def layer_seconds(
    layer: nn.Module,
    shape: tuple[int, ...],
    impl: str,
    mode: str,
    device: str,
    dtype: torch.dtype,
    synchronize: Callable[[], None],
) -> float:
    """Seconds per forward (+ backward in train mode) of ``layer`` alone on a random input of ``shape``."""
    module = prepare(layer, impl, mode)
    inputs = torch.randn(shape, device=device, dtype=dtype, requires_grad=mode == "train")

    def run() -> None:
        if mode == "infer":
            with torch.inference_mode():
                module(inputs)
            return
        module.zero_grad(set_to_none=True)
        module(inputs).sum().backward()

    run()
    synchronize()
    start = time.perf_counter()
    for _ in range(LAYER_STEPS):
        run()
    synchronize()
    return (time.perf_counter() - start) / LAYER_STEPS


@dataclasses.dataclass(frozen=True)
class LayoutPlan:
    """Would choosing the layout per layer beat one layout for the network? (conv layers timed alone
    in each layout; a change of layout between two of them costs converting the
    activation, forward, and its gradient, backward)."""

    network_layout: str
    network_ms: float  # the conv layers alone, all in the network's layout
    mixed_ms: float  # the best per-layer plan, conversions included
    conversions: int
    conversion_ms: float
    layouts: dict[str, str]  # layer -> layout of the best plan

    @property
    def saving(self) -> float:
        return 1 - self.mixed_ms / self.network_ms if self.network_ms > 0 else 0.0

    def line(self) -> str:
        verdict = (
            "it would pay"
            if self.saving >= PLAN_MARGIN
            else f"below {100 * PLAN_MARGIN:.0f} %, so one layout per network"
        )
        return (
            f"per-layer layout: the best plan takes {self.mixed_ms:.2f} ms against {self.network_ms:.2f} ms in "
            f"{self.network_layout} for the conv layers alone ({self.conversions} conversions, "
            f"{self.conversion_ms:.2f} ms): saves {100 * self.saving:.1f} %; {verdict}"
        )


PLAN_MARGIN = 0.05


def plan_layouts(
    model: nn.Module,
    layers: list[LayerTime],
    shapes: dict[str, tuple[int, ...]],
    impl: str,
    mode: str,
    device: str,
    dtype: torch.dtype,
    synchronize: Callable[[], None],
) -> LayoutPlan:
    """The cheapest layout per conv layer along the forward order (a chain: residual branches
    are taken in the order they run), against the network's one layout (dynamic programming over
    the two layouts)."""
    modules = dict(model.named_modules())
    counted = [layer for layer in layers if layer.macs and len(shapes.get(layer.name, ())) == 4]
    alone = {
        layer.name: {
            layout: 1000
            * layer_seconds(modules[layer.name], shapes[layer.name], layout, mode, device, dtype, synchronize)
            for layout in LAYOUTS
        }
        for layer in counted
    }
    prepare(model, impl, mode)  # the layers are the model's: put them back as measured
    convert = {
        layer.name: (1 + (mode == "train")) * 1000 * _conversion_seconds(shapes[layer.name], device, dtype, synchronize)
        for layer in counted
    }
    own = IMPLEMENTATIONS[impl].layout
    best = {layout: (0.0, 0, 0.0, {}) for layout in LAYOUTS}  # cost, conversions, conversion ms, plan
    for layer in counted:
        step = {}
        for layout in LAYOUTS:
            options = []
            for previous, (cost, count, spent, plan) in best.items():
                change = convert[layer.name] if previous != layout and plan else 0.0
                options.append(
                    (
                        cost + change + alone[layer.name][layout],
                        count + (change > 0),
                        spent + change,
                        {**plan, layer.name: layout},
                    )
                )
            step[layout] = min(options, key=lambda option: option[0])
        best = step
    cost, count, spent, plan = min(best.values(), key=lambda option: option[0])
    return LayoutPlan(own, sum(alone[layer.name][own] for layer in counted), cost, count, spent, plan)


def _conversion_seconds(
    shape: tuple[int, ...], device: str, dtype: torch.dtype, synchronize: Callable[[], None]
) -> float:
    """Seconds to convert an activation of ``shape`` between the layouts (the mean of both ways)."""
    tensor = torch.randn(shape, device=device, dtype=dtype)
    other = tensor.contiguous(memory_format=memory_format("channels_last"))
    synchronize()
    start = time.perf_counter()
    for _ in range(LAYER_STEPS):
        tensor.contiguous(memory_format=memory_format("channels_last"))
        other.contiguous(memory_format=memory_format("nchw"))
    synchronize()
    return (time.perf_counter() - start) / (2 * LAYER_STEPS)
