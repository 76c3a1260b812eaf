"""Window counts merge across pods exactly, and survive the JSON of GET /v1/window."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from driftward_serving.monitor.config import MonitorConfig
from driftward_serving.monitor.counts import (
    merge_window_counts,
    window_counts_from_json,
    window_counts_to_json,
)
from driftward_serving.monitor.profile import Profile
from driftward_serving.monitor.verdict import compute_verdict, verdict_to_json
from driftward_serving.monitor.window import LabelRecord, LiveWindow

from .test_window import make_predictions


def _pod(
    profile: Profile, config: MonitorConfig, rng: np.random.Generator, start: int
) -> LiveWindow:
    window = LiveWindow(profile, config, join_buffer_size=1_000)
    records = make_predictions(rng, 800, start=start, shift=0.4)
    window.add_predictions(records)
    window.add_labels([LabelRecord(r.id, 0.0, r.output) for r in records[:500]])
    return window


def test_merged_pods_equal_the_sum_of_their_counts(
    rng: np.random.Generator, profile: Profile, config: MonitorConfig
) -> None:
    a = _pod(profile, config, rng, 0).snapshot()
    b = _pod(profile, config, rng, 10_000).snapshot()
    merged = merge_window_counts([a, b])
    assert merged.samples == 1_600
    for name in a.features:
        np.testing.assert_array_equal(merged.features[name], a.features[name] + b.features[name])
    assert merged.classification is not None
    assert merged.classification.confusion.sum() == 1_000
    assert merged.first_ts == min(a.first_ts or 0, b.first_ts or 0)
    assert merged.last_ts == max(a.last_ts or 0, b.last_ts or 0)
    # The operator's verdict on the merge has twice the samples of each pod.
    verdict = compute_verdict(profile, config, merged, now=0.0)
    assert verdict.drift.samples == 1_600
    assert "x" in verdict.drift.drifted_features


def test_json_round_trip_gives_the_same_verdict(
    rng: np.random.Generator, profile: Profile, config: MonitorConfig
) -> None:
    counts = _pod(profile, config, rng, 0).snapshot()
    again = window_counts_from_json(window_counts_to_json(counts))
    assert verdict_to_json(compute_verdict(profile, config, again, 1.0)) == verdict_to_json(
        compute_verdict(profile, config, counts, 1.0)
    )


def test_every_section_field_is_added_and_a_missing_section_is_named(
    rng: np.random.Generator, profile: Profile, config: MonitorConfig
) -> None:
    a = _pod(profile, config, rng, 0).snapshot()
    b = _pod(profile, config, rng, 10_000).snapshot()
    merged = merge_window_counts([a, b])
    for section in ("classification", "estimated"):
        got, left, right = (getattr(w, section) for w in (merged, a, b))
        assert got is not None
        for field in dataclasses.fields(got):
            want = getattr(left, field.name) + getattr(right, field.name)
            np.testing.assert_array_equal(getattr(got, field.name), want)
    assert merged.regression is None
    with pytest.raises(ValueError, match="classification is present in only some of them"):
        merge_window_counts([a, dataclasses.replace(b, classification=None)])


def test_windows_from_different_profiles_do_not_merge(
    rng: np.random.Generator, profile: Profile, config: MonitorConfig
) -> None:
    a = _pod(profile, config, rng, 0).snapshot()
    b = dataclasses.replace(a, profile_digest="f" * 64)
    with pytest.raises(ValueError, match="different reference profiles"):
        merge_window_counts([a, b])
    with pytest.raises(ValueError, match="at least one window"):
        merge_window_counts([])


def test_window_json_is_checked(
    rng: np.random.Generator, profile: Profile, config: MonitorConfig
) -> None:
    doc = window_counts_to_json(_pod(profile, config, rng, 0).snapshot())
    with pytest.raises(ValueError, match="schemaVersion is 7"):
        window_counts_from_json({**doc, "schemaVersion": 7})
    with pytest.raises(ValueError, match="missing 'samples'"):
        window_counts_from_json({k: v for k, v in doc.items() if k != "samples"})
    bad = {**doc, "features": {**doc["features"], "x": [-1] * len(doc["features"]["x"])}}
    with pytest.raises(ValueError, match=r"features\.x has negative counts"):
        window_counts_from_json(bad)


def test_counts_of_the_wrong_shape_are_named(
    rng: np.random.Generator, profile: Profile, config: MonitorConfig
) -> None:
    counts = _pod(profile, config, rng, 0).snapshot()
    short = dataclasses.replace(counts, features={**counts.features, "z": np.zeros(3, np.int64)})
    with pytest.raises(ValueError, match="feature 'z' has 3 window counts"):
        compute_verdict(profile, config, short, 0.0)
