"""Merging monitor windows across pods is the test on the pooled sample, never a vote."""

from __future__ import annotations

from datetime import UTC, datetime

import numpy as np

from driftward_operator import policy
from driftward_operator.aggregate import (
    PodWindow,
    compute_aggregate,
    compute_drift_status,
    compute_performance_status,
    compute_policy_verdict,
    compute_selection,
)
from driftward_serving.monitor.verdict import State, compute_verdict
from driftward_serving.monitor.window import LiveWindow
from tests.unit.monitor.test_window import make_predictions

from .verdicts import build_aggregate, build_pod_window, build_profile_and_config

NOW = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)


def test_merged_windows_give_the_verdict_of_the_pooled_sample() -> None:
    profile, config = build_profile_and_config()
    answers = [
        build_pod_window(profile, config, "a", 300, shift=0.3, seed=1),
        build_pod_window(profile, config, "b", 300, shift=0.3, seed=2, start=300),
    ]
    merged = compute_aggregate(compute_selection(answers), profile, config, NOW)
    pooled_window = LiveWindow(profile, config, join_buffer_size=10_000)
    pooled_window.add_predictions(make_predictions(np.random.default_rng(1), 300, 0, 0.3))
    pooled_window.add_predictions(make_predictions(np.random.default_rng(2), 300, 300, 0.3))
    pooled = compute_verdict(profile, config, pooled_window.snapshot(), NOW.timestamp())
    assert merged is not None
    assert merged.pods == ("a", "b")
    assert merged.verdict.drift.samples == 600
    by_feature = {e.feature: e for e in merged.verdict.drift.features}
    for expected in pooled.drift.features:
        assert by_feature[expected.feature].statistic == expected.statistic
        assert by_feature[expected.feature].p_value == expected.p_value
    assert merged.verdict.drift.state is pooled.drift.state


def test_pods_too_small_alone_are_judged_together() -> None:
    profile, config = build_profile_and_config()
    alone = build_pod_window(profile, config, "a", 150, shift=1.0)
    selection = compute_selection([alone])
    single = compute_aggregate(selection, profile, config, NOW)
    assert single is not None
    assert single.verdict.drift.state is State.INCONCLUSIVE  # 150 < minSamples 200
    pair = [alone, build_pod_window(profile, config, "b", 150, shift=1.0, seed=3, start=150)]
    merged = compute_aggregate(compute_selection(pair), profile, config, NOW)
    assert merged is not None
    assert merged.verdict.drift.state is State.DRIFTED
    assert "x" in merged.verdict.drift.drifted_features


def test_pods_on_another_reference_or_silent_are_left_out_and_named() -> None:
    profile, config = build_profile_and_config()
    good = build_pod_window(profile, config, "a", 300)
    assert good.document is not None
    fewer = build_pod_window(profile, config, "b", 100, seed=5)
    assert fewer.document is not None
    other = PodWindow("b", document={**fewer.document, "profileDigest": "f" * 64})
    silent = PodWindow("c", error="GET /v1/window failed: connection refused")
    garbage = PodWindow("d", document={"schemaVersion": 1})
    selection = compute_selection([good, other, silent, garbage])
    assert selection.pods == ("a",)
    text = "\n".join(selection.problems)
    assert "pods b: another reference profile (ffffffffffff)" in text
    assert "pod c: GET /v1/window failed: connection refused" in text
    assert "pod d: unreadable window" in text
    assert compute_aggregate(compute_selection([silent]), profile, config, NOW) is None


def test_policy_verdict_and_status_name_the_evidence() -> None:
    drifted = build_aggregate(NOW, shift=1.0)
    verdict = compute_policy_verdict(drifted)
    assert verdict.version == "v2"
    finding = verdict.findings[policy.Kind.DRIFT]
    assert finding.state is policy.State.BREACH
    assert finding.evidence.startswith("drift in x (")
    assert verdict.findings[policy.Kind.DEGRADATION].state is policy.State.INCONCLUSIVE
    status = compute_drift_status(drifted, NOW)
    assert status["state"] == "Drifted"
    assert status["driftedFeatures"] == ["x"]
    assert status["pods"] == 2
    assert status["samples"] == 1200  # each pod's window (size 1000) holds its 600
    assert status["evaluatedAt"] == "2026-11-23T12:00:00Z"
    performance = compute_performance_status(drifted)
    assert performance is not None
    assert performance["state"] == "Inconclusive"
    assert performance["labels"] == 0

    clean = compute_policy_verdict(build_aggregate(NOW, shift=0.0))
    assert clean.findings[policy.Kind.DRIFT].state is policy.State.OK
