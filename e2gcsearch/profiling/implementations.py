"""Implementations of the measured step, and the measured step itself in each mode.

The energy a network costs depends on the kernels that run it, not only on its architecture: on
this project's CPU a grouped 3x3 conv with G = 2 takes 2.6x longer in PyTorch's default NCHW kernel
than in the NHWC one. So every measurement names its implementation:

    nchw           PyTorch's default contiguous NCHW tensors and kernels (the paper's setting)
    channels_last  weights and activations in NHWC (``torch.channels_last``): oneDNN / cuDNN NHWC kernels
    compile        ``torch.compile`` (inductor) of the NCHW network. The first step of every batch size
                   compiles; it runs before the warm-up, its time is reported apart (``compile_s``)
                   and never falls inside a measured window
    auto           time the candidates of :data:`AUTO_CANDIDATES` for a few steps per batch size
                   (:func:`e2gcsearch.train.layout.choose_fastest`: interleaved rounds, medians, the
                   default nchw kept unless another is 5 % faster) and measure with the one kept

``compile`` is not an ``auto`` candidate: compiling the forward and backward of a network takes
30-60 s on a CPU, more than a search trial's whole measurement; ask for it by name.

Adding an implementation is one entry in :data:`IMPLEMENTATIONS` (and, to let ``auto`` try it, in
:data:`AUTO_CANDIDATES`).

Modes:
    train  the paper's EPF step: ``zero_grad`` + forward + cross-entropy + backward, train mode,
           no optimizer step
    infer  what a deployed model costs: one forward pass in eval mode under ``torch.inference_mode()``
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import nn

from ..train.layout import Choice, apply_layout, choose_fastest, to_layout


@dataclasses.dataclass(frozen=True)
class Implementation:
    """How a network runs: the memory layout of its tensors, and whether it is compiled."""

    name: str
    layout: str  # "nchw" or "channels_last"
    compiled: bool = False
    summary: str = ""


IMPLEMENTATIONS: dict[str, Implementation] = {
    "nchw": Implementation("nchw", "nchw", summary="PyTorch default, contiguous NCHW"),
    "channels_last": Implementation("channels_last", "channels_last", summary="NHWC (torch.channels_last)"),
    "compile": Implementation("compile", "nchw", compiled=True, summary="torch.compile (inductor), NCHW"),
}
AUTO = "auto"
IMPL_CHOICES = (*IMPLEMENTATIONS, AUTO)
AUTO_CANDIDATES = ("nchw", "channels_last")  # the first is the default auto keeps unless beaten
MODES = ("train", "infer")
STEPS = {
    "train": "zero_grad + forward + cross-entropy + backward, train mode, no optimizer step",
    "infer": "forward only, eval mode, torch.inference_mode()",
}


def layout_of(impl: str) -> str:
    """The memory layout an implementation runs in (``auto`` has none until it has chosen)."""
    return IMPLEMENTATIONS[impl].layout if impl in IMPLEMENTATIONS else impl


def prepare(model: nn.Module, impl: str, mode: str) -> nn.Module:
    """``model`` set up to run as ``impl`` in ``mode`` (layout converted in place; compiled for
    ``compile``: the returned module compiles on its first call)."""
    implementation = IMPLEMENTATIONS[impl]
    model = apply_layout(model, implementation.layout)
    model.train(mode == "train")
    if implementation.compiled:
        return torch.compile(model, dynamic=False)  # one static graph per batch size
    return model


def make_step(
    model: nn.Module, inputs: torch.Tensor, targets: torch.Tensor, impl: str, mode: str
) -> Callable[[], None]:
    """The measured step of ``mode`` on inputs laid out for ``impl`` (see the module docstring)."""
    inputs = to_layout(inputs, layout_of(impl))
    if mode == "infer":

        def infer() -> None:
            with torch.inference_mode():
                model(inputs)

        return infer

    def train() -> None:
        model.zero_grad(set_to_none=True)
        logits = model(inputs)  # (B, classes)
        F.cross_entropy(logits.float(), targets).backward()

    return train


def compile_first_step(step: Callable[[], None], synchronize: Callable[[], None]) -> float:
    """Run the first step of a compiled model, which compiles it; the seconds it took (reported as
    ``compile_s``, outside every window)."""
    start = time.perf_counter()
    step()
    synchronize()
    return time.perf_counter() - start


CALIBRATION_STEPS = 2  # timed steps per candidate and round, after one untimed step


def calibrate(
    candidates: tuple[str, ...],
    step_for: Callable[[str], Callable[[], None]],
    synchronize: Callable[[], None],
    steps: int = CALIBRATION_STEPS,
    timer: Callable[[], float] = time.perf_counter,
) -> Choice:
    """``auto``: time every candidate's step (``step_for(impl)`` sets the network up as ``impl`` and
    returns its step) and keep the fastest by :func:`~e2gcsearch.train.layout.choose_fastest`."""

    def seconds_per_step(impl: str) -> float:
        step = step_for(impl)
        step()  # the first step after a layout change pays for the conversion
        synchronize()
        start = timer()
        for _ in range(steps):
            step()
        synchronize()
        return (timer() - start) / steps

    return choose_fastest(candidates, seconds_per_step)
