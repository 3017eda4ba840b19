"""Noise probes after a search: a few points trained again with another seed and measured again in a
sitting of their own, so the front's intervals hold the study's seed noise and EPF sitting scatter."""

from __future__ import annotations

import numpy as np
import optuna
import pytest
from optuna.trial import create_trial
from test_uncertainty import planted_attrs

from e2gcsearch.config import ArchConfig
from e2gcsearch.data import DataConfig, load_data
from e2gcsearch.metrics import Metric
from e2gcsearch.paired import PerImage, pack
from e2gcsearch.search.probes import SEED_PROBES, SITTING_PROBES, run_probes
from e2gcsearch.store.record import confirmation
from e2gcsearch.store.results import front_info, front_notes
from e2gcsearch.store.storage import get_storage

pytestmark = pytest.mark.filterwarnings("ignore::optuna.exceptions.ExperimentalWarning")
OBJECTIVES = (Metric.of("epf", 4), Metric.of("top1"))
EARLIER = "2026-01-01 10:00"  # the trials' own sitting, long before the probes'


def _data(tmp_path):
    config = DataConfig(
        name="digits", classes=3, train_per_class=8, val_per_class=6, resolution=32, cache_dir=str(tmp_path / "t")
    )
    return load_data(config, progress=False)


def _study(tmp_path, data, trials: int = 6, stopped: int = 0) -> optuna.Study:
    """``trials`` completed trials (and ``stopped`` pruned ones) measured and trained once, long ago."""
    study = optuna.create_study(
        directions=["minimize", "maximize"],
        storage=get_storage(f"sqlite:///{tmp_path / 'probes.db'}", create=True),
        study_name="probes",
    )
    study.set_user_attr("objectives", [o.to_dict() for o in OBJECTIVES])
    rng = np.random.default_rng(0)
    n = len(data.val_labels)
    for k in range(trials + stopped):
        arch_config = ArchConfig("mobilenet_v1", group_size=2**k, width=0.25, num_classes=3)
        right = rng.random(n) < 0.5
        epf = 2.0 + k
        figures = {
            "epf_mj": epf,
            "epf_std_mj": 0.05,
            "repeats": 2,
            "status": "ok",
            "measured_at": [EARLIER],
            "impl": "channels_last",
        }
        attrs = planted_attrs(arch_config, figures, wall_s={"train": 1.0 + k, "profile": 0.5})
        if k >= trials:  # stopped early: its EPF was measured, its training not finished
            study.add_trial(create_trial(state=optuna.trial.TrialState.PRUNED, user_attrs=attrs))
            continue
        top1 = 100 * float(right.mean())
        attrs.update(top1=top1, top1_seeds=[top1], val_size=n)
        attrs["top1_correct"] = PerImage(data.val_order, n, (pack(right),)).to_dict()
        study.add_trial(create_trial(values=[epf, top1], user_attrs=attrs))
    return study


def test_probes_give_the_front_seed_noise_and_sitting_scatter_within_their_budget(tmp_path, tiny_settings):
    data = _data(tmp_path)
    study = _study(tmp_path, data, trials=4, stopped=2)
    before = front_notes(study, front_info(study))
    assert any("seed noise is not estimated" in line for line in before)
    assert any("count one sitting's windows only" in line for line in before)
    lines: list[str] = []
    report = run_probes(study, tiny_settings, data, run_s=1000.0, say=lines.append)
    assert len(report.trained) == SEED_PROBES == 4
    assert len(report.measured) == SITTING_PROBES == 5  # stopped trials' EPF counts too
    # the cheapest plan: the cheapest training (1 s) three more times and the next (2 s) once, not four of
    # 1-4 s once each; two trials, so the seed noise rests on more than one network
    assert report.trained == (0, 0, 0, 1)
    assert confirmation(study, 0)["top1_seed_ids"] == [0, 1, 2, 3]
    assert len(confirmation(study, 0)["top1_correct"]["seeds"]) == 3
    assert confirmation(study, 1)["top1_seed_ids"] == [0, 1]
    assert lines == [report.line()] and "trained 2 trial(s) again with 4 more seed(s)" in lines[0]
    assert "% of the run's 10" in lines[0]
    for number in report.measured:  # measured again with the kernels of its first sitting, not timed again
        assert confirmation(study, number)["epf"]["4"]["impl"] == "channels_last"
    front = front_info(study, include_dominated=True)
    assert front.paired.seed_noise is not None and front.paired.seed_noise.df == 4
    assert sorted(front.frame["seeds"]) == [1, 1, 2, 4]
    assert front.frame["epf@4_sitting_cv"].notna().all()
    after = front_notes(study, front)
    assert not any("seed noise is not estimated" in line for line in after)
    assert any("include the scatter between sittings" in line for line in after)
    spent = [key for key in study.user_attrs if key.startswith("spent:probes:")]
    assert spent and {p["kind"] for p in study.user_attrs[spent[0]]} == {"training", "measurement"}
    # a second run finds both estimates known and probes nothing
    again = run_probes(study, tiny_settings, data, run_s=1000.0, say=lines.append)
    assert not again.trained and not again.measured


def test_probes_over_their_budget_leave_the_estimates_to_confirm_and_say_so(tmp_path, tiny_settings):
    data = _data(tmp_path)
    study = _study(tmp_path, data, trials=6)
    report = run_probes(study, tiny_settings, data, run_s=10.0, say=lambda line: None)
    assert not report.trained and not report.measured
    assert any("seed noise left to 'confirm'" in line for line in report.left_out)
    assert any("confirm --remeasure-epf" in line for line in report.left_out)
    assert not any(confirmation(study, t.number) for t in study.trials)
