"""EPF profiler, its cache and the ``profile`` / ``table --measure`` commands, on tiny networks.

Every run uses the real estimate backend (this is what a machine without counters gets), one
thread, short windows and few repeats, so the whole file takes seconds.
"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
import torch

from e2gcsearch import ArchConfig
from e2gcsearch.cli import main
from e2gcsearch.errors import ConfigError
from e2gcsearch.profiling import ProfileCache, ProfileConfig, ProfileError, default_cache_dir, profile_model

TINY = ArchConfig("mobilenet_v1", group_size=4, width=0.25, num_classes=10)
FAST = dict(resolution=64, repeats=2, min_window_s=0.03, warmup=1, threads=1, device="cpu")
TINY_FLAGS = [
    "mobilenet_v1",
    "--group-size",
    "4",
    "--width",
    "0.25",
    "--classes",
    "10",
    "--resolution",
    "64",
    "--repeats",
    "2",
    "--min-window-s",
    "0.03",
    "--warmup",
    "1",
    "--threads",
    "1",
]
BATCH_KEYS = {
    "batch_size",
    "status",
    "epf_mj",
    "epf_std_mj",
    "cv",
    "latency_ms",
    "throughput_ips",
    "idle_power_w",
    "epf_idle_subtracted_mj",
    "iterations",
    "repeats",
    "cached",
}


def fast(tmp_path, **changes) -> ProfileConfig:
    return ProfileConfig(**{**FAST, "cache_dir": str(tmp_path / "cache"), **changes})


def test_estimate_profile_reports_every_figure_per_batch_size(tmp_path):
    result = profile_model(TINY, fast(tmp_path, batch_sizes=(4, 2), power_w=10.0))
    assert result.backend == "estimate" and result.is_estimate
    assert result.backend_label == "estimate (time x 10 W, set by the caller)"
    assert sorted(result.batches) == [2, 4]
    for batch_size, batch in result.batches.items():
        assert batch.status == "ok" and not batch.cached
        assert batch.iterations >= 1 and batch.repeats == 2
        assert batch.measured_s >= 2 * 0.03 * 0.5 and batch.wall_s > batch.measured_s
        # estimate: energy = 10 W x time, so EPF (mJ) = 10 W x latency (ms) / B
        assert batch.epf_mj == pytest.approx(10.0 * batch.latency_ms / batch_size, rel=1e-6)
        assert batch.throughput_ips == pytest.approx(1000 * batch_size / batch.latency_ms, rel=1e-6)
        assert batch.cv == pytest.approx(batch.epf_std_mj / batch.epf_mj)
        assert batch.idle_power_w is None and batch.epf_idle_subtracted_mj is None
        assert result.epf_mj(batch_size) == batch.epf_mj
    fingerprint = result.fingerprint
    assert fingerprint.threads == 1 and fingerprint.dtype == "float32"
    assert fingerprint.memory_format == "contiguous" and fingerprint.torch == torch.__version__
    assert fingerprint.meter == result.backend_label and fingerprint.device_model


def test_threads_setting_is_restored(tmp_path):
    before = torch.get_num_threads()
    profile_model(TINY, fast(tmp_path, batch_sizes=(2,), threads=1))
    assert torch.get_num_threads() == before


def test_auto_backend_says_why_the_counters_were_skipped(tmp_path):
    result = profile_model(TINY, fast(tmp_path, batch_sizes=(2,)))
    if result.backend != "estimate":
        pytest.skip(f"this machine has a real counter ({result.backend_label})")
    assert [note.split(":")[0] for note in result.backend_notes] == ["nvml", "rapl"]


def test_cache_reuses_measurements_and_can_be_bypassed(tmp_path):
    config = fast(tmp_path, batch_sizes=(2, 4))
    first = profile_model(TINY, config)
    assert len(ProfileCache(config.cache_dir)) == 2
    second = profile_model(TINY, config)
    for batch_size in (2, 4):
        assert second.batches[batch_size].cached
        assert second.batches[batch_size].epf_mj == first.batches[batch_size].epf_mj
    assert not profile_model(TINY, fast(tmp_path, batch_sizes=(2,), use_cache=False)).batches[2].cached
    # A more precise request (more repeats), another layout or another power model measures again.
    assert not profile_model(TINY, fast(tmp_path, batch_sizes=(2,), repeats=3)).batches[2].cached
    assert not profile_model(TINY, fast(tmp_path, batch_sizes=(2,), impl="channels_last")).batches[2].cached
    assert not profile_model(TINY, fast(tmp_path, batch_sizes=(2,), power_w=99.0)).batches[2].cached
    assert profile_model(TINY, fast(tmp_path, batch_sizes=(2,), repeats=1)).batches[2].cached


def test_default_cache_dir_follows_the_environment(monkeypatch, tmp_path):
    monkeypatch.setenv("E2GCSEARCH_CACHE_DIR", str(tmp_path / "elsewhere"))
    assert default_cache_dir() == tmp_path / "elsewhere" / "profiles"
    assert str(default_cache_dir({"XDG_CACHE_HOME": "/x"})) == "/x/e2gcsearch/profiles"
    assert str(default_cache_dir({"XDG_CACHE_HOME": "/x", "E2GCSEARCH_CACHE_DIR": "/y"})) == "/y/profiles"
    assert default_cache_dir({"HOME": "/home/u"}).parts[-2:] == ("e2gcsearch", "profiles")


def test_out_of_memory_batch_is_reported_and_the_others_still_run(tmp_path):
    huge = 10**8  # 1.2 TB of input at 64 px: the allocation fails at once
    result = profile_model(TINY, fast(tmp_path, batch_sizes=(2, huge)))
    assert result.batches[huge].status == "out of memory" and result.batches[huge].epf_mj is None
    assert result.batches[2].status == "ok"
    with pytest.raises(ProfileError, match="out of memory"):
        result.epf_mj(huge)
    with pytest.raises(ProfileError, match="not profiled"):
        result.epf_mj(16)
    assert len(ProfileCache(result_cache := fast(tmp_path).cache_dir)) == 1, result_cache  # OOM not cached


def test_bad_profile_configs_are_user_errors(tmp_path):
    with pytest.raises(ConfigError, match="resolution 64 or larger"):
        profile_model(TINY, fast(tmp_path, batch_sizes=(1,), resolution=32))
    with pytest.raises(ConfigError, match="dtype"):
        ProfileConfig(dtype="float8")
    with pytest.raises(ConfigError, match="batch sizes"):
        ProfileConfig(batch_sizes=(0, 4))
    with pytest.raises(ConfigError, match="min_window_s"):
        ProfileConfig(min_window_s=-1.0)
    assert ProfileConfig(batch_sizes=(16, 1, 4, 4)).batch_sizes == (1, 4, 16)
    assert ProfileConfig().window_s("cpu") == 0.25 and ProfileConfig().window_s("cuda:0") == 5.0


# --- command line --------------------------------------------------------------------------------


def test_profile_command_json_schema(capsys):
    assert (
        main(
            ["profile", *TINY_FLAGS, "--batch-sizes", "2,4", "--backend", "estimate", "--no-cache", "--format", "json"]
        )
        == 0
    )
    captured = capsys.readouterr()
    document = json.loads(captured.out)
    assert document["schema"] == "e2gcsearch.profile/1"
    assert document["backend"] == "estimate" and document["is_estimate"] is True
    assert document["backend_label"].startswith("estimate (time x ")
    assert document["energy_unit"] == "mJ/frame"
    assert document["arch"] == TINY.to_dict() and document["resolution"] == 64
    assert set(document["fingerprint"]) >= {
        "device",
        "device_model",
        "driver",
        "torch",
        "dtype",
        "memory_format",
        "threads",
        "meter",
    }
    assert [b["batch_size"] for b in document["batches"]] == [2, 4]
    for batch in document["batches"]:
        assert set(batch) >= BATCH_KEYS and batch["epf_mj"] > 0
    assert "backend: estimate" in captured.err and "B=4: EPF" in captured.err


def test_profile_command_table_labels_every_energy_figure(capsys):
    assert main(["profile", *TINY_FLAGS, "--batch-sizes", "2", "--backend", "estimate", "--cpu-power-w", "12"]) == 0
    out = capsys.readouterr().out
    assert "backend: estimate (time x 12 W, set by the caller) -- an estimate" in out
    assert "EPF mJ/frame (estimate)" in out and "latency ms/batch" in out


def test_profile_command_csv_rows_name_the_backend(capsys):
    assert main(["profile", *TINY_FLAGS, "--batch-sizes", "2", "--backend", "estimate", "--format", "csv"]) == 0
    header, row = capsys.readouterr().out.strip().splitlines()
    assert header.startswith("arch,module,value,width,resolution,batch_size,status,epf_mj,")
    assert row.endswith(",estimate,True")


@pytest.mark.parametrize(
    "flags, message",
    [
        (["--backend", "joulemeter"], "invalid choice: 'joulemeter'"),
        (["--batch-sizes", "0"], "positive integers"),
        (["--dtype", "float8"], "invalid choice"),
    ],
)
def test_profile_command_bad_input_exits_2(capsys, flags, message):
    with pytest.raises(SystemExit) as info:
        main(["profile", *TINY_FLAGS, *flags])
    assert info.value.code == 2 and message in capsys.readouterr().err


def test_profile_command_nvml_without_nvidia_exits_2_with_the_reason(capsys):
    try:
        import pynvml

        pynvml.nvmlInit()
        pynvml.nvmlShutdown()
        pytest.skip("this machine has a working NVIDIA driver")
    except Exception:  # noqa: BLE001 - any failure means no usable NVML, which is what we test
        pass
    assert main(["profile", *TINY_FLAGS, "--backend", "nvml"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1
    assert err.startswith("e2gcsearch profile: error: the nvml energy backend is unavailable: ")
    assert "--backend estimate" in err


def test_profile_command_cuda_without_gpu_exits_2(capsys):
    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    assert main(["profile", *TINY_FLAGS, "--device", "cuda"]) == 2
    assert "torch sees no CUDA GPU; use --device cpu" in capsys.readouterr().err


def test_table_measure_adds_epf_columns(capsys):
    assert (
        main(
            [
                "table",
                "--measure",
                "--resolution",
                "32",
                "--width",
                "0.25",
                "--classes",
                "10",
                "--batch-sizes",
                "2",
                "--repeats",
                "1",
                "--min-window-s",
                "0.01",
                "--warmup",
                "1",
                "--threads",
                "1",
                "--backend",
                "estimate",
                "--format",
                "csv",
            ]
        )
        == 0
    )
    lines = capsys.readouterr().out.strip().splitlines()
    assert lines[0] == "arch,module,value,params,macs,activations,ai,width,resolution,epf_mj_b2,epf_impl,epf_backend"
    assert len(lines) == 23 and all(line.endswith(",nchw,estimate") for line in lines[1:])
    assert all(float(line.split(",")[-3]) > 0 for line in lines[1:])


def test_profile_subprocess_json(tmp_path):
    command = [
        sys.executable,
        "-m",
        "e2gcsearch",
        "profile",
        *TINY_FLAGS,
        "--batch-sizes",
        "2",
        "--format",
        "json",
        "--cache-dir",
        str(tmp_path),
    ]
    done = subprocess.run(command, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    document = json.loads(done.stdout)
    assert document["batches"][0]["status"] == "ok" and document["backend"]
    assert "backend:" in done.stderr
