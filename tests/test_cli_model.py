"""``e2gcsearch analyze`` and ``e2gcsearch model fit|predict`` through the command line."""

from __future__ import annotations

import json

import numpy as np
import optuna
import pytest

from e2gcsearch import ArchConfig
from e2gcsearch.cli import main
from e2gcsearch.energy_model import EnergyFit, config_terms
from e2gcsearch.store.record import user_attrs

TRUTH = EnergyFit(batch_size=16, beta=0.4, kappa_mj=5e-5, gamma=300.0, gamma_dw=20.0, e0_mj=1.0)
FINGERPRINT = {
    "device": "cpu",
    "device_model": "Test CPU 9000",
    "torch": "0.0",
    "dtype": "float32",
    "memory_format": "contiguous",
    "threads": 1,
    "meter": "estimate (time x 7.5 W)",
}


def configs() -> list[ArchConfig]:
    out = [ArchConfig("mobilenet_v1", group_size=G, width=0.25, num_classes=10) for G in (1, 2, 4, 8, 16, 32)]
    return out + [ArchConfig("mobilenet_v1", groups=g, width=0.25, num_classes=10) for g in (2, 8, 32)]


def epf_of(cfg: ArchConfig, noise: float) -> float:
    return TRUTH.predict_mj(config_terms(cfg, 64)) * (1 + noise)


@pytest.fixture(scope="module")
def sweep_file(tmp_path_factory):
    rng = np.random.default_rng(0)
    measurements = [
        {
            "arch_config": cfg.to_dict(),
            "resolution": 64,
            "epf": {
                "16": {"epf_mj": epf_of(cfg, 0.01 * rng.standard_normal()), "status": "ok"},
                "4": {"epf_mj": None, "status": "out of memory"},
            },
        }
        for cfg in configs()
    ]
    path = tmp_path_factory.mktemp("sweep") / "sweep.json"
    path.write_text(
        json.dumps(
            {
                "kind": "e2gcsearch.epf-sweep",
                "version": 1,
                "backend": "estimate",
                "is_estimate": True,
                "fingerprint": FINGERPRINT,
                "measurements": measurements,
            }
        )
    )
    return path


@pytest.fixture(scope="module")
def profile_file(sweep_file, tmp_path_factory):
    out = tmp_path_factory.mktemp("profile") / "device-profile.json"
    assert main(["model", "fit", "--from-profile", str(sweep_file), "--out", str(out), "--format", "csv"]) == 0
    return out


def test_analyze_prints_table2_and_draws_fig3(tmp_path, capsys):
    png, html = tmp_path / "fig3.png", tmp_path / "fig3.html"
    assert main(["analyze", "mobilenet_v1", "--group-size", "4", "--plot", str(png)]) == 0
    out, err = capsys.readouterr()
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and f"wrote {png}" in err
    assert "13 grouped convs" in out and "features.12.conv_grouped" in out and "(1/AI)/dw" in out
    assert main(["analyze", "resnext50", "--groups", "32", "--format", "json", "--plot", str(html)]) == 0
    document = json.loads(capsys.readouterr().out)
    assert len(document["layers"]) == 16 and document["layers"][0]["g"] == 32
    assert "<svg" in html.read_text()
    assert main(["analyze", "mobilenet_v1", "-G", "4", "--plot", str(tmp_path / "fig3.gif")]) == 2
    assert "fig3.gif" in capsys.readouterr().err


def test_fit_from_a_sweep_file_reports_the_fit_and_the_backend(sweep_file, tmp_path, capsys):
    out_path = tmp_path / "p.json"
    assert main(["model", "fit", "--from-profile", str(sweep_file), "--out", str(out_path)]) == 0
    out, err = capsys.readouterr()
    assert "ESTIMATED energy" in out and "estimate" in out and "R2" in out and "LOO rho" in out
    assert f"saved the device profile to {out_path}" in err
    profile = json.loads(out_path.read_text())
    fit = profile["fits"]["16"]
    assert list(profile["fits"]) == ["16"]  # the out-of-memory batch size is not fitted
    assert fit["beta"] == pytest.approx(0.4, abs=0.06) and fit["r2"] > 0.98
    assert profile["fingerprint"] == FINGERPRINT and len(profile["measurements"]) == 9
    assert profile["is_estimate"] is True and "model_form" in profile


