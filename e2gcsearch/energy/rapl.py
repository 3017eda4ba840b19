"""The ``rapl`` backend: CPU package + DRAM energy from the Linux powercap sysfs interface.

Layout read (``/sys/class/powercap`` by default; the root is a constructor argument so tests use a
tree in ``tmp_path``)::

    intel-rapl:0/name                 "package-0"   one top-level zone per CPU package
    intel-rapl:0/energy_uj            cumulative energy in microjoules
    intel-rapl:0/max_energy_range_uj  the counter wraps to 0 after this value
    intel-rapl:0/intel-rapl:0:N/      sub-zones: "core", "uncore" (inside the package figure) and
                                      "dram" (outside it, so it is added)

A window's energy is the sum over packages and DRAM zones of the counter difference, with one
wrap-around per zone handled through ``max_energy_range_uj`` (about 262 kJ on current Intel parts:
more than twenty minutes at 200 W, far longer than any profiling window). ``psys`` zones are skipped
(they overlap the packages). Since Linux 5.10 ``energy_uj`` is readable by root only; the error then
says how to grant access.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

from .base import Meter, MeterError, MeterUnavailableError

DEFAULT_SYSFS_ROOT = "/sys/class/powercap"
_PACKAGE_DIR = re.compile(r"^intel-rapl:(\d+)$")
_STALL_WINDOW_S = 0.05  # a real counter advances every ~1 ms; silence over this long means no counter


@dataclasses.dataclass(frozen=True)
class RaplZone:
    """One counter: its sysfs directory, its name (``package-0``, ``dram``) and wrap range."""

    path: Path
    name: str
    max_energy_range_uj: int

    @property
    def energy_file(self) -> Path:
        return self.path / "energy_uj"

    def read_uj(self) -> int:
        return _read_int(self.energy_file)


def _read_int(path: Path) -> int:
    """One integer sysfs attribute (the hardware boundary tests fake)."""
    return int(path.read_text().strip())


def _read_name(path: Path) -> str:
    try:
        return (path / "name").read_text().strip()
    except OSError:
        return ""


def counter_delta_uj(start_uj: int, end_uj: int, max_energy_range_uj: int) -> int:
    """Energy between two readings of a counter that wraps to 0 after ``max_energy_range_uj``."""
    if end_uj >= start_uj:
        return end_uj - start_uj
    return max_energy_range_uj - start_uj + end_uj


def find_zones(sysfs_root: str | Path = DEFAULT_SYSFS_ROOT) -> list[RaplZone]:
    """Package zones and their DRAM sub-zones under ``sysfs_root`` (core/uncore/psys are skipped).

    Raises:
        MeterUnavailableError: no powercap tree, no package zone, or a counter cannot be read.
    """
    root = Path(sysfs_root)
    if not root.is_dir():
        raise MeterUnavailableError(
            "rapl", f"{root} does not exist (this kernel exposes no powercap interface)", "use --backend estimate"
        )
    zones: list[RaplZone] = []
    for package in sorted(p for p in root.iterdir() if _PACKAGE_DIR.match(p.name)):
        if not _read_name(package).startswith("package"):
            continue  # psys: the whole SoC, overlapping the packages
        zones.append(_zone(package))
        # Sub-zones live inside the package directory (and appear flattened at the class root).
        number = _PACKAGE_DIR.match(package.name).group(1)  # type: ignore[union-attr]
        sub_pattern = re.compile(rf"^intel-rapl:{number}:\d+$")
        candidates = {
            p.resolve(): p for d in (package, root) if d.is_dir() for p in d.iterdir() if sub_pattern.match(p.name)
        }
        for sub in sorted(candidates.values()):
            if _read_name(sub) == "dram":
                zones.append(_zone(sub))
    if not zones:
        raise MeterUnavailableError(
            "rapl",
            f"no RAPL package zone (intel-rapl:N with name package-N) under {root} "
            "(not an Intel/AMD CPU, a virtual machine, or the intel_rapl_common module is not loaded)",
            "use --backend estimate",
        )
    return zones


def _zone(path: Path) -> RaplZone:
    name = _read_name(path)
    try:
        max_range = _read_int(path / "max_energy_range_uj")
        _read_int(path / "energy_uj")
    except PermissionError:
        raise MeterUnavailableError(
            "rapl",
            f"{path / 'energy_uj'} is not readable (permission denied: root only since Linux 5.10)",
            f"run as root or grant read access with 'sudo chmod a+r {path}/energy_uj' "
            "(it exposes power side channels), or use --backend estimate",
        ) from None
    except (OSError, ValueError) as exc:
        raise MeterUnavailableError(
            "rapl", f"cannot read the {name or path.name} counter in {path}: {exc}", "use --backend estimate"
        ) from None
    return RaplZone(path, name or path.name, max_range)


class RaplMeter(Meter):
    """CPU package (+ DRAM) energy from powercap counters.

    Args:
        sysfs_root: the powercap class directory (``/sys/class/powercap``).
        idle_window_s: length of the idle-power window, in seconds.
        synchronize: called at window edges.
    """

    name = "rapl"
    OPTIONS = frozenset({"sysfs_root", "idle_window_s", "synchronize"})

    def __init__(
        self,
        sysfs_root: str | Path = DEFAULT_SYSFS_ROOT,
        idle_window_s: float = 0.5,
        synchronize: Callable[[], Any] | None = None,
    ) -> None:
        super().__init__(synchronize=synchronize, idle_window_s=idle_window_s)
        self.zones = find_zones(sysfs_root)

    @property
    def label(self) -> str:
        return f"rapl ({' + '.join(zone.name for zone in self.zones)})"

    def _begin(self) -> list[int]:
        return [zone.read_uj() for zone in self.zones]

    def _end(self, state: list[int], start_s: float, end_s: float) -> float:
        total_uj = 0
        for zone, start_uj in zip(self.zones, state, strict=True):
            try:
                end_uj = zone.read_uj()
            except OSError as exc:
                raise MeterError(f"the RAPL counter {zone.energy_file} could not be read: {exc}") from None
            total_uj += counter_delta_uj(start_uj, end_uj, zone.max_energy_range_uj)
        if total_uj == 0 and end_s - start_s > _STALL_WINDOW_S:
            raise MeterError(
                f"the RAPL counters did not advance in {end_s - start_s:.2f} s: they are not "
                "updated on this machine; use --backend estimate"
            )
        return total_uj / 1e6
