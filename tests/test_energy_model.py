"""The optimum-group-size model: the paper's equations on its own shapes, the fit on synthetic data
made by the model itself, device profiles, predictions and warm-start seeds."""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import optuna
import pytest

from e2gcsearch import ArchConfig, DataError
from e2gcsearch.cost import network_cost
from e2gcsearch.energy_model import (
    DeviceProfile,
    EnergyFit,
    EpfDataset,
    EpfMeasurement,
    balanced_work,
    config_predictions,
    config_terms,
    default_profile_path,
    eq2_group_sizes_by_stage,
    eq2_groups,
    eq4_group_size_ratio,
    fig3_frame,
    fingerprint_warning,
    fit_device_profile,
    fit_energy_model,
    layer_optima,
    layer_table,
    load_or_calibrate,
    optimal_groups,
    stage_group_sizes,
    table2,
    warm_start_configs,
)
from e2gcsearch.models import validate_config
from e2gcsearch.profiling import DeviceFingerprint
from e2gcsearch.search.space import SearchSpace
from e2gcsearch.search.stagewise import StagewiseSearchSpace
from e2gcsearch.search.warm_start import enqueue_warm_start

TRUTH = EnergyFit(batch_size=4, beta=0.35, kappa_mj=1e-4, gamma=400.0, gamma_dw=30.0, e0_mj=2.0)
FINGERPRINT = {
    "device": "cpu",
    "device_model": "Test CPU 9000",
    "torch": "0.0",
    "dtype": "float32",
    "memory_format": "contiguous",
    "threads": 1,
}


def sweep_configs() -> list[ArchConfig]:
    """11 networks at width 0.25 plus 3 at width 0.5: every model term varies."""
    configs = [ArchConfig("mobilenet_v1", group_size=G, width=0.25, num_classes=10) for G in (1, 2, 4, 8, 16, 32)]
    configs += [ArchConfig("mobilenet_v1", groups=g, width=0.25, num_classes=10) for g in (2, 4, 8, 16, 32)]
    configs += [ArchConfig("mobilenet_v1", group_size=G, width=0.5, num_classes=10) for G in (1, 4)]
    return configs + [ArchConfig("mobilenet_v1", groups=8, width=0.5, num_classes=10)]


def synthetic_dataset(noise: float = 0.0, seed: int = 0, configs=None, is_estimate: bool = True) -> EpfDataset:
    rng = np.random.default_rng(seed)
    measurements = []
    for cfg in configs or sweep_configs():
        epf = TRUTH.predict_mj(config_terms(cfg, 64)) * (1 + noise * rng.standard_normal())
        measurements.append(EpfMeasurement(cfg, 64, {4: epf}))
    return EpfDataset(
        "estimate" if is_estimate else "rapl",
        is_estimate,
        DeviceFingerprint.from_dict(FINGERPRINT),
        measurements,
        "synthetic",
    )


@pytest.fixture(scope="module")
def profile() -> DeviceProfile:
    return fit_device_profile(synthetic_dataset(noise=0.01, seed=1))


# --- the paper's equations ----------------------------------------------------------------------


def test_table2_quantities_of_the_fig3_layer():
    # m = n = 512, 3x3, 14x14, G = 4 -> g = 128 (hand-computed).
    q = table2(512, 512, 3, 14, 14, groups=128)
    assert (q["macs"], q["params"], q["activations"]) == (512 * 196 * 4 * 9, 512 * 4 * 9, 2 * 512 * 196)
    assert (q["macs"], q["params"], q["activations"]) == (3_612_672, 18_432, 200_704)
    assert q["ai"] == pytest.approx(3_612_672 / 219_136)


