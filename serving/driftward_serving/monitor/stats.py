"""Two-sample drift statistics and multiple-testing corrections over bin counts.

Everything here is a pure function of NumPy count arrays, so a window merged
from several pods is judged exactly like one pod's window, and the cost of a
test depends on the number of bins, never on the traffic. Both the reference
and the window are treated as samples: no test here treats reference
proportions as exact. This module must not do I/O, keep state, or import
``scipy.stats`` (it costs ~0.3-1 s to import); ``scipy.special`` is imported
lazily, on the first p-value.

Binning is conservative for the KS test: the window's bins are fixed on the
reference's quantiles, and the KS distance is taken over the bin boundaries
only. The maximum over a subset of points is at most the true maximum, so the
binned D is never larger than the exact D and the p-value never smaller. With
~100 quantile bins the lost resolution is at most ~1% of the reference mass.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

import numpy as np
import numpy.typing as npt

Counts = npt.NDArray[np.int64]
Floats = npt.NDArray[np.float64]

# Pool chi-square columns whose expected count is below this; the chi-square
# approximation is poor there and would otherwise turn rare categories into
# false alarms (Cochran's rule of thumb).
MIN_EXPECTED_COUNT = 5.0
# Proportions are floored at this before logarithms (PSI, and the unseen
# bucket whose reference count is 0); the value Evidently and NannyML use.
PROPORTION_FLOOR = 1e-4


class Correction(StrEnum):
    """A multiple-testing correction across the features of one evaluation."""

    BONFERRONI = "Bonferroni"
    HOLM = "Holm"
    BENJAMINI_HOCHBERG = "BenjaminiHochberg"
    NONE = "None"


@dataclass(frozen=True)
class TwoSampleTest:
    """The result of one two-sample test: which test, its statistic and p-value."""

    test: str
    statistic: float
    p_value: float
    n_reference: int
    n_current: int
    dof: int | None = None


def _special() -> Any:
    # Imported on first use: scipy.special costs ~0.5 s, which would otherwise
    # be paid by every process that only builds or merges counts.
    import scipy.special  # noqa: PLC0415

    return scipy.special


def preload_special_functions() -> None:
    """Import scipy.special now (the monitor does this at start-up, off its event loop).

    Otherwise the first evaluation pays ~0.5 s of CPU while the pod already takes
    traffic; on a core shared with serving that showed in serving's p99 and in
    bench/serving's monitor cost.
    """
    _special()


def _as_counts(values: npt.ArrayLike) -> Floats:
    array = np.asarray(values, dtype=np.float64)
    if array.ndim != 1:
        raise ValueError(f"counts must be one-dimensional, got shape {array.shape}")
    if array.size and array.min() < 0:
        raise ValueError("counts must not be negative")
    return array


def _check_pair(reference: npt.ArrayLike, current: npt.ArrayLike) -> tuple[Floats, Floats]:
    ref = _as_counts(reference)
    cur = _as_counts(current)
    if ref.shape != cur.shape:
        raise ValueError(f"reference has {ref.size} bins but current has {cur.size}")
    return ref, cur


def compute_ks_p_value(distance: float, n_reference: int, n_current: int) -> float:
    """Two-sided p-value of a two-sample KS distance (asymptotic, Stephens-corrected)."""
    if n_reference <= 0 or n_current <= 0:
        return 1.0
    effective = n_reference * n_current / (n_reference + n_current)
    root = math.sqrt(effective)
    # Stephens' small-sample correction of the Kolmogorov limit, as scipy's
    # ks_2samp used before 1.5; accurate to ~1% for n_eff >= 10 and far more
    # accurate than the crude limit where the alarm threshold sits.
    statistic = (root + 0.12 + 0.11 / root) * distance
    return float(min(1.0, max(0.0, _special().kolmogorov(statistic))))


def compute_ks_from_counts(reference: npt.ArrayLike, current: npt.ArrayLike) -> TwoSampleTest:
    """Two-sample KS test on two histograms over the same ordered bins."""
    ref, cur = _check_pair(reference, current)
    n, m = int(ref.sum()), int(cur.sum())
    if n == 0 or m == 0:
        return TwoSampleTest("ks", 0.0, 1.0, n, m)
    distance = float(np.max(np.abs(np.cumsum(ref) / n - np.cumsum(cur) / m)))
    return TwoSampleTest("ks", distance, compute_ks_p_value(distance, n, m), n, m)


def _pool_sparse_columns(table: Floats) -> Floats:
    """Merge columns too sparse for the chi-square approximation into one column."""
    table = table[:, table.sum(axis=0) > 0]
    if table.shape[1] < 2:
        return table
    expected_floor = table.sum(axis=1).min() * table.sum(axis=0) / table.sum()
    sparse = expected_floor < MIN_EXPECTED_COUNT
    if not sparse.any():
        return table
    dense = table[:, ~sparse]
    pooled = table[:, sparse].sum(axis=1, keepdims=True)
    if dense.shape[1] > 0:
        pooled_floor = table.sum(axis=1).min() * pooled.sum() / table.sum()
        if pooled_floor < MIN_EXPECTED_COUNT:
            # Still too sparse on its own: fold it into the smallest dense column.
            smallest = int(np.argmin(dense.sum(axis=0)))
            dense = dense.copy()
            dense[:, smallest] += pooled[:, 0]
            return dense
    return np.concatenate([dense, pooled], axis=1)


def compute_chi_square_from_counts(
    reference: npt.ArrayLike, current: npt.ArrayLike
) -> TwoSampleTest:
    """Chi-square test of homogeneity on the 2 x k table of reference and current counts."""
    ref, cur = _check_pair(reference, current)
    n, m = int(ref.sum()), int(cur.sum())
    if n == 0 or m == 0:
        return TwoSampleTest("chisquare", 0.0, 1.0, n, m, 0)
    table = _pool_sparse_columns(np.stack([ref, cur]))
    dof = table.shape[1] - 1
    if dof < 1:
        return TwoSampleTest("chisquare", 0.0, 1.0, n, m, 0)
    expected = table.sum(axis=1, keepdims=True) * table.sum(axis=0, keepdims=True) / table.sum()
    statistic = float(np.sum((table - expected) ** 2 / expected))
    p_value = float(_special().chdtrc(dof, statistic))
    return TwoSampleTest("chisquare", statistic, p_value, n, m, dof)


def compute_cramers_v(reference: npt.ArrayLike, current: npt.ArrayLike) -> float:
    """Cramer's V of the 2 x k table with both rows weighted equally, in [0, 1]."""
    ref, cur = _check_pair(reference, current)
    if ref.sum() == 0 or cur.sum() == 0:
        return 0.0
    p, q = ref / ref.sum(), cur / cur.sum()
    both = (p + q) > 0
    # Weighting the rows equally makes V a property of the two distributions:
    # the plain V of a 100k-row reference against a 5k window shrinks by
    # sqrt(n m) / (n + m) and would hide the same shift that a 5k reference shows.
    # With equal rows, V^2 = sum (p - q)^2 / (2 (p + q)).
    return float(math.sqrt(np.sum((p[both] - q[both]) ** 2 / (2 * (p[both] + q[both])))))


