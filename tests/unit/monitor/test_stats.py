"""The count-based statistics agree with scipy's reference implementations on raw data."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats as scipy_stats
from scipy.spatial.distance import jensenshannon

from driftward_serving.monitor.profile import build_numeric_profile
from driftward_serving.monitor.stats import (
    Correction,
    compute_chi_square_from_counts,
    compute_corrected_p_values,
    compute_cramers_v,
    compute_jensen_shannon,
    compute_ks_from_counts,
    compute_ks_p_value,
    compute_psi,
    compute_wasserstein_from_counts,
)


def _counts_on_support(a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    support = np.unique(np.concatenate([a, b]))
    return (
        np.bincount(np.searchsorted(support, a), minlength=support.size),
        np.bincount(np.searchsorted(support, b), minlength=support.size),
    )


def test_ks_on_exact_support_matches_scipy_distance() -> None:
    rng = np.random.default_rng(1)
    a, b = rng.integers(0, 40, 3000), rng.integers(2, 42, 2000)
    ref, cur = _counts_on_support(a, b)
    result = compute_ks_from_counts(ref, cur)
    expected = scipy_stats.ks_2samp(a, b)
    assert result.statistic == pytest.approx(expected.statistic, abs=1e-12)
    assert (result.n_reference, result.n_current) == (3000, 2000)


@pytest.mark.parametrize("shift", [0.0, 0.05, 0.1, 0.3])
def test_ks_p_value_tracks_scipy_asymptotic(shift: float) -> None:
    rng = np.random.default_rng(2)
    a, b = rng.normal(size=4000), rng.normal(shift, 1, size=3000)
    distance = scipy_stats.ks_2samp(a, b).statistic
    ours = compute_ks_p_value(distance, 4000, 3000)
    theirs = scipy_stats.ks_2samp(a, b, method="asymp").pvalue
    assert ours == pytest.approx(theirs, rel=0.05, abs=1e-12)


def test_binned_ks_is_never_larger_than_exact_ks() -> None:
    rng = np.random.default_rng(3)
    for trial in range(50):
        reference = rng.normal(size=2000)
        current = rng.normal(0.1 * (trial % 5), 1, size=1500)
        profile = build_numeric_profile("x", reference)
        binned = compute_ks_from_counts(
            profile.counts[:-1],
            np.bincount(profile.bin_values(current), minlength=profile.n_bins)[:-1],
        )
        exact = scipy_stats.ks_2samp(reference, current)
        assert binned.statistic <= exact.statistic + 1e-12
        assert binned.p_value >= exact.pvalue * 0.9 - 1e-12


def test_chi_square_matches_scipy_contingency_without_sparse_columns() -> None:
    ref = np.array([500, 300, 150, 50])
    cur = np.array([240, 160, 60, 40])
    result = compute_chi_square_from_counts(ref, cur)
    chi2, p, dof, _ = scipy_stats.chi2_contingency(np.stack([ref, cur]), correction=False)
    assert result.statistic == pytest.approx(chi2)
    assert result.p_value == pytest.approx(p)
    assert result.dof == dof


def test_chi_square_counts_unseen_bucket_as_evidence() -> None:
    ref = np.array([500, 300, 200, 0])  # last bucket: __unseen__, never in the reference
    same = np.array([250, 150, 100, 0])
    unseen = np.array([230, 140, 90, 40])
    assert compute_chi_square_from_counts(ref, same).p_value > 0.5
    assert compute_chi_square_from_counts(ref, unseen).p_value < 1e-6


def test_chi_square_pools_sparse_columns() -> None:
    ref = np.array([600, 390, 3, 2, 1, 4])
    cur = np.array([300, 195, 1, 0, 3, 1])
    result = compute_chi_square_from_counts(ref, cur)
    assert result.dof == 2  # two dense columns plus the pooled one
    assert result.p_value > 0.1


def test_cramers_v_does_not_shrink_with_reference_size() -> None:
    p, q = np.array([0.5, 0.3, 0.2]), np.array([0.4, 0.4, 0.2])
    small = compute_cramers_v(p * 5000, q * 5000)
    large = compute_cramers_v(p * 500_000, q * 5000)
    assert small == pytest.approx(large)
    assert compute_cramers_v(p * 5000, p * 5000) == 0.0
    assert compute_cramers_v(np.array([10, 0]), np.array([0, 10])) == pytest.approx(1.0)


def test_cramers_v_equals_plain_v_for_equal_rows() -> None:
    ref, cur = np.array([500, 300, 200]), np.array([400, 400, 200])
    chi2 = scipy_stats.chi2_contingency(np.stack([ref, cur]), correction=False)[0]
    assert compute_cramers_v(ref, cur) == pytest.approx(np.sqrt(chi2 / 2000))


def test_jensen_shannon_matches_scipy_base_2() -> None:
    ref, cur = np.array([10, 20, 30, 0]), np.array([15, 5, 30, 10])
    expected = jensenshannon(ref / ref.sum(), cur / cur.sum(), base=2)
    assert compute_jensen_shannon(ref, cur) == pytest.approx(expected)


def test_psi_is_zero_for_equal_and_symmetric_in_direction() -> None:
    a, b = np.array([100, 200, 300]), np.array([300, 200, 100])
    assert compute_psi(a, a * 3) == pytest.approx(0.0)
    assert compute_psi(a, b) == pytest.approx(compute_psi(b, a))
    # The textbook value: sum (q - p) ln(q / p).
    p, q = a / a.sum(), b / b.sum()
    assert compute_psi(a, b) == pytest.approx(np.sum((q - p) * np.log(q / p)))


def test_wasserstein_from_fine_bins_approximates_scipy() -> None:
    rng = np.random.default_rng(4)
    reference, current = rng.normal(size=20000), rng.normal(0.5, 1.0, size=20000)
    profile = build_numeric_profile("x", reference, n_bins=200)
    current_counts = np.bincount(profile.bin_values(current), minlength=profile.n_bins)
    ours = compute_wasserstein_from_counts(
        profile.counts[:-1], current_counts[:-1], profile.edges, profile.std
    )
    exact = scipy_stats.wasserstein_distance(reference, current) / reference.std(ddof=1)
    assert ours == pytest.approx(exact, rel=0.05)


def test_counts_must_line_up() -> None:
    with pytest.raises(ValueError, match="3 bins but current has 2"):
        compute_ks_from_counts([1, 2, 3], [1, 2])
    with pytest.raises(ValueError, match="negative"):
        compute_psi([1, -2], [1, 2])


def test_empty_samples_give_p_value_one() -> None:
    assert compute_ks_from_counts([0, 0], [1, 2]).p_value == 1.0
    assert compute_chi_square_from_counts([5, 5], [0, 0]).p_value == 1.0


P_VALUES = np.array([0.01, 0.04, 0.03, 0.005, 0.2])


def test_bonferroni_multiplies_by_the_number_of_tests() -> None:
    adjusted = compute_corrected_p_values(P_VALUES, Correction.BONFERRONI)
    np.testing.assert_allclose(adjusted, [0.05, 0.2, 0.15, 0.025, 1.0])


def test_holm_is_step_down_and_monotone() -> None:
    adjusted = compute_corrected_p_values(P_VALUES, Correction.HOLM)
    # Sorted: 0.005*5=0.025, 0.01*4=0.04, 0.03*3=0.09, 0.04*2=0.08->0.09, 0.2*1=0.2
    np.testing.assert_allclose(adjusted, [0.04, 0.09, 0.09, 0.025, 0.2])


def test_benjamini_hochberg_is_step_up() -> None:
    adjusted = compute_corrected_p_values(P_VALUES, Correction.BENJAMINI_HOCHBERG)
    # Sorted p: .005 .01 .03 .04 .2 -> *5/k: .025 .025 .05 .05 .2, then running min from the top.
    np.testing.assert_allclose(adjusted, [0.025, 0.05, 0.05, 0.025, 0.2])


def test_no_correction_keeps_p_values() -> None:
    np.testing.assert_allclose(compute_corrected_p_values(P_VALUES, Correction.NONE), P_VALUES)
    assert compute_corrected_p_values([], Correction.HOLM).size == 0
