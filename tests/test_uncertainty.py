"""Uncertainty on every objective: intervals from windows, seeds and the validation count, the
noise-aware front status, and confirm's measurements of contested points."""

from __future__ import annotations

import dataclasses
import json
import math

import numpy as np
import optuna
import pandas as pd
import pytest
from optuna.trial import create_trial

from e2gcsearch import ArchConfig
from e2gcsearch.cli import main
from e2gcsearch.data import DataConfig, load_data
from e2gcsearch.errors import ConfigError
from e2gcsearch.metrics import Metric
from e2gcsearch.report import contested_pairs, front_status
from e2gcsearch.search.confirm import ConfirmLimits, confirm_study
from e2gcsearch.search.objectives import parse_objectives
from e2gcsearch.stats import Summary, accuracy_interval, pool, pooled_std, wilson_interval
from e2gcsearch.store.record import confirmation, user_attrs
from e2gcsearch.store.results import front_info
from e2gcsearch.store.storage import get_storage

OBJECTIVES = (Metric.of("epf", 4), Metric.of("top1"))
pytestmark = pytest.mark.filterwarnings("ignore::optuna.exceptions.ExperimentalWarning")


def test_pooling_summaries_equals_summarising_all_values():
    first, second = [3.0, 4.0, 8.0], [5.0, 6.0]
    pooled = pool(Summary.of(first), Summary.of(second))
    together = Summary.of(first + second)
    assert pooled.n == together.n and pooled.mean == pytest.approx(together.mean)
    assert pooled.std == pytest.approx(together.std)


def test_wilson_interval_matches_the_textbook_and_stays_inside_0_1():
    low, high = wilson_interval(0, 20)
    assert low == 0.0 and high == pytest.approx(0.1611, abs=1e-3)  # the rule-of-three neighbourhood
    low, high = wilson_interval(81, 263)  # Wilson (1927) style example: 0.308 [0.255, 0.366]
    assert (round(low, 3), round(high, 3)) == (0.255, 0.366)


def test_seed_noise_widens_the_accuracy_interval_and_pools_over_trials():
    alone = accuracy_interval([50.0], 160)
    assert pooled_std([[48.0, 52.0], [30.0, 34.0, 32.0], [70.0]]) is None  # 3 df: too few to apply study-wide
    noise = pooled_std([[48.0, 52.0], [30.0, 34.0, 32.0], [70.0]], min_df=3)
    assert noise.df == 3 and noise.std == pytest.approx(math.sqrt((8.0 + 8.0) / 3))
    noisy = accuracy_interval([50.0], 160, noise)
    assert noisy.low < alone.low < 50.0 < alone.high < noisy.high


def _frame(values: list[tuple[float, float, float, float, float, float]]) -> pd.DataFrame:
    """Rows of (epf, epf_low, epf_high, top1, top1_low, top1_high)."""
    rows = [
        {"feasible": True, "epf@4": e, "epf@4_low": el, "epf@4_high": eh, "top1": t, "top1_low": tl, "top1_high": th}
        for e, el, eh, t, tl, th in values
    ]
    return pd.DataFrame(rows)


def test_status_front_tied_dominated():
    frame = _frame(
        [
            (10.0, 9.0, 11.0, 80.0, 77.0, 83.0),  # front
            (10.5, 9.5, 11.5, 79.0, 76.0, 82.0),  # dominated by 0, but inside the intervals: tied
            (20.0, 19.0, 21.0, 70.0, 67.0, 73.0),  # dominated by 0 beyond the intervals
            (30.0, 29.0, 31.0, 90.0, 88.0, 92.0),  # front (more accurate, more energy)
        ]
    )
    assert front_status(frame, OBJECTIVES) == ["front", "tied", "dominated", "front"]
    frame["front_status"] = front_status(frame, OBJECTIVES)
    assert [(a, b) for a, b, _ in contested_pairs(frame, OBJECTIVES)] == [(0, 1)]


def test_two_trials_whose_intervals_overlap_never_dominate_each_other():
    rng = np.random.default_rng(0)
    for _ in range(300):
        centres = rng.uniform(0, 10, size=(2, 2))
        halves = rng.uniform(0, 3, size=(2, 2))
        lows, highs = centres - halves, centres + halves
        frame = _frame([(c[0], lo[0], hi[0], c[1], lo[1], hi[1]) for c, lo, hi in zip(centres, lows, highs)])
        overlap = all(max(lows[0, k], lows[1, k]) <= min(highs[0, k], highs[1, k]) for k in range(2))
        if overlap:
            assert "dominated" not in front_status(frame, OBJECTIVES)


