"""A batch counted at once lands in exactly the bins its values would be binned into one by one."""

from __future__ import annotations

import numpy as np
import pytest

from driftward_serving.monitor.profile import NumericBinner, build_numeric_profile


@pytest.mark.parametrize("seed", range(40))
def test_count_values_matches_binning_each_value(seed: int) -> None:
    rng = np.random.default_rng(seed)
    reference = rng.normal(size=int(rng.integers(2, 3000)))
    if seed % 3 == 0:
        reference = np.round(reference, 1)  # ties: repeated edges collapse
    profile = build_numeric_profile("x", reference, n_bins=int(rng.integers(2, 150)))
    values = np.concatenate(
        [
            rng.normal(scale=1.5, size=int(rng.integers(0, 2000))),
            profile.edges,  # every edge itself, where off-by-one errors live
            [np.nan, np.nan, np.inf, -np.inf],
        ]
    )
    if seed % 2:
        values = np.round(values, 1)
    expected = np.bincount(profile.bin_values(values), minlength=profile.n_bins)
    np.testing.assert_array_equal(profile.count_values(values), expected)


def test_reference_counts_are_the_reference_binned_value_by_value() -> None:
    rng = np.random.default_rng(7)
    reference = rng.normal(size=5000)
    reference[::50] = np.nan
    profile = build_numeric_profile("x", reference)
    expected = np.bincount(profile.bin_values(reference), minlength=profile.n_bins)
    np.testing.assert_array_equal(profile.counts, expected)
    assert profile.counts[profile.missing_index] == 100


def test_an_empty_batch_counts_nothing() -> None:
    profile = build_numeric_profile("x", np.arange(10.0))
    assert profile.count_values([]).tolist() == [0] * profile.n_bins


@pytest.mark.parametrize("seed", range(20))
def test_binning_columns_together_matches_binning_each_column(seed: int) -> None:
    rng = np.random.default_rng(seed)
    profiles = []
    for column in range(int(rng.integers(1, 12))):
        reference = rng.normal(loc=column, size=int(rng.integers(2, 3000)))
        if column % 3 == 0:
            reference = np.round(reference, 1)  # ties: repeated edges collapse
        n_bins = int(rng.choice([1, 2, 7, 63, 64, 100, 127, 128, 200]))
        profiles.append(build_numeric_profile(f"x{column}", reference, n_bins=n_bins))
    rows = int(rng.integers(0, 1500))
    values = rng.normal(loc=np.arange(len(profiles)), scale=2.0, size=(rows, len(profiles)))
    specials = np.array([np.nan, np.inf, -np.inf, 0.0, -0.0])
    extra = [np.resize(np.concatenate([p.edges, specials]), 260) for p in profiles]
    values = np.vstack([values, np.stack(extra, axis=1)])  # every edge, where off-by-ones live
    expected = np.stack([p.bin_values(values[:, j]) for j, p in enumerate(profiles)], axis=1)
    np.testing.assert_array_equal(NumericBinner(profiles).bin_values(values), expected)
