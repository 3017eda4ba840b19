"""Per-image results and the paired comparison of two networks' top-1 on the same validation images.

Every trial of a study is judged on the same validation images, in the same order. Two networks
share most of their right and wrong answers, so the *difference* of their top-1 is known far better
than two independent intervals suggest. A trial therefore keeps which images it got right: a bitset
per training seed over the study's fixed validation order (:class:`PerImage`, packed with
:func:`pack`), with that order's digest, so that bitsets are only ever compared on the same images.

**The paired difference** (:func:`paired_difference`) of networks *a* and *b*, with per-image results
over K_a and K_b seeds, is ``d = mean_i (m_a,i − m_b,i)``, m being the share of a network's seeds
that got image i right. Two sources of noise make its 95 % interval:

* the validation images are a sample: ``var_i(m_a,i − m_b,i) / n``, the paired variance (with one
  seed each this is McNemar's: only the images the two disagree on count);
* training is random: each network's accuracy on the *population* of images moves between seeds
  by σ (:func:`population_seed_noise`), adding ``σ² (1/K_a + 1/K_b)``.

The two half-widths (normal for the images, Student's t on σ's degrees of freedom for the seeds) add
in quadrature, as :func:`e2gcsearch.stats.accuracy_interval` does for one network. The difference is
*separated* when its interval excludes 0.

σ is estimated from networks trained with two or more seeds: the spread of their top-1 between
seeds on one fixed image set counts the population part *and* the images on which the seeds
disagree, ``var_k(top1_k) ≈ σ² + mean_i var_k(c_k,i) / n``; the second term is known from the
bitsets and removed, so it is not counted twice.

Example:
    >>> import numpy as np
    >>> a = np.zeros(400, dtype=bool); a[:300] = True      # right on 300 of 400 images
    >>> b = np.zeros(400, dtype=bool); b[:280] = True      # the same ones, less 20
    >>> diff = paired_difference(a[None], b[None])
    >>> round(diff.diff, 1), round(diff.low, 1), round(diff.high, 1), diff.separated
    (5.0, 2.9, 7.1, True)
    >>> int(unpack(pack(a), 400).sum())
    300
"""

from __future__ import annotations

import base64
import dataclasses
import math
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import numpy as np
from scipy import stats as _scipy

from .stats import CONFIDENCE, MIN_POOLED_DF, SeedNoise, t_quantile

PAIRED = "paired"  # a status or difference backed by the paired test on per-image results
INDEPENDENT = "independent"  # backed by the two networks' own intervals (no per-image results)


def pack(correct: Sequence[bool] | np.ndarray) -> str:
    """Per-image right/wrong as base64 text of the packed bits (750 images: 128 characters)."""
    return base64.b64encode(np.packbits(np.asarray(correct, dtype=bool)).tobytes()).decode("ascii")


def unpack(text: str, n: int) -> np.ndarray:
    """The ``n`` booleans :func:`pack` wrote."""
    bits = np.unpackbits(np.frombuffer(base64.b64decode(text), dtype=np.uint8))
    if len(bits) < n:
        raise ValueError(f"a per-image bitset of {len(bits)} bits cannot hold {n} images")
    return bits[:n].astype(bool)


@dataclasses.dataclass(frozen=True)
class PerImage:
    """Which validation images a network got right, one packed bitset per training seed.

    ``order`` is the digest of the validation images and labels in the order they were judged
    (:meth:`e2gcsearch.data.LoadedData.val_order`); two results compare only when it matches.
    """

    order: str
    n: int
    seeds: tuple[str, ...]

    def matrix(self) -> np.ndarray:
        """(seeds, n) booleans."""
        return np.stack([unpack(bits, self.n) for bits in self.seeds])

    @classmethod
    def of_runs(cls, runs: Sequence[Any]) -> dict[str, Any] | None:
        """The stored form of training results on one validation set (``TrainResult``: ``correct``,
        ``val_order``, ``val_size``); ``None`` when one has none (resumed from a finished checkpoint)."""
        if not runs or any(run.correct is None for run in runs):
            return None
        return cls(runs[0].val_order, runs[0].val_size, tuple(run.correct for run in runs)).to_dict()

    def to_dict(self) -> dict[str, Any]:
        return {"order": self.order, "n": self.n, "seeds": list(self.seeds)}

    @classmethod
    def from_dict(cls, stored: Mapping[str, Any] | None) -> PerImage | None:
        """A stored result (``None`` for none, or one without seeds)."""
        if not stored or not stored.get("seeds"):
            return None
        return cls(str(stored["order"]), int(stored["n"]), tuple(stored["seeds"]))

    def extended(self, more: PerImage | None) -> PerImage:
        """This result with the seeds of ``more`` (the same images) added."""
        if more is None or more.order != self.order or more.n != self.n:
            return self
        return dataclasses.replace(self, seeds=self.seeds + more.seeds)


