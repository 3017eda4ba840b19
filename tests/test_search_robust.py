"""A search fails fast and never mixes: pre-flight before any study, a complete study fingerprint,
lost workers named, honest counts, one line per failure."""

from __future__ import annotations

import dataclasses
import subprocess
import sys

import optuna
import pytest
from optuna.trial import TrialState
from test_search_run import TINY_DATA, states, tiny_config

from e2gcsearch import ConfigError, DataError
from e2gcsearch.cli import main
from e2gcsearch.search.objectives import parse_objectives
from e2gcsearch.search.preflight import PreflightError
from e2gcsearch.search.run import prepare, run_search, search
from e2gcsearch.search.space import SearchSpace
from e2gcsearch.search.workers import quotas
from e2gcsearch.store import record
from e2gcsearch.train import TrainConfig

CHEAP = {"objectives": parse_objectives("params,macs")}  # no training: a trial is a cost count + a profile


def _nothing_written(tmp_path) -> bool:
    return not (tmp_path / "study.db").exists()


# --- 1 and 2: a resume with other settings is refused, and trials record what they ran with ------------


def test_resume_with_other_training_settings_is_refused_naming_them(tmp_path):
    run_search(tiny_config(tmp_path, trials=1, baselines=False))
    other = TrainConfig(epochs=2, batch_size=16, progress=False, device="cpu", lr=0.001)
    with pytest.raises(ConfigError) as caught:
        prepare(tiny_config(tmp_path, trials=1, settings={"train": other}))
    message = str(caught.value)
    assert "training.epochs: stored 1, asked 2" in message and "training.lr" in message
    assert "--study NEW_NAME" in message


def test_resume_with_another_measurement_protocol_is_refused(tmp_path):
    config = tiny_config(tmp_path, trials=1, baselines=False, settings=CHEAP)
    run_search(config)
    other = dataclasses.replace(config.settings.profile, repeats=5)
    with pytest.raises(ConfigError, match="profiling.repeats: stored 2, asked 5"):
        prepare(dataclasses.replace(config, settings=dataclasses.replace(config.settings, profile=other)))


def test_each_trial_records_the_settings_it_ran_with(tmp_path):
    study = run_search(tiny_config(tmp_path, trials=1, baselines=False))
    settings = study.trials[0].user_attrs[record.SETTINGS]
    assert settings["train"]["epochs"] == 1 and settings["train"]["lr"] == TrainConfig.lr
    assert settings["profile"]["batch_sizes"] == [2, 4] and settings["profile"]["resolution"] == 32
    assert study.user_attrs[record.TRAINING]["epochs"] == 1
    assert study.user_attrs[record.DEVICE]["threads"] == 1 and study.user_attrs[record.DEVICE]["meter"]


def test_an_older_study_without_a_fingerprint_is_resumed_with_a_warning(tmp_path, capsys):
    from e2gcsearch.data import load_data
    from e2gcsearch.search.run import data_key
    from e2gcsearch.search.study import open_or_create_study
    from e2gcsearch.store.storage import open_search_storage

    config = tiny_config(tmp_path, trials=1, baselines=False, settings=CHEAP)
    data = load_data(config.data, progress=False)
    open_or_create_study(
        open_search_storage(config.storage),
        "tiny",
        config.settings.objectives,  # as before
        config.settings.space,
        data_key(data),
        optuna.samplers.RandomSampler(),
        config.storage,
    )
    capsys.readouterr()
    prepare(config)
    assert "predates the stored profiling, device settings" in capsys.readouterr().err


# --- 1: pre-flight -------------------------------------------------------------------------------------


def test_a_resolution_too_small_fails_before_any_study(tmp_path):
    config = tiny_config(
        tmp_path,
        data=dataclasses.replace(TINY_DATA, resolution=16),
        settings={"profile": dataclasses.replace(tiny_config(tmp_path).settings.profile, resolution=16)},
    )
    with pytest.raises(PreflightError, match="pre-flight: .* at 16x16 px"):
        prepare(config)
    assert _nothing_written(tmp_path)


def test_a_batch_size_that_cannot_train_fails_before_any_study(tmp_path):
    profile = dataclasses.replace(tiny_config(tmp_path).settings.profile, batch_sizes=(1, 4))
    with pytest.raises(PreflightError, match="cannot run a measured step at batch size 1"):
        prepare(tiny_config(tmp_path, settings={"profile": profile}))
    assert _nothing_written(tmp_path)


