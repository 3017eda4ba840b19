"""The per-device measurement lock: a measurement never overlaps another process's training step, a
measurement waiting for the device gets it while trainers keep stepping, trials record the wait, and
the lock is one per host whatever the user's cache folder."""

from __future__ import annotations

import dataclasses
import json
import multiprocessing
import stat
import time
import types
from pathlib import Path

import torch

from e2gcsearch import ArchConfig
from e2gcsearch.profiling import DeviceLock, ProfileConfig, extend_measurement, profile_model
from e2gcsearch.profiling.lock import device_key, host_lock_folder

STEP_S = 0.01


def _trainer(folder: str, out: str, stop: str) -> None:
    """A process that 'trains' (sleeps STEP_S per step) until ``stop`` exists; logs each step's span."""
    lock, spans = DeviceLock(folder, "dev"), []
    with lock.shared() as step_boundary:
        while not Path(stop).exists():
            start = time.monotonic()
            time.sleep(STEP_S)
            spans.append((start, time.monotonic()))
            step_boundary()
    Path(out).write_text(json.dumps({"spans": spans, "paused_s": lock.paused_s}))


def _overlaps(a: tuple[float, float], b: tuple[float, float]) -> bool:
    return a[0] < b[1] and b[0] < a[1]


def test_measurements_never_overlap_training_steps_and_are_not_starved(tmp_path):
    context = multiprocessing.get_context("fork")
    stop = tmp_path / "stop"
    trainers = [
        context.Process(target=_trainer, args=(str(tmp_path), str(tmp_path / f"t{i}.json"), str(stop)))
        for i in range(2)
    ]
    for process in trainers:
        process.start()
    lock, windows = DeviceLock(tmp_path, "dev"), []
    try:
        time.sleep(0.3)  # both trainers inside, stepping
        for _ in range(3):
            with lock.exclusive():  # would wait for ever without the turnstile: the trainers always overlap
                start = time.monotonic()
                time.sleep(0.1)
                windows.append((start, time.monotonic()))
            time.sleep(0.1)
    finally:
        stop.touch()
        for process in trainers:
            process.join(timeout=60)
    assert [p.exitcode for p in trainers] == [0, 0]
    assert len(windows) == 3 and lock.waited_s >= 0
    for i in range(2):
        log = json.loads((tmp_path / f"t{i}.json").read_text())
        spans = log["spans"]
        assert len(spans) > 20  # they trained before, between and after the measurements
        assert not [(s, w) for s in spans for w in windows if _overlaps(s, w)]
        assert any(s[0] > windows[-1][1] for s in spans)  # and came back after the last one
        assert log["paused_s"] >= 0.25  # stood aside for the three 0.1 s windows


def test_a_process_measuring_while_it_trains_lets_go_of_its_own_share(tmp_path):
    lock = DeviceLock(tmp_path, "dev")
    with lock.shared() as step_boundary:
        step_boundary()
        with lock.exclusive():  # would deadlock on our own shared hold otherwise
            assert DeviceLock(tmp_path, "dev").measurement_waiting()
        step_boundary()
    other = DeviceLock(tmp_path, "dev")
    with other.exclusive():  # everything was released
        assert lock.measurement_waiting()
    assert not lock.measurement_waiting()


def test_devices_have_their_own_keys():
    assert device_key("cpu") == device_key("cpu")
    assert device_key("cpu").startswith("cpu-") and "/" not in device_key("cpu")


def test_a_gpu_is_keyed_by_its_board_not_by_the_index_a_process_sees(monkeypatch):
    """Fakes at the torch.cuda boundary: a process with CUDA_VISIBLE_DEVICES=1 sees board B as cuda:0,
    another with the default order sees it as cuda:1; both must take the same lock."""
    boards = {0: "8e2f0c6a-0000-4a4a-9c9c-00000000000a", 1: "8e2f0c6a-0000-4a4a-9c9c-00000000000b"}
    visible = {"order": [0, 1]}
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "get_device_name", lambda index=0: "NVIDIA H200")
    monkeypatch.setattr(
        torch.cuda, "get_device_properties", lambda index: types.SimpleNamespace(uuid=boards[visible["order"][index]])
    )
    default_order = device_key("cuda:1")
    visible["order"] = [1]
    assert device_key("cuda:0") == default_order
    visible["order"] = [0, 1]
    assert device_key("cuda:0") != default_order and "H200" in default_order


def test_profiling_waits_for_the_device_and_a_trial_records_the_wait(tmp_path):
    """A measurement that must wait for a trainer standing aside: profile_model counts it."""
    config = ProfileConfig(
        batch_sizes=(2,),
        resolution=32,
        device="cpu",
        backend="estimate",
        repeats=1,
        min_window_s=0.01,
        warmup=1,
        cache_dir=str(tmp_path / "profiles"),
        use_cache=False,
    )
    lock = DeviceLock.for_device("cpu", tmp_path / "profiles")
    context = multiprocessing.get_context("fork")
    stop = tmp_path / "stop"
    trainer = context.Process(target=_slow_trainer, args=(str(tmp_path / "profiles"), lock.key, str(stop)))
    trainer.start()
    stepping = Path(str(stop) + ".stepping")
    try:
        deadline = time.monotonic() + 60
        while not stepping.exists() and time.monotonic() < deadline:  # the trainer is inside a 3 s step
            time.sleep(0.01)
        profile_model(ArchConfig("mobilenet_v1", group_size=8, width=0.25, num_classes=10), config, lock=lock)
    finally:
        stop.touch()
        trainer.join(timeout=60)
    assert lock.waited_s >= 0.5  # the step had to end first (building the network takes well under 2.5 s)