def planted_attrs(arch_config: ArchConfig, figures: dict, **more) -> dict:
    """The stored attrs of a planted trial: a network of 1,000 params and 10,000 MACs at 32 px whose EPF at
    B = 4 is ``figures`` (an estimate), with ``more`` (top-1, per-image results, seconds)."""
    return user_attrs(
        arch_config=arch_config,
        params=1000,
        macs=10000,
        resolution=32,
        epf={4: figures},
        energy_backend="estimate",
        energy_is_estimate=True,
        **more,
    )


def _planted_tie(tmp_path, measured_at=(None, None)) -> tuple[optuna.Study, str]:
    """Two trials whose EPF and top-1 intervals overlap (few windows, one seed each), their EPF
    measured at ``measured_at`` (UTC minutes, or ``None``: not recorded)."""
    url = f"sqlite:///{tmp_path / 'tie.db'}"
    study = optuna.create_study(
        directions=["minimize", "maximize"], storage=get_storage(url, create=True), study_name="tie"
    )
    study.set_user_attr("objectives", [o.to_dict() for o in OBJECTIVES])
    for group_size, epf, top1, when in ((1, 2.0, 40.0, measured_at[0]), (2, 2.1, 39.0, measured_at[1])):
        arch_config = ArchConfig("mobilenet_v1", group_size=group_size, width=0.25, num_classes=3)
        figures = {
            "epf_mj": epf,
            "epf_std_mj": 0.4,
            "repeats": 2,
            "latency_ms": 5.0,
            "latency_std_ms": 1.0,
            "status": "ok",
            "measured_at": when,
        }
        attrs = planted_attrs(arch_config, figures, top1=top1, top1_seeds=[top1], val_size=12, wall_s={"train": 1.0})
        study.add_trial(create_trial(values=[epf, top1], user_attrs=attrs))
    return study, url


def test_front_json_carries_the_intervals_and_status(tmp_path, capsys):
    _, url = _planted_tie(tmp_path)
    assert main(["front", "--study", "tie", "--storage", url, "--format", "json"]) == 0
    rows = json.loads(capsys.readouterr().out)["rows"]
    assert {"epf@4_low", "epf@4_high", "top1_low", "top1_high", "front_status"} <= set(rows[0])
    assert [row["front_status"] for row in rows] == ["front", "tied"]
    assert rows[0]["epf@4_low"] < rows[0]["epf@4"] < rows[0]["epf@4_high"]


def test_confirm_measures_a_planted_tie_until_separated_or_says_it_is_still_tied(tmp_path, tiny_settings):
    study, _ = _planted_tie(tmp_path)
    data = load_data(
        DataConfig(
            name="digits",
            classes=3,
            train_per_class=8,
            val_per_class=4,
            resolution=32,
            cache_dir=str(tmp_path / "tensors"),
        ),
        progress=False,
    )
    lines: list[str] = []
    settings = tiny_settings
    report = confirm_study(
        study,
        settings.train,
        settings.profile,
        data,
        ConfirmLimits(budget_s=20, windows=3, max_seeds=3),
        say=lines.append,
    )
    assert report.steps, "a contested pair must get measured"
    assert report.contested == 0 or "still contested" in report.reason or "tied within noise" in report.reason
    measured = {step.trial for step in report.steps}
    for number in measured:
        stored = confirmation(study, number)
        assert stored, "pooled figures are kept on the study"
        if "epf" in stored:
            assert stored["epf"]["4"]["repeats"] > 2  # the planted windows plus the new ones
    front = front_info(study, include_dominated=True).frame.set_index("trial")
    for number in measured:
        stored = confirmation(study, number)
        if "epf" in stored:
            assert front.loc[number, "epf@4"] == pytest.approx(stored["epf"]["4"]["epf_mj"])
        if "top1_seeds" in stored:
            assert front.loc[number, "seeds"] == len(stored["top1_seeds"])
    assert any("->" in line for line in report.lines())


