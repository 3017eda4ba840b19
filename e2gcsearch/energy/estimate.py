"""The ``estimate`` backend: measured wall time x a documented power model. Never a measurement.

It is the fallback when no energy counter can be read (a laptop without root, a VM, a container —
this project's development machine). Its figures rank networks by time at a fixed power, so they
carry no information about *how* a network uses the hardware; every output that uses it says
"estimate".

Power model (in order of precedence):
    1. ``power_w`` passed to the meter (the CLI's ``--cpu-power-w``);
    2. the environment variable ``E2GCSEARCH_CPU_POWER_W`` (``E2GCSEARCH_GPU_POWER_W`` on CUDA);
    3. the TDP model. CPU: 7.5 W per busy core x the number of intra-op threads torch uses (capped at
       the logical CPUs). 7.5 W is a server core's share of its package TDP (e.g. 150 W / 20 cores
       for a Xeon Gold 6248, 270 W / 36 cores for a Xeon 8360Y) and close to a desktop core's
       (65 W / 8 cores); with 2 threads the model is 15 W. GPU: 250 W, the TDP of the paper's P100.

Example:
    >>> meter = EstimateMeter(power_w=15.0)
    >>> meter.label
    'estimate (time x 15 W, set by the caller)'
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from typing import Any

from ..errors import ConfigError
from .base import Meter

CPU_POWER_PER_CORE_W = 7.5  # a server core's share of package TDP; see the module docstring
GPU_POWER_W = 250.0  # NVIDIA P100 (the E2GC paper's GPU) board TDP
CPU_POWER_ENV = "E2GCSEARCH_CPU_POWER_W"
GPU_POWER_ENV = "E2GCSEARCH_GPU_POWER_W"


def cpu_tdp_model_w(threads: int | None = None) -> float:
    """The default CPU power model in watts: 7.5 W per busy core."""
    if threads is None:
        import torch

        threads = torch.get_num_threads()
    busy_cores = max(1, min(int(threads), os.cpu_count() or int(threads)))
    return CPU_POWER_PER_CORE_W * busy_cores


MAX_POWER_W = 1e5  # a whole rack; above this a typo, and energies overflow to inf


def parse_power(text: str, source: str) -> float:
    """``text`` as a power in watts, above 0 and at most :data:`MAX_POWER_W`, else a one-line error."""
    try:
        value = float(text)
    except ValueError:
        value = float("nan")
    if not 0 < value <= MAX_POWER_W:
        raise ConfigError(
            f"{source} must be a power in watts above 0 and at most {MAX_POWER_W:,.0f} (e.g. 15), got {text!r}"
        )
    return value


class EstimateMeter(Meter):
    """Energy = window time x a constant power (see the module docstring for the model).

    Args:
        power_w: power assumed while a window is open, in watts (overrides everything else).
        device: ``"cpu"`` or ``"cuda[:N]"``; picks the default model and environment variable.
        environ: where to read the override variables (``os.environ`` by default).
        synchronize: called at window edges (``torch.cuda.synchronize`` on a GPU).
        threads: the busy cores of the CPU model (``None``: the intra-op threads torch uses now); a
            meter built outside the work it measures names the threads that work runs with.
    """

    name = "estimate"
    is_estimate = True
    measures_idle = False
    OPTIONS = frozenset({"power_w", "environ", "synchronize", "threads"})

    def __init__(
        self,
        power_w: float | None = None,
        device: str = "cpu",
        environ: Mapping[str, str] | None = None,
        synchronize: Callable[[], Any] | None = None,
        threads: int | None = None,
    ) -> None:
        super().__init__(synchronize=synchronize)
        environ = os.environ if environ is None else environ
        on_gpu = device.startswith("cuda")
        env_name = GPU_POWER_ENV if on_gpu else CPU_POWER_ENV
        if power_w is not None:
            self.power_w = parse_power(str(power_w), "the estimate power (--cpu-power-w)")
            self.model = ", set by the caller"
        elif environ.get(env_name):
            self.power_w = parse_power(environ[env_name], env_name)
            self.model = f", from {env_name}"
        elif on_gpu:
            self.power_w, self.model = GPU_POWER_W, " P100 TDP model"
        else:
            self.power_w, self.model = cpu_tdp_model_w(threads), " TDP model"

    @property
    def label(self) -> str:
        """E.g. ``estimate (time x 15 W TDP model)`` or ``estimate (time x 20 W, from E2GCSEARCH_CPU_POWER_W)``."""
        return f"estimate (time x {self.power_w:g} W{self.model})"

    def _end(self, state: Any, start_s: float, end_s: float) -> float:
        return (end_s - start_s) * self.power_w
