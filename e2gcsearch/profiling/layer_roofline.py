"""Every conv and linear layer of a network against the device's roofline (``profile --per-layer
--roofline``, ``analyze --roofline``).

Per layer and pass (forward, backward): the achieved FLOP/s (counted FLOPs / measured time), the
roofline bound at the layer's counted arithmetic intensity, and the fraction of the bound reached
(:mod:`.roofline` says which FLOPs and bytes are counted; :mod:`.peaks` how the ceilings are measured).
A layer's time comes from one of two places, named in each row's ``timed``:

* ``in network``: the per-layer attribution's forward and backward times (:mod:`.attribution`), under
  the implementation the network was measured with;
* ``alone``: the layer timed by itself on a random input of its shape (in the network's layout, with
  the input's gradient computed when the network computes it), under every implementation ``--impl``
  can choose that runs layer by layer: ``nchw`` and ``channels_last`` (``auto`` picks one of those;
  ``compile`` fuses layers into one graph, so it has no per-layer time).

Example:
    >>> from e2gcsearch import ArchConfig
    >>> shapes = layer_shapes(ArchConfig("mobilenet_v1", group_size=4, width=0.25, num_classes=10), 2, 32)
    >>> shapes[0].name, shapes[0].input_shape, shapes[0].input_grad, shapes[1].input_grad
    ('stem.0', (2, 3, 32, 32), False, True)
"""

from __future__ import annotations

import copy
import dataclasses
import time
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any

import torch
from torch import nn

from ..config import ArchConfig
from ..cost import network_cost
from ..devices import resolve_device
from ..models import create_model
from ..models.stages import layer_stage
from ..train.layout import SWITCH_MARGIN, to_layout
from ..train.runtime import thread_limit
from .implementations import IMPLEMENTATIONS, layout_of, prepare
from .peaks import DevicePeaks
from .roofline import PassRoofline, combined, layer_traffic, pass_roofline, roofline_seconds
from .settings import DTYPES, ProfileConfig, build_model, synchronize

if TYPE_CHECKING:
    from .attribution import Attribution
    from .results import ProfileResult

PER_LAYER_IMPLS = tuple(name for name, spec in IMPLEMENTATIONS.items() if not spec.compiled)
STEPS = 5  # timed steps of a layer alone, after one untimed step
TRAFFIC = (
    "counted, not measured: FLOPs = 2 x MACs (backward: 2 x MACs each for dX and dW); bytes = compulsory "
    "traffic, every tensor a pass reads or writes (x, W, y forward; dy, x, W, dX, dW backward) once, "
    "at the dtype's size"
)


@dataclasses.dataclass(frozen=True)
class LayerShape:
    """A conv or linear layer as it runs in the network at one batch size (counts per sample)."""

    name: str
    kind: str  # conv | grouped | depthwise | linear
    group_size: int | None  # input channels per group of a grouped or depthwise conv
    groups: int
    kernel: int
    macs: int
    params: int
    in_elements: int
    out_elements: int
    input_shape: tuple[int, ...]
    input_grad: bool  # does the network's backward compute this layer's input gradient (dX)?


def layer_shapes(arch_config: ArchConfig, batch_size: int, resolution: int) -> list[LayerShape]:
    """The conv and linear layers of ``arch_config`` (as deployed), in the order they run, from one
    forward pass on the ``meta`` device (no weights allocated)."""
    costs = {layer.name: layer for layer in network_cost(arch_config, resolution).layers}
    with torch.device("meta"):
        model = create_model(arch_config.deployed()).train()
    seen: dict[str, tuple[tuple[int, ...], bool, int]] = {}

    def record(name: str):
        def hook(module: nn.Module, args: Any, output: torch.Tensor) -> None:
            inputs = args[0]
            seen.setdefault(name, (tuple(inputs.shape), inputs.requires_grad, output[0].numel()))

        return hook

    handles = [
        module.register_forward_hook(record(name))
        for name, module in model.named_modules()
        if isinstance(module, (nn.Conv2d, nn.Linear))
    ]
    model(torch.empty(batch_size, 3, resolution, resolution, device="meta"))
    for handle in handles:
        handle.remove()
    shapes = []
    for name, (shape, input_grad, out_elements) in seen.items():
        cost = costs[name]
        grouped = cost.kind in ("grouped", "depthwise")
        in_elements = int(torch.Size(shape[1:]).numel())
        shapes.append(
            LayerShape(
                name,
                cost.kind,
                cost.group_size if grouped else None,
                cost.groups,
                cost.kernel,
                cost.macs,
                cost.params,
                in_elements,
                out_elements,
                shape,
                input_grad,
            )
        )
    return shapes