def test_validate_says_plainly_when_the_tau_interval_includes_zero():
    from e2gcsearch.validate import agreement_sentence, rank_agreement

    sentence = agreement_sentence(0.29, 8, 18, 28, (-0.46, 0.84))
    assert "95 % interval -0.46 to +0.84" in sentence and "includes 0" in sentence
    assert "includes 0" not in agreement_sentence(0.9, 8, 27, 28, (0.6, 1.0))
    frame = pd.DataFrame(
        {"proxy_top1": [10.0, 20.0, 30.0, 40.0, 50.0, 60.0], "full_top1": [12.0, 25.0, 22.0, 41.0, 55.0, 61.0]}
    )
    report = rank_agreement(frame)
    assert report.tau_low <= report.tau <= report.tau_high


def test_the_front_says_when_its_epf_was_measured_hours_apart(tmp_path, capsys):
    _, url = _planted_tie(tmp_path, measured_at=(["2026-11-30 21:05"], ["2026-12-01 08:00", "2026-12-01 08:02"]))
    assert main(["front", "--study", "tie", "--storage", url, "--format", "csv"]) == 0
    captured = capsys.readouterr()
    rows = pd.read_csv(__import__("io").StringIO(captured.out))
    assert list(rows["measured_from"]) == ["2026-11-30 21:05", "2026-12-01 08:00"]
    assert list(rows["measured_to"]) == ["2026-11-30 21:05", "2026-12-01 08:02"]
    assert main(["front", "--study", "tie", "--storage", url]) == 0
    captured = capsys.readouterr()
    assert (
        "the front's EPF comes from 2 sessions: measured 2026-11-30 21:05 and 2026-12-01 08:00 to 08:02 UTC"
        in captured.err
    )
    assert "confirm --remeasure-epf" in captured.err

    _, url = _planted_tie(tmp_path / "one", measured_at=(["2026-12-01 08:00"], ["2026-12-01 08:40"]))
    assert main(["front", "--study", "tie", "--storage", url]) == 0
    assert "sessions" not in capsys.readouterr().err  # within the hour: one session
    _, url = _planted_tie(
        tmp_path / "long", measured_at=(["2026-12-01 08:00", "2026-12-01 09:50"], ["2026-12-01 09:00"])
    )
    assert main(["front", "--study", "tie", "--storage", url]) == 0
    assert "sessions" not in capsys.readouterr().err  # a long search that measured all along is one session
    _, url = _planted_tie(tmp_path / "some", measured_at=(["2026-12-01 08:00"], None))
    assert main(["front", "--study", "tie", "--storage", url]) == 0
    assert "1 of the front's trials do not record when their EPF was measured" in capsys.readouterr().err
    _, url = _planted_tie(tmp_path / "old")  # a study from before the times were recorded: nothing to say
    assert main(["front", "--study", "tie", "--storage", url]) == 0
    assert "record when" not in capsys.readouterr().err


def test_confirm_remeasure_epf_measures_every_trial_again_in_one_session(tmp_path, tiny_settings):
    from e2gcsearch.profiling import profile_model
    from e2gcsearch.report import noise_notes

    study, _ = _planted_tie(tmp_path, measured_at=(["2026-01-01 00:00"], ["2026-06-01 00:00"]))
    front = front_info(study)
    assert any("2 sessions" in line for line in noise_notes(front.frame, front.objectives))
    data = load_data(
        DataConfig(
            name="digits",
            classes=3,
            train_per_class=8,
            val_per_class=4,
            resolution=32,
            cache_dir=str(tmp_path / "tensors"),
        ),
        progress=False,
    )
    settings = tiny_settings
    lines: list[str] = []
    confirm_study(
        study, settings.train, settings.profile, data, ConfirmLimits(budget_s=0.001), say=lines.append, remeasure=True
    )
    assert any(line.startswith("[2/2] trial 1 mobilenet_v1 E2GC G=2 w=0.25: EPF@4 2.1 -> ") for line in lines)
    assert any(
        "2 trials measured again: EPF at their largest batch size moved by a median of" in line for line in lines
    )
    for trial in study.trials:
        figures = confirmation(study, trial.number)["epf"]["4"]
        assert figures["repeats"] == 2 and figures["measured_at"][0] > "2026-06-01 00:00"
        cached = profile_model(ArchConfig.from_dict(trial.user_attrs["arch_config"]), settings.profile).batches[4]
        assert cached.cached and cached.measured_at == figures["measured_at"]  # the cache holds them too
    front = front_info(study)
    assert front.frame["epf@4"].tolist() != [2.0, 2.1]  # the front shows the figures measured now
    assert not any("session" in line for line in noise_notes(front.frame, front.objectives))


