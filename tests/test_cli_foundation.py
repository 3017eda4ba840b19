"""`e2gcsearch table` and `e2gcsearch cost` as a user runs them, including bad input."""

from __future__ import annotations

import csv
import io
import json
import subprocess
import sys

import pytest

from e2gcsearch.cli import main


def run_cli(capsys, *argv):
    try:
        code = main(list(argv))
    except SystemExit as exc:  # argparse errors and --help
        code = exc.code
    out, err = capsys.readouterr()
    return code, out, err


def test_table_csv_has_the_22_paper_rows(capsys):
    code, out, _ = run_cli(capsys, "table", "--format", "csv")
    assert code == 0
    rows = list(csv.reader(io.StringIO(out)))
    assert rows[0][:5] == ["arch", "module", "value", "params", "macs"]
    assert len(rows) == 23
    first = dict(zip(rows[0], rows[1]))
    assert (first["arch"], first["module"], first["value"]) == ("mobilenet_v1", "E2GC", "1")
    assert (int(first["params"]), int(first["macs"])) == (4210088, 568740352)


def test_table_human_and_markdown(capsys):
    code, out, _ = run_cli(capsys, "table")
    assert code == 0 and "568.74 M" in out and "24.96 M" in out and "4.23 G" in out
    code, out, _ = run_cli(capsys, "table", "--format", "markdown")
    assert code == 0 and out.startswith("| arch | module |") and out.count("\n") == 24 and "|---|---|---:|---:|" in out


def test_cost_json_per_layer(capsys):
    code, out, _ = run_cli(
        capsys,
        "cost",
        "mobilenet_v1",
        "-G",
        "8",
        "--width",
        "0.5",
        "--resolution",
        "64",
        "--classes",
        "10",
        "--per-layer",
        "--format",
        "json",
    )
    assert code == 0
    doc = json.loads(out)
    assert doc["summary"]["macs"] == sum(layer["macs"] for layer in doc["layers"])
    assert doc["config"] == {"arch": "mobilenet_v1", "group_size": 8, "groups": None, "width": 0.5, "num_classes": 10}
    assert {"name", "kind", "groups", "group_size", "out_h", "ai"} <= set(doc["layers"][0])


@pytest.mark.parametrize(
    "argv, fragment",
    [
        (["cost", "vgg16", "-G", "1"], "unknown architecture 'vgg16'"),
        (["cost", "mobilenet_v1"], "no grouping for mobilenet_v1: give one of --group-size G (E2GC"),
        (["cost", "mobilenet_v1", "-G", "2", "-g", "2"], "both --group-size and --groups for mobilenet_v1"),
        (["cost", "regnet_y_400mf"], "its stock network is --group-size 8"),  # the stock network is a grouping too
        (["profile", "resnext50"], "or --groups g (FgGC); its stock network is --groups 32"),
        (["train", "regnet_y_400mf", "--epochs", "1"], "no grouping for regnet_y_400mf"),
        (["cost", "mobilenet_v1", "-G", "3"], "does not divide the 32 channels"),
        (["cost", "resnext50", "-g", "48"], "does not divide the 128 channels"),
        (["cost", "mobilenet_v1", "-G", "1", "--width", "0"], "width must be a number > 0"),
        (["cost", "mobilenet_v1", "-G", "1", "--width", "-1"], "width must be a number > 0"),
        (["cost", "mobilenet_v1", "-G", "1", "--resolution", "16"], "too small"),
        (["cost", "mobilenet_v1", "-G", "x"], "expected a positive integer"),
        (["table", "--format", "xml"], "invalid choice"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(capsys, argv, fragment):
    code, _, err = run_cli(capsys, *argv)
    assert code == 2
    assert fragment in err
    assert err.count("\n") == 1 and "Traceback" not in err


def test_console_script_end_to_end():
    done = subprocess.run(
        [sys.executable, "-m", "e2gcsearch", "cost", "mobilenet_v1", "-G", "3"], capture_output=True, text=True
    )
    assert done.returncode == 2
    assert done.stderr.startswith("e2gcsearch cost: error: group size G=3 does not divide")
    helped = subprocess.run([sys.executable, "-m", "e2gcsearch", "table", "--help"], capture_output=True, text=True)
    assert helped.returncode == 0 and "examples:" in helped.stdout
