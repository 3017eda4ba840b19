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
    assert "where the ceiling comes from: seed std" in out and "(2 seeds of 3 networks)" in out
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


def test_ranking_before_training_keeps_the_score_s_first_layers_and_counts_what_it_recovers(bench, capsys):
    """Four networks, EPF 1..4; full top-1 makes 0, 1 and 3 the front. The score's first layer of (EPF,
    score) is {0, 2}: training only those keeps one front member of three and a third of the seconds."""
    from fidelity_report import Pivot, prerank_table

    def row(label, kind, setting, seed, **values):
        base = {
            "label": label,
            "status": "ok",
            "kind": kind,
            "setting": setting,
            "seed": seed,
            "macs": "1",
            "params": "1",
        }
        return {**base, "top1": "", "train_s": "0", "value_out": "", "unit": "", **values}

    full, proxy, score = [10.0, 20.0, 15.0, 30.0], [10.0, 20.0, 15.0, 30.0], [5.0, 1.0, 9.0, 2.0]
    rows_ = []
    for i in range(4):
        label = f"net{i}"
        rows_ += [row(label, "full", "e1-nall-r32", seed, top1=str(full[i])) for seed in ("0", "1")]
        rows_ += [
            row(label, "proxy", "e1-n4-r32", "0", top1=str(proxy[i]), train_s="10"),
            row(label, "score", "grad_norm", "0", value_out=str(score[i])),
            row(label, "epf", "epf", "", value_out=str(i + 1.0), unit="mJ/frame@16 (estimate)"),
        ]
    pivot = Pivot(rows_, "e1-nall-r32")
    labels = pivot.judged
    prerank_table(pivot, labels, [pivot.epf[label] for label in labels], "e1-n4-r32", ["grad_norm"])
    out = capsys.readouterr().out
    assert "| none (train all) | all | 4 of 4 | 1.00 | 3 of 3 | 3 | 100 % |" in out
    assert "| grad_norm | 1 | 2 of 4 | 0.50 | 1 of 3 | 2 | 33 % |" in out  # layer 0 of (EPF, score): net0, net2
    assert "| grad_norm | 2 | 4 of 4 | 1.00 | 3 of 3 | 3 | 100 % |" in out  # until every front member is kept
