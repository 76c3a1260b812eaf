"""Reference profiles: quantile bins, categorical buckets, classes, calibration and JSON."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pytest

from driftward_serving.monitor.profile import (
    OTHER,
    CategoricalProfile,
    FeatureSpec,
    FeatureType,
    NumericProfile,
    Profile,
    ProfileError,
    Task,
    build_categorical_profile,
    build_numeric_profile,
    build_profile,
    canonical_key,
    compute_class_order,
    compute_profile_digest,
    profile_from_json,
    profile_to_json,
)


def test_numeric_bins_hold_equal_reference_mass() -> None:
    values = np.random.default_rng(0).normal(size=10_000)
    profile = build_numeric_profile("x", values)
    assert profile.edges.size == 101
    assert profile.counts.sum() == 10_000
    assert profile.counts[0] == 0
    assert profile.counts[-2] == 0
    assert profile.counts[-1] == 0
    assert profile.counts[1:-2].min() >= 99
    assert profile.counts[1:-2].max() <= 101


def test_numeric_bins_route_outside_and_missing_values() -> None:
    profile = build_numeric_profile("x", np.arange(100.0))
    index = profile.bin_values(np.array([-5.0, 0.0, 99.0, 150.0, np.nan]))
    assert index[0] == 0
    assert 1 <= index[1] <= profile.edges.size - 1
    assert index[2] == profile.edges.size - 1  # the maximum is inside the last bin
    assert index[3] == profile.edges.size
    assert index[4] == profile.missing_index


def test_numeric_ties_collapse_to_distinct_edges() -> None:
    values = np.repeat(np.arange(5.0), 200)
    profile = build_numeric_profile("small_ints", values)
    assert np.all(np.diff(profile.edges) > 0)
    # Each of the five values lands in its own bin.
    per_value = [int(profile.bin_values(np.array([v]))[0]) for v in range(5)]
    assert len(set(per_value)) == 5
    assert sorted(profile.counts[per_value].tolist()) == [200] * 5


def test_constant_numeric_feature_still_profiles() -> None:
    profile = build_numeric_profile("const", np.full(50, 3.0))
    assert profile.bin_values(np.array([3.0, 2.0, 4.0])).tolist() == [1, 0, 2]
    assert profile.std == 0.0


def test_numeric_feature_without_values_is_refused() -> None:
    with pytest.raises(ValueError, match="'x' has no non-missing"):
        build_numeric_profile("x", np.array([np.nan, np.nan]))


def test_categorical_buckets_map_unseen_and_other() -> None:
    values = ["a"] * 50 + ["b"] * 30 + ["c"] * 15 + ["d"] * 5
    profile = build_categorical_profile("cat", values, max_categories=3)
    assert profile.categories == ("a", "b", OTHER)
    assert profile.counts.tolist() == [50, 30, 20, 0]
    assert profile.bucket_values(["a", "c", "d", "zzz"]).tolist() == [0, 2, 2, 3]


def test_canonical_keys_agree_across_types() -> None:
    assert canonical_key(1) == canonical_key(1.0) == canonical_key("1") == "1"
    assert canonical_key(np.int64(3)) == "3"
    assert canonical_key(True) == "true"
    assert canonical_key(None) == canonical_key(math.nan) == "__missing__"
    assert canonical_key(0.5) == "0.5"


def test_class_order_follows_sklearn() -> None:
    assert compute_class_order([10, 2, 1, 2]) == ("1", "2", "10")
    assert compute_class_order(["b", "a", "c"]) == ("a", "b", "c")


def test_build_profile_infers_classification_and_calibrates(profile: Profile) -> None:
    assert profile.task is Task.CLASSIFICATION
    assert profile.classes == ("0", "1")
    assert isinstance(profile.output, CategoricalProfile)
    assert profile.output.counts.sum() == profile.rows
    assert profile.calibration is not None
    assert profile.calibration.counts.sum() == profile.rows
    assert profile.output_source == "target"


def test_build_profile_infers_regression(rng: np.random.Generator) -> None:
    columns = {"x": rng.normal(size=500), "y": rng.normal(size=500) * 3.3}
    built = build_profile(columns, [FeatureSpec("x", FeatureType.NUMERIC)], target="y")
    assert built.task is Task.REGRESSION
    assert isinstance(built.output, NumericProfile)
    assert built.classes is None


def test_build_profile_names_a_missing_column(reference: dict[str, Any]) -> None:
    with pytest.raises(ValueError, match="no column 'nope'"):
        build_profile(reference, [FeatureSpec("nope", FeatureType.NUMERIC)])


def test_build_profile_needs_one_proba_column_per_class(reference: dict[str, Any]) -> None:
    with pytest.raises(ValueError, match="1 probability columns were given for 2 classes"):
        build_profile(reference, [], target="y", proba_columns=["p1"])


def test_json_round_trip_keeps_the_digest(profile: Profile) -> None:
    again = profile_from_json(profile_to_json(profile))
    assert compute_profile_digest(again) == compute_profile_digest(profile)
    assert again.feature("x").n_bins == profile.feature("x").n_bins


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda d: d.update(kind="other"), "kind is 'other'"),
        (lambda d: d.update(schemaVersion=9), "schemaVersion is 9"),
        (lambda d: d["features"][0].update(counts=[1, 2]), r"features\[0\].counts has 2 entries"),
        (lambda d: d["features"][0].update(type="text"), r"features\[0\].type is 'text'"),
        (lambda d: d["features"][2].pop("categories"), r"features\[2\].categories is missing"),
    ],
)
def test_bad_profile_documents_name_the_field(profile: Profile, mutate: Any, message: str) -> None:
    doc = profile_to_json(profile)
    mutate(doc)
    with pytest.raises(ProfileError, match=message):
        profile_from_json(doc)


def test_feature_lookup_names_what_exists(profile: Profile) -> None:
    with pytest.raises(KeyError, match="has no feature 'w'; it has: x, z, color"):
        profile.feature("w")