@dataclasses.dataclass(frozen=True)
class PairedDifference:
    """Top-1 of *a* minus top-1 of *b* in percentage points, with its 95 % interval and its parts."""

    diff: float
    low: float
    high: float
    image_half: float  # half-width of the images' part (the paired test)
    seed_half: float  # half-width of the seeds' part (0 when the seed noise is not known)
    n: int
    discordant: int  # images on which a's and b's first seeds disagree

    @property
    def separated(self) -> bool:
        """True when the interval excludes 0: the data order the two networks on top-1."""
        return self.low > 0 or self.high < 0


def paired_difference(
    a: np.ndarray, b: np.ndarray, seed_noise: SeedNoise | None = None, confidence: float = CONFIDENCE
) -> PairedDifference:
    """The paired difference of ``a`` and ``b``, (seeds, n) booleans on the same images (module docstring);
    ``seed_noise`` is σ on the population of images (:func:`population_seed_noise`), in points."""
    a, b = np.atleast_2d(np.asarray(a, dtype=float)), np.atleast_2d(np.asarray(b, dtype=float))
    if a.shape[1] != b.shape[1] or a.shape[1] == 0:
        raise ValueError(f"a paired difference needs results on the same images, got {a.shape[1]} and {b.shape[1]}")
    n = a.shape[1]
    x = a.mean(axis=0) - b.mean(axis=0)
    diff = float(x.mean())
    z = float(_scipy.norm.ppf(0.5 + confidence / 2))
    image_half = 100 * z * math.sqrt(float(x.var(ddof=1)) / n) if n > 1 else math.inf
    seed_half = 0.0
    if seed_noise is not None:
        seeds = math.sqrt(1 / len(a) + 1 / len(b))
        seed_half = t_quantile(seed_noise.df + 1, confidence) * seed_noise.std * seeds
    half = math.hypot(image_half, seed_half)
    discordant = int((a[0] != b[0]).sum())
    return PairedDifference(100 * diff, 100 * diff - half, 100 * diff + half, image_half, seed_half, n, discordant)


def population_seed_noise(groups: Iterable[np.ndarray], min_df: int = MIN_POOLED_DF) -> SeedNoise | None:
    """σ of top-1 between seeds on the population of images (points), pooled over ``groups`` — one
    (seeds, n) boolean array per network trained with two or more seeds; ``None`` below ``min_df``
    degrees of freedom (see the module docstring).

    Example:
        >>> import numpy as np
        >>> rng = np.random.default_rng(0)
        >>> same = [rng.random((2, 750)) < 0.6 for _ in range(100)]  # seeds differ only image by image
        >>> population_seed_noise(same)
        SeedNoise(std=0.0, df=100)
        >>> moved = [rng.random((2, 750)) < 0.6 + rng.normal(0, 0.03, (2, 1)) for _ in range(100)]
        >>> round(population_seed_noise(moved).std)                   # each seed moves top-1 by ~3 points
        3
    """
    weighted, df = 0.0, 0
    for group in groups:
        group = np.asarray(group, dtype=float)
        if group.ndim != 2 or len(group) < 2:
            continue
        k, n = group.shape
        between = float(group.mean(axis=1).var(ddof=1))  # top-1 (fraction) between seeds, on these images
        within = float(group.var(axis=0, ddof=1).mean()) / n  # what the images the seeds disagree on explain
        weighted += (k - 1) * (between - within)
        df += k - 1
    if df < max(1, min_df):
        return None
    return SeedNoise(100 * math.sqrt(max(0.0, weighted / df)), df)


@dataclasses.dataclass(frozen=True, eq=False)
class PairedResults:
    """The per-image results of a study's networks by key (a trial number), ready to compare any two.

    Only results on the images most of them were judged on (one ``order``) take part; σ comes from
    those with two or more seeds (:func:`population_seed_noise`), ``None`` until they give
    :data:`~e2gcsearch.stats.MIN_POOLED_DF` degrees of freedom.
    """

    results: Mapping[Any, np.ndarray]
    seed_noise: SeedNoise | None
    images: int
    _differences: dict = dataclasses.field(default_factory=dict, repr=False)

    @classmethod
    def of(cls, results: Mapping[Any, PerImage | None]) -> PairedResults:
        known = {key: result for key, result in results.items() if result is not None}
        if not known:
            return cls({}, None, 0)
        ((order, n), _), *_ = Counter((r.order, r.n) for r in known.values()).most_common(1)
        matrices = {key: r.matrix() for key, r in known.items() if (r.order, r.n) == (order, n)}
        return cls(matrices, population_seed_noise(m for m in matrices.values() if len(m) >= 2), n)

    def __contains__(self, key: Any) -> bool:
        return key in self.results

    def difference(self, a: Any, b: Any) -> PairedDifference | None:
        """Top-1 of ``a`` minus ``b`` with its paired interval; ``None`` when one has no comparable results."""
        if a not in self.results or b not in self.results:
            return None
        if (a, b) not in self._differences:
            self._differences[(a, b)] = paired_difference(self.results[a], self.results[b], self.seed_noise)
        return self._differences[(a, b)]
