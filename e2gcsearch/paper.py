"""The E2GC paper's design points (Jha, Saini, Nag, Mittal, VLSID 2020, arXiv 2006.15100).

Tables III (MobileNet-V1) and IV (ResNeXt-50) list params and MACs of every E2GC group size G and
every FgGC number of groups g below, at 224x224 with 1000 classes. Which networks they list is asked
of the model registry (entries with ``in_paper_tables``).
"""

from __future__ import annotations

from collections.abc import Sequence

import pandas as pd

from .config import ArchConfig
from .cost import network_cost
from .errors import ConfigError
from .models import paper_archs, validate_config

GROUP_SIZES: tuple[int, ...] = (1, 2, 4, 8, 16, 32)  # E2GC: G
GROUPS: tuple[int, ...] = (2, 4, 8, 16, 32)  # FgGC: g

CITATION = """@inproceedings{jha2020e2gc,
  title         = {{E2GC}: Energy-efficient Group Convolution in Deep Neural Networks},
  author        = {Jha, Nandan Kumar and Saini, Rajat and Nag, Subhrajit and Mittal, Sparsh},
  booktitle     = {33rd International Conference on VLSI Design and 19th International
                   Conference on Embedded Systems (VLSID)},
  year          = {2020},
  eprint        = {2006.15100},
  archivePrefix = {arXiv}
}"""


def design_grid(
    archs: Sequence[str],
    widths: Sequence[float],
    num_classes: int,
    group_sizes: Sequence[int] = GROUP_SIZES,
    groups: Sequence[int] = GROUPS,
) -> list[ArchConfig]:
    """E2GC ``group_sizes`` then FgGC ``groups`` of each architecture at each width, in that order.

    Example:
        >>> [c.grouping for c in design_grid(["mobilenet_v1"], [0.5], 10, group_sizes=(1, 4), groups=(32,))]
        ['G=1', 'G=4', 'g=32']
    """
    configs = []
    for arch in archs:
        for width in widths:
            configs += [ArchConfig(arch, group_size=size, width=width, num_classes=num_classes) for size in group_sizes]
            configs += [ArchConfig(arch, groups=count, width=width, num_classes=num_classes) for count in groups]
    return configs


def table_configs(width: float = 1.0, num_classes: int = 1000, archs: Sequence[str] | None = None) -> list[ArchConfig]:
    """Every row of Tables III and IV, E2GC rows before FgGC rows, per architecture.

    ``archs`` defaults to the paper's networks; any registered architecture gets the same rows, less
    those it cannot be built with (a G or g that does not divide its grouped convs, see
    :func:`refused_configs`; the paper's networks have none).
    """
    refused = {config for config, _ in refused_configs(width, num_classes, archs)}
    return [config for config in _grid(width, num_classes, archs) if config not in refused]


def refused_configs(
    width: float = 1.0, num_classes: int = 1000, archs: Sequence[str] | None = None
) -> list[tuple[ArchConfig, str]]:
    """The rows of :func:`table_configs`'s grid that cannot be built, each with the reason."""
    refused = []
    for config in _grid(width, num_classes, archs):
        try:
            validate_config(config)
        except ConfigError as exc:
            refused.append((config, str(exc)))
    return refused


def _grid(width: float, num_classes: int, archs: Sequence[str] | None) -> list[ArchConfig]:
    return design_grid(paper_archs() if archs is None else archs, [width], num_classes)


def cost_table(
    resolution: int = 224, width: float = 1.0, num_classes: int = 1000, archs: Sequence[str] | None = None
) -> pd.DataFrame:
    """The paper's Tables III/IV as a DataFrame: arch, module, value, params, macs, activations, ai
    (``archs`` as in :func:`table_configs`)."""
    rows = []
    for arch_config in table_configs(width, num_classes, archs):
        summary = network_cost(arch_config, resolution).summary()
        rows.append(
            {
                key: summary[key]
                for key in ("arch", "module", "value", "params", "macs", "activations", "ai", "width", "resolution")
            }
        )
    return pd.DataFrame(rows)
