"""Per-image results and the paired top-1 test: stored by training, read back by the front, and
calibrated so that a network compared with itself is not called different."""

from __future__ import annotations

import json

import numpy as np
import optuna
import pytest
from optuna.trial import create_trial
from test_uncertainty import planted_attrs

from e2gcsearch.cli import main
from e2gcsearch.config import ArchConfig
from e2gcsearch.data import DataConfig, load_data
from e2gcsearch.metrics import Metric
from e2gcsearch.paired import PairedResults, PerImage, pack, paired_difference, population_seed_noise, unpack
from e2gcsearch.stats import wilson_interval
from e2gcsearch.store.results import front_info
from e2gcsearch.store.storage import get_storage
from e2gcsearch.train import TrainConfig, train_model

OBJECTIVES = (Metric.of("epf", 4), Metric.of("top1"))


def _planted(n: int = 400, right_a: int = 300, fewer: int = 20) -> tuple[np.ndarray, np.ndarray]:
    """Classifier b gets right exactly the images a gets right, less ``fewer`` of them."""
    a = np.zeros(n, dtype=bool)
    a[:right_a] = True
    b = a.copy()
    b[right_a - fewer : right_a] = False
    return a, b


def test_the_paired_test_separates_planted_classifiers_that_independent_intervals_cannot():
    a, b = _planted()
    low_a, high_a = wilson_interval(a.sum(), len(a))
    low_b, high_b = wilson_interval(b.sum(), len(b))
    assert low_a < high_b, "the independent intervals overlap"
    difference = paired_difference(a[None], b[None])
    assert difference.separated and difference.low > 0
    assert difference.discordant == 20
    # the same accuracies, but disagreeing on many images: the paired test cannot separate them either
    rng = np.random.default_rng(1)
    c = rng.permutation(b)
    assert not paired_difference(a[None], c[None]).separated


def test_per_image_results_pack_compactly_and_compare_only_on_the_same_images():
    a, b = _planted(750)
    assert len(pack(a)) == 128 and (unpack(pack(a), 750) == a).all()
    first = PerImage("order-1", 750, (pack(a),))
    assert first.extended(PerImage("order-1", 750, (pack(b),))).matrix().shape == (2, 750)
    assert first.extended(PerImage("order-2", 750, (pack(b),))) == first  # other images: not pooled
    paired = PairedResults.of({0: first, 1: PerImage("order-1", 750, (pack(b),)), 2: None})
    assert paired.difference(0, 1).separated and paired.difference(0, 2) is None
    with pytest.raises(ValueError, match="cannot hold"):
        unpack(pack(a[:8]), 750)


def _networks(rng: np.random.Generator, count: int, seeds: int, sigma: float, n: int = 750) -> list[np.ndarray]:
    """(seeds, n) right/wrong of ``count`` networks of one accuracy: each image has its own
    difficulty, each seed moves the network's accuracy by ``sigma`` (a fraction) on every image."""
    out = []
    for _ in range(count):
        difficulty = rng.beta(2, 1.5, n)  # the share of seeds that would get each image right
        shift = rng.normal(0, sigma, (seeds, 1))
        out.append(rng.random((seeds, n)) < np.clip(difficulty + shift, 0, 1))
    return out


def test_a_network_against_itself_under_two_seeds_is_rarely_separated_at_the_5_percent_level():
    rng = np.random.default_rng(0)
    probes = _networks(rng, 8, 2, sigma=0.02)  # the study's noise probes: 8 networks with 2 seeds
    noise = population_seed_noise(probes)
    assert noise is not None and noise.df == 8 and 0.5 < noise.std < 4.5
    replays = _networks(rng, 100, 2, sigma=0.02)
    with_seeds = sum(paired_difference(pair[:1], pair[1:], noise).separated for pair in replays)
    images_only = sum(paired_difference(pair[:1], pair[1:]).separated for pair in replays)
    assert with_seeds <= 9, f"{with_seeds} of 100 false separations at a 5 % level"
    assert images_only > with_seeds  # without the seed noise the same test separates a network from itself


def _study_with_per_image(tmp_path, results: dict[int, tuple[float, list[np.ndarray] | None]]) -> str:
    url = f"sqlite:///{tmp_path / 'paired.db'}"
    study = optuna.create_study(
        directions=["minimize", "maximize"], storage=get_storage(url, create=True), study_name="paired"
    )
    study.set_user_attr("objectives", [o.to_dict() for o in OBJECTIVES])
    for group_size, (epf, seeds) in results.items():
        top1 = [100 * float(s.mean()) for s in seeds]
        attrs = planted_attrs(
            ArchConfig("mobilenet_v1", group_size=group_size, width=0.25, num_classes=3),
            {"epf_mj": epf, "epf_std_mj": 1.0, "repeats": 5, "status": "ok", "latency_ms": 1.0},
            top1=float(np.mean(top1)),
            top1_seeds=top1,
            val_size=len(seeds[0]),
        )
        if group_size != 8:  # trial of G=8: recorded before per-image results were
            attrs["top1_correct"] = PerImage("order", len(seeds[0]), tuple(pack(s) for s in seeds)).to_dict()
        study.add_trial(create_trial(values=[epf, float(np.mean(top1))], user_attrs=attrs))
    return url


