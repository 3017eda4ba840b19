"""The optimum-group-size model of the E2GC paper (Section III-B, Eq. 1–4) as a tool.

* :mod:`.equations` — Table II quantities, Eq. 1–4 in closed form, the Fig. 3 data;
* :mod:`.analysis` — the Table II quantities of every grouped conv of a network;
* :mod:`.fit` — the energy model fitted to measured EPF (the form and why: see there);
* :mod:`.data` — measured EPF from a sweep or a sweep file (a study's: :mod:`e2gcsearch.search.warm_start`);
* :mod:`.device_profile` — the fitted profile of one device, saved as JSON;
* :mod:`.predict` — per-layer optimal g, predicted EPF, favoured G (per network, per stage),
  warm-start seeds for a search (configs only; the search queues them).

Example:
    >>> from e2gcsearch.energy_model import eq2_groups, eq4_group_size_ratio
    >>> eq2_groups(m=1024, n=1024, kernel=3, h=7, w=7, beta=0.5, gamma=258048.0), eq4_group_size_ratio(0.5)
    (256.0, 1.0)
"""

from __future__ import annotations

from .analysis import layer_table
from .data import EpfDataset, EpfMeasurement, default_sweep_configs, load_sweep, run_sweep
from .device_profile import (
    DeviceProfile,
    current_fingerprint,
    default_profile_path,
    fingerprint_warning,
    fit_device_profile,
)
from .equations import (
    balanced_work,
    eq2_group_sizes_by_stage,
    eq2_groups,
    eq4_group_size_ratio,
    fig3_frame,
    optimal_groups,
    table2,
)
from .fit import MIN_CONFIGS, MODEL_FORM, ConfigTerms, EnergyFit, config_terms, fit_energy_model
from .predict import (
    LayerOptimum,
    calibration_configs,
    config_predictions,
    favoured_group_size,
    layer_optima,
    load_or_calibrate,
    stage_group_sizes,
    warm_start_configs,
)

__all__ = [
    "MIN_CONFIGS",
    "MODEL_FORM",
    "ConfigTerms",
    "DeviceProfile",
    "EnergyFit",
    "EpfDataset",
    "EpfMeasurement",
    "LayerOptimum",
    "balanced_work",
    "calibration_configs",
    "config_predictions",
    "config_terms",
    "current_fingerprint",
    "default_profile_path",
    "default_sweep_configs",
    "eq2_group_sizes_by_stage",
    "eq2_groups",
    "eq4_group_size_ratio",
    "favoured_group_size",
    "fig3_frame",
    "fingerprint_warning",
    "fit_device_profile",
    "fit_energy_model",
    "layer_optima",
    "layer_table",
    "load_or_calibrate",
    "load_sweep",
    "optimal_groups",
    "run_sweep",
    "stage_group_sizes",
    "table2",
    "warm_start_configs",
]