def test_eq2_on_the_papers_shapes():
    # beta = 1/2, gamma = 258048: g = 512*512*9*sqrt(196)/258048 = 33030144/258048 = 128, i.e. G = 4.
    assert eq2_groups(512, 512, 3, 14, 14, beta=0.5, gamma=258048.0) == pytest.approx(128.0)
    # MobileNet-V1's stages (m = n, h = w): 128@56, 256@28, 512@14, 1024@7 -> 32, 64, 128, 256 groups.
    assert [eq2_groups(m, m, 3, hw, hw, 0.5, 258048.0) for m, hw in ((128, 56), (256, 28), (1024, 7))] == pytest.approx(
        [32.0, 64.0, 256.0]
    )
    # beta = 0.25, gamma = 1e5: 512*512*9*196**0.75/1e5 = 1235.87 (hand-computed).
    assert eq2_groups(512, 512, 3, 14, 14, beta=0.25, gamma=1e5) == pytest.approx(1235.875, rel=1e-5)
    # Eq. 2 is Eq. 1 with A neglected: at that g, M_c^(1-b) * P^b = gamma.
    g = eq2_groups(512, 512, 3, 14, 14, beta=0.3, gamma=5e4)
    q = {"macs": 512 * 512 * 9 * 196 / g, "params": 512 * 512 * 9 / g}
    assert balanced_work(q["macs"], q["params"], 0.3) == pytest.approx(5e4)


def test_eq4_constant_group_size_at_half_balance():
    stages = [(128, 56), (256, 28), (512, 14), (1024, 7)]
    assert eq2_group_sizes_by_stage(stages, beta=0.5, gamma=258048.0) == pytest.approx([4.0] * 4)
    assert eq4_group_size_ratio(0.5) == 1.0
    assert eq4_group_size_ratio(0.25) == pytest.approx(math.sqrt(2))  # 2^(1 - 2*0.25)
    sizes = eq2_group_sizes_by_stage(stages, beta=0.25, gamma=1e5)
    assert [b / a for a, b in zip(sizes, sizes[1:])] == pytest.approx([math.sqrt(2)] * 3)


def test_model_optimum_is_eq1_per_group():
    m, hw, beta, gamma = 512, 14, 0.4, 300.0
    g_star = optimal_groups(m, m, 3, hw, hw, beta, gamma)
    dense = m * m * 9 * (hw * hw) ** (1 - beta)  # balanced work at g = 1, A neglected
    assert dense / g_star**2 == pytest.approx(gamma)  # one group's balanced work equals gamma
    brute = min(np.linspace(1, m, 20000), key=lambda g: dense / g + gamma * g)
    assert brute == pytest.approx(g_star, rel=1e-3)
    # G* = m/g* does not depend on m for m = n layers of the same spatial size.
    assert m / g_star == pytest.approx(1024 / optimal_groups(1024, 1024, 3, hw, hw, beta, gamma))


def test_fig3_and_layer_table_are_normalized_to_depthwise():
    frame = fig3_frame()
    assert frame["group_size"].tolist() == [1, 2, 4, 8, 16, 32, 64, 128, 256, 512]
    assert frame.iloc[0][["macs_norm", "ai_norm", "inv_ai_norm"]].tolist() == [1.0, 1.0, 1.0]
    assert frame["macs_norm"].tolist() == frame["group_size"].astype(float).tolist()
    assert (frame["ai_norm"] * frame["inv_ai_norm"]).tolist() == pytest.approx([1.0] * 10)
    table = layer_table(ArchConfig("mobilenet_v1", group_size=4), 224)
    assert len(table) == 13 and set(table["G"]) == {4} and table["macs_norm"].tolist() == [4.0] * 13
    assert (table["ai_norm"] > 3).all()


# --- the fit --------------------------------------------------------------------------------------


def test_fit_recovers_known_parameters_from_noisy_model_energies(profile):
    fit = profile.fits[4]
    assert fit.beta == pytest.approx(TRUTH.beta, abs=0.05)
    assert fit.gamma == pytest.approx(TRUTH.gamma, rel=0.25)
    assert fit.gamma_dw == pytest.approx(TRUTH.gamma_dw, rel=0.5)
    assert fit.r2 > 0.99 and fit.loo_mape < 0.05 and fit.loo_spearman > 0.95


def test_fit_is_exact_without_noise():
    terms = [config_terms(cfg, 64) for cfg in sweep_configs()]
    fit = fit_energy_model(terms, [TRUTH.predict_mj(t) for t in terms], batch_size=4, leave_one_out=False)
    assert (fit.beta, fit.gamma, fit.gamma_dw) == pytest.approx((0.35, 400.0, 30.0), rel=1e-3)


