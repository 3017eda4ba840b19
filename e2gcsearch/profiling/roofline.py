"""The roofline model of a layer: the bound the device sets on it, and the fraction of that bound a
measured layer reaches. Pure arithmetic; the peaks come from :mod:`.peaks`, the times from
:mod:`.layer_roofline`.

A kernel that does ``flops`` floating-point operations and moves ``bytes`` to and from memory has the
arithmetic intensity AI = flops / bytes (FLOP/byte). On a device with a peak compute rate P (FLOP/s)
and a memory bandwidth W (byte/s) it can run at most at

    bound = min(P, AI x W)  FLOP/s        (Williams, Waterman, Patterson, CACM 2009)

so it takes at least ``roofline time = flops / bound = max(flops / P, bytes / W)`` seconds. A layer
measured at ``seconds`` achieves ``flops / seconds``; its **fraction** of the bound is
``achieved / bound = roofline time / seconds`` (1 = the layer runs as fast as the device allows).

**What is counted** (nothing here is read from a hardware counter). FLOPs = 2 x MACs (a multiply and
an add), MACs counted as :mod:`e2gcsearch.cost` counts them, for the whole batch. Bytes are the
*compulsory* traffic: every tensor a pass must read or write crosses memory exactly once, at the
measured dtype's size, as if the caches held everything else. For a conv or linear layer with batch
size B, per-sample input and output elements ``in`` and ``out`` and ``P`` weights:

    forward             reads x and W, writes y:                       (B*in + B*out + P) elements
    backward, dX        reads dy and W, writes dX                      (B*out + P + B*in)
    backward, dW        reads x and dy, writes dW                      (B*in + B*out + P)
    backward, both      each tensor once: dy, x, W read; dX, dW written  (B*out + 2*B*in + 2*P)

with 2 x MACs FLOPs for the forward pass and for each of dX and dW (so 4 x MACs for a backward that
computes both; a layer whose input needs no gradient, such as a network's first conv, computes dW
only). Biases and the BN, ReLU and pooling between layers are not counted (as in :mod:`~e2gcsearch.cost`).
Real kernels move more (im2col buffers, cache misses, layout conversions), which is part of what
keeps them under the bound.

Example:
    >>> ceiling = Ceiling(flops_per_s=100e9, bytes_per_s=10e9)          # 100 GFLOP/s, 10 GB/s
    >>> point = pass_roofline(seconds=0.04, flops=0.4e9, bytes=0.2e9, ceiling=ceiling)
    >>> point.ai, point.bound_flops_per_s / 1e9, point.limit            # 2 FLOP/byte: memory-bound
    (2.0, 20.0, 'memory')
    >>> point.achieved_flops_per_s / 1e9, point.roofline_s, point.fraction   # 10 of 20 GFLOP/s
    (10.0, 0.02, 0.5)
"""

from __future__ import annotations

import dataclasses
from typing import Any


@dataclasses.dataclass(frozen=True)
class Ceiling:
    """The device's two ceilings: peak compute (FLOP/s) and memory bandwidth (byte/s)."""

    flops_per_s: float
    bytes_per_s: float

    def __post_init__(self) -> None:
        if not (self.flops_per_s > 0 and self.bytes_per_s > 0):
            raise ValueError(
                f"a roofline needs a peak FLOP/s and a bandwidth above zero, got "
                f"{self.flops_per_s!r} FLOP/s and {self.bytes_per_s!r} byte/s"
            )

    @property
    def ridge(self) -> float:
        """The arithmetic intensity (FLOP/byte) where the two ceilings meet: below it a kernel is
        memory-bound, above it compute-bound."""
        return self.flops_per_s / self.bytes_per_s

    def bound(self, ai: float) -> float:
        """min(peak, AI x bandwidth), in FLOP/s, at arithmetic intensity ``ai`` (FLOP/byte)."""
        return min(self.flops_per_s, ai * self.bytes_per_s)

    def seconds(self, flops: float, bytes: float) -> float:
        """The roofline time of ``flops`` FLOPs moving ``bytes`` bytes: max(flops / peak, bytes / bandwidth)."""
        return max(flops / self.flops_per_s, bytes / self.bytes_per_s)


