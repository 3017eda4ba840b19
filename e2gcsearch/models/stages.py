"""Network stages for stage-wise E2GC (``ArchConfig.stage_group_sizes``: one group size G per stage),
asked of each network's registry entry (:class:`~e2gcsearch.models.registry.StagePlan`).

A stage is the set of grouped 3x3 convs with the same stock input channel count m; within a stage the
spatial size h x w is the same too (apart from the stride-2 conv that opens it), which is what the
optimum-group-size model (E2GC Eq. 2) says the best G depends on. Each network file says which layers
form its stages, e.g.

* **MobileNet-V1**: the 13 modules grouped by the input channels m of their grouped 3x3 conv,
  m = 32, 64, 128, 256, 512, 1024 → 6 stages of 1, 1, 2, 2, 6 and 1 modules
  (``features.0`` | ``features.1`` | ``features.2-3`` | ``features.4-5`` | ``features.6-11`` | ``features.12``).
* **ResNeXt-50**: its 4 stages ``layer1`` … ``layer4``, grouped width m = 128, 256, 512, 1024.

Example:
    >>> num_stages("mobilenet_v1"), num_stages("resnext50")
    (6, 4)
    >>> layer_stage("mobilenet_v1", "features.7.conv_grouped"), layer_stage("resnext50", "layer3.2.conv2")
    (4, 2)
"""

from __future__ import annotations

from ..config import ArchConfig
from ..errors import ConfigError, UnknownNameError
from .registry import StagePlan, get_entry, list_models


def _stage_plan(arch: str) -> StagePlan:
    stages = get_entry(arch).stages
    if stages is None:
        staged = [name for name in list_models() if get_entry(name).stages is not None]
        raise UnknownNameError(f"{arch!r} has no stage table; stage-wise group sizes work for: {', '.join(staged)}")
    return stages if isinstance(stages, StagePlan) else stages()


def stage_channels(arch: str) -> tuple[int, ...]:
    """Stock grouped-conv input channels m of each stage of ``arch``."""
    return _stage_plan(arch).channels


def num_stages(arch: str) -> int:
    """How many values ``stage_group_sizes`` takes for ``arch``."""
    return len(stage_channels(arch))


def stage_of_channels(arch: str, stock_channels: int) -> int:
    """Stage index of a grouped conv whose stock input channel count is ``stock_channels``."""
    channels = stage_channels(arch)
    if stock_channels not in channels:
        raise ValueError(f"{arch} has no stage with {stock_channels} grouped channels; stages have {channels}")
    return channels.index(stock_channels)


def layer_stage(arch: str, layer_name: str) -> int | None:
    """Stage index of a layer named as in the model (``features.7.conv_grouped``, ``layer3.2.conv2``);
    ``None`` for layers outside the stages (stem, classifier)."""
    return _stage_plan(arch).layer_stage(layer_name)


def check_stage_count(arch_config: ArchConfig) -> None:
    """Reject a stage-wise config whose number of group sizes is not the arch's number of stages."""
    if arch_config.stage_group_sizes is None:
        return
    channels = stage_channels(arch_config.arch)
    if len(arch_config.stage_group_sizes) != len(channels):
        raise ConfigError(
            f"{arch_config.arch} has {len(channels)} stages (grouped-conv input channels "
            f"{', '.join(map(str, channels))}); give {len(channels)} stage group sizes, "
            f"got {len(arch_config.stage_group_sizes)} ({'-'.join(map(str, arch_config.stage_group_sizes))})"
        )
