"""What the search itself cost: the break-even arithmetic, a study's bill read back and shown by
`front`, `studies` and `export`, and a real tiny search whose meter reads known joules.

The fake stands where the hardware would: an energy backend whose every window reads 5 J. Everything
above it (the profiler, the trainer, the ledger, the study, the commands) is the real code.
"""

from __future__ import annotations

import dataclasses
import json
import math
import threading

import optuna
import pytest
from optuna.trial import TrialState, create_trial
from test_search_run import tiny_config

import e2gcsearch.energy
from e2gcsearch import ArchConfig
from e2gcsearch.cli import main
from e2gcsearch.energy import EstimateMeter, Ledger, Meter, MeterError, MeterSpec, Spent
from e2gcsearch.energy import spend as spend_module
from e2gcsearch.energy.estimate import cpu_tdp_model_w
from e2gcsearch.report.search_cost import NEVER, SearchCost, break_even_frames, frames_text
from e2gcsearch.search.run import run_search
from e2gcsearch.store import record
from e2gcsearch.store.record import user_attrs
from e2gcsearch.store.results import front_info
from e2gcsearch.store.spending import study_search_cost, with_break_even
from e2gcsearch.store.storage import get_storage, studies_frame

pytestmark = pytest.mark.filterwarnings("ignore::optuna.exceptions.ExperimentalWarning")

OBJECTIVES = [
    {"name": "epf@16", "metric": "epf", "batch_size": 16, "direction": "minimize", "unit": "mJ/frame"},
    {"name": "top1", "metric": "top1", "batch_size": None, "direction": "maximize", "unit": "%"},
]

# --- the arithmetic --------------------------------------------------------------------------------


def test_break_even_is_search_energy_over_the_saving_per_frame():
    # 41.2 kJ paid back at 2 mJ saved per frame: 20.6 million frames
    assert break_even_frames(41_200.0, reference_epf_mj=12.0, point_epf_mj=10.0) == pytest.approx(20.6e6)
    assert break_even_frames(4_500.0, 13.0, 12.0) == pytest.approx(4.5e6)
    assert break_even_frames(0.0, 13.0, 12.0) == 0.0  # nothing spent: paid back at once


def test_a_point_that_costs_as_much_or_more_never_pays_back():
    assert break_even_frames(41_200.0, reference_epf_mj=10.0, point_epf_mj=12.0) is None
    assert break_even_frames(41_200.0, reference_epf_mj=10.0, point_epf_mj=10.0) is None
    assert frames_text(NEVER) == "never" and frames_text(None) == "-" and frames_text(2.25e6) == "2.25 M"


@pytest.mark.parametrize("bad", [(-1.0, 12.0, 10.0), (math.nan, 12.0, 10.0), (1.0, math.inf, 10.0)])
def test_break_even_refuses_what_is_not_a_figure(bad):
    with pytest.raises(ValueError, match="break-even needs"):
        break_even_frames(*bad)


def phase(kind, energy_j, time_s=10.0, backend="estimate", **extra):
    return Spent(kind, energy_j, time_s, backend, backend == "estimate", backend, **extra)


def test_the_total_says_what_it_counts_and_where_the_joules_come_from():
    phases = [phase("training", 2_000.0, 20.0)] * 16 + [phase("measurement", 160.0, 3.0)] * 57
    cost = SearchCost.of(phases)
    assert cost.energy_j == pytest.approx(41_120.0) and cost.is_estimate
    assert cost.line() == "search used 41.1 kJ (estimate) over 16 trainings and 57 measurements, 8 min"
    measured = SearchCost.of([phase("training", 900.0, backend="rapl"), phase("measurement", 100.0, backend="rapl")])
    assert measured.line() == "search used 1 kJ (rapl) over 1 training and 1 measurement, 20 s"
    mixed = SearchCost.of([phase("training", 900.0, backend="rapl"), phase("calibration", 100.0)])
    assert "(rapl, partly estimate)" in mixed.line() and mixed.is_estimate


def test_what_the_total_leaves_out_is_said_not_shown_as_zero():
    cached = SearchCost.of([phase("measurement", 0.5, 0.01, cached=True), phase("training", 100.0)])
    assert "1 of the measurements came from the measurement cache and cost only the look-up" in cached.line()
    failed = SearchCost.of([phase("training", None, 30.0, error="counter stopped"), phase("training", 50.0)])
    assert failed.energy_j == 50.0 and failed.time_s == 40.0 and failed.unmetered == 1
    assert "1 phase could not be metered" in failed.line()
    old = SearchCost.of([], unrecorded=5)
    assert not old.recorded and old.line().startswith("search energy: not recorded")
    assert old.to_dict()["energy_j"] is None  # never a 0 J presented as a fact


