"""Every script in benchmarks/ runs, at a tiny size, as a user would start it: ``python benchmarks/X.py``
in a fresh process. Their figures are not judged (benchmarks print ratios for a person to read);
what is checked is that each finishes, prints its table or ratio lines, and writes only where it was
told: every output goes under ``tmp_path``, and the tables in benchmarks/data/ stay as they are."""

from __future__ import annotations

import csv
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from test_data import make_food101

BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"
# The scripts the tests below run; fidelity_report.py is proxy_fidelity.py's report, run by its ``report`` step,
# fidelity_runs.py its runs, measured by its ``measure`` step, and paired_report.py paired_separation.py's report.
COVERED = {
    "energy_model_fit.py",
    "fidelity_report.py",
    "fidelity_runs.py",
    "flgc_vs_fggc.py",
    "grouped_conv_impls.py",
    "measurement_isolation.py",
    "paired_report.py",
    "paired_separation.py",
    "profile_stability.py",
    "proxy_fidelity.py",
    "search_replay.py",
    "trainer_throughput.py",
    "workers_scaling.py",
}


def _snapshot(folder: Path) -> dict[str, tuple[int, int]]:
    return {
        str(path.relative_to(folder)): (path.stat().st_size, path.stat().st_mtime_ns)
        for path in sorted(folder.rglob("*"))
        if path.is_file()
    }


@pytest.fixture(autouse=True)
def data_tables_untouched():
    before = _snapshot(BENCHMARKS / "data")
    yield
    assert _snapshot(BENCHMARKS / "data") == before, "a benchmark wrote into benchmarks/data/"


@pytest.fixture(scope="module")
def food_root(tmp_path_factory) -> Path:
    """A miniature Food-101 tree: 3 classes, 12 training and 4 test JPEGs each."""
    return make_food101(tmp_path_factory.mktemp("food"), train=12, test=4)