@pytest.mark.skipif(__import__("torch").cuda.is_available(), reason="needs a machine without CUDA")
def test_a_missing_gpu_fails_before_any_study(tmp_path):
    train = TrainConfig(epochs=1, batch_size=16, progress=False, device="cuda")
    with pytest.raises(ConfigError, match="torch sees no CUDA GPU"):
        prepare(tiny_config(tmp_path, settings={"train": train}))
    assert _nothing_written(tmp_path)


def test_a_cache_dir_that_is_a_file_fails_before_any_study(tmp_path):
    (tmp_path / "cache").write_text("not a folder")
    profile = dataclasses.replace(
        tiny_config(tmp_path).settings.profile, cache_dir=str(tmp_path / "cache" / "profiles")
    )
    with pytest.raises(DataError, match="is .inside. a file"):
        prepare(tiny_config(tmp_path, settings={"profile": profile}))
    assert _nothing_written(tmp_path)


def test_the_cli_says_one_line_and_exits_2(tmp_path, capsys):
    argv = [
        "run",
        "--storage",
        f"sqlite:///{tmp_path}/study.db",
        "--data",
        "digits",
        "--resolution",
        "16",
        "--threads",
        "1",
        "--widths",
        "0.25",
        "--trials",
        "1",
    ]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.strip().splitlines()[-1].startswith("e2gcsearch run: error: pre-flight")
    assert "Traceback" not in err and _nothing_written(tmp_path)


def test_a_run_whose_trials_all_fail_exits_1_with_the_reasons(tmp_path, capsys):
    exploding = TrainConfig(epochs=1, batch_size=16, progress=False, device="cpu", lr=1e12)
    outcome = search(tiny_config(tmp_path, trials=2, settings={"train": exploding}))
    assert outcome.failure_summary()[0] == "all 2 trial(s) of this run failed:"
    assert "2 x TrialFailed: proxy training stopped: non-finite loss" in outcome.failure_summary()[1]
    spec = tmp_path / "spec.toml"
    spec.write_text(
        '[search]\nsampler = "random"\nno_baselines = true\n[space]\nmodules = ["E2GC"]\n'
        'group_sizes = [4, 8]\nwidths = [0.25]\n[data]\ndata = "digits"\nclasses = 3\n'
        "train_per_class = 16\nval_per_class = 4\nresolution = 32\n[training]\nepochs = 2\nlr = 1e12\n"
        "[profiling]\nbatch_sizes = [2]\nrepeats = 1\nmin_window_s = 0.01\nwarmup = 1\n"
        'backend = "estimate"\n'
    )
    capsys.readouterr()
    assert (
        main(
            [
                "run",
                "--config",
                str(spec),
                "--trials",
                "2",
                "--storage",
                f"sqlite:///{tmp_path}/cli.db",
                "--threads",
                "1",
            ]
        )
        == 1
    )
    err = capsys.readouterr().err
    assert "all 2 trial(s) of this run failed:" in err and "Traceback" not in err
    failed_lines = [line for line in err.splitlines() if "FAILED:" in line]
    assert len(failed_lines) == 2  # one line per failed trial, no Optuna traceback


# --- 6 and 7: counts, lost workers, the sampler's stream ----------------------------------------------


def test_trial_budgets_are_split_exactly_between_workers():
    assert quotas(4, 2) == [2, 2] and sum(quotas(7, 3)) == 7 and quotas(1, 2) == [1, 0]


def test_ran_counts_only_this_runs_trials(tmp_path, capsys):
    config = tiny_config(tmp_path, trials=2, settings=CHEAP, sampler="random")
    run_search(config)
    outcome = search(config)
    assert sum(record.DUPLICATE_OF not in t.user_attrs for t in outcome.ran) == 2
    assert sum(record.DUPLICATE_OF not in t.user_attrs for t in outcome.study.trials) == 4
    assert "ran 2 new point(s)" in capsys.readouterr().err