def _slow_trainer(folder: str, key: str, stop: str) -> None:
    lock = DeviceLock(folder, key)
    with lock.shared() as step_boundary:
        Path(stop + ".stepping").touch()
        while not Path(stop).exists():
            time.sleep(3.0)
            step_boundary()


def test_no_device_lock_measures_without_waiting(tmp_path):
    config = ProfileConfig(
        batch_sizes=(2,),
        resolution=32,
        device="cpu",
        backend="estimate",
        repeats=1,
        min_window_s=0.01,
        warmup=1,
        cache_dir=str(tmp_path),
        use_cache=False,
        device_lock=False,
    )
    holder = DeviceLock.for_device("cpu", tmp_path)
    with holder.shared():  # a trainer that never reaches a step boundary
        result = profile_model(ArchConfig("mobilenet_v1", group_size=8, width=0.25, num_classes=10), config)
    assert result.batches[2].status == "ok"


def test_a_measurement_made_without_the_lock_is_not_reused_by_a_run_that_holds_it(tmp_path):
    config = ProfileConfig(
        batch_sizes=(2,),
        resolution=32,
        device="cpu",
        backend="estimate",
        repeats=1,
        min_window_s=0.01,
        warmup=1,
        cache_dir=str(tmp_path),
        impl="nchw",
        device_lock=False,
    )
    network = ArchConfig("mobilenet_v1", group_size=8, width=0.25, num_classes=10)
    unlocked = profile_model(network, config).batches[2]
    assert unlocked.isolated is False and not unlocked.cached
    assert profile_model(network, config).batches[2].cached  # another unlocked run may reuse it
    locked = dataclasses.replace(config, device_lock=True)
    again = profile_model(network, locked).batches[2]
    assert not again.cached and again.isolated is True  # measured again, with the device to itself
    assert profile_model(network, locked).batches[2].cached


def test_a_locked_extension_does_not_pool_windows_measured_without_the_lock(tmp_path):
    config = ProfileConfig(
        batch_sizes=(2,),
        resolution=32,
        device="cpu",
        backend="estimate",
        repeats=2,
        min_window_s=0.01,
        warmup=1,
        cache_dir=str(tmp_path),
        impl="nchw",
        device_lock=False,
        use_cache=False,
    )
    network = ArchConfig("mobilenet_v1", group_size=8, width=0.25, num_classes=10)
    earlier = profile_model(network, config).batches[2]  # 2 windows beside whatever else ran
    assert extend_measurement(network, config, 2, windows=1, earlier=earlier).repeats == 3  # unlocked: pooled
    locked = extend_measurement(network, dataclasses.replace(config, device_lock=True), 2, windows=1, earlier=earlier)
    assert locked.repeats == 1 and locked.isolated is True


def test_a_pooled_measurement_lists_the_minute_of_every_sitting(tmp_path):
    config = ProfileConfig(
        batch_sizes=(2,),
        resolution=32,
        device="cpu",
        backend="estimate",
        repeats=2,
        min_window_s=0.01,
        warmup=1,
        cache_dir=str(tmp_path),
        impl="nchw",
        use_cache=False,
    )
    network = ArchConfig("mobilenet_v1", group_size=8, width=0.25, num_classes=10)
    earlier = dataclasses.replace(profile_model(network, config).batches[2], measured_at=["2026-01-01 00:00"])
    pooled = extend_measurement(network, config, 2, windows=1, earlier=earlier)
    assert pooled.repeats == 3 and pooled.measured_at[0] == "2026-01-01 00:00" and len(pooled.measured_at) == 2
    unknown = dataclasses.replace(earlier, measured_at=None)  # cached before the time was recorded
    assert extend_measurement(network, config, 2, windows=1, earlier=unknown).measured_at is None


def test_the_lock_is_host_wide_whatever_the_cache_folder(tmp_path, monkeypatch):
    monkeypatch.setenv("E2GCSEARCH_LOCK_DIR", str(tmp_path / "host-locks"))
    first = DeviceLock.host_wide("cpu", tmp_path / "home-a" / "profiles")
    second = DeviceLock.host_wide("cpu", tmp_path / "home-b" / "profiles")
    with first.exclusive():
        assert second.measurement_waiting()  # two caches (two users, two HOMEs), one lock
    folder = host_lock_folder()
    assert folder == tmp_path / "host-locks" and stat.S_IMODE(folder.stat().st_mode) == 0o1777
    assert all(stat.S_IMODE(p.stat().st_mode) == 0o666 for p in folder.iterdir())
    first.close(), second.close()


def test_an_unusable_host_folder_falls_back_to_the_cache_with_a_note(tmp_path, monkeypatch, capsys):
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("")
    monkeypatch.setenv("E2GCSEARCH_LOCK_DIR", str(blocker))
    lock = DeviceLock.host_wide("cpu", tmp_path / "profiles")
    with lock.exclusive():
        pass
    assert lock.folder == tmp_path / "profiles" / ".locks" and any(lock.folder.iterdir())
    assert "cannot be used" in capsys.readouterr().err
    lock.close()
