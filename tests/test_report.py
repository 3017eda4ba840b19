"""The front as data (dominance, ties, infeasible and unfinished trials), its hypervolume, the plots
drawn from it, and the `front` / `studies` commands."""

from __future__ import annotations

import ast
import io
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import optuna
import pandas as pd
import pytest
from optuna.trial import TrialState, create_trial

from e2gcsearch import ArchConfig
from e2gcsearch.cli import main
from e2gcsearch.errors import ConfigError, DataError, UnknownNameError
from e2gcsearch.report import hypervolume, non_dominated, render_front
from e2gcsearch.report.plots import save_front_plot, save_hypervolume_plot
from e2gcsearch.store.record import user_attrs
from e2gcsearch.store.results import front_info, hypervolume_history
from e2gcsearch.store.storage import open_study, studies_frame

REPO = Path(__file__).resolve().parents[1]
OBJECTIVES = [
    {"name": "epf@16", "metric": "epf", "batch_size": 16, "direction": "minimize", "unit": "mJ/frame"},
    {"name": "top1", "metric": "top1", "batch_size": None, "direction": "maximize", "unit": "%"},
]

pytestmark = pytest.mark.filterwarnings("ignore::optuna.exceptions.ExperimentalWarning")


def new_study(url: str, name: str = "s") -> optuna.Study:
    study = optuna.create_study(directions=["minimize", "maximize"], storage=url, study_name=name)
    study.set_metric_names(["epf@16", "top1"])
    study.set_user_attr("objectives", OBJECTIVES)
    return study


def add(
    study: optuna.Study, arch: ArchConfig, epf_mj: float, top1: float, params_limit: float | None = None, **extra
) -> None:
    """A COMPLETE trial with the attrs `run` stores; ``params_limit`` adds an Optuna constraint."""
    params = 1000 * (arch.grouping_value if isinstance(arch.grouping_value, int) else 1)
    attrs = user_attrs(
        arch_config=arch,
        params=params,
        macs=10 * params,
        resolution=32,
        epf={1: {"epf_mj": 4 * epf_mj, "status": "ok"}, 16: {"epf_mj": epf_mj, "status": "ok"}},
        energy_backend="estimate",
        energy_is_estimate=True,
        top1=top1,
        **extra,
    )
    constraints = {"params<=limit": params - params_limit} if params_limit is not None else None
    study.add_trial(create_trial(values=[epf_mj, top1], user_attrs=attrs, constraints=constraints))


def mobilenet(group_size: int | None = None, groups: int | None = None) -> ArchConfig:
    return ArchConfig("mobilenet_v1", group_size=group_size, groups=groups, width=0.25, num_classes=10)


@pytest.fixture(scope="module")
def url(tmp_path_factory) -> str:
    """A storage with study "s" of known objective values: trials 0-2 on the front (1 and 2 tie),
    3 and 7 dominated, 4 and 8 infeasible although they would dominate everything, 5 failed, 6
    still running. Tests only read it."""
    url = f"sqlite:///{tmp_path_factory.mktemp('report') / 'studies.db'}"
    study = new_study(url)
    add(study, mobilenet(group_size=1), 1.0, 50.0, params_limit=5000)  # 0 front (baseline G=1)
    add(study, mobilenet(group_size=4), 2.0, 60.0, params_limit=5000)  # 1 front
    add(study, mobilenet(groups=4), 2.0, 60.0, params_limit=5000)  # 2 front: ties with 1
    add(study, mobilenet(groups=2), 3.0, 55.0, params_limit=5000)  # 3 dominated by 1
    add(study, mobilenet(group_size=8), 0.5, 70.0, params_limit=5000)  # 4 infeasible (8000 > 5000)
    study.add_trial(create_trial(state=TrialState.FAIL, user_attrs=user_attrs(arch_config=mobilenet(group_size=3))))
    study.ask()  # 6 running
    add(study, mobilenet(groups=8), 1.5, 50.0, params_limit=10000)  # 7 dominated by 0
    add(study, mobilenet(group_size=2), 0.1, 99.0, infeasible=True, violations=["top1>=100 (got 99)"])  # 8
    return url


@pytest.fixture
def study(url) -> optuna.Study:
    return open_study(url, "s")


