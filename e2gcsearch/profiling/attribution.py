"""Per-layer attribution: where a measured step's time and energy go, layer by layer.

``e2gcsearch profile ... --per-layer`` runs the measured step (same network, batch size, mode and
implementation as the measurement) a few more times with timing hooks, waiting for the device at
every edge:

* forward: a hook on every leaf module (conv, BN, ReLU, pooling, linear, ...), and on the model;
* backward: a hook on the autograd node each leaf module's output was made by (the module's one
  operation, e.g. ``ConvolutionBackward0``), run when it is done. Node hooks leave the graph as it
  is, so in-place ReLUs and residual additions run unchanged.

A layer is charged from the end of the previous layer's work to the end of its own (the Python and
autograd bookkeeping between two layers count for the second). Each layer's forward + backward time
is averaged over the steps, as is the whole step; what no layer covers (the loss, ``zero_grad``,
the optimizer-free gradient hand-over after the last node) is the ``rest``. The window's measured energy is then *apportioned*: a layer is given
the window's energy per batch times its share of the step's time. That is an attribution by time,
not a measurement per layer (no meter resolves single kernels), and it is labelled so everywhere.

Time per MAC = (forward + backward time) / (forward MACs of the batch), in picoseconds. A
**cliff** is a grouped conv whose time per MAC is at least :data:`CLIFF_FACTOR` times the median
over the conv and linear layers; for each, the layer is timed alone under every other implementation
and the one that brings it under the cliff line is named (or none, with the best figure).
"""

from __future__ import annotations

import dataclasses
import statistics
import time
from collections.abc import Callable
from typing import Any

import torch
from torch import nn

from ..config import ArchConfig
from ..cost import network_cost
from ..errors import ConfigError
from ..train.runtime import thread_limit
from .implementations import IMPLEMENTATIONS, make_step, prepare
from .layer_timing import LayerTime, LayoutPlan, layer_seconds, plan_layouts
from .results import ProfileResult
from .settings import ProfileConfig, build_model, synchronize, synthetic_batch

CLIFF_FACTOR = 3.0
STEPS = 5  # instrumented steps averaged, after one untimed step


@dataclasses.dataclass(frozen=True)
class Cliff:
    """A grouped conv far slower per MAC than the network's median, and what removes it."""

    layer: str
    ps_per_mac: float
    median_ps_per_mac: float
    alone_ps_per_mac: dict[str, float]  # the layer timed alone under each implementation
    removed_by: str | None

    def line(self) -> str:
        ratio = self.ps_per_mac / self.median_ps_per_mac
        alone = ", ".join(f"{impl} {value:.1f}" for impl, value in self.alone_ps_per_mac.items())
        verdict = f"{self.removed_by} removes it" if self.removed_by else "no implementation here removes it"
        return (
            f"cliff: {self.layer} takes {self.ps_per_mac:.1f} ps/MAC, {ratio:.1f}x the median "
            f"{self.median_ps_per_mac:.1f}; {verdict} (alone, ps/MAC: {alone})"
        )


@dataclasses.dataclass
class Attribution:
    """Where one step's time and the window's energy went, per layer (see the module docstring)."""

    batch_size: int
    impl: str
    mode: str
    step_ms: float  # mean instrumented step
    window_latency_ms: float  # the measurement's latency per batch, without hooks
    window_energy_mj: float  # the measurement's energy per batch (EPF x B)
    backend: str
    is_estimate: bool
    layers: list[LayerTime]
    cliffs: list[Cliff]
    layout_plan: LayoutPlan | None = None

    @property
    def covered_ms(self) -> float:
        return sum(layer.total_ms for layer in self.layers)

    @property
    def rest_ms(self) -> float:
        return self.step_ms - self.covered_ms

    @property
    def covered(self) -> float:
        """The share of the step charged to layers (the rest is outside every layer)."""
        return self.share(self.covered_ms)

    def share(self, milliseconds: float) -> float:
        return milliseconds / self.step_ms if self.step_ms > 0 else 0.0

    def rows(self) -> list[dict[str, Any]]:
        """One row per layer, then the rest; energies apportioned by time share."""
        cliffs = {cliff.layer: cliff for cliff in self.cliffs}
        rows = []
        for layer in self.layers:
            share = self.share(layer.total_ms)
            cliff = cliffs.get(layer.name)
            rows.append(
                {
                    "layer": layer.name,
                    "kind": layer.kind,
                    "group_size": layer.group_size,
                    "forward_ms": layer.forward_ms,
                    "backward_ms": layer.backward_ms,
                    "time_share": share,
                    "energy_mj_apportioned": share * self.window_energy_mj,
                    "macs": layer.macs,
                    "ps_per_mac": layer.ps_per_mac,
                    "note": ""
                    if cliff is None
                    else (f"cliff, {cliff.removed_by} removes it" if cliff.removed_by else "cliff"),
                }
            )
        share = self.share(self.rest_ms)
        rows.append(
            {
                "layer": "(rest)",
                "kind": "loss, zero_grad, after the last backward node",
                "group_size": None,
                "forward_ms": None,
                "backward_ms": None,
                "time_share": share,
                "energy_mj_apportioned": share * self.window_energy_mj,
                "macs": 0,
                "ps_per_mac": None,
                "note": "",
            }
        )
        return rows

    def to_dict(self) -> dict[str, Any]:
        return {
            "batch_size": self.batch_size,
            "impl": self.impl,
            "mode": self.mode,
            "step_ms": self.step_ms,
            "window_latency_ms": self.window_latency_ms,
            "window_energy_mj": self.window_energy_mj,
            "energy_unit": "mJ per batch, apportioned by time share (not measured per layer)",
            "backend": self.backend,
            "is_estimate": self.is_estimate,
            "cliff_factor": CLIFF_FACTOR,
            "rows": self.rows(),
            "cliffs": [dataclasses.asdict(c) | {"line": c.line()} for c in self.cliffs],
            "layout_plan": None
            if self.layout_plan is None
            else dataclasses.asdict(self.layout_plan) | {"line": self.layout_plan.line()},
        }


