"""Per-layer analysis of a network's grouped convs: the paper's Table II quantities, normalized as in
its Fig. 3 to the depthwise case (the same layer with G = 1, i.e. g = m groups).

Example:
    >>> from e2gcsearch import ArchConfig
    >>> frame = layer_table(ArchConfig("mobilenet_v1", group_size=4), resolution=224)
    >>> row = frame.iloc[0]
    >>> row["name"], int(row["m"]), int(row["G"]), int(row["g"]), float(row["macs_norm"]), round(float(row["ai_norm"]), 2)
    ('features.0.conv_grouped', 32, 4, 8, 4.0, 4.0)
"""

from __future__ import annotations

import pandas as pd

from ..config import ArchConfig
from ..cost import network_cost
from ..models.stages import layer_stage
from .equations import table2

COLUMNS = [
    "name",
    "stage",
    "m",
    "n",
    "kernel",
    "stride",
    "out_h",
    "out_w",
    "G",
    "g",
    "macs",
    "params",
    "activations",
    "ai",
    "macs_norm",
    "params_norm",
    "memory_norm",
    "ai_norm",
    "inv_ai_norm",
]


def layer_table(arch_config: ArchConfig, resolution: int = 224) -> pd.DataFrame:
    """One row per grouped conv of ``arch_config``: M_c, P, A, AI, and each divided by its depthwise value
    (``memory_norm`` is (A+P)/(A+P)_dw; ``inv_ai_norm`` is (1/AI)/(1/AI)_dw)."""
    rows = []
    for layer in network_cost(arch_config, resolution).layers:
        stage = layer_stage(arch_config.arch, layer.name)
        if layer.kernel == 1 or stage is None:
            continue
        m, n = layer.in_channels, layer.out_channels
        depthwise = table2(m, n, layer.kernel, layer.out_h, layer.out_w, groups=m, stride=layer.stride)
        memory, memory_dw = layer.params + layer.activations, depthwise["params"] + depthwise["activations"]
        rows.append(
            {
                "name": layer.name,
                "stage": stage,
                "m": m,
                "n": n,
                "kernel": layer.kernel,
                "stride": layer.stride,
                "out_h": layer.out_h,
                "out_w": layer.out_w,
                "G": layer.group_size,
                "g": layer.groups,
                "macs": layer.macs,
                "params": layer.params,
                "activations": layer.activations,
                "ai": layer.ai,
                "macs_norm": layer.macs / depthwise["macs"],
                "params_norm": layer.params / depthwise["params"],
                "memory_norm": memory / memory_dw,
                "ai_norm": layer.ai / depthwise["ai"],
                "inv_ai_norm": depthwise["ai"] / layer.ai,
            }
        )
    return pd.DataFrame(rows, columns=COLUMNS)