def test_a_trial_keeps_when_its_epf_was_measured_also_from_the_cache(tmp_path):
    import datetime

    from test_search_run import tiny_config

    from e2gcsearch.search.run import run_search

    cheap = {"objectives": parse_objectives("params,macs")}  # no training: a trial is a cost count + a profile
    config = dataclasses.replace(
        tiny_config(tmp_path, trials=1, baselines=False, warm_start="none", settings=cheap), seed=3
    )
    before = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M")
    first = run_search(config).trials[0]
    (when,) = first.user_attrs["epf"]["4"]["measured_at"]
    assert before <= when <= datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M")
    for entry in (tmp_path / "profiles").rglob("*.json"):  # as if measured in an earlier session
        stored = json.loads(entry.read_text())
        if "measured_at" in stored.get("profile", {}):  # an implementation choice has no windows
            stored["profile"]["measured_at"] = ["2026-01-01 00:00"]
            entry.write_text(json.dumps(stored))
    again = run_search(dataclasses.replace(config, study_name="again")).trials[0]
    assert again.params == first.params
    assert again.user_attrs["epf"]["4"]["measured_at"] == ["2026-01-01 00:00"]  # the cached entry's own time


def test_a_trial_from_before_windows_were_recorded_shows_an_unknown_interval(tmp_path, capsys):
    study, url = _planted_tie(tmp_path)
    arch_config = ArchConfig("mobilenet_v1", group_size=4, width=0.25, num_classes=3)
    attrs = user_attrs(
        arch_config=arch_config,
        params=900,
        macs=9000,
        resolution=32,
        epf={4: {"epf_mj": 1.5, "epf_std_mj": 0.1, "status": "ok"}},  # no "repeats"
        energy_backend="estimate",
        energy_is_estimate=True,
        top1=41.0,
    )
    study.add_trial(create_trial(values=[1.5, 41.0], user_attrs=attrs))
    assert main(["front", "--study", "tie", "--storage", url]) == 0
    captured = capsys.readouterr()
    assert "± ?" in captured.out and "without an interval" in captured.err


def test_confirm_refuses_data_other_than_the_search_used(tmp_path, tiny_settings):
    study, _ = _planted_tie(tmp_path)
    study.set_user_attr("data", {"dataset": "food101", "resolution": 64})
    data = load_data(
        DataConfig(
            name="digits",
            classes=3,
            train_per_class=8,
            val_per_class=4,
            resolution=32,
            cache_dir=str(tmp_path / "tensors"),
        ),
        progress=False,
    )
    settings = tiny_settings
    with pytest.raises(ConfigError, match="other data"):
        confirm_study(study, settings.train, settings.profile, data, ConfirmLimits(budget_s=5))
    assert not confirmation(study, 0)


def test_confirm_refuses_training_or_measurement_other_than_the_search_used(tmp_path, tiny_settings):
    from e2gcsearch.search.preflight import device_fingerprint_of
    from e2gcsearch.store.fingerprint import study_fingerprint

    study, _ = _planted_tie(tmp_path)
    settings = tiny_settings
    searched = study_fingerprint(settings.train, settings.profile, "digits", device_fingerprint_of(settings.profile))
    for key, value in searched.items():
        study.set_user_attr(key, value)
    data = load_data(
        DataConfig(
            name="digits",
            classes=3,
            train_per_class=8,
            val_per_class=4,
            resolution=32,
            cache_dir=str(tmp_path / "tensors"),
        ),
        progress=False,
    )
    with pytest.raises(ConfigError, match=r"training\.epochs: stored 1, asked 2.*flags \(or --config\)"):
        confirm_study(study, settings.train.replace(epochs=2), settings.profile, data, ConfirmLimits(budget_s=5))
    with pytest.raises(ConfigError, match=r"profiling\.repeats: stored 2, asked 3"):
        confirm_study(
            study, settings.train, dataclasses.replace(settings.profile, repeats=3), data, ConfirmLimits(budget_s=5)
        )
    assert not confirmation(study, 0) and not confirmation(study, 1)