def test_predict_json_schema(profile_file, capsys):
    assert main(["model", "predict", "mobilenet_v1", "--profile", str(profile_file), "--format", "json"]) == 0
    captured = capsys.readouterr()
    doc = json.loads(captured.out)
    assert set(doc) == {
        "profile",
        "config",
        "units",
        "layers",
        "configs",
        "favoured_group_size",
        "favoured_stage_group_sizes",
    }
    assert doc["profile"]["backend"] == "estimate" and doc["profile"]["is_estimate"] is True
    assert doc["units"]["epf"] == "mJ/frame" and doc["config"]["width"] == 0.25  # the profile's width
    assert {"name", "stage", "m", "groups_eq2", "group_size_eq2", "groups_best", "group_size_best"} <= set(
        doc["layers"][0]
    )
    assert len(doc["layers"]) == 13 and len(doc["configs"]) == 11
    measured = [row for row in doc["configs"] if row["measured_epf_mj"] is not None]
    assert len(measured) == 9 and all(abs(row["error_pct"]) < 5 for row in measured)
    assert doc["favoured_group_size"] in (1, 2, 4, 8, 16, 32) and len(doc["favoured_stage_group_sizes"]) == 6
    # The profile's fingerprint is not this machine's: one warning line on stderr.
    warnings = [line for line in captured.err.splitlines() if line.startswith("warning:")]
    assert len(warnings) == 1 and "device_model" in warnings[0]


def test_predict_table_names_the_favoured_g(profile_file, capsys):
    assert main(["model", "predict", "mobilenet_v1", "--profile", str(profile_file), "-G", "8"]) == 0
    out = capsys.readouterr().out
    assert "the model favours G=" in out and "per grouped layer of mobilenet_v1 E2GC G=8 w=0.25" in out
    assert "predicted EPF" in out and "measured EPF" in out and "backend: estimate" in out


def test_fit_from_a_study(tmp_path, capsys):
    storage = f"sqlite:///{tmp_path / 'studies.db'}"
    study = optuna.create_study(storage=storage, study_name="s", directions=["minimize"])
    for number, cfg in enumerate(configs()):
        attrs = user_attrs(
            arch_config=cfg,
            resolution=64,
            energy_backend="estimate",
            energy_is_estimate=True,
            fingerprint=FINGERPRINT,
            epf={16: {"epf_mj": epf_of(cfg, 0.0), "status": "ok"}},
        )
        study.add_trial(optuna.trial.create_trial(values=[float(number)], user_attrs=attrs))
    out_path = tmp_path / "p.json"
    assert main(["model", "fit", "--study", "s", "--storage", storage, "--out", str(out_path), "--format", "csv"]) == 0
    assert "batch_size,n,beta" in capsys.readouterr().out
    assert json.loads(out_path.read_text())["fits"]["16"]["beta"] == pytest.approx(0.4, abs=1e-3)


@pytest.mark.parametrize(
    "make, fragment",
    [
        (
            lambda path: path.write_text(
                json.dumps(
                    {
                        "kind": "e2gcsearch.epf-sweep",
                        "backend": "estimate",
                        "measurements": [
                            {"arch_config": configs()[0].to_dict(), "resolution": 64, "epf": {"16": {"epf_mj": 1.0}}}
                        ],
                    }
                )
            ),
            "needs EPF of at least 7 different configurations",
        ),
        (lambda path: path.write_text("{not json"), "cannot read the sweep file"),
        (lambda path: path.write_text(json.dumps({"kind": "e2gcsearch.device-profile"})), "is not a sweep file"),
    ],
)
def test_bad_fit_input_is_one_line_with_exit_2(tmp_path, capsys, make, fragment):
    path = tmp_path / "bad.json"
    make(path)
    assert main(["model", "fit", "--from-profile", str(path), "--out", str(tmp_path / "p.json")]) == 2
    err = capsys.readouterr().err.strip()
    assert fragment in err and len(err.splitlines()) == 1 and err.startswith("e2gcsearch model: error:")


def test_predict_needs_a_profile_file(tmp_path, capsys):
    assert main(["model", "predict", "mobilenet_v1", "--profile", str(tmp_path / "none.json")]) == 2
    assert "no device profile" in capsys.readouterr().err