# --- the ledger, on a counter of known joules ----------------------------------------------------


class Counter(Meter):
    """A hardware-like energy counter that the test advances by known joules."""

    name = "rapl"
    measures_idle = False

    def __init__(self) -> None:
        super().__init__()
        self.joules, self.broken = 0.0, False

    def _begin(self):
        return self.joules

    def _end(self, state, start_s, end_s):
        if self.broken:
            raise MeterError("the fake counter stopped")
        return self.joules - state


class CounterSpec(MeterSpec):
    def __init__(self, counter):
        super().__init__("rapl")
        object.__setattr__(self, "counter", counter)

    def meter(self, device, threads=None):
        return self.counter


def test_a_phase_read_in_chunks_sums_to_the_joules_spent():
    counter, written = Counter(), []
    ledger = Ledger(CounterSpec(counter), written.append, chunk_s=0.01)
    with ledger.phase("training", "cpu"):
        for _ in range(5):  # the counter moves while the background thread closes and opens chunks
            counter.joules += 7.0
            threading.Event().wait(0.02)
    spent = Spent.from_dict(ledger.phases[0])
    assert spent.energy_j == pytest.approx(35.0) and spent.backend == "rapl" and not spent.is_estimate
    assert written[-1] == ledger.phases


def test_a_phase_cut_short_is_written_down_and_a_failed_meter_is_no_zero():
    counter, written = Counter(), []
    ledger = Ledger(CounterSpec(counter), written.append)
    with pytest.raises(KeyboardInterrupt), ledger.phase("measurement", "cpu"):
        counter.joules += 3.0
        raise KeyboardInterrupt
    assert Spent.from_dict(written[-1][0]).energy_j == pytest.approx(3.0)
    counter.broken = True
    with ledger.phase("training", "cpu"):
        counter.joules += 3.0
    broken = Spent.from_dict(ledger.phases[1])
    assert broken.energy_j is None and "stopped" in broken.error and broken.time_s > 0


def test_the_estimate_counts_the_threads_of_the_work_it_meters():
    assert EstimateMeter(threads=1, environ={}).power_w == cpu_tdp_model_w(1)
    assert EstimateMeter(threads=2, environ={}, power_w=20.0).power_w == 20.0  # the user's power wins


# --- a study's bill, shown by front, studies and export --------------------------------------------


def mobilenet(group_size):
    return ArchConfig("mobilenet_v1", group_size=group_size, width=0.25, num_classes=10)


def made_study(url, name="s", backend="estimate", spent=True, infer=True):
    """Four front points (EPF-infer@1 12, 10, 13, 12 mJ/frame; trial 0 the paper baseline), each with a
    100 J measurement and a 900 J training, a 500 J calibration on the study, and a repeat."""
    study = optuna.create_study(directions=["minimize", "maximize"], storage=url, study_name=name)
    study.set_metric_names(["epf@16", "top1"])
    study.set_user_attr("objectives", OBJECTIVES)
    bill = [phase("measurement", 100.0, 5.0, backend).to_dict(), phase("training", 900.0, 25.0, backend).to_dict()]
    estimate = backend == "estimate"
    for number, (group_size, epf, infer_mj, top1) in enumerate(
        [(1, 5.0, 12.0, 90.0), (8, 4.0, 10.0, 85.0), (2, 3.0, 13.0, 80.0), (4, 2.0, 12.0, 75.0)]
    ):
        attrs = user_attrs(
            arch_config=mobilenet(group_size),
            params=1000,
            macs=10_000,
            resolution=32,
            epf={16: {"epf_mj": epf, "status": "ok"}},
            energy_backend=backend,
            energy_is_estimate=estimate,
            top1=top1,
            **({"epf_infer": {1: {"epf_mj": infer_mj, "status": "ok"}}} if infer else {}),
            **({"spent": bill} if spent else {}),
            **({"baseline": "mobilenet_v1 G=1 (paper baseline)"} if number == 0 else {}),
        )
        study.add_trial(create_trial(values=[epf, top1], user_attrs=attrs))
    repeat = dict(study.trials[1].user_attrs, duplicate_of=1)  # as older versions stored it: the twin's bill
    study.add_trial(create_trial(values=study.trials[1].values, user_attrs=repeat))
    if spent:
        study.set_user_attr(
            record.spent_key("calibration", "r1"), [phase("calibration", 500.0, 60.0, backend).to_dict()]
        )
    return study


