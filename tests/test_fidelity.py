"""Rank agreement, the noise ceiling and its sources, the E2GC/FgGC pairs of comparable MACs, front recovery and
the fidelity note."""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest

from e2gcsearch.fidelity import (
    RankAgreement,
    front_recovery,
    matched_pairs,
    noise_ceiling,
    pair_order_share,
    pareto_front,
    pareto_layers,
    rank_agreement,
    reference_noise,
    tau_against_halves,
    tau_difference,
)
from e2gcsearch.fidelity_notes import FOOD101_10_CLASSES, MeasuredFidelity, ceiling_sentence, fidelity_note


def test_rank_agreement_on_known_rankings():
    same = rank_agreement([1, 2, 3, 4, 5], [10, 20, 30, 40, 50], resamples=200)
    assert (same.tau, same.rho, same.n) == (pytest.approx(1.0), pytest.approx(1.0), 5) and same.excludes_zero
    reversed_ = rank_agreement([1, 2, 3, 4, 5], [50, 40, 30, 20, 10], resamples=200)
    assert (
        reversed_.tau == pytest.approx(-1.0) and reversed_.high == pytest.approx(-1.0) and not reversed_.excludes_zero
    )
    constant = rank_agreement([1, 1, 1], [1, 2, 3])
    assert math.isnan(constant.tau) and "undefined" in constant.text()


def test_an_interval_that_includes_zero_is_no_evidence():
    agreement = rank_agreement([1, 2, 3, 4], [2, 1, 4, 3], resamples=500)  # tau +0.33 over 4 networks
    assert agreement.low < 0 < agreement.high and not agreement.excludes_zero


def test_pairs_of_comparable_macs_within_one_width_closest_first():
    groups = [("E2GC", 0.25), ("FgGC", 0.25), ("FgGC", 0.25), ("E2GC", 0.5), ("FgGC", 0.5), ("FLGC", 0.25)]
    macs = [100.0, 104.0, 101.0, 200.0, 260.0, 100.0]
    # E2GC 0 pairs with the nearer FgGC 2; E2GC 3 has no FgGC within 10 % at its width; FLGC is no side.
    assert matched_pairs(groups, macs) == [(0, 2)]
    assert pair_order_share([30.0, 0.0, 20.0], [40.0, 0.0, 35.0], [(0, 2)]) == 1.0
    assert pair_order_share([30.0, 0.0, 30.0], [40.0, 0.0, 35.0], [(0, 2)]) == 0.0  # a tie is not an order
    assert math.isnan(pair_order_share([], [], []))


def test_front_recovery_counts_the_full_training_front_the_proxy_finds():
    cost = [1.0, 2.0, 3.0, 4.0]
    full = [10.0, 20.0, 15.0, 30.0]  # front: 0, 1, 3
    assert pareto_front(cost, full) == {0, 1, 3}
    assert front_recovery(cost, [10.0, 20.0, 15.0, 30.0], full) == 1.0
    assert front_recovery(cost, [10.0, 5.0, 15.0, 30.0], full) == pytest.approx(2 / 3)  # proxy front: 0, 2, 3


MEASURED = MeasuredFidelity(
    data="food101-10",
    signature={"dataset": "food101", "classes": list(FOOD101_10_CLASSES), "train_size": 3000, "val_size": 750},
    epochs=4,
    resolution=64,
    agreement=RankAgreement(0.6, 0.4, 0.8, 0.75, 24),
    ceiling=RankAgreement(0.75, 0.6, 0.85, 0.8, 24),
    ceiling_seeds=2,
    ratio=0.8,
    cost_ratio=0.33,
    reference="12 cosine epochs",
)


def test_the_note_quotes_the_measurement_only_for_its_data_and_budget():
    data = {
        "dataset": "food101",
        "classes": list(FOOD101_10_CLASSES),
        "train_size": 3000,
        "val_size": 750,
        "resolution": 64,
    }
    note = fidelity_note(data, {"epochs": 4}, (MEASURED,))
    assert "measured on food101-10" in note and "tau +0.60 [+0.40, +0.80] over 24 networks" in note
    assert "0.80 of the noise ceiling (the means of two groups of 2 seeds agree to tau +0.75 [+0.60, +0.85])" in note
    assert "33 %" in note
    other = fidelity_note({**data, "train_size": 480}, {"epochs": 4}, (MEASURED,))
    assert other.startswith(
        "the proxy's ranking fidelity was not measured for this data and budget (food101, 10 "
        "classes, 480 training images, 64 px, 4 epochs)"
    )
    assert (
        "; measured elsewhere: food101-10: Kendall tau +0.60" in other
        and "validate --top 3 --spread 6 --full-seeds 2" in other
    )
    assert "was not measured" in fidelity_note(data, {"epochs": 8}, (MEASURED,))
    assert "measured elsewhere" not in fidelity_note(data, {"epochs": 4}, ())