def test_a_resume_continues_the_samplers_stream(tmp_path):
    space = SearchSpace(
        modules=("E2GC", "FgGC"), group_sizes=(1, 2, 4, 8, 16), groups=(2, 4, 8, 16), widths=(0.25, 0.5)
    )
    config = tiny_config(tmp_path, trials=3, baselines=False, sampler="random", settings={**CHEAP, "space": space})
    run_search(config)
    study = run_search(config)
    first, resumed = study.trials[:3], study.trials[3:]
    assert [t.params for t in resumed] != [t.params for t in first]
    assert not any(record.DUPLICATE_OF in t.user_attrs for t in resumed[:1])


def test_a_lost_workers_trial_is_failed_with_a_reason_at_the_next_start(tmp_path):
    config = tiny_config(tmp_path, storage=str(tmp_path / "study.log"), trials=1, baselines=False, settings=CHEAP)
    study = run_search(config)
    gone = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    dead_pid = int(gone.stdout)
    trial = study.ask()  # a trial left RUNNING by a killed process
    trial.suggest_categorical("arch", ["mobilenet_v1"])
    trial.set_user_attr(record.WORKER, {"run": "old", "host": __import__("socket").gethostname(), "pid": dead_pid})
    study, _ = prepare(config)
    lost = study.trials[trial.number]
    assert lost.state == TrialState.FAIL
    assert lost.user_attrs[record.FAIL_REASON].startswith(f"worker lost: process {dead_pid}")
    assert TrialState.RUNNING not in states(study)


def test_a_queued_point_killed_before_its_worker_recorded_itself_is_failed_and_queued_again(tmp_path, monkeypatch):
    import time

    from e2gcsearch.store.lost import HEARTBEAT_ENV, fail_lost_trials

    monkeypatch.setenv(HEARTBEAT_ENV, "1")
    config = tiny_config(tmp_path, storage=str(tmp_path / "study.log"), trials=1, settings=CHEAP)
    study, _ = prepare(config)  # the paper baseline is queued
    killed = study.ask()  # RUNNING with the baseline's fixed params; the process dies before anything else
    assert killed.params == {} and fail_lost_trials(study) == []  # a live worker gets its moment
    time.sleep(2.1)  # past 2 heartbeat periods without a tag
    (line,) = fail_lost_trials(study)
    assert line.startswith(f"trial {killed.number} failed: worker lost: its process ended before it recorded itself")
    (retry,) = study.get_trials(states=(TrialState.WAITING,))
    assert retry.system_attrs["fixed_params"]["arch"] == "mobilenet_v1" and record.BASELINE in retry.user_attrs
    assert retry.system_attrs[record.RETRY_OF] == killed.number


def test_the_default_warm_start_steps_aside_when_the_model_cannot_be_calibrated(tmp_path, monkeypatch, capsys):
    import e2gcsearch.energy_model

    def cannot(*args, **kwargs):
        raise DataError("the measured EPF does not grow with the networks' work")

    monkeypatch.setattr(e2gcsearch.energy_model, "load_or_calibrate", cannot)
    study, _ = prepare(tiny_config(tmp_path, warm_start="auto", study_name="auto"))
    assert [t.user_attrs.get(record.BASELINE) is not None for t in study.trials] == [True]  # the baseline alone
    assert "no warm start from the energy model (the measured EPF does not grow" in capsys.readouterr().err
    with pytest.raises(DataError, match="does not grow"):  # asked for by name, the model must be there
        prepare(tiny_config(tmp_path, warm_start="model", study_name="model"))
    with pytest.raises(DataError, match="missing.json"):  # and so must a profile given by name
        prepare(
            tiny_config(
                tmp_path, warm_start="auto", study_name="given", warm_start_profile=str(tmp_path / "missing.json")
            )
        )
    capsys.readouterr()
    prepare(tiny_config(tmp_path, warm_start="none", study_name="none"))  # no calibration is attempted
    assert "warm start" not in capsys.readouterr().err
    argv = [
        "run",
        "--warm-start",
        "none",
        "--warm-start-profile",
        str(tmp_path / "p.json"),
        "--storage",
        f"sqlite:///{tmp_path}/cli.db",
    ]
    assert main(argv) == 2 and "drop one of them" in capsys.readouterr().err


