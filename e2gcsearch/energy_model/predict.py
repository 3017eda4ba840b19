"""What a fitted device profile predicts: per-layer optimal groups, EPF of every E2GC/FgGC
configuration, the G the model favours (per network and per stage), and warm-start seeds for a search
(queued on a study by :func:`e2gcsearch.search.warm_start.enqueue_warm_start`).

Example:
    >>> profile = DeviceProfile.load("device-profile.json")                          # doctest: +SKIP
    >>> favoured_group_size(profile, "mobilenet_v1", width=0.5, num_classes=10)       # doctest: +SKIP
    4
"""

from __future__ import annotations

import contextlib
import dataclasses
import itertools
from collections.abc import Callable, Sequence
from typing import Any, Protocol

import pandas as pd

from ..config import ArchConfig
from ..cost import network_cost
from ..errors import ConfigError, DataError
from ..models import validate_config
from ..models.stages import layer_stage, num_stages
from ..paper import GROUP_SIZES, GROUPS, design_grid
from .device_profile import DeviceProfile
from .equations import optimal_groups, power_of_two_divisors, table2
from .fit import EnergyFit

Progress = Callable[[str], None]


class Space(Protocol):
    """What the energy model asks of a search space (:mod:`e2gcsearch.search.space` has two)."""

    stagewise: bool  # one group size per stage (E2GC only) rather than one grouping per network
    archs: tuple[str, ...]
    widths: tuple[float, ...]
    group_sizes: tuple[int, ...]

    def points(self, num_classes: int) -> list[ArchConfig]: ...

    def contains(self, arch_config: ArchConfig) -> bool: ...


# FgGC points of the calibration sweep: with E2GC's six group sizes they pin every model parameter.
CALIBRATION_GROUPS: tuple[int, ...] = (2, 8, 32)


@dataclasses.dataclass(frozen=True)
class LayerOptimum:
    """The model's view of one grouped conv: its shape, its current grouping and the optimum."""

    name: str
    stage: int
    m: int
    n: int
    kernel: int
    stride: int
    out_h: int
    out_w: int
    groups: int
    group_size: int
    groups_eq2: float | None  # continuous optimum, Eq. 1 read per group (A neglected)
    group_size_eq2: float | None
    groups_best: int  # best power-of-two group size among the feasible ones, with A included
    group_size_best: int
    energy_mj: float  # this layer's modelled energy now
    energy_best_mj: float  # … and at its best grouping


def grouped_layers(arch_config: ArchConfig, resolution: int) -> list[Any]:
    """The stage convs with a k > 1 kernel: the ones E2GC/FgGC group (MobileNet's 3x3, ResNeXt's conv2)."""
    return [
        layer
        for layer in network_cost(arch_config, resolution).layers
        if layer.kernel > 1 and layer_stage(arch_config.arch, layer.name) is not None
    ]


def _layer_energy(fit: EnergyFit, m: int, n: int, kernel: int, h: int, w: int, stride: int, groups: int) -> float:
    q = table2(m, n, kernel, h, w, groups, stride)
    return fit.layer_mj(q["macs"], q["params"] + q["activations"], groups, depthwise=groups == m and m > 1)