@dataclasses.dataclass(frozen=True)
class Traffic:
    """What one pass of a layer does, counted (see the module docstring): FLOPs and bytes."""

    flops: float
    bytes: float

    @property
    def ai(self) -> float:
        """Arithmetic intensity in FLOP/byte."""
        return self.flops / self.bytes if self.bytes else float("inf")

    def __add__(self, other: Traffic) -> Traffic:
        return Traffic(self.flops + other.flops, self.bytes + other.bytes)


def layer_traffic(
    macs: int,
    params: int,
    in_elements: int,
    out_elements: int,
    batch_size: int,
    element_bytes: int,
    input_grad: bool = True,
) -> tuple[Traffic, Traffic]:
    """(forward, backward) traffic of one conv or linear layer over a batch, counted as the module
    docstring says. ``macs``, ``in_elements`` and ``out_elements`` are per sample; ``params`` the
    weight elements; ``input_grad`` whether the backward computes the input's gradient (dX)."""
    batch_in, batch_out = batch_size * in_elements, batch_size * out_elements
    forward = Traffic(2 * macs * batch_size, element_bytes * (batch_in + batch_out + params))
    if input_grad:  # dy, x and W read; dX and dW written
        backward = Traffic(4 * macs * batch_size, element_bytes * (batch_out + 2 * batch_in + 2 * params))
    else:  # dW only: x and dy read, dW written
        backward = Traffic(2 * macs * batch_size, element_bytes * (batch_in + batch_out + params))
    return forward, backward


@dataclasses.dataclass(frozen=True)
class PassRoofline:
    """One pass of one layer against the roofline: measured seconds, counted FLOPs and bytes."""

    seconds: float  # measured
    flops: float  # counted
    bytes: float  # counted
    ceiling: Ceiling

    @property
    def ai(self) -> float:
        """Counted arithmetic intensity, FLOP/byte."""
        return Traffic(self.flops, self.bytes).ai

    @property
    def achieved_flops_per_s(self) -> float:
        """Counted FLOPs / measured seconds."""
        return self.flops / self.seconds if self.seconds > 0 else float("inf")

    @property
    def bound_flops_per_s(self) -> float:
        """min(peak, AI x bandwidth) at this pass's counted AI."""
        return self.ceiling.bound(self.ai)

    @property
    def limit(self) -> str:
        """``memory`` when the bandwidth ceiling sets the bound, else ``compute``."""
        return "memory" if self.ai < self.ceiling.ridge else "compute"

    @property
    def roofline_s(self) -> float:
        """The least time the device allows for this pass: max(flops / peak, bytes / bandwidth)."""
        return self.ceiling.seconds(self.flops, self.bytes)

    @property
    def fraction(self) -> float:
        """achieved / bound (= roofline time / measured time); 1 is the device's limit."""
        return self.roofline_s / self.seconds if self.seconds > 0 else float("inf")

    def to_dict(self) -> dict[str, Any]:
        return {
            "ms": 1000 * self.seconds,
            "gflop": self.flops / 1e9,
            "mbyte": self.bytes / 1e6,
            "ai_flop_per_byte": self.ai,
            "achieved_gflops": self.achieved_flops_per_s / 1e9,
            "bound_gflops": self.bound_flops_per_s / 1e9,
            "limit": self.limit,
            "roofline_ms": 1000 * self.roofline_s,
            "fraction": self.fraction,
        }


def pass_roofline(seconds: float, flops: float, bytes: float, ceiling: Ceiling) -> PassRoofline:
    """A pass measured at ``seconds`` that does ``flops`` FLOPs and moves ``bytes`` bytes (counted),
    against ``ceiling`` (see the module docstring for the arithmetic)."""
    if not seconds >= 0:
        raise ValueError(f"a measured time is a duration in seconds >= 0, got {seconds!r}")
    return PassRoofline(float(seconds), float(flops), float(bytes), ceiling)


def combined(passes: list[PassRoofline]) -> PassRoofline:
    """Several passes (forward and backward) as one: their seconds, FLOPs and bytes added. Its roofline
    time is that of the summed counts; the sum of the passes' own roofline times is at least that
    (each pass is bounded on its own), see :func:`roofline_seconds`."""
    return PassRoofline(
        sum(p.seconds for p in passes), sum(p.flops for p in passes), sum(p.bytes for p in passes), passes[0].ceiling
    )


def roofline_seconds(passes: list[PassRoofline]) -> float:
    """The least time of passes that run one after the other: the sum of each one's roofline time."""
    return sum(p.roofline_s for p in passes)