def _leaves(model: nn.Module) -> list[tuple[str, nn.Module]]:
    return [(name, module) for name, module in model.named_modules() if name and not any(module.children())]


class _Timer:
    """Hooks that charge every moment of the forward and the backward pass to a leaf module.

    A layer is charged from the end of the previous layer's work to the end of its own, so the
    Python between layers (containers, dispatch) counts for the layer it calls, and the autograd
    engine's work between nodes for the node that follows; the forward starts with the model's call,
    the backward with its first node (the loss and ``zero_grad`` stay outside, in the rest)."""

    def __init__(self, model: nn.Module, synchronize: Callable[[], None]) -> None:
        self.sync = synchronize
        self.forward: dict[str, float] = {}
        self.backward: dict[str, float] = {}
        self.mark: float | None = None  # end of the last charged moment; None between the passes
        self.handles = [model.register_forward_pre_hook(self._start), model.register_forward_hook(self._stop)]
        for name, module in _leaves(model):
            self.forward[name] = self.backward[name] = 0.0
            self.handles.append(module.register_forward_hook(self._forward_done(name)))

    def _now(self) -> float:
        self.sync()
        return time.perf_counter()

    def _start(self, module: nn.Module, args: Any) -> None:
        self.mark = self._now()

    def _stop(self, module: nn.Module, args: Any, output: Any) -> None:
        self.mark = None

    def _charge(self, table: dict[str, float], name: str) -> None:
        now = self._now()
        table[name] += now - (self.mark if self.mark is not None else now)
        self.mark = now

    def _forward_done(self, name: str):
        def hook(module: nn.Module, args: Any, output: Any) -> None:
            self._charge(self.forward, name)
            node = getattr(output, "grad_fn", None) if isinstance(output, torch.Tensor) else None
            if node is not None:  # the module's backward: the autograd node its output was made by
                node.register_prehook(self._backward_starts)
                node.register_hook(lambda grads_in, grads_out: self._charge(self.backward, name))

        return hook

    def _backward_starts(self, grads: Any) -> None:
        if self.mark is None:  # the first node of the backward pass
            self.mark = self._now()

    def reset(self) -> None:
        for table in (self.forward, self.backward):
            for name in table:
                table[name] = 0.0

    def remove(self) -> None:
        for handle in self.handles:
            handle.remove()


def time_layers(
    model: nn.Module, step: Callable[[], None], synchronize: Callable[[], None], steps: int = STEPS
) -> tuple[float, dict[str, tuple[float, float]]]:
    """Mean seconds per step, and per leaf module mean (forward, backward) seconds per step, of
    ``step`` (which runs ``model``), after one untimed step."""
    timer = _Timer(model, synchronize)
    try:
        step()
        timer.reset()
        start = timer._now()
        for _ in range(steps):
            step()
        total = timer._now() - start
    finally:
        timer.remove()
    return total / steps, {name: (timer.forward[name] / steps, timer.backward[name] / steps) for name in timer.forward}


