"""e2gcsearch: find the group size (E2GC) or number of groups (FgGC) of a CNN that trades accuracy
against measured energy per frame on your hardware.

The public API is small; everything else lives in the submodules.

Example:
    >>> from e2gcsearch import ArchConfig, create_model, network_cost
    >>> arch_config = ArchConfig("resnext50", groups=32)
    >>> network_cost(arch_config).params
    24960680
"""

from __future__ import annotations

from .config import ArchConfig
from .cost import LayerCost, NetworkCost, network_cost
from .data import DataConfig, LoadedData, load_data
from .errors import ConfigError, DataError, UnknownNameError, UserError
from .models import create_model, list_models
from .train import TrainConfig, TrainResult, train_model
from .version import __version__

__all__ = [
    "ArchConfig",
    "ConfigError",
    "DataConfig",
    "DataError",
    "LayerCost",
    "LoadedData",
    "NetworkCost",
    "TrainConfig",
    "TrainResult",
    "UnknownNameError",
    "UserError",
    "__version__",
    "create_model",
    "list_models",
    "load_data",
    "network_cost",
    "train_model",
]