@pytest.fixture
def url(tmp_path):
    url = f"sqlite:///{tmp_path / 'cost.db'}"
    get_storage(url, create=True)
    return url


def test_the_front_shows_break_even_against_the_paper_baseline(url, capsys):
    study = made_study(url)
    front = with_break_even(study, front_info(study))
    cost = front.break_even.cost
    assert cost.energy_j == pytest.approx(4_500.0)  # 4 x (100 + 900) + 500; the repeat adds nothing
    assert dict(cost.counts) == {"training": 4, "measurement": 4, "calibration": 1}
    shown = dict(zip(front.frame["trial"], front.frame["break_even_frames"]))
    assert shown[0] == "reference" and shown[1] == pytest.approx(4_500.0 / 0.002)
    assert shown[2] == NEVER and shown[3] == NEVER  # costs more; costs the same
    assert main(["front", "--storage", url, "--study", "s"]) == 0
    out, err = capsys.readouterr()
    assert "break-even (frames, estimate)" in out and "2.25 M" in out and "never" in out
    assert "note: search used 4.5 kJ (estimate) over 4 trainings, 4 measurements and 1 calibration, 3 min" in err
    assert "frames of inference (EPF-infer@1)" in err and "paper baseline" in err


def test_another_reference_and_an_unknown_one(url, capsys):
    made_study(url)
    assert main(["front", "--storage", url, "--study", "s", "--reference", "2", "--format", "json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["search_cost"]["energy_j"] == pytest.approx(4_500.0) and data["search_cost"]["is_estimate"] is True
    assert data["break_even"]["reference_trial"] == 2 and data["break_even"]["epf_infer_batch_size"] == 1
    frames = {row["trial"]: row["break_even_frames"] for row in data["rows"]}
    assert frames[0] == pytest.approx(4.5e6) and frames[1] == pytest.approx(1.5e6) and frames[2] == "reference"
    assert main(["front", "--storage", url, "--study", "s", "--reference", "99"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "has no trial 99" in err and "front --all" in err
    with pytest.raises(SystemExit) as parsed:
        main(["front", "--storage", url, "--study", "s", "--reference", "x"])
    assert parsed.value.code == 2 and "expected a trial number" in capsys.readouterr().err


def test_measured_joules_are_not_called_an_estimate(url, capsys):
    made_study(url, backend="rapl")
    assert main(["front", "--storage", url, "--study", "s"]) == 0
    out, err = capsys.readouterr()
    assert "break-even (frames)" in out and "estimate" not in out.split("\n")[0].split("break-even")[1]
    assert "search used 4.5 kJ (rapl)" in err


def test_studies_carry_the_total_and_old_studies_say_not_recorded(url, capsys):
    made_study(url)
    made_study(url, name="old", spent=False)
    frame = studies_frame(url).set_index("study")
    assert (
        frame.loc["s", "search_energy_j"] == pytest.approx(4_500.0)
        and frame.loc["s", "search_energy_source"] == "estimate"
    )
    assert frame.loc["old", "search_energy_j"] is None or math.isnan(frame.loc["old", "search_energy_j"])
    assert main(["studies", "--storage", url]) == 0
    out = capsys.readouterr().out
    assert "4.5 kJ" in out and "not recorded" in out
    assert main(["front", "--storage", url, "--study", "old", "--format", "json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["search_cost"]["recorded"] is False and data["search_cost"]["energy_j"] is None
    assert {row["break_even_frames"] for row in data["rows"]} == {None}
    assert main(["front", "--storage", url, "--study", "old"]) == 0
    assert "search energy: not recorded (the study's 4 trials ran before" in capsys.readouterr().err


def test_a_study_without_inference_epf_says_how_to_get_break_even(url, capsys):
    made_study(url, infer=False)
    assert main(["front", "--storage", url, "--study", "s"]) == 0
    out, err = capsys.readouterr()
    assert "break-even needs inference EPF" in err and "break-even" not in out  # no column of dashes


def test_export_names_the_break_even_in_the_builders_docstring(url, tmp_path):
    made_study(url)
    text = {}
    for number in (1, 2):
        out = tmp_path / f"trial{number}.py"
        assert main(["export", "--storage", url, "--study", "s", "--trial", str(number), "--out", str(out)]) == 0
        text[number] = " ".join(out.read_text().split())
    assert "The search used 4.5 kJ (estimate)" in text[1]
    assert (
        "instead of trial 0 (the paper baseline) saves energy at inference (EPF-infer@1): after 2.25 M frames"
        in text[1]
    )
    assert "never pays that energy back" in text[2]


# --- a real tiny search on a meter of known joules -------------------------------------------------


class KnownJoules(Meter):
    """An ``estimate`` backend whose every window reads exactly 5 J."""

    name = "estimate"
    is_estimate = True
    measures_idle = False
    OPTIONS = frozenset({"power_w", "environ", "synchronize", "threads"})
    JOULES = 5.0

    def __init__(self, device="cpu", synchronize=None, **ignored):
        super().__init__(synchronize=synchronize)

    @property
    def label(self):
        return "estimate (5 J a window)"

    def _end(self, state, start_s, end_s):
        return self.JOULES


@pytest.fixture
def known_joules(monkeypatch):
    monkeypatch.setitem(e2gcsearch.energy._CLASSES, "estimate", KnownJoules)
    monkeypatch.setattr(spend_module, "CHUNK_S", 1e6)  # one window per phase, so each phase reads 5 J


@pytest.mark.slow
def test_a_search_records_every_training_and_measurement(tmp_path, known_joules, capsys):
    config = tiny_config(tmp_path, trials=3, sampler="random")
    settings = dataclasses.replace(config.settings, constraints=(*config.settings.constraints, _infer_constraint()))
    study = run_search(dataclasses.replace(config, settings=settings))
    measured = [t for t in study.trials if record.DUPLICATE_OF not in t.user_attrs]
    for trial in measured:
        kinds = [p["kind"] for p in trial.user_attrs[record.SPENT]]
        assert kinds == ["measurement", "measurement", "training"]  # train mode, infer mode, proxy training
        assert all(
            p["energy_j"] == 5.0 and p["is_estimate"] and p["backend"] == "estimate"
            for p in trial.user_attrs[record.SPENT]
        )
    assert all(record.SPENT not in t.user_attrs for t in study.trials if record.DUPLICATE_OF in t.user_attrs)
    cost = study_search_cost(study)
    assert dict(cost.counts) == {"training": len(measured), "measurement": 2 * len(measured)}
    assert cost.energy_j == pytest.approx(5.0 * 3 * len(measured)) and cost.is_estimate
    assert cost.line().startswith(f"search used {cost.energy_j:.3g} J (estimate) over {len(measured)} trainings")
    front = with_break_even(study, front_info(study))
    records = {t.number: record.TrialRecord.from_trial(t) for t in measured}
    baseline = next(n for n, r in records.items() if r.baseline)
    for number, frames in zip(front.frame["trial"], front.frame["break_even_frames"]):
        if number == baseline:
            assert frames == "reference"
            continue
        reference_mj, point_mj = (records[n].epf_infer[2]["epf_mj"] for n in (baseline, number))
        expected = break_even_frames(cost.energy_j, reference_mj, point_mj)
        assert frames == (NEVER if expected is None else pytest.approx(expected))
    # a second study on the same measurement cache measures nothing anew, and says so
    again = run_search(dataclasses.replace(config, settings=settings, study_name="again", trials=1))
    first = again.trials[0].user_attrs[record.SPENT]
    assert first[0]["kind"] == "measurement" and first[0]["cached"] is True
    assert "came from the measurement cache" in study_search_cost(again).line()


def _infer_constraint():
    from e2gcsearch.search.objectives import parse_constraint

    return parse_constraint("epf_infer@2<=1e9", 4)  # always kept: it makes every trial measure inference


@pytest.mark.slow
def test_the_calibration_and_a_validation_are_on_the_bill(tmp_path, known_joules):
    from e2gcsearch.search.run import prepare
    from e2gcsearch.validate import ValidateSettings, validate_trials

    study, _ = prepare(tiny_config(tmp_path, warm_start="model"))
    calibrations = [key for key in study.user_attrs if key.startswith("spent:calibration:")]
    assert len(calibrations) == 1
    assert [p["kind"] for p in study.user_attrs[calibrations[0]]] == ["calibration"]
    assert study.user_attrs[calibrations[0]][0]["energy_j"] == 5.0
    done = run_search(tiny_config(tmp_path, warm_start="model", trials=1))
    chosen = [t for t in done.trials if t.state == TrialState.COMPLETE][:1]
    profile = dataclasses.replace(tiny_config(tmp_path).settings.profile, use_cache=False)
    settings = ValidateSettings(epochs=1, train={"batch_size": 8, "device": "cpu"}, profile=profile)
    validate_trials(done, chosen, settings, tmp_path / "ckpt", say=lambda _: None)
    cost = study_search_cost(optuna.load_study(study_name="tiny", storage=done._storage))
    assert cost.counts["full training"] == 1 and cost.counts["full measurement"] == 1
    assert cost.counts["calibration"] == 1
