"""The trainer (e2gcsearch.train) and the ``e2gcsearch train`` command."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from e2gcsearch import ArchConfig
from e2gcsearch.cli import main
from e2gcsearch.data import DataConfig, load_data
from e2gcsearch.errors import ConfigError
from e2gcsearch.train import FULL_RECIPE, TrainConfig, learning_rate, train_model

TINY = ArchConfig("mobilenet_v1", group_size=8, width=0.25, num_classes=10)


@pytest.fixture(scope="module")
def digits():
    """The embedded set at 32 px: 100 training and 30 validation images per class."""
    return load_data(DataConfig(name="digits", train_per_class=100, val_per_class=30, resolution=32), progress=False)


@pytest.fixture(scope="module")
def small_digits():
    return load_data(
        DataConfig(name="digits", classes=4, train_per_class=16, val_per_class=4, resolution=32), progress=False
    )


def test_schedules_warm_up_then_decay() -> None:
    cosine = TrainConfig(epochs=4, lr=0.1, warmup_epochs=1)
    rates = [learning_rate(cosine, step, 10) for step in range(40)]
    assert rates[0] == pytest.approx(0.01) and rates[9] == pytest.approx(0.1)
    assert all(a >= b for a, b in zip(rates[10:], rates[11:])) and rates[-1] < 0.001
    recipe = TrainConfig.full_training()
    assert recipe.full and (recipe.epochs, recipe.schedule) == (FULL_RECIPE.epochs, FULL_RECIPE.schedule) == (
        24,
        "cosine",
    )
    step = TrainConfig.full_training(epochs=9, lr=0.1, warmup_epochs=0, schedule="step")
    assert step.full and step.schedule == "step"
    by_epoch = [learning_rate(step, epoch * 10, 10) for epoch in range(9)]
    assert by_epoch == pytest.approx([0.1] * 3 + [0.01] * 3 + [0.001] * 3)


def test_bad_train_config_is_refused() -> None:
    with pytest.raises(ConfigError, match="schedule"):
        TrainConfig(schedule="linear")
    with pytest.raises(ConfigError, match="epochs"):
        TrainConfig(epochs=0)


def test_class_count_mismatch_names_the_fix(small_digits) -> None:
    with pytest.raises(ConfigError, match=r"num_classes=1000|replace\(num_classes=4\)"):
        train_model(TINY.replace(num_classes=1000), small_digits, TrainConfig(epochs=1, progress=False))


def test_proxy_training_beats_chance_clearly(digits) -> None:
    rng_before, threads_before = torch.get_rng_state(), torch.get_num_threads()
    result = train_model(TINY, digits, TrainConfig(epochs=4, progress=False, threads=1))
    assert result.ok and result.status == "ok"
    assert result.top1 > 50.0, result.val_curve  # chance is 10 %
    assert result.top5 is not None and result.top5 >= result.top1
    assert len(result.loss_curve) == len(result.val_curve) == result.epochs_run == 4
    assert result.loss_curve[-1] < result.loss_curve[0]
    assert (result.train_size, result.val_size) == (1000, 300)
    assert result.images_per_s > 0 and result.wall_s > 0
    assert json.loads(json.dumps(result.to_dict()))["top1"] == result.top1
    # no global state leaks: the global RNG and the thread setting are as before
    assert torch.equal(torch.get_rng_state(), rng_before) and torch.get_num_threads() == threads_before


def _trainer_after_one_epoch(data, bn_images: int):
    from e2gcsearch.models import create_model
    from e2gcsearch.train.loop import Trainer
    from e2gcsearch.train.runtime import DistInfo

    torch.manual_seed(0)
    config = TrainConfig(epochs=2, batch_size=16, bn_images=bn_images, progress=False)
    trainer = Trainer(create_model(TINY.replace(num_classes=4)), data, config, torch.device("cpu"), DistInfo())
    trainer.train_epoch(0, type("Bar", (), {"update": lambda self, n: None})())
    return trainer


def test_validation_uses_statistics_recomputed_from_training_images(small_digits) -> None:
    from e2gcsearch.data.augment import normalize_batch
    from e2gcsearch.train.runtime import derived_seed

    trainer = _trainer_after_one_epoch(small_digits, bn_images=48)
    stem, norm = trainer.model.stem[0], trainer.model.stem[1]
    running = norm.running_mean.clone()
    trainer.evaluate()
    # the stem's BatchNorm now holds the mean of its input over the 48 (of 64) training images drawn for
    # the first validation, with the weights of that moment, not the running average of training
    order = torch.randperm(64, generator=torch.Generator().manual_seed(derived_seed(0, "bn", 0)))[:48]
    with torch.no_grad():
        expected = stem(normalize_batch(small_digits.train_images[order], trainer.mean, trainer.std)).mean(
            dim=(0, 2, 3)
        )
    assert torch.allclose(norm.running_mean, expected, atol=1e-5)
    assert not torch.allclose(running, expected, atol=1e-3)
    # bn_images=0 keeps the running averages
    plain = _trainer_after_one_epoch(small_digits, bn_images=0)
    kept = plain.model.stem[1].running_mean.clone()
    plain.evaluate()
    assert torch.equal(plain.model.stem[1].running_mean, kept)
    # and the recomputation touches nothing else: the next epoch trains the same weights
    bar = type("Bar", (), {"update": lambda self, n: None})()
    trainer.train_epoch(1, bar)
    plain.train_epoch(1, bar)
    weights = plain.model.state_dict()
    assert all(
        torch.equal(value, weights[name])
        for name, value in trainer.model.state_dict().items()
        if "running" not in name and "num_batches" not in name
    )
    with pytest.raises(ConfigError, match="bn_images"):
        TrainConfig(bn_images=-1)


def test_non_finite_loss_stops_the_run(small_digits) -> None:
    arch = TINY.replace(num_classes=4)
    result = train_model(arch, small_digits, TrainConfig(epochs=3, lr=1e30, warmup_epochs=0, progress=False, threads=1))
    assert result.status == "non-finite loss" and not result.ok
    assert math.isnan(result.top1) and result.top5 is None
    assert math.isnan(result.loss_curve[-1]) and len(result.val_curve) == result.epochs_run - 1


def _weights(path: Path) -> dict[str, torch.Tensor]:
    return torch.load(path, weights_only=True)["model"]


def test_resume_gives_the_same_weights_as_an_uninterrupted_run(small_digits, tmp_path: Path) -> None:
    arch = TINY.replace(num_classes=4)
    settings = dict(epochs=3, batch_size=16, progress=False, threads=1)
    whole = train_model(arch, small_digits, TrainConfig(checkpoint_dir=str(tmp_path / "a"), **settings))
    stopped = train_model(
        arch,
        small_digits,
        TrainConfig(checkpoint_dir=str(tmp_path / "b"), **settings),
        on_epoch_end=lambda done, metrics: done == 2,
    )
    assert stopped.status == "stopped" and stopped.epochs_run == 2
    with pytest.raises(ConfigError, match="--resume"):  # never overwrite a checkpoint silently
        train_model(arch, small_digits, TrainConfig(checkpoint_dir=str(tmp_path / "b"), **settings))
    with pytest.raises(ConfigError, match="different run"):
        train_model(
            arch,
            small_digits,
            TrainConfig(checkpoint_dir=str(tmp_path / "b"), resume=True, **{**settings, "epochs": 4}),
        )
    resumed = train_model(arch, small_digits, TrainConfig(checkpoint_dir=str(tmp_path / "b"), resume=True, **settings))
    assert resumed.ok and resumed.start_epoch == 2 and resumed.epochs_run == 3
    assert resumed.loss_curve == whole.loss_curve and resumed.top1 == whole.top1
    final_whole, final_resumed = _weights(tmp_path / "a" / "last.pt"), _weights(tmp_path / "b" / "last.pt")
    assert final_whole.keys() == final_resumed.keys()
    assert all(torch.equal(final_whole[k], final_resumed[k]) for k in final_whole)


def test_cli_trains_on_the_embedded_set_by_default(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("E2GCSEARCH_DATA", str(tmp_path / "no-food-here"))
    code = main(
        [
            "train",
            "mobilenet_v1",
            "-G",
            "8",
            "--width",
            "0.25",
            "--classes",
            "3",
            "--train-per-class",
            "12",
            "--val-per-class",
            "4",
            "--resolution",
            "32",
            "--epochs",
            "1",
            "--threads",
            "1",
            "--format",
            "json",
        ]
    )
    out, err = capsys.readouterr()
    assert code == 0, err
    document = json.loads(out)
    assert document["data"]["dataset"] == "digits" and document["arch"]["num_classes"] == 3
    assert (document["result"]["train_size"], document["result"]["val_size"]) == (36, 12)
    assert "using the embedded 'digits' set" in err and "--data food101" in err


@pytest.mark.skipif(os.environ.get("E2GCSEARCH_SKIP_TORCHRUN") == "1", reason="E2GCSEARCH_SKIP_TORCHRUN=1")
@pytest.mark.slow
def test_torchrun_two_processes_gloo(tmp_path: Path) -> None:
    """A 2-process DistributedDataParallel run (gloo on CPU) with a checkpoint, through the CLI."""
    command = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--standalone",
        "--nproc-per-node",
        "2",
        "-m",
        "e2gcsearch",
        "train",
        "mobilenet_v1",
        "-G",
        "8",
        "--width",
        "0.25",
        "--data",
        "digits",
        "--classes",
        "4",
        "--train-per-class",
        "16",
        "--val-per-class",
        "4",
        "--resolution",
        "32",
        "--epochs",
        "2",
        "--batch-size",
        "8",
        "--threads",
        "1",
        "--full",
        "--checkpoint-dir",
        str(tmp_path / "ckpt"),
        "--format",
        "json",
        "--no-progress",
    ]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    done = subprocess.run(command, capture_output=True, text=True, timeout=240, env=env)
    assert done.returncode == 0, done.stderr[-2000:]
    document = json.loads(done.stdout[done.stdout.index("{") :])  # rank 0 alone prints
    assert document["result"]["world_size"] == 2 and document["result"]["status"] == "ok"
    assert document["result"]["epochs_run"] == 2 and (tmp_path / "ckpt" / "last.pt").is_file()


def test_dropout_draws_do_not_depend_on_what_ran_before(small_digits) -> None:
    """torchvision's MobileNet-V2 has dropout before its classifier: two trainings with the global RNG
    left in different states by earlier work end with the same weights."""
    arch = ArchConfig("mobilenet_v2", group_size=1, width=0.5, num_classes=4)
    config = TrainConfig(epochs=1, batch_size=16, progress=False, threads=1, bn_images=0)
    finals = []
    for earlier in (1, 2):
        torch.manual_seed(earlier)  # e.g. a calibration or a cache miss before the trial
        trained = train_model(arch, small_digits, config)
        assert trained.ok
        finals.append(trained.loss_curve)
    assert finals[0] == finals[1]
    state = torch.get_rng_state()
    train_model(arch, small_digits, config)
    assert torch.equal(torch.get_rng_state(), state)  # and the caller's stream is left where it was
