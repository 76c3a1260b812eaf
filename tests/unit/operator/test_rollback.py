"""From a merged verdict to a rollback: the plan, the sticky lifecycle, conditions, requests."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from driftward_operator import api
from driftward_operator.analysis import compute_analysis
from driftward_operator.lifecycle import Rollout, compute_lifecycle
from driftward_operator.reconcile import compute_event_name, compute_plan
from driftward_operator.status import compute_status

from .verdicts import build_aggregate

NOW = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)
V1 = {
    "version": "v1",
    "uri": "file:///m/v1.skops",
    "sha256": "1" * 64,
    "format": "Skops",
    "deployedAt": "2026-11-22T10:00:00Z",
    "readyAt": "2026-11-22T10:01:00Z",
    "promotedAt": "2026-11-22T11:01:00Z",
    "outcome": api.OUTCOME_STABLE,
}
V2 = {
    "version": "v2",
    "uri": "file:///m/v2.skops",
    "sha256": "2" * 64,
    "format": "Skops",
    "deployedAt": "2026-11-23T11:00:00Z",
    "readyAt": "2026-11-23T11:01:00Z",
    "outcome": api.OUTCOME_CANDIDATE,
}


@pytest.fixture
def candidate(make_mm: Callable[..., dict[str, Any]]) -> dict[str, Any]:
    """v2 serving as the candidate next to stable v1, two drift breaches already counted."""
    mm = make_mm(model__version="v2", model__uri=V2["uri"], model__sha256=V2["sha256"])
    mm["status"] = {
        "activeVersion": "v2",
        "activeDigest": V2["sha256"],
        "stableVersion": "v1",
        "stableDigest": V1["sha256"],
        "candidateVersion": "v2",
        "breaches": {"drift": 2, "degradation": 0, "estimatedDegradation": 0},
        "history": [dict(V2), dict(V1)],
    }
    return mm


def _serving(digest: str) -> Rollout:
    return Rollout(exists=True, digest=digest, available=True)


def _condition(status: dict[str, Any], type_: str) -> dict[str, Any]:
    return next(c for c in status["conditions"] if c["type"] == type_)


def test_third_drift_breach_rolls_back_to_stable_and_sticks(candidate: dict[str, Any]) -> None:
    plan = compute_plan(candidate, build_aggregate(NOW, shift=1.0), (), NOW, evaluated=True)
    assert plan.rollback is not None
    assert plan.rollback.reason == api.Reason.DRIFT_DETECTED
    assert plan.status["activeVersion"] == "v1"
    assert plan.status["activeDigest"] == V1["sha256"]
    assert plan.status["candidateVersion"] == ""
    v2 = plan.status["history"][0]
    assert v2["outcome"] == api.OUTCOME_ROLLED_BACK
    assert v2["reason"] == api.Reason.DRIFT_DETECTED
    assert v2["rolledBackAt"] == "2026-11-23T12:00:00Z"
    assert "drift in x (" in v2["message"]

    lifecycle = compute_lifecycle(candidate["spec"], plan.status, _serving(V2["sha256"]), NOW)
    assert lifecycle.active.version == "v1"
    assert lifecycle.blocked_version == "v2"
    status = compute_status(
        {**candidate, "status": plan.status},
        lifecycle,
        _serving(V1["sha256"]),
        NOW,
        evaluation=plan.evaluation,
    )
    rolled_back = _condition(status, api.ROLLED_BACK)
    assert rolled_back["status"] == "True"
    assert rolled_back["reason"] == api.Reason.DRIFT_DETECTED
    assert "drift in x (" in rolled_back["message"]
    assert api.ANNOTATION_RETRY in rolled_back["message"]
    assert _condition(status, api.DRIFTED)["status"] == "True"
    assert status["phase"] == api.PHASE_ROLLED_BACK
    assert status["breaches"] == {"drift": 0, "degradation": 0, "estimatedDegradation": 0}
    assert status["rollbackTimes"] == ["2026-11-23T12:00:00Z"]
    assert status["drift"]["state"] == "Drifted"

    # A GitOps re-sync of the same spec, a minute later, changes nothing.
    later = NOW + timedelta(minutes=1)
    again = compute_plan({**candidate, "status": status}, None, (), later, evaluated=False)
    assert again.rollback is None
    relifecycle = compute_lifecycle(candidate["spec"], again.status, _serving(V1["sha256"]), later)
    assert relifecycle.active.version == "v1"
    assert relifecycle.blocked_version == "v2"
    assert relifecycle.events == ()


def test_rollback_event_name_is_stable_across_a_crash(candidate: dict[str, Any]) -> None:
    first = compute_plan(candidate, build_aggregate(NOW, shift=1.0), (), NOW, evaluated=True)
    replay_time = NOW + timedelta(seconds=40)
    replay = compute_plan(
        candidate, build_aggregate(replay_time, shift=1.0), (), replay_time, evaluated=True
    )
    assert first.rollback is not None
    assert replay.rollback is not None
    name = compute_event_name(candidate, first.status["history"][0], "rollback")
    assert name == compute_event_name(candidate, replay.status["history"][0], "rollback")
    assert name.startswith("iris.rollback.")


def test_noise_and_too_few_samples_do_not_act(candidate: dict[str, Any]) -> None:
    clean = compute_plan(candidate, build_aggregate(NOW, shift=0.0), (), NOW, evaluated=True)
    assert clean.rollback is None
    assert clean.evaluation is not None
    assert clean.evaluation.decision.breaches["drift"] == 0
    few = compute_plan(candidate, build_aggregate(NOW, shift=2.0, n=50), (), NOW, evaluated=True)
    assert few.rollback is None
    assert few.evaluation is not None
    assert few.evaluation.decision.breaches["drift"] == 2  # held, not reset or raised


def test_dry_run_says_it_would_roll_back_once(candidate: dict[str, Any]) -> None:
    candidate["spec"]["policy"]["dryRun"] = True
    plan = compute_plan(candidate, build_aggregate(NOW, shift=1.0), (), NOW, evaluated=True)
    assert plan.rollback is None
    assert plan.status["activeVersion"] == "v2"
    [event] = plan.events
    assert event.reason == api.Reason.WOULD_ROLL_BACK
    assert event.message.startswith("dry run: would roll back to stable version v1")
    candidate["status"]["breaches"]["drift"] = 3
    later = compute_plan(candidate, build_aggregate(NOW, shift=1.0), (), NOW, evaluated=True)
    assert later.events == ()


def test_manual_rollback_acts_once_per_annotation_value(candidate: dict[str, Any]) -> None:
    candidate["metadata"]["annotations"] = {api.ANNOTATION_ROLLBACK: "2026-11-23T12:00"}
    candidate["status"]["breaches"]["drift"] = 0
    plan = compute_plan(candidate, None, (), NOW, evaluated=False)
    assert plan.rollback is not None
    assert plan.rollback.reason == api.Reason.MANUAL_ROLLBACK
    assert plan.status["activeVersion"] == "v1"
    assert plan.requests.handled == {"rollback": "2026-11-23T12:00"}
    handled = {**candidate, "status": {**candidate["status"], "requests": plan.requests.handled}}
    assert compute_plan(handled, None, (), NOW, evaluated=False).rollback is None


def test_retry_redeploys_a_rolled_back_version(candidate: dict[str, Any]) -> None:
    rolled = compute_plan(candidate, build_aggregate(NOW, shift=1.0), (), NOW, evaluated=True)
    candidate["status"] = rolled.status
    candidate["metadata"]["annotations"] = {api.ANNOTATION_RETRY: "1"}
    later = NOW + timedelta(hours=1)
    plan = compute_plan(candidate, None, (), later, evaluated=False)
    assert [e.reason for e in plan.events] == [api.Reason.RETRY]
    lifecycle = compute_lifecycle(candidate["spec"], plan.status, _serving(V1["sha256"]), later)
    assert lifecycle.active.version == "v2"
    assert lifecycle.blocked_version is None
    assert lifecycle.fields["candidateVersion"] == "v2"
    assert lifecycle.fields["history"][0]["deployedAt"] == "2026-11-23T13:00:00Z"


def test_retry_of_a_version_not_rolled_back_is_refused_with_a_reason(
    candidate: dict[str, Any],
) -> None:
    candidate["metadata"]["annotations"] = {api.ANNOTATION_RETRY: "x"}
    plan = compute_plan(candidate, None, (), NOW, evaluated=False)
    [event] = plan.events
    assert event.type == "Warning"
    assert event.reason == api.Reason.REQUEST_IGNORED
    assert "version v2 is not rolled back" in event.message


def test_promote_request_skips_the_window(candidate: dict[str, Any]) -> None:
    candidate["metadata"]["annotations"] = {api.ANNOTATION_PROMOTE: "now"}
    candidate["status"]["breaches"]["drift"] = 0
    plan = compute_plan(candidate, None, (), NOW, evaluated=False)
    assert plan.requests.promote == "now"
    lifecycle = compute_lifecycle(
        candidate["spec"], plan.status, _serving(V2["sha256"]), NOW, promote_now=True
    )
    assert lifecycle.fields["stableVersion"] == "v2"
    assert lifecycle.fields["candidateVersion"] == ""


def test_drift_on_stable_rolls_back_to_the_previous_stable(
    make_mm: Callable[..., dict[str, Any]],
) -> None:
    mm = make_mm(model__version="v2", model__uri=V2["uri"], model__sha256=V2["sha256"])
    v2 = {**V2, "outcome": api.OUTCOME_STABLE, "promotedAt": "2026-11-23T11:30:00Z"}
    v1 = {**V1, "outcome": api.OUTCOME_SUPERSEDED}
    mm["status"] = {
        "activeVersion": "v2",
        "activeDigest": V2["sha256"],
        "stableVersion": "v2",
        "stableDigest": V2["sha256"],
        "candidateVersion": "",
        "breaches": {"drift": 2},
        "history": [v2, v1],
    }
    plan = compute_plan(mm, build_aggregate(NOW, shift=1.0), (), NOW, evaluated=True)
    assert plan.rollback is not None
    assert plan.status["stableVersion"] == "v1"
    assert plan.status["history"][1]["outcome"] == api.OUTCOME_STABLE

    mm["status"]["history"] = [v2]  # nothing older to go back to: alert and mark Degraded
    alone = compute_plan(mm, build_aggregate(NOW, shift=1.0), (), NOW, evaluated=True)
    assert alone.rollback is None
    lifecycle = compute_lifecycle(mm["spec"], alone.status, _serving(V2["sha256"]), NOW)
    status = compute_status(
        {**mm, "status": alone.status},
        lifecycle,
        _serving(V2["sha256"]),
        NOW,
        evaluation=alone.evaluation,
    )
    degraded = _condition(status, api.DEGRADED)
    assert degraded["status"] == "True"
    assert "no earlier stable version to roll back to" in degraded["message"]
    analysis = compute_analysis({**mm, "status": status})
    assert analysis["healthy"] is False
    assert any(r.startswith("Degraded (DriftDetected)") for r in analysis["reasons"])