@pytest.mark.filterwarnings("ignore:Heartbeat of storage", "ignore::optuna.exceptions.ExperimentalWarning")
def test_a_heartbeat_retry_starts_clean_and_a_failure_before_measuring_stays_uncharged(tmp_path):
    import time

    from e2gcsearch.search.budget import uncharged
    from e2gcsearch.store.storage import open_search_storage

    study = optuna.create_study(storage=open_search_storage(f"sqlite:///{tmp_path}/hb.db", heartbeat_s=1))
    lost = study.ask({"arch": optuna.distributions.CategoricalDistribution(["mobilenet_v1"])})
    for key, value in {
        record.PARAMS: 1000,
        record.TOP1_CURVE: [10.0],
        record.WARM_START: "model",
        record.WORKER: {"run": "old", "host": "elsewhere", "pid": 1},
    }.items():
        lost.set_user_attr(key, value)
    study._storage.record_heartbeat(lost._trial_id)
    time.sleep(3.1)  # past the grace period (2 x 1 s; SQLite keeps whole seconds): Optuna fails it and retries
    optuna.storages.fail_stale_trials(study)
    (retry,) = study.get_trials(states=(TrialState.WAITING,))
    assert retry.system_attrs[record.RETRY_OF] == lost.number
    assert retry.system_attrs[record.FIXED_PARAMS] == {"arch": "mobilenet_v1"}
    assert retry.user_attrs == {record.WARM_START: "model"}  # why it was queued; not the lost run's records
    again = study.ask()  # the retry, run: its point fails to build before anything is measured
    study.tell(again, state=TrialState.FAIL)
    assert again.number == retry.number and uncharged(study.trials[again.number])
    assert not study.get_trials(states=(TrialState.WAITING,))  # a retry is not retried


def test_a_retry_keeps_the_queued_params_it_had_not_sampled_and_an_older_retry_is_not_retried():
    from optuna.distributions import CategoricalDistribution

    from e2gcsearch.store.lost import queue_retry

    study = optuna.create_study()
    half_sampled = optuna.trial.create_trial(
        state=TrialState.FAIL,
        params={"arch": "mobilenet_v1"},
        distributions={"arch": CategoricalDistribution(["mobilenet_v1"])},
        system_attrs={record.FIXED_PARAMS: {"arch": "mobilenet_v1", "width": 0.5}},
    )
    queue_retry(study, half_sampled)
    (retry,) = study.get_trials(states=(TrialState.WAITING,))
    assert retry.system_attrs[record.FIXED_PARAMS] == {"arch": "mobilenet_v1", "width": 0.5}
    older = optuna.trial.create_trial(
        state=TrialState.FAIL, system_attrs={"failed_trial": 0, record.FIXED_PARAMS: {"arch": "mobilenet_v1"}}
    )  # retried by Optuna's callback
    queue_retry(study, older)
    assert len(study.get_trials(states=(TrialState.WAITING,))) == 1


def test_an_interrupted_retry_is_queued_again_and_counted_only_when_queued():
    """A lost worker's point is retried once; a point the user interrupted is queued again even when it was
    itself a retry (the interruption says nothing against it), and the count says what was queued."""
    from optuna.distributions import CategoricalDistribution

    from e2gcsearch.store.lost import INTERRUPTED, requeue_interrupted

    study = optuna.create_study(directions=["minimize", "maximize"])
    params = {"arch": "mobilenet_v1"}
    distributions = {"arch": CategoricalDistribution(["mobilenet_v1"])}
    for retry in (False, True):
        study.add_trial(
            optuna.trial.create_trial(
                state=TrialState.FAIL,
                params=params,
                distributions=distributions,
                system_attrs={record.RETRY_OF: 0} if retry else {},
                user_attrs={record.WORKER: {"run": "r1"}, record.FAIL_REASON: INTERRUPTED},
            )
        )
    study.add_trial(
        optuna.trial.create_trial(  # another run's interruption: not this run's to queue
            state=TrialState.FAIL,
            params=params,
            distributions=distributions,
            user_attrs={record.WORKER: {"run": "r0"}, record.FAIL_REASON: INTERRUPTED},
        )
    )
    assert requeue_interrupted(study, "r1") == 2
    waiting = study.get_trials(deepcopy=False, states=(TrialState.WAITING,))
    assert sorted(t.system_attrs[record.RETRY_OF] for t in waiting) == [0, 1]