def test_front_rows_are_exactly_the_feasible_non_dominated_trials(study):
    front = front_info(study)
    frame = front.frame
    expected = pd.DataFrame(
        {
            "trial": [0, 1, 2],
            "module": ["E2GC", "E2GC", "FgGC"],
            "value": [1, 4, 4],
            "grouping": ["G=1", "G=4", "g=4"],
            "width": [0.25] * 3,
            "epf@16": [1.0, 2.0, 2.0],
            "top1": [50.0, 60.0, 60.0],
            "params": [1000, 4000, 4000],
            "epf_mj@1": [4.0, 8.0, 8.0],
            "backend": ["estimate"] * 3,
            "feasible": [True] * 3,
            "dominated": [False] * 3,
        }
    )
    pd.testing.assert_frame_equal(frame[expected.columns].reset_index(drop=True), expected, check_dtype=False)
    assert frame["baseline"].fillna("-").tolist() == ["MobileNet-V1 G=1", "-", "-"]
    assert front.backend == "estimate" and front.completed == 7 and front.feasible == 5


def test_all_lists_front_then_dominated_then_infeasible_and_never_unfinished_trials(study):
    frame = front_info(study, include_dominated=True).frame
    assert frame["trial"].tolist() == [0, 1, 2, 7, 3, 8, 4]
    assert frame["dominated"].tolist() == [False] * 3 + [True] * 4
    assert frame["feasible"].tolist() == [True] * 5 + [False] * 2
    assert frame.loc[frame["trial"] == 8, "violations"].item() == "top1>=100 (got 99)"


def test_non_dominated_keeps_ties_and_handles_three_objectives():
    losses = np.array([[1, 1, 1], [1, 1, 1], [0, 2, 2], [2, 2, 2], [1, 1, 0]], dtype=float)
    assert non_dominated(losses).tolist() == [False, False, True, False, True]
    assert non_dominated(losses[:2]).tolist() == [True, True]


def test_hypervolume_matches_hand_computed_volumes():
    assert hypervolume(np.array([[0.0, 1.0], [1.0, 0.0]]), np.array([2.0, 2.0])) == pytest.approx(3.0)
    points = np.array([[0.0, 0.0, 0.5], [0.5, 0.5, 0.0]])
    assert hypervolume(points, np.ones(3)) == pytest.approx(0.5 + 0.25 - 0.125)
    assert hypervolume(np.array([[3.0, 0.0]]), np.array([2.0, 2.0])) == 0.0  # beyond the reference


def test_hypervolume_history_grows_with_feasible_trials_only(study):
    result = hypervolume_history(study)
    history = result.frame
    assert history["trial"].tolist() == [0, 1, 2, 3, 4, 7, 8]
    values = history["hypervolume"].to_numpy()
    assert np.all(np.diff(values) >= 0) and 0 < values[-1] <= 1
    assert history["improved"].tolist() == [True, True, False, False, False, False, False]
    assert result.reference["epf@16"] == pytest.approx(3.0 + 0.1 * 2.0)
    assert result.reference["top1"] == pytest.approx(50.0 - 0.1 * 10.0)


def test_render_front_names_units_and_backend(study):
    table = render_front(front_info(study, include_dominated=True), "table")
    for header in ("EPF@16 (mJ/frame, estimate)", "top-1 (%, proxy)", "EPF@1 (mJ/frame, estimate)"):
        assert header in table
    assert "violates top1>=100 (got 99)" in table and "infeasible" in table and "dominated" in table
    assert "paper baseline" in table
    csv = pd.read_csv(io.StringIO(render_front(front_info(study), "csv")))
    assert csv["trial"].tolist() == [0, 1, 2] and csv["epf@16"].tolist() == [1.0, 2.0, 2.0]
    document = json.loads(render_front(front_info(study), "json"))
    assert document["backend"] == "estimate" and document["objectives"][0]["unit"] == "mJ/frame"
    assert [row["trial"] for row in document["rows"]] == [0, 1, 2]