def compute_psi(reference: npt.ArrayLike, current: npt.ArrayLike) -> float:
    """Population stability index over the same bins, proportions floored at 1e-4."""
    ref, cur = _check_pair(reference, current)
    if ref.sum() == 0 or cur.sum() == 0:
        return 0.0
    p = np.maximum(ref / ref.sum(), PROPORTION_FLOOR)
    q = np.maximum(cur / cur.sum(), PROPORTION_FLOOR)
    return float(np.sum((q - p) * np.log(q / p)))


def compute_jensen_shannon(reference: npt.ArrayLike, current: npt.ArrayLike) -> float:
    """Jensen-Shannon distance (base 2, in [0, 1]) between two histograms."""
    ref, cur = _check_pair(reference, current)
    if ref.sum() == 0 or cur.sum() == 0:
        return 0.0
    p, q = ref / ref.sum(), cur / cur.sum()
    mid = (p + q) / 2

    def _kl(a: Floats) -> float:
        nonzero = a > 0
        return float(np.sum(a[nonzero] * np.log2(a[nonzero] / mid[nonzero])))

    divergence = (_kl(p) + _kl(q)) / 2
    return float(math.sqrt(max(0.0, divergence)))


def compute_wasserstein_from_counts(
    reference: npt.ArrayLike, current: npt.ArrayLike, edges: npt.ArrayLike, scale: float
) -> float:
    """Wasserstein-1 distance over binned values, divided by ``scale`` (the reference std).

    ``reference`` and ``current`` hold len(edges) + 1 counts: below the first
    edge, one per interval between edges, and above the last edge. Mass is
    taken as spread evenly inside each interval; mass outside the reference
    range adds nothing, so the distance can only be underestimated there.
    """
    ref, cur = _check_pair(reference, current)
    bounds = np.asarray(edges, dtype=np.float64)
    if ref.size != bounds.size + 1:
        raise ValueError(f"{bounds.size} edges need {bounds.size + 1} counts, got {ref.size}")
    if ref.sum() == 0 or cur.sum() == 0 or bounds.size < 2:
        return 0.0
    # CDF of each sample at every edge: everything in the bins before it.
    gap = np.cumsum(ref)[:-1] / ref.sum() - np.cumsum(cur)[:-1] / cur.sum()
    left, right, width = gap[:-1], gap[1:], np.diff(bounds)
    same_sign = left * right >= 0
    magnitude = np.abs(left) + np.abs(right)
    # The CDF gap is linear inside a bin; integrate |gap| exactly, also when it
    # changes sign inside the bin.
    crossing = np.divide(
        left**2 + right**2, 2 * magnitude, out=np.zeros_like(magnitude), where=magnitude > 0
    )
    area = np.where(same_sign, magnitude / 2, crossing) * width
    distance = float(np.sum(area))
    return distance / scale if scale > 0 else distance


def compute_corrected_p_values(p_values: npt.ArrayLike, correction: Correction) -> Floats:
    """Adjusted p-values, so that ``adjusted < alpha`` is the correction's rejection rule."""
    p = np.asarray(p_values, dtype=np.float64)
    m = p.size
    if m == 0 or correction is Correction.NONE:
        return p.copy()
    if correction is Correction.BONFERRONI:
        return np.minimum(1.0, p * m)
    order = np.argsort(p, kind="stable")
    ranked = p[order]
    if correction is Correction.HOLM:
        # Step-down: the k-th smallest is multiplied by (m - k + 1), and the
        # running maximum keeps the adjusted values monotone.
        adjusted = np.maximum.accumulate(np.minimum(1.0, ranked * (m - np.arange(m))))
    else:
        # Benjamini-Hochberg step-up: running minimum from the largest down.
        scaled = ranked * m / np.arange(1, m + 1)
        adjusted = np.minimum(1.0, np.minimum.accumulate(scaled[::-1])[::-1])
    result = np.empty(m, dtype=np.float64)
    result[order] = adjusted
    return result
