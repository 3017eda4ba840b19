"""The work after the trials is on the search's bill too: confirm's extra seeds and windows, and the
inference EPF that `run` measures for the front's break-even column when no objective measured it.

The meter is the fake of test_search_cost (an estimate backend whose every window reads 5 J); the
profiler, the trainer, confirm, the ledger, the study and the commands are the real code.
"""

from __future__ import annotations

import json

import pytest
from test_search_cost import KnownJoules, known_joules  # noqa: F401 - the fixture is used by name
from test_uncertainty import _planted_tie

from e2gcsearch.cli import main
from e2gcsearch.data import DataConfig, load_data
from e2gcsearch.search.confirm import ConfirmLimits, confirm_study
from e2gcsearch.store import record
from e2gcsearch.store.results import front_info, trial_record
from e2gcsearch.store.spending import paper_baselines, study_search_cost
from e2gcsearch.store.storage import open_study

pytestmark = pytest.mark.filterwarnings("ignore::optuna.exceptions.ExperimentalWarning")


def phases_of(study, what):
    """Every phase the study's ``spent:<what>:*`` attrs hold (one attr per writer)."""
    keys = [key for key in study.user_attrs if key.startswith(f"{record.SPENT_PREFIX}{what}:")]
    return keys, [phase for key in keys for phase in study.user_attrs[key]]


def test_confirms_seeds_and_windows_are_on_the_bill(tmp_path, tiny_settings, known_joules, capsys):  # noqa: F811
    study, url = _planted_tie(tmp_path)
    before = study_search_cost(study)
    assert not before.recorded  # the planted trials recorded no work: all that follows is confirm's
    data = load_data(
        DataConfig(name="digits", classes=3, train_per_class=8, val_per_class=4, resolution=32),
        progress=False,
    )
    settings = tiny_settings
    report = confirm_study(
        study, settings.train, settings.profile, data, ConfirmLimits(budget_s=5, windows=2, max_seeds=2), remeasure=True
    )
    keys, phases = phases_of(study, "confirm")
    assert len(keys) == 1  # one writer, one key
    expected = ["measurement"] * 2 + ["training" if s.objective == "top1" else "measurement" for s in report.steps]
    assert [p["kind"] for p in phases] == expected  # remeasuring both trials, then every step
    assert all(p["energy_j"] == KnownJoules.JOULES and p["backend"] == "estimate" for p in phases)
    cost = study_search_cost(study)
    assert cost.energy_j == pytest.approx(KnownJoules.JOULES * len(expected)) and cost.is_estimate
    assert sum(cost.counts.values()) == len(expected)
    assert main(["front", "--storage", url, "--study", "tie", "--format", "json"]) == 0
    shown = json.loads(capsys.readouterr().out)["search_cost"]
    assert shown["energy_j"] == pytest.approx(cost.energy_j) and shown["source"] == "estimate"
    assert main(["studies", "--storage", url]) == 0
    assert f"{cost.energy_j:.3g} J" in capsys.readouterr().out


def tiny_run(tmp_path, *extra):
    """A default-style search (`--objective epf@4,top1`, no epf_infer) on a tiny space, by the command."""
    url = f"sqlite:///{tmp_path / 'run.db'}"
    flags = [
        "run", "--storage", url, "--study", "s", "--objective", "epf@4,top1", "--trials", "3", "--seed", "1",
        "--data", "digits", "--classes", "3", "--train-per-class", "8", "--val-per-class", "4",
        "--resolution", "32", "--epochs", "1", "--batch-size", "8", "--threads", "1",
        "--modules", "E2GC", "--group-sizes", "1,2,8", "--widths", "0.25", "--batch-sizes", "4",
        "--backend", "estimate", "--device", "cpu", "--repeats", "2", "--min-window-s", "0.02",
        "--cache-dir", str(tmp_path / "cache"), "--warm-start", "none", "--early-stop", "off",
    ]  # fmt: skip
    assert main(flags + list(extra)) == 0
    return url, open_study(url, "s")


@pytest.mark.slow
def test_a_default_run_measures_inference_epf_for_the_front_and_shows_break_even(tmp_path, known_joules, capsys):  # noqa: F811
    url, study = tiny_run(tmp_path)
    out, err = capsys.readouterr()
    assert err.count("break-even: measuring the inference EPF@1 (forward only, eval mode) of") == 1
    front = front_info(study)
    baseline = paper_baselines(study)["mobilenet_v1"]
    wanted = {*map(int, front.frame["trial"]), baseline.number}
    trials = study.get_trials(deepcopy=False)
    measured = {t.number for t in trials if record.inference_key(t.number) in study.user_attrs}
    assert measured == wanted  # the front and its paper baseline, nothing else
    for number in wanted:
        assert record.EPF_INFER not in trials[number].user_attrs  # the trial measured none itself
        figures = trial_record(study, trials[number]).epf_infer[1]
        assert figures["status"] == "ok" and figures["epf_mj"] > 0
    _, phases = phases_of(study, "inference")
    assert [p["kind"] for p in phases] == ["measurement"] * len(wanted)
    assert all(p["energy_j"] == KnownJoules.JOULES for p in phases)
    assert "break-even (frames, estimate)" in out  # the front run prints has the column
    assert main(["front", "--storage", url, "--study", "s", "--format", "json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["break_even"]["epf_infer_batch_size"] == 1
    frames = {row["trial"]: row["break_even_frames"] for row in data["rows"]}
    assert frames.get(baseline.number, "reference") == "reference"
    assert all(value is not None for value in frames.values())  # a number, 'never' or 'reference' for every point
    by_trials = sum(p["kind"] == "measurement" for t in trials for p in t.user_attrs.get(record.SPENT) or [])
    assert data["search_cost"]["phases"]["measurement"] == by_trials + len(wanted)


@pytest.mark.slow
def test_no_break_even_skips_the_inference_measurement(tmp_path, known_joules, capsys):  # noqa: F811
    url, study = tiny_run(tmp_path, "--no-break-even")
    assert "break-even: measuring" not in capsys.readouterr().err
    assert not [key for key in study.user_attrs if key.startswith(f"{record.EPF_INFER}:")]
    assert phases_of(study, "inference") == ([], [])
    assert main(["front", "--storage", url, "--study", "s"]) == 0
    out, err = capsys.readouterr()
    assert "break-even needs inference EPF" in err and "--no-break-even" in err and "break-even" not in out