def bench(tmp_path: Path, script: str, *args: object) -> str:
    """Run ``benchmarks/<script> args`` from ``tmp_path`` (caches and temporary folders under it too);
    its standard output, after checking that it exited 0."""
    env = {
        **os.environ,
        "E2GCSEARCH_CACHE_DIR": str(tmp_path / "cache"),
        "TMPDIR": str(tmp_path),
        "PYTHONDONTWRITEBYTECODE": "1",
    }  # nor a __pycache__ in benchmarks/
    done = subprocess.run(
        [sys.executable, str(BENCHMARKS / script), *map(str, args)],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, f"{script} exited {done.returncode}:\n{done.stderr[-3000:]}"
    return done.stdout


def test_every_benchmark_script_is_run_here():
    assert {path.name for path in BENCHMARKS.glob("*.py")} == COVERED


def test_trainer_throughput(tmp_path, food_root):
    out = bench(
        tmp_path,
        "trainer_throughput.py",
        "--data-root",
        food_root,
        "--epochs",
        1,
        "--rounds",
        1,
        "--resolution",
        32,
        "--width",
        0.25,
        "--batch-size",
        16,
        "--threads",
        1,
        "--channels-last",
    )
    assert "== food101:" in out and "== digits (embedded):" in out and "channels_last" in out
    assert out.count("(a) trainer / bare") == 2 and "(b) trainer / torchvision pipeline" in out


def test_energy_model_fit(tmp_path):
    out = bench(
        tmp_path,
        "energy_model_fit.py",
        "--widths",
        "0.25,0.5",
        "--resolution",
        32,
        "--batch-sizes",
        4,
        "--passes",
        1,
        "--repeats",
        1,
        "--window-s",
        0.01,
        "--backend",
        "estimate",
        "--sweep-out",
        tmp_path / "sweep.json",
        "--profile-out",
        tmp_path / "profile.json",
    )
    assert "22 networks (widths [0.25, 0.5])" in out and "favoured G at B=4" in out
    assert json.loads((tmp_path / "profile.json").read_text()) and (tmp_path / "sweep_raw.json").is_file()


def test_grouped_conv_impls(tmp_path):
    out = bench(tmp_path, "grouped_conv_impls.py", "--quick", "--layer-repeats", 1, "--repeats", 1)
    assert "(a) 3x3 grouped conv" in out and "(b) MobileNet-V1" in out and "optimum G: nchw G=" in out
    assert "(c) the layer of (a) against this CPU's roofline" in out and "chosen/roofline" in out
    assert "peak compute (measured" in out and "peak memory bandwidth (measured)" in out


def test_profile_stability(tmp_path):
    out = bench(
        tmp_path,
        "profile_stability.py",
        "--backend",
        "estimate",
        "--device",
        "cpu",
        "--repeats",
        2,
        "--batch-sizes",
        "4,16",
        "--windows",
        0.02,
        "--resolution",
        32,
        "--rounds",
        2,
    )
    assert "B=16, window 0.02 s: CV median" in out and "pairs of measurements of one network" in out


def test_search_replay_measures_into_the_table_it_is_given(tmp_path):
    table = tmp_path / "space.csv"
    bench(tmp_path, "search_replay.py", "measure", "--out", table, "--limit", 1, "--hold", "shared")
    lines = table.read_text().splitlines()
    assert lines[0].startswith("# made by: python benchmarks/search_replay.py measure")
    rows = list(csv.DictReader(line for line in lines if not line.startswith("#")))
    assert len(rows) == 1 and rows[0]["hold"] == "shared" and float(rows[0]["epf_mj_b16"]) > 0
    assert float(rows[0]["score_grad_norm"]) > 0 and float(rows[0]["score_naswot_s"]) >= 0
    # A table measured before the scores were recorded gets them on the next measure, and a note says so.
    columns = [name for name in rows[0] if not name.startswith("score_")]
    with table.open("w") as handle:
        handle.writelines(line + "\n" for line in lines if line.startswith("#"))
        writer = csv.DictWriter(handle, columns, extrasaction="ignore")
        writer.writeheader()
        writer.writerows(rows)
    bench(tmp_path, "search_replay.py", "measure", "--out", table, "--limit", 0)
    lines = table.read_text().splitlines()
    again = list(csv.DictReader(line for line in lines if not line.startswith("#")))
    assert again[0]["score_grad_norm"] == rows[0]["score_grad_norm"] and again[0]["hold"] == "shared"
    assert any("training-free scores of 1 point(s)" in line for line in lines if line.startswith("#"))


def test_search_replay_replays_the_stored_table(tmp_path):
    out = bench(
        tmp_path,
        "search_replay.py",
        "replay",
        "--table",
        BENCHMARKS / "data" / "search_space_digits.csv",
        "--seeds",
        1,
        "--samplers",
        "random",
    )
    assert "| sampler | warm start |" in out and "replay took" in out
    assert out.count("| random |") == 8 and "| asha+grad_norm |" in out  # 4 policies: the table holds scores


def test_search_replay_judges_the_food101_table_by_full_training(tmp_path):
    out = bench(
        tmp_path,
        "search_replay.py",
        "replay",
        "--table",
        BENCHMARKS / "data" / "proxy_fidelity_food101-10.csv",
        "--seeds",
        1,
        "--samplers",
        "random",
        "--policies",
        "off,asha",
    )
    assert "judged by e24-nall-r64 full training" in out and "HV full at 50 %" in out
    assert out.count("| random |") == 4 and "| asha |" in out


def test_proxy_fidelity_measures_and_reports(tmp_path, food_root):
    table = tmp_path / "fidelity.csv"
    out = bench(
        tmp_path,
        "proxy_fidelity.py",
        "--data-root",
        food_root,
        "--table",
        table,
        "--limit",
        3,
        "--kinds",
        "proxy,full",
        "--proxies",
        "e1-n4-r32",
        "--full-epochs",
        1,
        "--full-resolution",
        32,
        "--bootstrap",
        20,
    )
    assert "| e1-n4-r32 | 3 |" in out and "noise ceiling" in out
    assert len(table.read_text().splitlines()) > 3 * 3  # header notes, column names, 3 x (1 proxy + 2 full)


def test_fidelity_report_reads_the_stored_table(tmp_path):
    table = tmp_path / "fidelity.csv"  # a copy: the report may leave nothing beside the table it reads
    shutil.copy(BENCHMARKS / "data" / "proxy_fidelity_food101-10.csv", table)
    out = bench(tmp_path, "proxy_fidelity.py", "report", "--table", table, "--bootstrap", 20)
    assert "| network | MMACs |" in out and "noise ceiling" in out


def _cells(out: str, first: str) -> list[str]:
    """The cells of the markdown row of ``out`` that begins with ``first``."""
    line = next(line for line in out.splitlines() if line.startswith(f"| {first} |"))
    return [cell.strip() for cell in line.strip("|").split("|")]


def test_paired_separation_reports_a_made_up_table(tmp_path):
    """Six networks on 400 images, each right on its first k images (so any two disagree one way only):
    EPF orders them A, B, C, F, D, E and the front is A-B-C-D-E. The seeds 0/1 of D differ by 8 images,
    the rest are identical: σ ≈ 0.6 points. B/C and D/E are 4 points apart, within two intervals but
    apart on the 16 images they disagree on; A has seeds 0-5 (B 0-3): pairs 0/1 and 2/3 identical, 4/5 apart
    by 6 images, which only the images alone (no seed noise) separate. Full training reverses C and D."""
    from e2gcsearch.paired import pack

    n, epf = 400, {"A": 1, "B": 2, "C": 3, "F": 3.5, "D": 4, "E": 5}
    right = {"A": [160] * 4 + [160, 166], "B": [240] * 4, "C": [256] * 2, "F": [128] * 2, "D": [320, 328]}
    right["E"] = [336] * 2
    table, fidelity = tmp_path / "paired.csv", tmp_path / "fidelity.csv"
    with table.open("w") as handle:
        handle.write("# made up\nlabel,seed,top1,val_size,val_order,correct,status\n")
        for label, counts in right.items():
            for seed, count in enumerate(counts):
                bits = pack(np.arange(n) < count)
                handle.write(f"{label},{seed},{100 * count / n:.4f},{n},abc,{bits},ok\n")
    full = {"A": 50, "B": 60, "C": 70, "F": 40, "D": 65, "E": 90}  # full training orders C above D
    lines = [f"{k},epf,,{v},,ok\n" for k, v in epf.items()] + [
        f"{k},full,e24-nall-r64,,{v},ok\n" for k, v in full.items()
    ]
    fidelity.write_text("label,kind,setting,value_out,top1,status\n" + "".join(lines))
    out = bench(tmp_path, "paired_separation.py", "report", "--table", table, "--fidelity-table", fidelity)
    assert "18 rows" in out and "6 with seed 0, 6 with seed 1" in out
    assert _cells(out, "Pareto-front neighbours")[1:5] == ["4", "2", "4", "2.0x"]
    assert _cells(out, "all neighbours in EPF order")[1:5] == ["5", "3", "5", "1.7x"]
    assert _cells(out, "Pareto-front neighbours, mean of seeds 0 and 1")[1:5] == ["4", "2", "4", "2.0x"]
    # every pair: two intervals miss B/C, D/E (4 points apart) and A/F (8), their difference only B/C and D/E
    assert _cells(out, "seed 0") == ["seed 0", "15", "12", "13", "15", "1.2x", "15 of 15", "14 of 15"]
    assert _cells(out, "mean of seeds 0 and 1")[1:7] == ["15", "12", "13", "15", "1.2x", "-"]
    assert _cells(out, "mean of seeds 0-3")[1:6] == ["1", "1", "1", "1", "1.0x"]  # A and B only
    assert _cells(out, "Pareto-front neighbours, mean of seeds 0-3")[1:3] == ["1", "1"]
    assert "against itself: 3 of one seed each" in out  # A's seeds 0/1, 2/3, 4/5; 0-1 against 2-3 as means of 2
    assert _cells(out, "(a) paired, σ from the space's seeds 0/1")[2:] == ["0 of 3", "0 of 1", "-"]
    assert _cells(out, "(b) paired, the images only")[2:] == ["1 of 3", "0 of 1", "-"]
    assert _cells(out, "(c) independent intervals")[2:] == ["0 of 3", "0 of 1", "-"]
    assert "One seed each: a test at the 5 % level separates 0.15 of 3" in out and "(a) is within that range" in out


@pytest.mark.slow
def test_flgc_vs_fggc_every_part(tmp_path, food_root):
    flags = [
        "--out",
        tmp_path / "flgc.jsonl",
        "--data-root",
        food_root,
        "--groups",
        2,
        "--seeds",
        0,
        "--resolution",
        32,
        "--proxy-epochs",
        1,
        "--full-epochs",
        1,
        "--batch-sizes",
        4,
        "--repeats",
        1,
        "--rounds",
        1,
    ]
    for part in ("train", "uneven", "epf"):
        bench(tmp_path, "flgc_vs_fggc.py", part, *flags)
    out = bench(tmp_path, "flgc_vs_fggc.py", "table", *flags)
    assert "| 2 | FgGC |" in out and "| 2 | FLGC |" in out and "EPF@4 (mJ/frame, estimate)" in out
    assert "balanced / uneven / masked dense" in out


@pytest.mark.slow
def test_measurement_isolation(tmp_path):
    out = bench(
        tmp_path, "measurement_isolation.py", "--rounds", 1, "--repeats", 2, "--window-s", 0.02, "--train-threads", 1
    )
    for name in ("alone", "beside training, lock on", "beside training, lock off"):
        assert f"\n{name} " in out


@pytest.mark.slow
def test_workers_scaling(tmp_path):
    out = bench(tmp_path, "workers_scaling.py", "--trials", 1, "--storages", "journal", "--lock-off", "")
    assert "journal   workers=1 lock=on " in out and "journal   workers=2 lock=on " in out
    assert "2 workers (lock on)" in out
