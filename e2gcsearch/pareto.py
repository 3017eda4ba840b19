"""Non-dominated sorting and crowding distance over loss vectors (every entry smaller is better).

A vector dominates another when it is no worse in every entry and better in at least one. The Pareto
front is layer 0; layer 1 is the front of what is left without it, and so on (NSGA-II's sorting, Deb et
al., IEEE TEC 2002). Within a layer, the crowding distance says how isolated a point is: the sum over
objectives of the gap between its two neighbours, normalised by the layer's range, infinite at the ends.

Example:
    >>> nondominated_layers([(1, -10), (2, -20), (3, -30), (2, -15)])
    [0, 0, 0, 1]
    >>> crowding_distances([(1, -10), (2, -20), (3, -30)])
    [inf, 2.0, inf]
"""

from __future__ import annotations

import math
from collections.abc import Sequence


def dominates(a: Sequence[float], b: Sequence[float]) -> bool:
    """``a`` is no worse than ``b`` in every entry and better in one."""
    return all(x <= y for x, y in zip(a, b)) and any(x < y for x, y in zip(a, b))


def nondominated_layers(losses: Sequence[Sequence[float]]) -> list[int]:
    """Each vector's layer: 0 for the front, 1 for the front of the rest, and so on."""
    layers, rest, layer = [0] * len(losses), set(range(len(losses))), 0
    while rest:
        front = {i for i in rest if not any(dominates(losses[j], losses[i]) for j in rest)}
        for i in front:
            layers[i] = layer
        rest, layer = rest - front, layer + 1
    return layers


def crowding_distances(losses: Sequence[Sequence[float]]) -> list[float]:
    """The crowding distance of each vector among ``losses`` (one layer): larger is more isolated."""
    n = len(losses)
    distances = [0.0] * n
    if n <= 2:
        return [math.inf] * n
    for k in range(len(losses[0])):
        order = sorted(range(n), key=lambda i: losses[i][k])
        low, high = losses[order[0]][k], losses[order[-1]][k]
        distances[order[0]] = distances[order[-1]] = math.inf
        if high == low:
            continue
        for before, at, after in zip(order, order[1:], order[2:]):
            distances[at] += (losses[after][k] - losses[before][k]) / (high - low)
    return distances


def pareto_order(losses: Sequence[Sequence[float]]) -> list[int]:
    """Indices of ``losses`` best first: by layer, then by crowding distance (more isolated first) within
    a layer, then by index."""
    layers = nondominated_layers(losses)
    crowding = [0.0] * len(losses)
    for layer in set(layers):
        members = [i for i, found in enumerate(layers) if found == layer]
        for i, distance in zip(members, crowding_distances([losses[i] for i in members])):
            crowding[i] = distance
    return sorted(range(len(losses)), key=lambda i: (layers[i], -crowding[i], i))