def test_unknown_intervals_never_call_a_difference_noise():
    from e2gcsearch.report import noise_notes

    frame = _frame(
        [(10.0, float("nan"), float("nan"), 80.0, 77.0, 83.0), (12.0, float("nan"), float("nan"), 79.5, 76.0, 82.0)]
    )
    frame["front_status"] = ["front", "front"]
    notes = noise_notes(frame, OBJECTIVES)
    assert not any("every epf@4 difference" in line for line in notes)
    assert any("every top1 difference" in line for line in notes)
    assert any("without an interval" in line for line in notes)


def _two_sittings(tmp_path, factors, pooled=False) -> optuna.Study:
    """Trials whose EPF@4 was measured once (2026-01-01) and again a day later (``factors`` x the first),
    stored as confirm --remeasure-epf stores it; ``pooled``: the second figures pool the first sitting's
    windows instead (as confirm's contested-pair steps do), so they are not an independent sitting."""
    study = optuna.create_study(
        directions=["minimize", "maximize"],
        storage=get_storage(f"sqlite:///{tmp_path / 'two.db'}", create=True),
        study_name="two",
    )
    study.set_user_attr("objectives", [o.to_dict() for o in OBJECTIVES])
    for number, factor in enumerate(factors):
        arch_config = ArchConfig(
            "mobilenet_v1", group_size=2 ** (number % 6), width=0.25 * (1 + number // 6), num_classes=3
        )
        epf, top1 = 10.0 + number, 40.0 + number
        first = {"epf_mj": epf, "epf_std_mj": 0.1, "repeats": 3, "status": "ok", "measured_at": ["2026-01-01 00:00"]}
        attrs = planted_attrs(arch_config, first, top1=top1, top1_seeds=[top1], val_size=12)
        study.add_trial(create_trial(values=[epf, top1], user_attrs=attrs))
        again = dict(
            first, epf_mj=epf * factor, measured_at=(["2026-01-01 00:00"] if pooled else []) + ["2026-01-02 00:00"]
        )
        study.set_user_attr(f"confirm:trial-{number}", {"epf": {"4": again}})
    return study


def test_trials_measured_in_two_sittings_put_the_scatter_between_sittings_into_every_epf_interval(tmp_path):
    from e2gcsearch.report import noise_notes

    factors = (1.10, 1.02, 1.06, 1.14, 1.06, 1.0)
    frame = front_info(_two_sittings(tmp_path, factors), include_dominated=True).frame.set_index("trial")
    expected = math.sqrt(max(0.0, np.var(np.log(factors), ddof=1) - 2 * (0.1 / 10.0) ** 2 / 3) / 2)  # about
    cv = frame["epf@4_sitting_cv"].iloc[0]
    assert 0.02 < cv < 0.04 and cv == pytest.approx(expected, rel=0.2)
    for _, row in frame.iterrows():
        windows = Summary(3, row["epf@4"], 0.1).half_width()
        assert (row["epf@4_high"] - row["epf@4_low"]) / 2 > 2 * windows  # the sitting scatter dominates
    notes = noise_notes(frame.reset_index(), OBJECTIVES)
    assert any(f"epf@4 intervals include the scatter between sittings, {100 * cv:.2g} %" in n for n in notes)

    pooled = front_info(_two_sittings(tmp_path / "pooled", factors, pooled=True), include_dominated=True).frame
    assert pooled["epf@4_sitting_cv"].isna().all()  # pooled windows are no second sitting: nothing estimated
    assert any("intervals count one sitting's windows only" in n for n in noise_notes(pooled, OBJECTIVES))


def test_confirm_spends_no_windows_on_an_epf_gap_inside_the_scatter_between_sittings():
    from e2gcsearch.search.confirm import _windows_can_separate

    a = pd.Series({"epf@4": 11.0, "epf@4_sitting_cv": 0.03})
    assert not _windows_can_separate(a, pd.Series({"epf@4": 11.22}), "epf@4")  # 2 % apart, 3 % scatter
    assert _windows_can_separate(a, pd.Series({"epf@4": 13.0}), "epf@4")
    assert _windows_can_separate(
        pd.Series({"epf@4": 11.0, "epf@4_sitting_cv": float("nan")}), pd.Series({"epf@4": 11.22}), "epf@4"
    )  # not estimated: windows may help
