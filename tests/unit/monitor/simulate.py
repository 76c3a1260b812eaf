"""Exact, cheap simulation of reference profiles and window counts for statistical-quality tests.

Numeric features are simulated in uniform space, where binned two-sample tests
are distribution-free: the reference's quantile edges are interpolated order
statistics of n uniforms, drawn exactly with gamma spacings (O(bins) work
instead of sorting n values), and the window's counts are multinomial with the
true probability of each bin. ``rank_counts`` reproduces the reference counts
that ``build_numeric_profile`` would find; a test checks it against the real
builder.
"""

from __future__ import annotations

import numpy as np
from scipy.special import ndtr, ndtri

from driftward_serving.monitor.profile import CategoricalProfile, NumericProfile


def rank_counts(at_lower: np.ndarray, edges: np.ndarray, lower: np.ndarray, n: int) -> np.ndarray:
    """Reference counts per bin (B + 3 entries) of n distinct sorted values with these edges.

    ``at_lower`` is the value of rank ``lower`` for each edge. A value is in the
    bin above an edge when it is at or above it, so the bin above edge j starts
    at rank ``lower_j`` when that value reaches the edge (only possible when the
    interpolation weight rounds to 0) and at ``lower_j + 1`` otherwise.
    """
    starts = np.where(at_lower[1:-1] >= edges[1:-1], lower[1:-1], lower[1:-1] + 1)
    boundaries = np.concatenate([[0], starts, [n]])
    return np.concatenate([[0], np.diff(boundaries), [0, 0]]).astype(np.int64)


def simulate_numeric_profiles(
    rng: np.random.Generator, n: int, names: list[str], bins: int = 100
) -> list[NumericProfile]:
    """Independent reference profiles of n standard-normal values each.

    Drawn via uniform order statistics.
    """
    position = np.linspace(0.0, 1.0, bins + 1) * (n - 1)
    lower = np.floor(position).astype(np.int64)
    upper = np.minimum(lower + 1, n - 1)
    ranks = np.unique(np.concatenate([lower, upper]))
    # U_(r) = S_(r+1) / S_(n+1), S a running sum of Exp(1): the gaps are Gamma.
    shapes = np.diff(np.concatenate([[-1], ranks, [n]])).astype(np.float64)
    sums = np.cumsum(rng.gamma(shapes, size=(len(names), shapes.size)), axis=1)
    uniform = sums[:, :-1] / sums[:, -1:]
    low = uniform[:, np.searchsorted(ranks, lower)]
    high = uniform[:, np.searchsorted(ranks, upper)]
    edges = low + (position - lower) * (high - low)
    # Binning is invariant under the monotone map from uniform to normal values.
    normal_edges = ndtri(edges)
    return [
        NumericProfile(name, normal_edges[i], rank_counts(low[i], edges[i], lower, n), 0.0, 1.0)
        for i, name in enumerate(names)
    ]


def simulate_numeric_profile(
    rng: np.random.Generator, n: int, bins: int = 100, name: str = "x"
) -> NumericProfile:
    """One reference profile of n standard-normal values."""
    return simulate_numeric_profiles(rng, n, [name], bins)[0]


def simulate_numeric_counts(
    rng: np.random.Generator, profile: NumericProfile, m: int, shift: float = 0.0
) -> np.ndarray:
    """Window counts of m normal(shift, 1) values in the profile's bins."""
    cdf = ndtr(profile.edges - shift)
    probabilities = np.concatenate([[cdf[0]], np.diff(cdf), [1.0 - cdf[-1]]])
    probabilities = np.clip(probabilities, 0.0, None)
    counts = rng.multinomial(m, probabilities / probabilities.sum())
    return np.concatenate([counts, [0]]).astype(np.int64)


def simulate_categorical_profile(
    rng: np.random.Generator, n: int, p: np.ndarray, name: str = "c"
) -> CategoricalProfile:
    """A reference profile of n draws from categories with probabilities p (plus unseen)."""
    counts = rng.multinomial(n, p)
    names = tuple(f"c{i}" for i in range(p.size))
    return CategoricalProfile(name, names, np.concatenate([counts, [0]]).astype(np.int64))


def simulate_categorical_counts(rng: np.random.Generator, m: int, q: np.ndarray) -> np.ndarray:
    """Window counts of m draws from q (no unseen values)."""
    return np.concatenate([rng.multinomial(m, q), [0]]).astype(np.int64)