def find_cliffs(
    model: nn.Module,
    layers: list[LayerTime],
    shapes: dict[str, tuple[int, ...]],
    impl: str,
    mode: str,
    device: str,
    dtype: torch.dtype,
    synchronize: Callable[[], None],
) -> list[Cliff]:
    """The grouped convs at or above :data:`CLIFF_FACTOR` x the median time per MAC, each timed alone
    under every eager implementation to name the one that removes it."""
    counted = [layer.ps_per_mac for layer in layers if layer.ps_per_mac is not None]
    if not counted:
        return []
    median = statistics.median(counted)
    modules = dict(model.named_modules())
    cliffs = []
    for layer in layers:
        if layer.kind not in ("grouped", "depthwise") or layer.ps_per_mac is None:
            continue
        if layer.ps_per_mac < CLIFF_FACTOR * median:
            continue
        alone = {}
        for candidate in (name for name, spec in IMPLEMENTATIONS.items() if not spec.compiled):
            seconds = layer_seconds(
                modules[layer.name], shapes[layer.name], candidate, mode, device, dtype, synchronize
            )
            alone[candidate] = 1e12 * seconds / layer.macs
        prepare(model, impl, mode)  # the layer's module is the model's: put it back as measured
        fixes = [c for c in alone if c != impl and alone[c] < CLIFF_FACTOR * median]
        cliffs.append(
            Cliff(layer.name, layer.ps_per_mac, median, alone, min(fixes, key=alone.__getitem__) if fixes else None)
        )
    return cliffs


def attribute(
    arch_config: ArchConfig,
    model: nn.Module,
    inputs: torch.Tensor,
    targets: torch.Tensor,
    impl: str,
    mode: str,
    synchronize: Callable[[], None],
    window: dict[str, Any],
) -> Attribution:
    """Per-layer times of ``model`` (prepared as ``impl``) on ``inputs``, the measured window's energy
    apportioned to them, and the cliffs (see the module docstring).

    ``window`` holds the measurement being attributed: ``latency_ms``, ``energy_mj`` (per batch),
    ``backend``, ``is_estimate``, ``resolution``, ``device``.
    """
    if IMPLEMENTATIONS[impl].compiled:
        raise ConfigError(
            "--per-layer cannot time layers inside a compiled graph (inductor fuses them); "
            "use --impl nchw, channels_last or auto with --per-layer"
        )
    batch_size = inputs.shape[0]
    shapes: dict[str, tuple[int, ...]] = {}  # every leaf's input shape, to time a cliff's layer alone

    def record_shape(name: str):
        def hook(module: nn.Module, args: Any) -> None:
            shapes.setdefault(name, tuple(args[0].shape))

        return hook

    handles = [module.register_forward_pre_hook(record_shape(name)) for name, module in _leaves(model)]
    step = make_step(model, inputs, targets, impl, mode)
    try:
        step_s, per_layer = time_layers(model, step, synchronize)
    finally:
        for handle in handles:
            handle.remove()
    costs = {layer.name: layer for layer in network_cost(arch_config, window["resolution"]).layers}
    layers = []
    for name, module in _leaves(model):
        forward_s, backward_s = per_layer[name]
        cost = costs.get(name)
        layers.append(
            LayerTime(
                name,
                cost.kind if cost else type(module).__name__,
                1000 * forward_s,
                1000 * backward_s,
                cost.macs * batch_size if cost else 0,
                cost.group_size if cost and cost.kind in ("grouped", "depthwise") else None,
            )
        )
    cliffs = find_cliffs(model, layers, shapes, impl, mode, window["device"], inputs.dtype, synchronize)
    plan = plan_layouts(model, layers, shapes, impl, mode, window["device"], inputs.dtype, synchronize)
    return Attribution(
        batch_size,
        impl,
        mode,
        1000 * step_s,
        window["latency_ms"],
        window["energy_mj"],
        window["backend"],
        window["is_estimate"],
        layers,
        cliffs,
        plan,
    )


def attribute_profile(result: ProfileResult, config: ProfileConfig, batch_size: int | None = None) -> Attribution:
    """Attribute ``result``'s measurement at ``batch_size`` (default: the largest measured) to its layers,
    with the implementation and mode it was measured with."""
    measured = [b for b in sorted(result.batches) if result.batches[b].status == "ok"]
    if not measured or (batch_size is not None and batch_size not in measured):
        raise ConfigError(
            f"--per-layer needs a measured batch size; measured: {', '.join(map(str, measured)) or 'none'}"
        )
    batch = result.batches[batch_size or measured[-1]]
    device = result.device
    with thread_limit(config.threads):
        model = prepare(build_model(result.arch_config, device, config), batch.impl, config.mode)
        inputs, targets = synthetic_batch(result.arch_config, batch.batch_size, device, config)
        window = {
            "latency_ms": batch.latency_ms,
            "energy_mj": batch.epf_mj * batch.batch_size,
            "backend": result.backend,
            "is_estimate": result.is_estimate,
            "resolution": result.resolution,
            "device": device,
        }
        return attribute(
            result.arch_config, model, inputs, targets, batch.impl, config.mode, lambda: synchronize(device), window
        )