def test_too_few_measurements_say_how_many_are_needed():
    dataset = synthetic_dataset(configs=sweep_configs()[:5])
    with pytest.raises(DataError, match="at least 7 different configurations .*got 5"):
        fit_device_profile(dataset)
    repeated = synthetic_dataset(configs=sweep_configs()[:3] * 4)  # 12 measurements of 3 networks
    with pytest.raises(DataError, match="got 3"):
        fit_device_profile(repeated)


@pytest.mark.parametrize(
    "make_epf, fragment",
    [
        (lambda epf: [5.0] * len(epf), "all measured EPF values are equal"),
        (lambda epf: [-1.0] + epf[1:], "positive number"),
        (lambda epf: [float("nan")] + epf[1:], "positive number"),
    ],
)
def test_degenerate_data_is_rejected(make_epf, fragment):
    terms = [config_terms(cfg, 64) for cfg in sweep_configs()[:8]]
    epf = make_epf([TRUTH.predict_mj(t) for t in terms])
    with pytest.raises(DataError, match=fragment):
        fit_energy_model(terms, epf, batch_size=4)


def test_group_terms_that_do_not_vary_are_left_unidentified():
    # No depthwise layer anywhere (G >= 2 only): gamma_dw cannot be fitted and is reported as None.
    configs = [
        ArchConfig("mobilenet_v1", group_size=G, width=w, num_classes=10)
        for G in (2, 4, 8, 16, 32)
        for w in (0.25, 0.5)
    ]
    fit = fit_device_profile(synthetic_dataset(configs=configs)).fits[4]
    assert fit.gamma_dw is None and fit.gamma == pytest.approx(400.0, rel=0.05)


# --- device profile, fingerprint --------------------------------------------------------------------


def test_profile_round_trips_through_json(profile, tmp_path):
    path = profile.save(tmp_path / "profile.json")
    back = DeviceProfile.load(path)
    cfg = ArchConfig("mobilenet_v1", group_size=8, width=0.5, num_classes=10)
    assert back.predict_epf_mj(cfg) == pytest.approx(profile.predict_epf_mj(cfg))
    assert back.to_dict()["fits"] == profile.to_dict()["fits"] and back.fingerprint.to_dict() == FINGERPRINT
    assert "ESTIMATED energy" in back.to_dict()["energy_note"]
    (tmp_path / "other.json").write_text('{"kind": "something else"}')
    with pytest.raises(DataError, match="not a device profile"):
        DeviceProfile.load(tmp_path / "other.json")
    with pytest.raises(DataError, match="no device profile"):
        DeviceProfile.load(tmp_path / "missing.json")


def test_profile_from_another_device_warns(profile):
    same = DeviceFingerprint.from_dict(dict(FINGERPRINT, threads=8))  # threads alone do not make it another device
    assert fingerprint_warning(profile, current=same) is None
    other = DeviceFingerprint.from_dict(dict(FINGERPRINT, device_model="Other CPU 1"))
    line = fingerprint_warning(profile, current=other)
    assert line.startswith("warning:") and "device_model" in line and "\n" not in line
    assert fingerprint_warning(profile) is not None  # this machine is not 'Test CPU 9000'


# --- predictions and warm start --------------------------------------------------------------------


def test_predictions_next_to_measurements(profile):
    frame = config_predictions(profile, "mobilenet_v1", width=0.25, num_classes=10, resolution=64)
    assert len(frame) == 11 and frame["measured_epf_mj"].notna().all()
    assert frame["error_pct"].abs().max() < 5
    assert (frame["backend"] == "estimate").all()
    layers = layer_optima(profile, ArchConfig("mobilenet_v1", group_size=1, width=0.5, num_classes=10), 64)
    assert [layer.stage for layer in layers] == [0, 1, 2, 2, 3, 3] + [4] * 6 + [5]
    assert all(layer.m % layer.groups_best == 0 and layer.energy_best_mj <= layer.energy_mj for layer in layers)


