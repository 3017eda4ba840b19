"""Validate: Kendall's tau on known rankings, full training + re-profiling stored back on the trials
(tiny setting: 3 digit classes, 32 px, one epoch), and the `validate` command."""

from __future__ import annotations

import math

import optuna
import pytest
from optuna.trial import TrialState, create_trial

from e2gcsearch import ArchConfig, network_cost
from e2gcsearch.cli import main
from e2gcsearch.data import DataConfig, load_data
from e2gcsearch.errors import ConfigError
from e2gcsearch.profiling import ProfileConfig
from e2gcsearch.store.record import TrialRecord, user_attrs
from e2gcsearch.store.storage import get_storage, open_study
from e2gcsearch.validate import (
    ValidateSettings,
    agreement_sentence,
    data_config_for,
    full_result,
    kendall_tau,
    select_trials,
    store_full_result,
    validate_study,
)

pytestmark = pytest.mark.filterwarnings("ignore::optuna.exceptions.ExperimentalWarning")

PROXY_TOP1 = {0: 40.0, 1: 55.0, 2: 50.0, 3: 70.0}  # trial number -> proxy top-1 (%)
TINY_PROFILE = ProfileConfig(backend="estimate", repeats=1, min_window_s=0.01, warmup=1, use_cache=False)


def test_kendall_tau_on_known_rankings():
    assert kendall_tau([1, 2, 3, 4], [10, 20, 30, 40])[0] == 1.0
    assert kendall_tau([1, 2, 3, 4], [40, 30, 20, 10])[0] == -1.0
    tau, pairs, concordant = kendall_tau([1, 2, 3, 4], [20, 10, 30, 40])  # one swapped pair
    assert (tau, pairs, concordant) == (pytest.approx(4 / 6), 6, 5)
    assert math.isnan(kendall_tau([1, 1, 1], [1, 2, 3])[0])


def test_kendall_tau_b_matches_scipy_with_ties():
    stats = pytest.importorskip("scipy.stats")
    x, y = [1, 2, 2, 3, 5, 5, 4], [3, 1, 2, 2, 6, 4, 4]
    assert kendall_tau(x, y)[0] == pytest.approx(stats.kendalltau(x, y).statistic)


def test_agreement_sentence_says_what_tau_means():
    assert "safe" in agreement_sentence(0.9, 6, 14, 15)
    assert "unrelated" in agreement_sentence(0.0, 6, 7, 15)
    assert "reverse" in agreement_sentence(-0.8, 6, 1, 15)
    assert "says little" in agreement_sentence(1.0, 3, 3, 3) and "safe" not in agreement_sentence(1.0, 3, 3, 3)
    assert "says little" not in agreement_sentence(1.0, 4, 6, 6)
    assert "two or more" in agreement_sentence(math.nan, 1, 0, 0)


@pytest.fixture(scope="module")
def tiny_data():
    return load_data(
        DataConfig(name="digits", classes=3, train_per_class=4, val_per_class=2, resolution=32), progress=False
    )


@pytest.fixture
def url(tmp_path, tiny_data) -> str:
    """Four MobileNet-V1 trials, all on the front (more energy buys more accuracy except trial 2),
    trained on the tiny digits subset, plus a failed trial."""
    url = f"sqlite:///{tmp_path / 'studies' / 'e2gcsearch.db'}"
    study = optuna.create_study(
        directions=["minimize", "maximize"], storage=get_storage(url, create=True), study_name="e2gcsearch"
    )
    study.set_user_attr(
        "objectives",
        [
            {"name": "epf@4", "metric": "epf", "batch_size": 4, "direction": "minimize", "unit": "mJ/frame"},
            {"name": "top1", "metric": "top1", "batch_size": None, "direction": "maximize", "unit": "%"},
        ],
    )
    for number, group_size in enumerate((1, 2, 4, 8)):
        config = ArchConfig("mobilenet_v1", group_size=group_size, width=0.25, num_classes=3)
        cost = network_cost(config, 32)
        epf_mj = 1.0 + number
        attrs = user_attrs(
            arch_config=config,
            params=cost.params,
            macs=cost.macs,
            resolution=32,
            epf={4: {"epf_mj": epf_mj, "status": "ok"}},
            energy_backend="estimate",
            energy_is_estimate=True,
            top1=PROXY_TOP1[number],
            data=tiny_data.description(),
        )
        study.add_trial(create_trial(values=[epf_mj if number != 2 else 1.5, PROXY_TOP1[number]], user_attrs=attrs))
    study.add_trial(create_trial(state=TrialState.FAIL, user_attrs=user_attrs(arch_config=config)))
    return url


