"""Quick probes of the measured step (as the protocol measures it, in its mode and implementation;
``auto`` probes its default candidate, nchw):
can it run at all, how long does it take with N threads, and which device fingerprint would a
measurement carry. Used by ``profile --threads auto`` and by the search's pre-flight check."""

from __future__ import annotations

import time
from collections.abc import Callable

import torch

from ..config import ArchConfig
from ..devices import resolve_device
from ..energy import create_meter
from ..models import check_resolution, validate_config
from .fingerprint import DeviceFingerprint, device_fingerprint
from .implementations import AUTO, AUTO_CANDIDATES, make_step, prepare
from .settings import ProfileConfig, build_model, synchronize, synthetic_batch

TIMED_STEPS = 3


def measured_step(arch_config: ArchConfig, config: ProfileConfig, batch_size: int | None = None) -> Callable[[], None]:
    """One measured step of ``arch_config`` at ``batch_size`` (default: the smallest profiled one),
    built once on the config's device; calling it runs the step and waits for the device."""
    check_resolution(arch_config.arch, config.resolution)
    validate_config(arch_config)
    device = resolve_device(config.device)
    impl = AUTO_CANDIDATES[0] if config.impl == AUTO else config.impl
    model = prepare(build_model(arch_config, device, config), impl, config.mode)
    inputs, targets = synthetic_batch(arch_config, batch_size or min(config.batch_sizes), device, config)
    run = make_step(model, inputs, targets, impl, config.mode)

    def step() -> None:
        run()
        synchronize(device)

    return step


def step_timer(
    arch_config: ArchConfig,
    config: ProfileConfig,
    steps: int = TIMED_STEPS,
    timer: Callable[[], float] = time.perf_counter,
) -> Callable[[int], float]:
    """A ``seconds_per_step(threads)`` of the measured step (one untimed step first), for
    :func:`e2gcsearch.train.choose_threads`."""
    step = measured_step(arch_config, config)

    def seconds_per_step(threads: int) -> float:
        previous = torch.get_num_threads()
        torch.set_num_threads(threads)
        try:
            step()
            start = timer()
            for _ in range(steps):
                step()
            return (timer() - start) / steps
        finally:
            torch.set_num_threads(previous)

    return seconds_per_step


def expected_fingerprint(config: ProfileConfig) -> DeviceFingerprint:
    """The device fingerprint that measurements under ``config`` will carry (opens the meter once)."""
    device = resolve_device(config.device)
    options = {} if config.power_w is None else {"power_w": config.power_w}
    previous = torch.get_num_threads()
    if config.threads is not None:
        torch.set_num_threads(config.threads)
    try:
        with create_meter(config.backend, device, **options) as meter:
            return device_fingerprint(device, config.dtype, config.impl, meter)
    finally:
        torch.set_num_threads(previous)
