"""The pre-flight check of a search: everything a trial will need is tried once, before a study is
created or resumed, so that a mistake costs seconds and one line instead of a study of failed trials.

In order: the devices exist; the cache folders and the storage location take a file (nothing is left
behind); then, after the data is loaded, for each architecture x module x width family of the space
one network is built at the search resolution and runs one measured step (forward + backward, train
mode) at the smallest profiled batch size and one optimiser step at the training batch size on the
chosen device. ``--threads auto`` is resolved from those training steps.

:func:`check_search` is the one entry: it runs these checks in that order, loads the data on the way
and hands back what it found out (:class:`Checked`), which the search then reads instead of asking
again.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from typing import Any

from ..config import ArchConfig
from ..cost import network_cost
from ..data import DataConfig, LoadedData, load_data
from ..devices import resolve_device
from ..errors import ConfigError, UserError
from ..paths import TENSORS, cache_folder, probe_writable
from ..profiling import DeviceFingerprint, ProfileConfig, default_cache_dir
from ..profiling.probe import expected_fingerprint, measured_step
from ..report.tables import human_count
from ..store.fingerprint import study_fingerprint
from ..store.storage import storage_file
from ..train import TrainConfig, choose_threads
from ..train.threads import AUTO, training_step_timer
from .objectives import Constraint, cost_constraints, cost_feasible
from .space import Space
from .trial import TrialSettings


class PreflightError(ConfigError):
    """A search that would fail every trial (or write nowhere); nothing has been written."""


@dataclasses.dataclass(frozen=True)
class Checked:
    """What pre-flight found out about a search, for the rest of the run to read."""

    data: LoadedData
    settings: TrialSettings  # with --threads auto resolved from the timed training steps
    impossible: list[tuple[ArchConfig, str]]  # the space's points that cannot be built, with the reason
    keep: Callable[[ArchConfig], bool] | None  # the params/MACs constraints as a filter (None: none given)
    fingerprint: dict[str, Any]  # the study fingerprint (training, measurement, device) a resume must match


def check_search(
    storage_url: str,
    data_config: DataConfig,
    settings: TrialSettings,
    note: Callable[[str], None],
    progress: bool = True,
) -> Checked:
    """Everything a trial of this search needs, tried once (see the module docstring); raises
    :class:`PreflightError` (or the data's own error) before the study storage is touched."""
    check_places(storage_url, data_config, settings.profile, settings.train)
    data = load_data(data_config, progress=progress)
    space = settings.space
    impossible = space.impossible(data.num_classes)
    if not space.buildable(impossible):
        raise ConfigError(f"no point of the search space can be built: {impossible[0][1]}")
    for arch_config, reason in impossible:
        note(f"note: {arch_config.label()} cannot be built and will fail at once if sampled: {reason}")
    profile = dataclasses.replace(settings.profile, batch_sizes=settings.batch_sizes)
    keep = cost_feasible(settings.constraints, profile.resolution) if cost_constraints(settings.constraints) else None
    if keep is not None:
        check_cost_constraints(
            space,
            settings.constraints,
            profile.resolution,
            data.num_classes,
            keep,
            [arch_config for arch_config, _ in impossible],
        )
    train = check_networks(space, data, profile, settings.train if settings.needs_training else None, note)
    if train is not None:
        settings = dataclasses.replace(settings, train=train)
    fingerprint = study_fingerprint(train, profile, data.name, device_fingerprint_of(profile))
    return Checked(data, settings, impossible, keep, fingerprint)


def check_places(storage_url: str, data: DataConfig, profile: ProfileConfig, train: TrainConfig) -> None:
    """Devices exist, and the cache folders and the storage location are writable (checked before
    any data is loaded; nothing is created)."""
    resolve_device(train.device)
    resolve_device(profile.device)
    probe_writable(data.cache_dir or cache_folder(TENSORS), "the data cache folder")
    if profile.use_cache:
        probe_writable(profile.cache_dir or default_cache_dir(), "the measurement cache folder")
    path = storage_file(storage_url)
    if path is not None:
        probe_writable(path.parent, "the study storage folder", file=path)


def families(space: Space, num_classes: int) -> list[ArchConfig]:
    """One buildable network per architecture x module x width of ``space`` (the first in grid order)."""
    bad = {(config.arch, config.grouping, config.width) for config, _ in space.impossible(num_classes)}
    chosen: dict[tuple, ArchConfig] = {}
    for config in space.points(num_classes):
        if (config.arch, config.grouping, config.width) not in bad:
            chosen.setdefault((config.arch, config.group_size is not None, config.width), config)
    return list(chosen.values())


def check_networks(
    space: Space, data: LoadedData, profile: ProfileConfig, train: TrainConfig | None, note: Callable[[str], None]
) -> TrainConfig | None:
    """Build and step each family's network (see the module docstring); returns ``train`` with
    ``threads="auto"`` resolved. Raises :class:`PreflightError` naming the family and the reason."""
    batch = min(profile.batch_sizes)
    timer = None
    for arch_config in families(space, data.num_classes):
        where = f"{arch_config.label()} at {data.resolution}x{data.resolution} px"
        _attempt(
            lambda: measured_step(arch_config, profile)(),  # noqa: B023 - _attempt calls it at once
            f"{where} cannot run a measured step at batch size {batch} on {profile.device}",
            "drop that batch size from --batch-sizes, or raise --resolution",
        )
        if train is not None:
            step = _attempt(
                lambda: training_step_timer(arch_config, data, train, steps=1),  # noqa: B023 - called at once
                f"{where} cannot be trained on {train.device}",
                "change --resolution or --batch-size",
            )
            _attempt(
                lambda: step(1),  # noqa: B023 - called at once
                f"{where} cannot be trained on {train.device}",
                "change --resolution or --batch-size",
            )
            timer = timer or training_step_timer(arch_config, data, train)
    if train is not None and train.threads == AUTO and timer is not None:
        choice = choose_threads(timer)
        note(choice.line())
        train = dataclasses.replace(train, threads=choice.threads)
    return train


def device_fingerprint_of(profile: ProfileConfig) -> DeviceFingerprint:
    """The device fingerprint the search's measurements will carry."""
    return _attempt(
        lambda: expected_fingerprint(profile), "the energy meter cannot be opened", "choose another --backend"
    )


def _attempt(action: Callable[[], Any], what: str, fix: str) -> Any:
    try:
        return action()
    except (KeyboardInterrupt, SystemExit):
        raise
    except UserError as exc:
        raise PreflightError(f"pre-flight: {what}: {exc}; the study storage was not touched") from None
    except Exception as exc:  # noqa: BLE001 - any failure here would fail every trial of the family
        first = (str(exc).strip().splitlines() or [""])[0][:300]
        raise PreflightError(
            f"pre-flight: {what} ({type(exc).__name__}: {first}); {fix}. The study storage was not touched"
        ) from None


def check_cost_constraints(
    space: Space,
    constraints: Sequence[Constraint],
    resolution: int,
    num_classes: int,
    keep: Callable[[ArchConfig], bool],
    impossible: Sequence[ArchConfig] = (),
) -> None:
    """A network-level space keeps at least one buildable point (not in ``impossible``, the space's
    unbuildable points) within the params/MACs constraints (``keep``, see
    :func:`~e2gcsearch.search.objectives.cost_feasible`); else one line, before any work. Stage-wise
    spaces are too large to list and are left to their trials."""
    if space.stagewise:
        return
    unbuildable = set(impossible)
    points = [arch_config for arch_config in space.points(num_classes) if arch_config not in unbuildable]
    if not points or any(keep(arch_config) for arch_config in points):
        return
    costs = [network_cost(arch_config, resolution) for arch_config in points]
    ranges = ", ".join(
        f"{name} {human_count(min(values))}-{human_count(max(values))}"
        for name, values in (("params", [c.params for c in costs]), ("MACs", [c.macs for c in costs]))
    )
    wanted = " and ".join(constraint.text for constraint in cost_constraints(constraints))
    raise PreflightError(
        f"no point of the space keeps {wanted} (the space spans {ranges}); loosen the "
        "constraint or change the space (--widths, --group-sizes, --groups, --arch)"
    )