def test_data_config_comes_from_the_stored_description(url, tiny_data):
    record = TrialRecord.from_trial(open_study(url, "e2gcsearch").trials[0])
    config = data_config_for(record, {})
    # every training image (the full recipe), the search's classes, validation images and resolution
    assert (config.name, config.classes, config.train_per_class, config.val_per_class, config.resolution) == (
        "digits",
        ("0", "1", "2"),
        None,
        2,
        32,
    )
    assert data_config_for(record, {"train_per_class": 20, "resolution": None}).train_per_class == 20


def test_select_trials_front_by_proxy_top1_or_by_number(url):
    study = open_study(url, "e2gcsearch")
    assert [t.number for t in select_trials(study)] == [3, 1, 2, 0]
    assert [t.number for t in select_trials(study, top=2)] == [3, 1]
    assert [t.number for t in select_trials(study, numbers=[2, 0, 2])] == [2, 0]
    with pytest.raises(ConfigError, match="not COMPLETE"):
        select_trials(study, numbers=[4])


def test_spread_adds_trials_over_the_whole_proxy_range(url):
    study = open_study(url, "e2gcsearch")
    # The front's best (trial 3) and then, of the rest ordered by proxy top-1 (1: 55, 2: 50, 0: 40 %),
    # the best and the worst: tau is then measured beyond the front's narrow band.
    assert [t.number for t in select_trials(study, top=1, spread=2)] == [3, 1, 0]
    assert [t.number for t in select_trials(study, numbers=[2], spread=9)] == [2, 3, 1, 0]
    # a repeat of a network (the sampler proposed it again) or the same network again is never picked
    attrs = dict(study.trials[1].user_attrs, duplicate_of=1)
    study.add_trial(create_trial(values=study.trials[1].values, user_attrs=attrs))
    again = dict(study.trials[0].user_attrs, top1=45.0)
    study.add_trial(create_trial(values=study.trials[0].values, user_attrs=again))
    assert [t.number for t in select_trials(study, numbers=[3], spread=9)] == [3, 1, 2, 0]


def test_two_full_seeds_give_the_noise_ceiling(url, tmp_path):
    settings = ValidateSettings(
        trials=(0, 1, 3), full_seeds=2, epochs=1, train={"batch_size": 8, "device": "cpu"}, profile=None
    )
    report = validate_study(open_study(url, "e2gcsearch"), settings, tmp_path / "ckpt", say=lambda _: None)
    study = open_study(url, "e2gcsearch")
    full = full_result(study, study.trials[1])
    assert full["seeds"] == [0, 1] and len(full["top1_seeds"]) == 2
    assert full["top1"] == pytest.approx(sum(full["top1_seeds"]) / 2)
    assert (tmp_path / "ckpt" / "trial-1" / "last.pt").exists() and (
        tmp_path / "ckpt" / "trial-1-seed1" / "last.pt"
    ).exists()
    seeds = report.frame["full_top1_seeds"].tolist()
    expected = kendall_tau([s[0] for s in seeds], [s[1] for s in seeds])[0]
    assert report.ceiling is not None and report.ceiling.n == 3
    assert report.ceiling.tau == expected or (math.isnan(report.ceiling.tau) and math.isnan(expected))
    assert "Noise ceiling" in report.sentence and "fidelity was not measured for this data" in report.sentence
    assert "seed std" in report.sentence and "(2 seeds of 3 networks)" in report.sentence