def test_tau_difference_is_paired_over_the_same_networks():
    reference = [1.0, 2.0, 3.0, 4.0, 5.0, 6.0]
    same = tau_difference(reference, reference, reference, resamples=200)
    assert same[0] == pytest.approx(0.0) and same[1] == pytest.approx(0.0) and same[2] == pytest.approx(0.0)
    better = tau_difference(reference, reference[::-1], reference, resamples=200)
    assert better[0] == pytest.approx(2.0) and better[1] > 0


def test_the_noise_ceiling_of_two_seeds_is_their_tau_and_more_seeds_average_every_split():
    seed_0, seed_1 = [1.0, 2.0, 3.0, 4.0, 5.0, 6.0], [1.0, 3.0, 2.0, 4.0, 6.0, 5.0]
    two = noise_ceiling([seed_0, seed_1], resamples=200)
    assert two.tau == pytest.approx(rank_agreement(seed_0, seed_1, 10).tau) and two.n == 6
    # Four seeds: the mean of two against the mean of the other two, over the three ways to split them.
    seeds = [seed_0, seed_1, [2.0, 1.0, 3.0, 4.0, 6.0, 5.0], [1.0, 2.0, 3.0, 5.0, 4.0, 6.0]]
    expected = [
        rank_agreement(
            [(a + b) / 2 for a, b in zip(seeds[i], seeds[j])], [(a + b) / 2 for a, b in zip(seeds[k], seeds[m])], 10
        ).tau
        for (i, j), (k, m) in [((0, 1), (2, 3)), ((0, 2), (1, 3)), ((0, 3), (1, 2))]
    ]
    assert noise_ceiling(seeds, resamples=200).tau == pytest.approx(sum(expected) / 3)
    single = noise_ceiling(seeds, half=1, resamples=200)  # every pair of single seeds
    assert single.tau == pytest.approx(
        sum(rank_agreement(seeds[a], seeds[b], 10).tau for a in range(4) for b in range(a + 1, 4)) / 6
    )


def test_a_proxy_is_read_against_references_of_the_ceilings_size():
    seeds = [[1.0, 2.0, 3.0, 4.0], [1.0, 2.0, 4.0, 3.0], [2.0, 1.0, 3.0, 4.0], [1.0, 2.0, 3.0, 4.0]]
    truth = [1.0, 2.0, 3.0, 4.0]
    single = tau_against_halves(truth, seeds, half=1)  # against each seed alone, averaged
    assert single == pytest.approx(sum(rank_agreement(truth, seed, 10).tau for seed in seeds) / 4)
    assert tau_against_halves(truth, seeds) >= single  # a mean of two seeds is a steadier reference


def test_pareto_layers_peel_fronts_in_order():
    cost, accuracy = [1.0, 2.0, 3.0, 2.0, 4.0, 3.0], [10.0, 20.0, 30.0, 15.0, 12.0, 15.0]
    assert pareto_layers(cost, accuracy) == [0, 0, 0, 1, 3, 2]
    assert pareto_front(cost, accuracy) == {0, 1, 2}
    assert pareto_layers([], []) == []


def test_reference_noise_recovers_planted_seed_noise_and_spread_and_predicts_the_ceiling():
    rng = np.random.default_rng(0)
    true = rng.normal(40.0, 3.0, 400)  # 400 networks whose true top-1 spread by 3 points
    per_seed = true + rng.normal(0.0, 2.0, (4, 400))  # four seeds, each moving top-1 by 2 points
    noise = reference_noise(per_seed)
    assert (noise.seeds, noise.networks) == (4, 400)
    assert noise.seed_sd == pytest.approx(2.0, rel=0.05) and noise.spread_sd == pytest.approx(3.0, rel=0.1)
    # r = 9 / (9 + 4 / k): the measured ceilings of one and of two seeds follow Greiner's relation
    assert noise.tau(1) == pytest.approx(2 / math.pi * math.asin(9 / 13), abs=0.03)
    assert noise_ceiling(per_seed, half=1, resamples=50).tau == pytest.approx(noise.tau(1), abs=0.03)
    assert noise_ceiling(per_seed, resamples=50).tau == pytest.approx(noise.tau(2), abs=0.03)
    assert noise.tau(noise.seeds_for(0.7)) == pytest.approx(0.7)
    assert "tau +0.70 needs" in noise.text()


def test_reference_noise_of_networks_that_do_not_differ_has_no_spread():
    rng = np.random.default_rng(1)
    noise = reference_noise(rng.normal(40.0, 2.0, (4, 30)))  # the same network 30 times, four seeds each
    assert noise.spread_sd < 0.6
    flat = dataclasses.replace(noise, spread_sd=0.0)
    assert flat.tau(4) == 0.0 and math.isinf(flat.seeds_for(0.5)) and "no number of seeds" in flat.text()


def test_the_ceiling_sentence_says_where_the_ceiling_comes_from():
    noise = reference_noise([[30.0, 35.0, 40.0, 45.0], [31.0, 34.0, 42.0, 44.0]])
    sentence = ceiling_sentence(RankAgreement(0.67, 0.2, 1.0, 0.8, 4), 0.5, 1, noise)
    assert "0.75 of it. Where the ceiling comes from: seed std" in sentence and "of 4 networks)" in sentence