def test_plots_are_drawn_from_the_computed_results(study, tmp_path):
    front_png = save_front_plot(front_info(study, include_dominated=True), tmp_path / "front.png")
    hv_png = save_hypervolume_plot(hypervolume_history(study), tmp_path / "hv.png")
    for path in (front_png, hv_png):
        assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and path.stat().st_size > 10_000
    # The plotting modules draw frames only: none opens a study or imports optuna.
    for module in ("plots.py", "plots_html.py", "plot_style.py"):
        tree = ast.parse((REPO / "e2gcsearch" / "report" / module).read_text())
        imported = {alias.name for node in ast.walk(tree) if isinstance(node, ast.Import) for alias in node.names}
        imported |= {node.module or "" for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)}
        assert not any("optuna" in name or "search" in name for name in imported), module


def test_plot_errors_are_one_line_fixes(study, tmp_path, monkeypatch):
    front = front_info(study, include_dominated=True)
    with pytest.raises(ConfigError, match="ending in"):
        save_front_plot(front, tmp_path / "front.txt")
    with pytest.raises(DataError, match="does not exist"):
        save_front_plot(front, tmp_path / "missing" / "front.png")
    monkeypatch.setitem(sys.modules, "plotly", None)
    monkeypatch.setitem(sys.modules, "plotly.graph_objects", None)
    with pytest.raises(ConfigError, match="pip install plotly"):
        save_front_plot(front, tmp_path / "front.html")


def test_html_plot_with_plotly(study, tmp_path):
    pytest.importorskip("plotly")
    path = save_front_plot(front_info(study, include_dominated=True), tmp_path / "front.html")
    assert "plotly" in path.read_text()[:100_000].lower()


def test_front_command_table_csv_and_plots(url, tmp_path, capsys):
    assert (
        main(
            [
                "front",
                "--storage",
                url,
                "--study",
                "s",
                "--plot",
                str(tmp_path / "f.png"),
                "--plot-hv",
                str(tmp_path / "h.png"),
            ]
        )
        == 0
    )
    out = capsys.readouterr()
    assert "EPF@16 (mJ/frame, estimate)" in out.out and "front plot written" in out.err
    assert (tmp_path / "f.png").stat().st_size > 0 and (tmp_path / "h.png").stat().st_size > 0
    assert main(["front", "--storage", url, "--study", "s", "--all", "--format", "csv"]) == 0
    rows = pd.read_csv(io.StringIO(capsys.readouterr().out))
    assert rows["trial"].tolist() == [0, 1, 2, 7, 3, 8, 4]


def test_front_bad_input_exits_2_with_the_fix(url, tmp_path, capsys):
    assert main(["front", "--storage", url, "--study", "nope"]) == 2
    err = capsys.readouterr().err
    assert "existing studies: s " in err and err.count("\n") == 1
    other = f"sqlite:///{tmp_path / 'other.db'}"
    new_study(other, "empty")
    assert main(["front", "--storage", other, "--study", "empty"]) == 2
    assert "no completed trial yet" in capsys.readouterr().err
    assert main(["front", "--storage", f"sqlite:///{tmp_path / 'none.db'}"]) == 2
    assert "run 'e2gcsearch run' first" in capsys.readouterr().err
    assert not (tmp_path / "none.db").exists()
    assert main(["front", "--storage", url, "--study", "s", "--plot", str(tmp_path / "no" / "f.png")]) == 2
    assert "does not exist" in capsys.readouterr().err


def test_front_on_an_all_infeasible_study_points_to_all(tmp_path, capsys):
    url = f"sqlite:///{tmp_path / 'x.db'}"
    add(new_study(url), mobilenet(group_size=8), 1.0, 50.0, params_limit=10)
    assert main(["front", "--storage", url, "--study", "s"]) == 2
    assert "front --all" in capsys.readouterr().err
    assert main(["front", "--storage", url, "--study", "s", "--all"]) == 0


def test_a_study_not_made_by_run_is_named_as_such(tmp_path, capsys):
    url = f"sqlite:///{tmp_path / 'foreign.db'}"
    optuna.create_study(storage=url, study_name="other").add_trial(create_trial(value=1.0))
    assert main(["front", "--storage", url, "--study", "other"]) == 2
    assert "not made by 'e2gcsearch run'" in capsys.readouterr().err


