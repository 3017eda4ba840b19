"""benchmarks/proxy_fidelity.py on a miniature Food-101 tree: every kind of run lands in the table, a
second run measures nothing again, and the report judges every proxy and score."""

from __future__ import annotations

import csv
import importlib.util
import sys
from pathlib import Path

import pytest
from test_data import make_food101

BENCHMARK = Path(__file__).resolve().parents[1] / "benchmarks" / "proxy_fidelity.py"


@pytest.fixture(scope="module")
def bench():
    spec = importlib.util.spec_from_file_location("proxy_fidelity", BENCHMARK)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def rows(table: Path) -> list[dict[str, str]]:
    with table.open() as handle:
        return list(csv.DictReader(line for line in handle if not line.startswith("#")))


def test_the_table_is_resumable_and_the_report_judges_every_proxy(bench, tmp_path, capsys, monkeypatch):
    root = make_food101(tmp_path / "data", train=6, test=4)
    table = tmp_path / "fidelity.csv"
    argv = [
        "--data-root",
        str(root),
        "--table",
        str(table),
        "--limit",
        "3",
        "--proxies",
        "e1-n4-r32",
        "--full-epochs",
        "1",
        "--full-resolution",
        "32",
        "--bootstrap",
        "50",
        "--kinds",
        "score,proxy,full,epf",
    ]
    monkeypatch.setattr(sys, "argv", ["proxy_fidelity.py", *argv])
    bench.main(argv)
    first = rows(table)
    kinds = {(row["kind"], row["setting"]) for row in first}
    assert kinds == {
        ("full", "e1-nall-r32"),
        ("proxy", "e1-n4-r32"),
        ("epf", "epf"),
        *{("score", name) for name in ("synflow", "naswot", "grad_norm", "snip")},
    }
    assert len(first) == 3 * (2 + 1 + 4 * 3 + 1)  # per network: 2 full seeds, 1 proxy, 4 scores x 3 seeds, EPF
    epf = next(row for row in first if row["kind"] == "epf")
    assert float(epf["value_out"]) > 0 and epf["unit"] == "mJ/frame@16 (estimate)" and epf["hold"] == "shared"
    proxy = next(row for row in first if row["kind"] == "proxy")
    assert proxy["train_per_class"] == "4" and len(proxy["top1_curve"].split(";")) == 1 and proxy["val_size"] == "12"
    assert "made by: python benchmarks/proxy_fidelity.py --data-root" in table.read_text().splitlines()[0]
    out = capsys.readouterr().out
    assert "noise ceiling, one seed against another: Kendall tau" in out
    assert "front axis: EPF, mJ/frame@16 (estimate) x top-1" in out
    for name in ("e1-n4-r32", "synflow", "naswot", "grad_norm", "snip", "params", "macs"):
        assert f"| {name} | 3 |" in out
    # A second run finds every run in the table and measures nothing.
    bench.main(argv)
    assert rows(table) == first
    assert f"{len(first)} of {len(first)} runs in" in capsys.readouterr().err


def test_a_missing_data_root_is_one_line(bench, tmp_path, capsys):
    with pytest.raises(SystemExit) as stop:
        bench.main(["--data-root", str(tmp_path / "nowhere"), "--table", str(tmp_path / "t.csv")])
    assert stop.value.code == 2 and "no Food-101 at" in capsys.readouterr().err