def test_warm_start_seeds_are_valid_and_queued_once(profile):
    space = SearchSpace(widths=(0.25, 0.5))
    seeds = warm_start_configs(profile, space, num_classes=10, k=3, resolution=64)
    assert len(seeds) == 3 and len(set(seeds)) == 3
    assert [s.width for s in seeds[:2]] == [0.5, 0.25]  # the best of each width first, widest first
    for cfg in seeds:
        validate_config(cfg)
        assert space.contains(cfg)
    best_at_half = min((c for c in space.points(10) if c.width == 0.5), key=lambda c: profile.predict_epf_mj(c, 64))
    assert seeds[0] == best_at_half
    study = optuna.create_study(directions=["minimize", "maximize"])
    assert len(enqueue_warm_start(study, space, seeds)) == 3
    assert enqueue_warm_start(study, space, seeds) == []  # resuming queues nothing twice
    queued = study.get_trials(states=(optuna.trial.TrialState.WAITING,))
    assert [space.to_config(t.system_attrs["fixed_params"], 10) for t in queued] == seeds


def test_warm_start_seeds_keep_the_params_and_macs_constraints(profile):
    from e2gcsearch.search.objectives import cost_feasible, parse_constraint

    space = SearchSpace(widths=(0.25, 0.5))
    free = warm_start_configs(profile, space, num_classes=10, k=3, resolution=64)
    floor = network_cost(free[0], 64).macs + 1  # the unconstrained best at width 0.5 breaks it
    keep = cost_feasible([parse_constraint(f"macs>={floor}"), parse_constraint("epf<=1e-9")], 64)  # EPF: not known yet
    seeds = warm_start_configs(profile, space, num_classes=10, k=3, resolution=64, keep=keep)
    assert len(seeds) == 3 and free[0] not in seeds
    assert all(network_cost(cfg, 64).macs >= floor for cfg in seeds)
    feasible_at_half = [c for c in space.points(10) if c.width == 0.5 and network_cost(c, 64).macs >= floor]
    assert seeds[0] == min(feasible_at_half, key=lambda c: profile.predict_epf_mj(c, 64))  # the best that keeps it
    assert warm_start_configs(profile, space, 10, k=3, resolution=64, keep=lambda cfg: False) == []


def test_stagewise_warm_start_seeds_the_per_stage_optimum(profile):
    space = StagewiseSearchSpace(group_sizes=(1, 2, 4, 8), widths=(0.5,))
    staged = stage_group_sizes(profile, "mobilenet_v1", 0.5, 10, 64, group_sizes=space.group_sizes)
    seeds = warm_start_configs(profile, space, num_classes=10, k=2, resolution=64)
    assert seeds[0].stage_group_sizes == staged and len(staged) == 6 and len(set(seeds)) == 2
    assert all(space.contains(cfg) for cfg in seeds)
    uniform = [ArchConfig("mobilenet_v1", stage_group_sizes=(G,) * 6, width=0.5, num_classes=10) for G in (1, 2, 4, 8)]
    assert profile.predict_epf_mj(seeds[0], 64) <= min(profile.predict_epf_mj(c, 64) for c in uniform) + 1e-9


def test_calibration_runs_once_then_reuses_the_profile(tmp_path):
    from e2gcsearch.profiling import ProfileConfig

    space = SearchSpace(widths=(0.25,))
    config = ProfileConfig(
        batch_sizes=(2,),
        resolution=48,
        device="cpu",
        backend="estimate",
        repeats=3,
        min_window_s=0.05,
        warmup=1,
        cache_dir=str(tmp_path / "cache"),
        threads=1,
    )
    lines: list[str] = []
    first = load_or_calibrate(space, 10, config, progress=lines.append)
    assert any("calibrating on 9 networks" in line for line in lines)
    assert first.backend == "estimate" and first.is_estimate and 2 in first.fits
    (path,) = (tmp_path / "cache" / "device-profiles").glob("*.json")  # beside the profile cache it was given
    lines.clear()
    second = load_or_calibrate(space, 10, config, progress=lines.append)
    assert lines == [f"energy model: using the device profile {path}"]
    assert default_profile_path(first.fingerprint, tmp_path, 32) != default_profile_path(
        first.fingerprint, tmp_path, 48
    )
    assert second.fits[2].beta == pytest.approx(first.fits[2].beta)
    stored = path.read_bytes()
    lines.clear()
    load_or_calibrate(space, 10, dataclasses.replace(config, use_cache=False), progress=lines.append)  # --no-cache
    assert any("--no-cache; calibrating afresh on 9 networks" in line for line in lines)
    assert not any("saved" in line for line in lines) and path.read_bytes() == stored