@dataclasses.dataclass(frozen=True)
class LayerRoofline:
    """One layer under one implementation against the roofline, forward and backward apart."""

    layer: str
    kind: str
    group_size: int | None
    groups: int
    impl: str
    timed: str  # "in network" or "alone"
    forward: PassRoofline
    backward: PassRoofline | None  # None in infer mode

    @property
    def passes(self) -> list[PassRoofline]:
        return [self.forward] + ([self.backward] if self.backward else [])

    @property
    def measured_s(self) -> float:
        return sum(p.seconds for p in self.passes)

    @property
    def roofline_s(self) -> float:
        """The least time the device allows: each pass's roofline time, added."""
        return roofline_seconds(self.passes)

    @property
    def time_over_roofline(self) -> float:
        """Measured time / roofline time (1 = at the device's limit; 1 / fraction of the bound)."""
        return self.measured_s / self.roofline_s if self.roofline_s > 0 else float("inf")

    @property
    def point(self) -> PassRoofline:
        """The layer's step as one roofline point: all its passes' counts and times added."""
        return combined(self.passes)

    def to_dict(self) -> dict[str, Any]:
        """Flat and JSON-ready: ``fwd_*`` and ``bwd_*`` figures (see :meth:`PassRoofline.to_dict`)."""
        row: dict[str, Any] = {
            "layer": self.layer,
            "kind": self.kind,
            "group_size": self.group_size,
            "groups": self.groups,
            "impl": self.impl,
            "timed": self.timed,
        }
        for prefix, part in (("fwd", self.forward), ("bwd", self.backward)):
            figures = part.to_dict() if part else dict.fromkeys(self.forward.to_dict())
            row |= {f"{prefix}_{key}": value for key, value in figures.items()}
        point = self.point
        return row | {
            "ms": 1000 * self.measured_s,
            "roofline_ms": 1000 * self.roofline_s,
            "time_over_roofline": self.time_over_roofline,
            "step_ai_flop_per_byte": point.ai,
            "step_achieved_gflops": point.achieved_flops_per_s / 1e9,
        }


@dataclasses.dataclass
class RooflineReport:
    """The layers of one network against the roofline of the device they were timed on."""

    peaks: DevicePeaks
    batch_size: int
    mode: str
    rows: list[LayerRoofline]
    traffic: str = TRAFFIC

    def chosen(self, impl: str) -> list[LayerRoofline]:
        """The rows of layers timed alone under ``impl``; ``auto``: per layer the faster of
        :data:`PER_LAYER_IMPLS`, the first kept unless another is 5 % faster (as ``auto`` chooses)."""
        alone = [row for row in self.rows if row.timed == "alone"]
        if impl != "auto":
            return [row for row in alone if row.impl == impl]
        by_layer: dict[str, dict[str, LayerRoofline]] = {}
        for row in alone:
            by_layer.setdefault(row.layer, {})[row.impl] = row
        picked = []
        for options in by_layer.values():
            default = options.get(PER_LAYER_IMPLS[0]) or next(iter(options.values()))
            fastest = min(options.values(), key=lambda row: row.measured_s)
            picked.append(fastest if fastest.measured_s <= (1 - SWITCH_MARGIN) * default.measured_s else default)
        return picked

    def to_dict(self) -> dict[str, Any]:
        return {
            "batch_size": self.batch_size,
            "mode": self.mode,
            "peaks": self.peaks.to_dict(),
            "traffic": self.traffic,
            "units": "ms measured; gflop, mbyte counted; ai in FLOP/byte; achieved and bound in GFLOP/s; "
            "fraction = achieved / bound",
            "rows": [row.to_dict() for row in self.rows],
        }


def roofline_row(
    shape: LayerShape, impl: str, timed: str, seconds: tuple[float, float | None], batch: int, peaks: DevicePeaks
) -> LayerRoofline:
    """``shape``'s layer measured at ``seconds`` (forward, backward or ``None``) over a batch of ``batch``,
    against ``peaks``, its traffic counted at the dtype the peaks were measured in."""
    element_bytes = torch.finfo(DTYPES[peaks.fingerprint.dtype or "float32"]).bits // 8
    forward, backward = layer_traffic(
        shape.macs, shape.params, shape.in_elements, shape.out_elements, batch, element_bytes, shape.input_grad
    )
    ceiling = peaks.ceiling
    return LayerRoofline(
        shape.name,
        shape.kind,
        shape.group_size,
        shape.groups,
        impl,
        timed,
        pass_roofline(seconds[0], forward.flops, forward.bytes, ceiling),
        None if seconds[1] is None else pass_roofline(seconds[1], backward.flops, backward.bytes, ceiling),
    )