def test_the_front_judges_top1_by_the_paired_test_and_says_so(tmp_path, capsys):
    a, b = _planted()
    # G=2 costs more and is right on fewer images than G=1: dominated beyond noise only by the paired test
    url = _study_with_per_image(tmp_path, {1: (2.0, [a]), 2: (2.5, [b]), 8: (3.0, [b])})
    study = optuna.load_study(study_name="paired", storage=get_storage(url))
    front = front_info(study, include_dominated=True)
    status = dict(zip(front.frame["trial"], zip(front.frame["front_status"], front.frame["status_test"])))
    assert status[0] == ("front", "paired")
    assert status[1] == ("dominated", "paired")
    assert status[2] == ("tied", "independent")  # no per-image results: the intervals overlap, so tied
    assert main(["front", "--study", "paired", "--storage", url, "--all"]) == 0
    out = capsys.readouterr()
    assert "top-1 test" in out.out and "paired" in out.out
    assert "judged by the paired test on the same 400 validation images" in out.err
    assert "trial 2 has no per-image results" in out.err
    assert main(["front", "--study", "paired", "--storage", url, "--format", "json"]) == 0
    rows = json.loads(capsys.readouterr().out)["rows"]
    assert {row["status_test"] for row in rows} <= {"paired", "independent"}


def test_training_records_which_validation_images_it_got_right(tmp_path):
    data = load_data(
        DataConfig(
            name="digits", classes=3, train_per_class=8, val_per_class=6, resolution=32, cache_dir=str(tmp_path)
        ),
        progress=False,
    )
    trained = train_model(
        ArchConfig("mobilenet_v1", group_size=1, width=0.25, num_classes=3),
        data,
        TrainConfig(epochs=1, batch_size=8, threads=1, progress=False),
    )
    right = unpack(trained.correct, trained.val_size)
    assert 100 * right.mean() == pytest.approx(trained.top1)
    assert trained.val_order == data.val_order and len(data.val_order) == 16


def test_the_stopping_rule_takes_its_margin_from_the_paired_test_where_both_have_per_image_results():
    from e2gcsearch.search.early_stop import MIN_COMPLETE, Finished, StoppingRule

    a, b = _planted(400, right_a=300, fewer=24)  # a finished at 75 %; the running model is at 69 % on a subset
    finished = [Finished(i, (10.0 + i,), 75.0, (60.0, 72.0, 75.0), a[None]) for i in range(MIN_COMPLETE)]
    rule = StoppingRule(finished, epochs=3, margin=lambda top1: 4.5)  # one trial's own interval at 400 images
    # gain 3 points: 69 + 3 + 4.5 > 75 by its own interval; the paired margin (2.3) stops it
    assert rule.verdict(2, top1=69.0, known=(20.0,)) is None
    reason = rule.verdict(2, top1=69.0, known=(20.0,), right=b)
    assert reason is not None and "(paired)" in reason


def test_a_training_resumed_after_its_last_epoch_gives_the_same_answers_per_image(tmp_path):
    data = load_data(
        DataConfig(
            name="digits", classes=3, train_per_class=8, val_per_class=6, resolution=32, cache_dir=str(tmp_path)
        ),
        progress=False,
    )
    arch_config = ArchConfig("mobilenet_v1", group_size=1, width=0.25, num_classes=3)
    config = TrainConfig(epochs=2, batch_size=8, threads=1, progress=False, checkpoint_dir=str(tmp_path / "ck"))
    first = train_model(arch_config, data, config)
    again = train_model(arch_config, data, config.replace(resume=True))  # nothing left to train
    assert again.epochs_run == 2 and again.top1 == first.top1
    assert again.correct == first.correct and 100 * unpack(again.correct, again.val_size).mean() == pytest.approx(
        again.top1
    )


def test_the_stopping_rule_counts_the_seeds_confirm_and_the_probes_added(tmp_path):
    from e2gcsearch.search.early_stop import rule_for
    from e2gcsearch.stats import MIN_POOLED_DF
    from e2gcsearch.store.record import TOP1_CORRECT, TOP1_CURVE, confirm_key

    rng = np.random.default_rng(3)
    networks = _networks(rng, MIN_POOLED_DF, 2, sigma=0.03, n=400)  # two seeds of each network
    storage = get_storage(f"sqlite:///{tmp_path / 's.db'}", create=True)
    study = optuna.create_study(directions=["minimize", "maximize"], storage=storage)
    for i, net in enumerate(networks):  # each trial trained its first seed
        top1 = 100 * float(net[0].mean())
        attrs = {TOP1_CURVE: [top1], TOP1_CORRECT: PerImage("order", 400, (pack(net[0]),)).to_dict()}
        study.add_trial(create_trial(values=[1.0 + i, top1], user_attrs=attrs))
    assert rule_for(study, OBJECTIVES, 1, 400, order="order").population_noise is None
    for trial, net in zip(study.trials, networks):  # the second seed came from confirm or the probes
        more = PerImage("order", 400, (pack(net[1]),)).to_dict()
        study.set_user_attr(confirm_key(trial.number), {TOP1_CORRECT: more})
    noise = rule_for(study, OBJECTIVES, 1, 400, order="order").population_noise
    assert noise is not None and noise.df == MIN_POOLED_DF
