"""``--threads auto``: the faster of one thread and every core, measured on real steps and said in one line."""

from __future__ import annotations

import itertools

import pytest
import torch

from e2gcsearch import ArchConfig, ConfigError
from e2gcsearch.cli import build_parser
from e2gcsearch.data import DataConfig, load_data
from e2gcsearch.profiling import ProfileConfig
from e2gcsearch.profiling.probe import step_timer
from e2gcsearch.train import TrainConfig, choose_threads, train_model
from e2gcsearch.train.threads import thread_candidates, training_step_timer

ARCH = ArchConfig("mobilenet_v1", group_size=8, width=0.25, num_classes=3)


@pytest.fixture(scope="module")
def tiny_data():
    return load_data(
        DataConfig(name="digits", classes=3, train_per_class=12, val_per_class=4, resolution=32), progress=False
    )


def fake_clock(step_s: dict[int, float]):
    """A timer that advances by the step time of the thread count torch is set to."""
    now = itertools.count()
    return lambda: next(now) * step_s[torch.get_num_threads()]


@pytest.mark.parametrize(
    "timings, chosen",
    [
        ({1: 0.041, 2: 0.097}, 1),  # a shared CPU: the second thread waits for a preempted sibling
        ({1: 0.080, 4: 0.025}, 4),  # an idle machine: every core wins
        ({1: 0.050, 2: 0.050}, 1),  # a tie keeps the cores free
    ],
)
def test_the_faster_thread_count_is_kept(timings, chosen):
    choice = choose_threads(timings.__getitem__, candidates=tuple(timings))
    assert choice.threads == chosen
    assert choice.line().startswith(f"threads: auto chose {chosen} (1 thread ")
    assert "ms/step" in choice.line()


def test_candidates_are_one_thread_and_every_core():
    candidates = thread_candidates()
    assert candidates[0] == 1 and len(candidates) <= 2


def test_real_training_steps_are_timed_with_each_count(tiny_data):
    clock = fake_clock({1: 0.03, 2: 0.09})
    config = TrainConfig(epochs=1, batch_size=8, device="cpu", progress=False)
    choice = choose_threads(training_step_timer(ARCH, tiny_data, config, steps=2, timer=clock), candidates=(1, 2))
    assert choice.threads == 1


def test_measured_steps_are_timed_with_each_count():
    config = ProfileConfig(batch_sizes=(2, 4), resolution=32, device="cpu", backend="estimate")
    clock = fake_clock({1: 0.09, 2: 0.03})
    choice = choose_threads(step_timer(ARCH, config, steps=2, timer=clock), candidates=(1, 2))
    assert choice.threads == 2


def test_train_with_auto_says_what_it_chose(tiny_data, capsys):
    result = train_model(
        ARCH, tiny_data, TrainConfig(epochs=1, batch_size=8, device="cpu", progress=False, threads="auto")
    )
    assert result.ok
    assert "threads: auto chose" in capsys.readouterr().err


@pytest.mark.parametrize(
    "command", [["run"], ["train", "mobilenet_v1", "-G", "8"], ["validate"], ["profile", "mobilenet_v1", "-G", "8"]]
)
def test_auto_is_the_default_of_every_command_that_trains_or_measures(command):
    args = build_parser().parse_args(command)
    assert getattr(args, "threads", "auto") == "auto"


def test_a_bad_thread_count_is_refused():
    with pytest.raises(ConfigError, match="threads must be a positive integer"):
        TrainConfig(threads="many")