def test_studies_command_and_journal_storage(tmp_path, capsys):
    journal = str(tmp_path / "search.log")
    from e2gcsearch.store.storage import get_storage

    study = new_study(get_storage(journal, create=True), "journal-study")
    add(study, mobilenet(group_size=2), 1.0, 40.0)
    study.add_trial(create_trial(state=TrialState.FAIL, user_attrs=user_attrs(arch_config=mobilenet(group_size=3))))
    frame = studies_frame(journal)
    assert frame[["study", "trials", "complete", "failed"]].values.tolist() == [["journal-study", 2, 1, 1]]
    assert frame["objectives"].item() == "epf@16 (min), top1 (max)"
    assert open_study(journal, "journal-study").study_name == "journal-study"
    assert main(["studies", "--storage", journal]) == 0
    assert "journal-study" in capsys.readouterr().out
    assert main(["front", "--storage", journal, "--study", "journal-study", "--format", "markdown"]) == 0
    assert "| trial |" in capsys.readouterr().out


def test_studies_counts_queued_points_apart_from_running_trials(tmp_path, capsys):
    url = f"sqlite:///{tmp_path / 'q.db'}"
    study = new_study(url, "queued")
    add(study, mobilenet(group_size=2), 1.0, 40.0)
    for group_size in (4, 8):  # two points queued (as run queues its baselines), not started yet
        study.enqueue_trial({}, user_attrs=user_attrs(arch_config=mobilenet(group_size=group_size)))
    study.ask()  # a worker took the first queued point: it runs, one point still waits
    frame = studies_frame(url)
    assert frame[["trials", "complete", "running", "waiting"]].values.tolist() == [[3, 1, 1, 1]]
    assert main(["studies", "--storage", url, "--format", "csv"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0].startswith("study,objectives,trials,complete,running,waiting,failed")
    assert out[1].startswith('queued,"epf@16 (min), top1 (max)",3,1,1,1,0')


def test_studies_on_an_empty_storage_says_so(tmp_path, capsys):
    from e2gcsearch.store.storage import get_storage

    get_storage(f"sqlite:///{tmp_path / 'e.db'}", create=True)
    assert main(["studies", "--storage", f"sqlite:///{tmp_path / 'e.db'}"]) == 0
    captured = capsys.readouterr()
    assert "DataFrame" not in captured.out + captured.err and "holds no study yet" in captured.err


def test_open_study_errors_do_not_leak_passwords():
    with pytest.raises(ConfigError) as info:
        open_study("postgresql://alice:s3cret@127.0.0.1:1/optuna", "x")
    assert "s3cret" not in str(info.value) and "alice:***@" in str(info.value)
    with pytest.raises(ConfigError, match="sqlite:///studies.db"):
        open_study("studies.db", "x")
    with pytest.raises(UnknownNameError):
        open_study(optuna.storages.InMemoryStorage(), "x")


def test_front_subprocess(url):
    result = subprocess.run(
        [sys.executable, "-m", "e2gcsearch", "front", "--storage", url, "--study", "s", "--format", "json"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    assert [row["trial"] for row in json.loads(result.stdout)["rows"]] == [0, 1, 2]


@pytest.mark.parametrize("names", [("params", "macs"), ("macs",), ("top1", "params")])
def test_counts_as_objectives_print_once_formatted(names):
    """A count that is itself an objective is shown once, as a count (it used to be formatted twice)."""
    from e2gcsearch.metrics import Metric
    from e2gcsearch.report.front import front_info_from_rows

    objectives = [Metric.of(name) for name in names]
    rows = [
        {
            "trial": n,
            "arch": "mobilenet_v1",
            "module": "E2GC",
            "value": 1,
            "grouping": "G=1",
            "width": 0.25,
            "params": 210170 * (n + 1),
            "macs": 3331072 * (2 - n),
            "top1": 40.0 + 10 * n,
            "backend": None,
            "resolution": 64,
            "feasible": True,
            "violations": None,
            "baseline": None,
        }
        for n in range(2)
    ]
    front = front_info_from_rows(rows, objectives, "s", {"COMPLETE": 2})
    table = render_front(front, "table")
    from e2gcsearch.report.tables import human_count

    for name in ("params", "macs"):
        assert all(human_count(value) in table for value in front.frame[name])


def test_an_empty_plot_name_is_refused(url, capsys):
    assert main(["front", "--storage", url, "--study", "s", "--plot", ""]) == 2
    assert "cannot draw '': give a file ending in .png" in capsys.readouterr().err
