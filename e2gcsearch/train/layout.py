"""Memory layouts of a network's tensors, and the ``auto`` choice between implementations.

PyTorch runs the same grouped 3x3 convolution with different kernels depending on the memory format:
contiguous NCHW tensors take the framework's default kernels, ``torch.channels_last`` (NHWC) tensors
oneDNN's (CPU) or cuDNN's (GPU) NHWC kernels. Which is faster depends on the network, the batch size
and the device (on a CPU, G = 2-4 grouped convs run 2.5-3x faster in NHWC, while a small network at
64 px may run faster in NCHW), so ``auto`` measures it.

:func:`choose_fastest` is the one choice rule, used by the profiler (between implementations, see
:mod:`e2gcsearch.profiling.implementations`) and by the trainer (between layouts): it times every
candidate in interleaved rounds (so that a load change on a shared machine hits all of them alike),
takes each one's median, and keeps the first candidate (the default) unless another is at least
:data:`SWITCH_MARGIN` faster — calibration noise cannot make ``auto`` measurably slower than the default.

Example:
    >>> timings = {"nchw": 0.0383, "channels_last": 0.0145}        # seconds per step
    >>> choice = choose_fastest(("nchw", "channels_last"), timings.__getitem__)
    >>> choice.chosen, choice.reason
    ('channels_last', 'channels_last 2.64x faster than nchw (14.50 vs 38.30 ms/step)')
"""

from __future__ import annotations

import dataclasses
import statistics
from collections.abc import Callable, Mapping
from typing import Any

import torch
from torch import nn

LAYOUTS = ("nchw", "channels_last")
AUTO = "auto"
SWITCH_MARGIN = 0.05  # another candidate replaces the default only when at least 5 % faster
CALIBRATION_ROUNDS = 3  # interleaved rounds over the candidates; each candidate's figure is the median


def memory_format(layout: str) -> torch.memory_format:
    """The torch memory format of ``layout`` (anything but ``channels_last`` runs contiguous NCHW)."""
    return torch.channels_last if layout == "channels_last" else torch.contiguous_format


def apply_layout(model: nn.Module, layout: str) -> nn.Module:
    """``model`` with its 4-d weights in ``layout`` (in place; also converts back to NCHW)."""
    return model.to(memory_format=memory_format(layout))


def to_layout(tensor: torch.Tensor, layout: str) -> torch.Tensor:
    """A 4-d batch in ``layout`` (a no-op when it already is)."""
    return tensor.contiguous(memory_format=memory_format(layout)) if tensor.dim() == 4 else tensor


@dataclasses.dataclass(frozen=True)
class Choice:
    """What ``auto`` chose, every candidate's calibrated time and why.

    Attributes:
        chosen: the candidate kept.
        step_ms: median milliseconds per step of every candidate, in the order timed.
        reason: one sentence with the figures that decided.
    """

    chosen: str
    step_ms: dict[str, float]
    reason: str

    def line(self, what: str = "impl") -> str:
        return f"{what}: auto chose {self.chosen} ({self.reason})"

    def to_dict(self) -> dict[str, Any]:
        return {"chosen": self.chosen, "step_ms": dict(self.step_ms), "reason": self.reason}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Choice:
        return cls(
            chosen=str(data["chosen"]),
            step_ms={str(k): float(v) for k, v in data["step_ms"].items()},
            reason=str(data["reason"]),
        )


def choose_fastest(
    candidates: tuple[str, ...],
    seconds_per_step: Callable[[str], float],
    rounds: int = CALIBRATION_ROUNDS,
    margin: float = SWITCH_MARGIN,
) -> Choice:
    """Time ``candidates`` with ``seconds_per_step(name)`` in ``rounds`` interleaved rounds and keep the
    fastest median; the first candidate is the default and stays unless another beats it by ``margin``."""
    if not candidates:
        raise ValueError("choose_fastest needs at least one candidate")
    samples: dict[str, list[float]] = {name: [] for name in candidates}
    for _ in range(max(1, rounds)):
        for name in candidates:
            samples[name].append(float(seconds_per_step(name)))
    step_ms = {name: 1000 * statistics.median(values) for name, values in samples.items()}
    default = candidates[0]
    fastest = min(candidates, key=lambda name: (step_ms[name], candidates.index(name)))
    if len(candidates) == 1:
        return Choice(default, step_ms, f"the only candidate ({step_ms[default]:.2f} ms/step)")
    if fastest == default:
        runner_up = min((n for n in candidates if n != default), key=step_ms.__getitem__)
        return Choice(
            default,
            step_ms,
            f"{default} fastest ({step_ms[default]:.2f} ms/step; {runner_up} {step_ms[runner_up]:.2f} ms/step)",
        )
    if step_ms[fastest] <= (1 - margin) * step_ms[default]:
        return Choice(
            fastest,
            step_ms,
            f"{fastest} {step_ms[default] / step_ms[fastest]:.2f}x faster than {default} "
            f"({step_ms[fastest]:.2f} vs {step_ms[default]:.2f} ms/step)",
        )
    gain = 100 * (1 - step_ms[fastest] / step_ms[default])
    return Choice(
        default,
        step_ms,
        f"{default} kept: {fastest} only {gain:.1f} % faster "
        f"({step_ms[fastest]:.2f} vs {step_ms[default]:.2f} ms/step, "
        f"below the {100 * margin:.0f} % margin)",
    )