def layer_optima(
    profile: DeviceProfile, arch_config: ArchConfig, resolution: int | None = None, batch_size: int | None = None
) -> list[LayerOptimum]:
    """Per grouped layer of ``arch_config``: Eq. 2's continuous optimum and the best feasible grouping."""
    fit = profile.fit_for(batch_size)
    resolution = resolution or profile.resolution
    out = []
    for layer in grouped_layers(arch_config, resolution):
        m, n, k, h, w, s = layer.in_channels, layer.out_channels, layer.kernel, layer.out_h, layer.out_w, layer.stride
        g_eq2 = optimal_groups(m, n, k, h, w, fit.beta, fit.gamma) if fit.gamma else None
        options = {
            m // size: _layer_energy(fit, m, n, k, h, w, s, m // size)
            for size in power_of_two_divisors(m)
            if n % (m // size) == 0
        }
        best = min(options, key=options.get)
        out.append(
            LayerOptimum(
                name=layer.name,
                stage=layer_stage(arch_config.arch, layer.name),
                m=m,
                n=n,
                kernel=k,
                stride=s,
                out_h=h,
                out_w=w,
                groups=layer.groups,
                group_size=layer.group_size,
                groups_eq2=g_eq2,
                group_size_eq2=m / g_eq2 if g_eq2 else None,
                groups_best=best,
                group_size_best=m // best,
                energy_mj=_layer_energy(fit, m, n, k, h, w, s, layer.groups),
                energy_best_mj=options[best],
            )
        )
    return out


def _buildable(arch_config: ArchConfig) -> bool:
    try:
        validate_config(arch_config)
    except ConfigError:
        return False
    return True


def config_predictions(
    profile: DeviceProfile,
    arch: str,
    width: float = 1.0,
    num_classes: int = 1000,
    resolution: int | None = None,
    batch_size: int | None = None,
    group_sizes: Sequence[int] = GROUP_SIZES,
    groups: Sequence[int] = GROUPS,
) -> pd.DataFrame:
    """Predicted (and, where the profile has it, measured) EPF of every E2GC G and FgGC g."""
    resolution = resolution or profile.resolution
    batch = profile.fit_for(batch_size).batch_size
    configs = [ArchConfig(arch, group_size=size, width=width, num_classes=num_classes) for size in group_sizes]
    configs += [ArchConfig(arch, groups=count, width=width, num_classes=num_classes) for count in groups]
    rows = []
    for arch_config in filter(_buildable, configs):
        cost = network_cost(arch_config, resolution)
        predicted = profile.predict_epf_mj(arch_config, resolution, batch)
        measured = profile.measured_epf_mj(arch_config, resolution, batch)
        rows.append(
            {
                "arch": arch,
                "module": arch_config.module,
                "value": arch_config.grouping_value,
                "width": arch_config.width,
                "resolution": resolution,
                "batch_size": batch,
                "params": cost.params,
                "macs": cost.macs,
                "predicted_epf_mj": predicted,
                "measured_epf_mj": measured,
                "error_pct": None if measured is None else 100.0 * (predicted - measured) / measured,
                "backend": profile.backend,
            }
        )
    return pd.DataFrame(rows)


def favoured_group_size(
    profile: DeviceProfile,
    arch: str,
    width: float = 1.0,
    num_classes: int = 1000,
    resolution: int | None = None,
    batch_size: int | None = None,
    group_sizes: Sequence[int] = GROUP_SIZES,
) -> int:
    """The network-level E2GC G with the lowest predicted EPF."""
    frame = config_predictions(profile, arch, width, num_classes, resolution, batch_size, group_sizes, groups=())
    if frame.empty:
        raise ConfigError(f"none of the group sizes {list(group_sizes)} can be built for {arch} at width {width:g}")
    return int(frame.loc[frame["predicted_epf_mj"].idxmin(), "value"])


def stage_group_sizes(
    profile: DeviceProfile,
    arch: str,
    width: float = 1.0,
    num_classes: int = 1000,
    resolution: int | None = None,
    batch_size: int | None = None,
    group_sizes: Sequence[int] = GROUP_SIZES,
    start: int | None = None,
) -> tuple[int, ...]:
    """The per-stage G the model favours: coordinate descent on the predicted EPF of the whole network
    (so width rounding and the 1x1 convs around each stage count), from the best uniform G."""
    resolution = resolution or profile.resolution
    start = start or favoured_group_size(profile, arch, width, num_classes, resolution, batch_size, group_sizes)
    sizes = [start] * num_stages(arch)

    def epf(candidate: list[int]) -> float:
        arch_config = ArchConfig(arch, stage_group_sizes=tuple(candidate), width=width, num_classes=num_classes)
        return profile.predict_epf_mj(arch_config, resolution, batch_size) if _buildable(arch_config) else float("inf")

    for _ in range(2):  # stages interact only through channel rounding; two passes settle it
        for stage in range(len(sizes)):
            sizes[stage] = min(group_sizes, key=lambda size: epf(sizes[:stage] + [size] + sizes[stage + 1 :]))
    return tuple(sizes)


def _ranked_groups(
    profile: DeviceProfile, space: Space, num_classes: int, resolution: int, batch_size: int | None
) -> list[list[ArchConfig]]:
    """Per (arch, width) of the space, widest first: its candidate seeds, best first."""
    groups = []
    for arch, width in itertools.product(space.archs, sorted(space.widths, reverse=True)):
        if space.stagewise:
            uniform = [
                ArchConfig(arch, stage_group_sizes=(size,) * num_stages(arch), width=width, num_classes=num_classes)
                for size in space.group_sizes
            ]
            uniform = sorted(
                filter(_buildable, uniform),
                key=lambda arch_config: profile.predict_epf_mj(arch_config, resolution, batch_size),
            )
            if not uniform:
                continue
            staged = stage_group_sizes(
                profile,
                arch,
                width,
                num_classes,
                resolution,
                batch_size,
                space.group_sizes,
                start=uniform[0].stage_group_sizes[0],
            )
            candidates = [ArchConfig(arch, stage_group_sizes=staged, width=width, num_classes=num_classes), *uniform]
        else:
            candidates = [
                arch_config
                for arch_config in space.points(num_classes)
                if arch_config.arch == arch and arch_config.width == width
            ]
            candidates = sorted(
                filter(_buildable, candidates),
                key=lambda arch_config: profile.predict_epf_mj(arch_config, resolution, batch_size),
            )
        unique = list(
            dict.fromkeys(
                arch_config for arch_config in candidates if space.contains(arch_config) and _buildable(arch_config)
            )
        )
        groups.append(unique)
    return groups


def warm_start_configs(
    profile: DeviceProfile,
    space: Space,
    num_classes: int,
    k: int = 3,
    resolution: int | None = None,
    batch_size: int | None = None,
    keep: Callable[[ArchConfig], bool] | None = None,
) -> list[ArchConfig]:
    """The model's predicted best configurations within ``space``, to enqueue before a search.

    Energy is only one objective, so the seeds spread over the space: the model's best grouping at
    each (arch, width), widest first, then the second best of each, until ``k``. For a
    :class:`~e2gcsearch.search.stagewise.StagewiseSearchSpace` the seeds of each width are the per-stage
    optimum (:func:`stage_group_sizes`), then the uniform G's from the best. Every seed is in the space
    and buildable; duplicates are dropped. ``keep`` (e.g. a search's params/MACs constraints) leaves
    out the candidates it rejects: each width of a network-level space is seeded with its best point
    that ``keep`` accepts; in a stage-wise space the per-stage optimum is found without ``keep``, so
    when ``keep`` rejects it the width is seeded with its best uniform G that ``keep`` accepts.
    """
    if k < 1:
        raise ConfigError(f"k must be a positive number of seeds, got {k}")
    groups = _ranked_groups(profile, space, num_classes, resolution or profile.resolution, batch_size)
    # each group's candidates best first, ``keep`` asked only about those reached (it may cost a build)
    streams = [(arch_config for arch_config in group if keep is None or keep(arch_config)) for group in groups]
    seeds: list[ArchConfig] = []
    while streams and len(seeds) < k:
        row = [next(stream, None) for stream in streams]
        streams = [stream for stream, arch_config in zip(streams, row) if arch_config is not None]
        seeds += [arch_config for arch_config in row if arch_config is not None and arch_config not in seeds]
    return seeds[:k]


def calibration_configs(space: Space, num_classes: int) -> list[ArchConfig]:
    """A short sweep that identifies every model parameter: per arch of the space, at its smallest
    width, E2GC G = 1..32 and FgGC g = 2, 8, 32 (9 networks)."""
    configs = design_grid(space.archs, [min(space.widths)], num_classes, GROUP_SIZES, CALIBRATION_GROUPS)
    return [arch_config for arch_config in configs if _buildable(arch_config)]


def load_or_calibrate(
    space: Space,
    num_classes: int,
    profile_config: Any,
    path: str | None = None,
    progress: Progress | None = None,
    ledger: Any = None,
) -> DeviceProfile:
    """The device profile at ``path`` (default: this device's calibration at this resolution, kept beside
    the profile cache in ``device-profiles/``), or a new one from a short calibration sweep
    (:func:`calibration_configs`), saved there for the next run. Without the profile cache
    (``profile_config.use_cache`` false, ``--no-cache``) and no ``path``, the calibration runs afresh
    and is not stored; a ``path`` given is read and written whatever the cache setting. A calibration
    is metered as one phase of ``ledger`` (an :class:`e2gcsearch.energy.Ledger`), when one is given."""
    from ..profiling import ProfileCache, resolve_device
    from .data import run_sweep
    from .device_profile import current_fingerprint, default_profile_path, fit_device_profile

    say = progress or (lambda line: None)
    device = resolve_device(profile_config.device)
    here = current_fingerprint(device, profile_config.dtype, profile_config.impl)
    target = path or default_profile_path(
        here, ProfileCache(profile_config.cache_dir).directory, profile_config.resolution
    )  # beside the profile cache (--cache-dir)
    cached = path is not None or profile_config.use_cache
    if cached:
        try:
            profile = DeviceProfile.load(target)
            if not profile.fingerprint.differences(here) and profile.resolution == profile_config.resolution:
                say(f"energy model: using the device profile {target}")
                return profile
        except DataError:
            pass
    configs = calibration_configs(space, num_classes)
    why = "no profile for this device yet; calibrating" if cached else "--no-cache; calibrating afresh"
    say(f"energy model: {why} on {len(configs)} networks")
    metered = ledger.phase("calibration", device, profile_config.threads) if ledger else contextlib.nullcontext()
    with metered:
        profile = fit_device_profile(run_sweep(configs, profile_config, progress=say), progress=say)
    if cached:
        profile.save(target)
        say(f"energy model: saved the device profile to {target}")
    return profile
