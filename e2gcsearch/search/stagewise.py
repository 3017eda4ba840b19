"""The stage-wise search space (``--space stagewise``): architecture, width and one E2GC group size
per network stage.

A point is drawn as ``arch``, ``width`` and ``log2_G_stage0`` … ``log2_G_stage{k-1}``, one ordinal
log2 group size per stage; the parameters, the widths and the encoding are explained in
:mod:`e2gcsearch.search.space`, whose :class:`~e2gcsearch.search.space.Space` protocol this space
implements.
"""

from __future__ import annotations

import dataclasses
import itertools
from typing import Any, ClassVar

from ..checks import is_int
from ..config import E2GC, ArchConfig
from ..errors import ConfigError
from ..models import DEFAULT_ARCH, get_entry
from ..models.stages import num_stages
from ..paper import GROUP_SIZES
from .ordinal import Ordinal
from .space import DEFAULT_WIDTHS, ENCODING, WIDTH, unbuildable, width_axis


def stage_param(stage: int) -> str:
    """Name of the trial parameter holding log2 of the group size of ``stage`` (``log2_G_stage0``, …)."""
    return f"log2_G_stage{stage}"


@dataclasses.dataclass(frozen=True)
class StagewiseSearchSpace:
    """Architecture, width and one E2GC group size per stage (``--space stagewise``).

    A point is ``ArchConfig(arch, stage_group_sizes=(G_0, …, G_{k-1}), width=w)``. A uniform E2GC
    config is the point whose stages all share its G, so the paper's G=1 baseline belongs here too.

    Example:
        >>> space = StagewiseSearchSpace(group_sizes=(1, 2, 4), widths=(0.5,))
        >>> space.size
        729
        >>> space.to_config({"arch": "mobilenet_v1", "width": 0.5, "log2_G_stage0": 0, "log2_G_stage1": 1,
        ...                  "log2_G_stage2": 1, "log2_G_stage3": 2, "log2_G_stage4": 2, "log2_G_stage5": 2},
        ...                 num_classes=10).label()
        'mobilenet_v1 E2GC G=1-2-2-4-4-4 w=0.50'
    """

    stagewise: ClassVar[bool] = True  # one group size per stage

    archs: tuple[str, ...] = (DEFAULT_ARCH,)
    group_sizes: tuple[int, ...] = GROUP_SIZES
    widths: tuple[float, ...] = DEFAULT_WIDTHS

    def __post_init__(self) -> None:
        for arch in self.archs:
            get_entry(arch)
            num_stages(arch)  # an arch without a stage table cannot be searched stage-wise
        if not self.archs:
            raise ConfigError(f"the stage-wise space needs at least one architecture, e.g. --arch {DEFAULT_ARCH}")
        if not self.group_sizes or not all(is_int(g) for g in self.group_sizes):
            raise ConfigError(f"group sizes must be positive integers like 1,2,4,8, got {self.group_sizes}")
        if any(w <= 0 for w in self.widths) or not self.widths:
            raise ConfigError(f"widths must be positive numbers, got {self.widths}; e.g. --widths 0.25,0.5,1.0")
        object.__setattr__(self, "group_sizes", tuple(int(g) for g in self.group_sizes))
        object.__setattr__(self, "widths", tuple(float(w) for w in self.widths))

    @property
    def modules(self) -> tuple[str, ...]:
        return (E2GC,)

    @property
    def size(self) -> int:
        return sum(len(self.group_sizes) ** num_stages(arch) for arch in self.archs) * len(self.widths)

    def stage_axis(self, stage: int) -> Ordinal:
        return Ordinal(stage_param(stage), self.group_sizes, log2=True)

    def choices(self) -> dict[str, list[Any]]:
        """Parameter name → candidate (coded) values; the stage parameters run to the deepest arch's stage
        count (an arch with fewer stages ignores the extra ones)."""
        stages = max(num_stages(arch) for arch in self.archs)
        out: dict[str, list[Any]] = {"arch": list(self.archs), WIDTH: width_axis(self.widths).choices()}
        out.update({stage_param(i): self.stage_axis(i).choices() for i in range(stages)})
        return out

    def sample(self, trial: Any, num_classes: int) -> ArchConfig:
        """Draw one point from ``trial`` (any Optuna trial, including ``FixedTrial``)."""
        arch = trial.suggest_categorical("arch", list(self.archs))
        width = width_axis(self.widths).suggest(trial)
        sizes = tuple(int(self.stage_axis(stage).suggest(trial)) for stage in range(num_stages(arch)))
        return ArchConfig(arch, stage_group_sizes=sizes, width=float(width), num_classes=num_classes)

    def to_config(self, params: dict[str, Any], num_classes: int) -> ArchConfig:
        """The point that trial parameters ``params`` stand for (an older study's ``G_stage<i>`` held G itself)."""
        stages = range(num_stages(params["arch"]))
        if all(f"G_stage{i}" in params for i in stages):  # stored before the ordinal encoding
            sizes = tuple(int(params[f"G_stage{i}"]) for i in stages)
        else:
            sizes = tuple(int(self.stage_axis(i).decode(params[stage_param(i)])) for i in stages)
        width = width_axis(self.widths).decode(params[WIDTH])
        return ArchConfig(params["arch"], stage_group_sizes=sizes, width=float(width), num_classes=num_classes)

    def params_of(self, arch_config: ArchConfig) -> dict[str, Any]:
        """The trial parameters that sample ``arch_config`` (a uniform E2GC config gives its G to every stage)."""
        if arch_config.module != E2GC:
            raise ConfigError(f"{arch_config.label()} is FgGC; the stage-wise space holds E2GC configs only")
        sizes = arch_config.stage_group_sizes or (arch_config.group_size,) * num_stages(arch_config.arch)
        return {
            "arch": arch_config.arch,
            WIDTH: width_axis(self.widths).encode(arch_config.width),
            **{stage_param(i): self.stage_axis(i).encode(size) for i, size in enumerate(sizes)},
        }

    def contains(self, arch_config: ArchConfig) -> bool:
        if arch_config.module != E2GC or arch_config.arch not in self.archs or arch_config.width not in self.widths:
            return False
        sizes = arch_config.stage_group_sizes or (arch_config.group_size,) * num_stages(arch_config.arch)
        return len(sizes) == num_stages(arch_config.arch) and all(size in self.group_sizes for size in sizes)

    def points(self, num_classes: int) -> list[ArchConfig]:
        """Every point of the space (grows as ``len(group_sizes) ** stages``: use with small sets)."""
        return [
            ArchConfig(arch, stage_group_sizes=sizes, width=width, num_classes=num_classes)
            for arch in self.archs
            for width in self.widths
            for sizes in itertools.product(self.group_sizes, repeat=num_stages(arch))
        ]

    def impossible(self, num_classes: int) -> list[tuple[ArchConfig, str]]:
        """One representative per (arch, width, stage, G) that cannot be built, with the reason.

        Whether a stage's G fits depends on that stage alone, so every point with that stage value
        fails the same way; the representative has G=1 (always buildable) in the other stages.
        """
        probes = []
        for arch, width in itertools.product(self.archs, self.widths):
            stages = num_stages(arch)
            for stage, size in itertools.product(range(stages), self.group_sizes):
                sizes = tuple(size if i == stage else 1 for i in range(stages))
                probes.append(ArchConfig(arch, stage_group_sizes=sizes, width=width, num_classes=num_classes))
        return unbuildable(probes)

    def buildable(self, impossible: list[tuple[ArchConfig, str]]) -> bool:
        """Whether any point can be built, given :meth:`impossible`'s answer: for some arch and width,
        every stage has a G that fits."""
        bad = {
            (c.arch, c.width, stage, size)
            for c, _ in impossible
            for stage, size in enumerate(c.stage_group_sizes)
            if size != 1
        }  # a probe's one stage off G=1
        return any(
            all(
                any((arch, width, stage, size) not in bad for size in self.group_sizes)
                for stage in range(num_stages(arch))
            )
            for arch, width in itertools.product(self.archs, self.widths)
        )

    def describe(self) -> dict[str, Any]:
        """JSON-ready description stored on the study; resuming requires the same one."""
        return {
            "kind": "stagewise",
            "archs": list(self.archs),
            "group_sizes": list(self.group_sizes),
            "widths": list(self.widths),
            "stages": {arch: num_stages(arch) for arch in self.archs},
            "encoding": ENCODING,
        }