def test_validate_trains_profiles_and_stores_results_on_the_trials(url, tmp_path):
    messages: list[str] = []
    settings = ValidateSettings(top=2, epochs=1, train={"batch_size": 8, "device": "cpu"}, profile=TINY_PROFILE)
    report = validate_study(open_study(url, "e2gcsearch"), settings, tmp_path / "ckpt", say=messages.append)
    study = open_study(url, "e2gcsearch")
    for number in (3, 1):  # the two best proxy top-1 on the front
        trial = study.trials[number]
        full = full_result(study, trial)
        assert full["epochs"] == 1 and 0 <= full["top1"] <= 100 and full["status"] == "ok"
        assert full["backend"] == "estimate" and full["epf"]["4"]["epf_mj"] > 0
        assert (tmp_path / "ckpt" / f"trial-{number}" / "last.pt").exists()
    assert full_result(study, study.trials[0]) == {} == full_result(study, study.trials[2])
    frame = report.frame
    assert frame["trial"].tolist() == [3, 1] and frame["proxy_top1"].tolist() == [70.0, 55.0]
    assert frame["full_top1"].tolist() == [
        full_result(study, study.trials[3])["top1"],
        full_result(study, study.trials[1])["top1"],
    ]
    expected = kendall_tau(frame["proxy_top1"].tolist(), frame["full_top1"].tolist())[0]
    assert report.tau == expected or (math.isnan(report.tau) and math.isnan(expected))
    assert "Kendall's tau" in report.sentence
    # A second run finds the stored results and trains nothing.
    messages.clear()
    validate_study(open_study(url, "e2gcsearch"), settings, tmp_path / "ckpt", say=messages.append)
    assert sum("already validated" in m for m in messages) == 2 and not any("full training" in m for m in messages)


def test_full_results_are_stored_on_journal_studies_too(tmp_path):
    storage = get_storage(str(tmp_path / "search.log"), create=True)
    study = optuna.create_study(storage=storage, study_name="j")
    attrs = user_attrs(arch_config=ArchConfig("mobilenet_v1", group_size=1))
    study.add_trial(create_trial(value=1.0, user_attrs=attrs))
    trial = study.trials[0]
    store_full_result(study, trial, {"top1": 12.5, "epochs": 2})
    reopened = open_study(str(tmp_path / "search.log"), "j")
    assert full_result(reopened, reopened.trials[0]) == {"top1": 12.5, "epochs": 2}


def test_validate_command(url, tmp_path, capsys):
    argv = [
        "validate",
        "--storage",
        url,
        "--trials",
        "0",
        "--epochs",
        "1",
        "--batch-size",
        "8",
        "--device",
        "cpu",
        "--no-profile",
    ]
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert "proxy top-1 (%)" in out and "full top-1 (%)" in out and "Kendall's tau" in out
    assert (tmp_path / "studies" / "checkpoints" / "e2gcsearch" / "trial-0" / "last.pt").exists()
    assert main(["validate", "--storage", url, "--trials", "9"]) == 2
    assert "no trial 9" in capsys.readouterr().err


def _checkpoint_layout(folder) -> str:
    import json

    import torch

    state = torch.load(folder / "last.pt", map_location="cpu", weights_only=False)
    return json.loads(state["identity"])["train"]["layout"]


def test_validate_runs_the_implementation_the_search_ran_unless_told(url, tmp_path, capsys):
    study = open_study(url, "e2gcsearch")
    study.set_user_attr("profiling", {"impl": "channels_last", "batch_sizes": [4]})  # as 'run --impl channels_last'
    study.set_user_attr("training", {"layout": "channels_last"})
    argv = [
        "validate",
        "--storage",
        url,
        "--trials",
        "1",
        "--epochs",
        "1",
        "--batch-size",
        "8",
        "--device",
        "cpu",
        "--backend",
        "estimate",
        "--repeats",
        "1",
        "--min-window-s",
        "0.01",
        "--warmup",
        "1",
        "--no-cache",
    ]
    folder = tmp_path / "studies" / "checkpoints" / "e2gcsearch" / "trial-1"
    assert main(argv) == 0
    assert "implementation: channels_last, training layout channels_last, as the search ran" in capsys.readouterr().err
    assert full_result(open_study(url, "e2gcsearch"), study.trials[1])["epf"]["4"]["impl"] == "channels_last"
    assert _checkpoint_layout(folder) == "channels_last"
    # --impl given: it wins over the study's
    assert main([*argv, "--impl", "nchw", "--retrain", "--no-profile"]) == 0
    assert "as the search ran" not in capsys.readouterr().err
    assert _checkpoint_layout(folder) == "nchw"
