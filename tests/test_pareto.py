"""Non-dominated sorting, crowding distance and the order successive halving promotes by."""

from __future__ import annotations

import math

from e2gcsearch.pareto import crowding_distances, dominates, nondominated_layers, pareto_order


def test_domination_needs_one_strictly_better_entry():
    assert dominates((1, 2), (1, 3)) and not dominates((1, 3), (1, 3)) and not dominates((0, 4), (1, 3))


def test_layers_in_three_objectives():
    losses = [(1, 1, 1), (2, 2, 2), (0, 3, 3), (3, 3, 3), (2, 2, 2)]
    assert nondominated_layers(losses) == [0, 1, 0, 2, 1]


def test_crowding_favours_isolated_points_and_the_ends():
    losses = [(0.0, 4.0), (1.0, 3.0), (1.1, 2.9), (4.0, 0.0)]
    distances = crowding_distances(losses)
    assert distances[0] == distances[3] == math.inf
    assert distances[2] > distances[1]  # (1.1, 2.9)'s neighbours are (1, 3) and (4, 0): the wider gap
    assert crowding_distances([(1.0, 1.0), (1.0, 1.0), (1.0, 1.0)])[1] == 0.0


def test_pareto_order_is_layer_first_then_crowding():
    losses = [(0.0, 4.0), (1.0, 3.0), (1.1, 2.9), (4.0, 0.0), (5.0, 5.0)]
    order = pareto_order(losses)
    assert order[:2] == [0, 3] and order[2:] == [2, 1, 4]