def pass_seconds(
    layer: nn.Module,
    shape: LayerShape,
    impl: str,
    mode: str,
    device: str,
    dtype: torch.dtype,
    steps: int = STEPS,
    timer: Callable[[], float] = time.perf_counter,
) -> tuple[float, float | None]:
    """Mean (forward, backward) seconds of a copy of ``layer`` alone under ``impl`` on a random input of
    ``shape.input_shape``; backward ``None`` in infer mode (forward only, under inference mode)."""
    module = prepare(copy.deepcopy(layer), impl, mode)
    layout = layout_of(impl)
    inputs = to_layout(torch.randn(shape.input_shape, device=device, dtype=dtype), layout)
    inputs.requires_grad_(mode == "train" and shape.input_grad)
    sync = lambda: synchronize(device)  # noqa: E731
    forward = backward = 0.0
    for step in range(steps + 1):  # the first step is not timed
        context = torch.inference_mode() if mode == "infer" else torch.enable_grad()
        module.zero_grad(set_to_none=True)
        inputs.grad = None
        sync()
        start = timer()
        with context:
            output = module(inputs)
        sync()
        middle = timer()
        if mode == "train":
            output.backward(to_layout(torch.ones_like(output), layout))
            sync()
        end = timer()
        if step:
            forward, backward = forward + middle - start, backward + end - middle
    return forward / steps, (backward / steps if mode == "train" else None)


def time_alone(
    arch_config: ArchConfig,
    config: ProfileConfig,
    device: str,
    shapes: Iterable[LayerShape],
    impls: tuple[str, ...],
    peaks: DevicePeaks,
    batch_size: int,
) -> list[LayerRoofline]:
    """Each of ``shapes``' layers timed alone under each of ``impls``, against ``peaks``."""
    model = build_model(arch_config, device, config)
    modules = dict(model.named_modules())
    dtype = DTYPES[config.dtype]
    return [
        roofline_row(
            shape,
            impl,
            "alone",
            pass_seconds(modules[shape.name], shape, impl, config.mode, device, dtype),
            batch_size,
            peaks,
        )
        for shape in shapes
        for impl in impls
    ]


def attribution_roofline(
    attribution: Attribution,
    result: ProfileResult,
    config: ProfileConfig,
    peaks: DevicePeaks,
    impls: tuple[str, ...] = PER_LAYER_IMPLS,
) -> RooflineReport:
    """The conv and linear layers of a per-layer attribution (``profile --per-layer``) against the
    roofline: their in-network times under the measured implementation, then each layer timed alone
    under each of ``impls``.

    Args:
        attribution: the :class:`~e2gcsearch.profiling.attribution.Attribution` of ``result``.
        result: the :class:`~e2gcsearch.profiling.ProfileResult` it attributes (network, device, resolution).
        config: how it was measured (dtype, mode, threads).
        peaks: the device's peaks at that dtype and thread count (:func:`.peaks.device_peaks`).
    """
    batch = attribution.batch_size
    shapes = layer_shapes(result.arch_config, batch, result.resolution)
    timed = {layer.name: layer for layer in attribution.layers}
    rows = [
        roofline_row(
            shape,
            attribution.impl,
            "in network",
            (
                timed[shape.name].forward_ms / 1000,
                timed[shape.name].backward_ms / 1000 if config.mode == "train" else None,
            ),
            batch,
            peaks,
        )
        for shape in shapes
        if shape.name in timed
    ]
    with thread_limit(config.threads):
        rows += time_alone(result.arch_config, config, result.device, shapes, impls, peaks, batch)
    return RooflineReport(peaks, batch, config.mode, rows)


def network_roofline(
    arch_config: ArchConfig,
    config: ProfileConfig,
    peaks: DevicePeaks,
    grouped_only: bool = False,
    impls: tuple[str, ...] = PER_LAYER_IMPLS,
) -> RooflineReport:
    """The conv and linear layers of ``arch_config`` (``grouped_only``: its grouped 3x3 convs, those
    ``e2gcsearch analyze`` lists) timed alone under each of ``impls`` at ``config``'s largest batch size
    and resolution, against ``peaks``."""
    device = resolve_device(config.device)
    batch = max(config.batch_sizes)
    shapes = [
        shape
        for shape in layer_shapes(arch_config, batch, config.resolution)
        if not grouped_only or (shape.kernel > 1 and layer_stage(arch_config.arch, shape.name) is not None)
    ]
    with thread_limit(config.threads):
        rows = time_alone(arch_config, config, device, shapes, impls, peaks, batch)
    return RooflineReport(peaks, batch, config.mode, rows)
