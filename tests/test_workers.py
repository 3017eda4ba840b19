"""Several workers on one host: each its own GPU (or a clear refusal), its share of the CPU cores, and
a worker killed mid-search replaced for the rest of its share. GPUs are faked at torch.cuda."""

from __future__ import annotations

import pytest
import torch
from test_search_run import tiny_config

from e2gcsearch import ConfigError
from e2gcsearch.cli import main
from e2gcsearch.devices import worker_devices
from e2gcsearch.search.run import _prepare
from e2gcsearch.train.threads import usable_cores, worker_threads


@pytest.fixture
def four_gpus(monkeypatch):
    """A host with four GPUs, as torch.cuda reports them (the boundary the worker placement reads)."""
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 4)


def test_each_worker_gets_its_own_gpu(four_gpus):
    assert worker_devices("cuda", 2) == ["cuda:0", "cuda:1"]
    assert worker_devices("cuda", 2, devices=(3, 1)) == ["cuda:3", "cuda:1"]
    assert worker_devices("auto", 4) == ["cuda:0", "cuda:1", "cuda:2", "cuda:3"]
    assert worker_devices("cuda:2", 1) == ["cuda:2"]


def test_more_workers_than_gpus_is_refused_unless_shared(four_gpus):
    with pytest.raises(ConfigError, match=r"--workers 3 needs 3 GPUs .* has 2 \(0,1\).*--share-devices"):
        worker_devices("cuda", 3, devices=(0, 1))
    with pytest.raises(ConfigError, match="--workers 2 needs 2 GPUs"):
        worker_devices("cuda:0", 2)
    assert worker_devices("cuda", 3, devices=(0, 1), share=True) == ["cuda:0", "cuda:1", "cuda:0"]


def test_bad_device_lists_are_one_line(four_gpus, monkeypatch):
    with pytest.raises(ConfigError, match="names GPU 7, but torch sees 4 GPU"):
        worker_devices("cuda", 1, devices=(7,))
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(ConfigError, match="--devices picks GPUs"):
        worker_devices("cpu", 2, devices=(0,))
    assert worker_devices("cpu", 2) is None and worker_devices("auto", 2) is None


def test_the_cli_refuses_more_workers_than_gpus_before_any_study(four_gpus, tmp_path, capsys):
    storage = tmp_path / "study.log"
    code = main(["run", "--storage", str(storage), "--device", "cuda", "--devices", "0,1", "--workers", "3"])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and "--share-devices" in err[0] and not storage.exists()
    with pytest.raises(SystemExit) as exited:
        main(["run", "--devices", "0,0"])
    assert exited.value.code == 2 and "distinct device indices" in capsys.readouterr().err


def test_workers_split_the_cores(tmp_path, capsys):
    cores = len(usable_cores())
    assert worker_threads(1) == cores and worker_threads(cores) == 1 and worker_threads(4 * cores) == 1
    base = tiny_config(tmp_path, storage=str(tmp_path / "study.log"), workers=2)
    auto = base.settings.train.replace(threads="auto")
    config = _prepare(tiny_config(tmp_path, storage=str(tmp_path / "study.log"), workers=2, settings={"train": auto}))[
        2
    ]
    assert config.settings.train.threads == max(1, cores // 2)
    assert f"2 workers on {cores} core(s), {max(1, cores // 2)} thread(s) each" in capsys.readouterr().err
    pinned = tiny_config(
        tmp_path, storage=str(tmp_path / "study.log"), workers=2, settings={"train": auto.replace(threads=3)}
    )
    assert _prepare(pinned)[2].settings.train.threads == 3  # --threads N says otherwise
