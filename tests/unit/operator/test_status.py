"""Status computation as a pure function: conditions, phase, idempotence."""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from driftward_operator import api
from driftward_operator.conditions import find_condition, set_condition
from driftward_operator.lifecycle import Rollout, compute_lifecycle
from driftward_operator.pods import PodReadiness
from driftward_operator.status import compute_pods_to_probe, compute_rollout, compute_status
from driftward_operator.timeutil import parse_duration

T0 = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)
MakeMM = Callable[..., dict[str, Any]]


def condition(status: dict[str, Any], type_: str) -> dict[str, Any]:
    found = find_condition(status["conditions"], type_)
    assert found is not None, type_
    return dict(found)


def step(mm: dict[str, Any], rollout: Rollout, now: datetime) -> dict[str, Any]:
    lifecycle = compute_lifecycle(mm["spec"], mm.get("status") or {}, rollout, now)
    status = compute_status(mm, lifecycle, rollout, now)
    mm["status"] = status
    return status


def test_new_model_is_pending_with_all_conditions(make_mm: MakeMM) -> None:
    mm = make_mm()
    status = step(mm, Rollout(), T0)
    assert status["observedGeneration"] == 1
    assert status["phase"] == api.PHASE_PROGRESSING
    assert [c["type"] for c in status["conditions"]] == list(api.CONDITION_TYPES)
    assert condition(status, api.READY)["status"] == "False"
    assert condition(status, api.READY)["reason"] == api.Reason.DEPLOYMENT_MISSING
    assert condition(status, api.DRIFTED)["status"] == "Unknown"
    assert condition(status, api.ROLLED_BACK)["status"] == "False"


def test_available_deployment_makes_ready_and_then_healthy(make_mm: MakeMM) -> None:
    mm = make_mm(policy__promotionWindow="5m")
    digest = mm["spec"]["model"]["sha256"]
    step(mm, Rollout(), T0)
    status = step(
        mm, Rollout(exists=True, digest=digest, available=True), T0 + timedelta(minutes=1)
    )
    assert condition(status, api.READY)["status"] == "True"
    assert condition(status, api.PROGRESSING)["reason"] == api.Reason.IN_PROMOTION_WINDOW
    assert status["phase"] == api.PHASE_PROGRESSING
    status = step(
        mm, Rollout(exists=True, digest=digest, available=True), T0 + timedelta(minutes=7)
    )
    assert status["phase"] == api.PHASE_HEALTHY
    assert condition(status, api.PROGRESSING)["status"] == "False"
    assert status["stableVersion"] == "v1"


def test_deadline_exceeded_fails_with_the_deployment_message(make_mm: MakeMM) -> None:
    mm = make_mm()
    rollout = Rollout(
        exists=True, digest="x", deadline_exceeded=True, message="ReplicaSet timed out"
    )
    status = step(mm, rollout, T0)
    assert status["phase"] == api.PHASE_FAILED
    ready = condition(status, api.READY)
    assert ready["reason"] == api.Reason.PROGRESS_DEADLINE_EXCEEDED
    assert "ReplicaSet timed out" in ready["message"]


def test_transition_time_moves_only_when_status_changes(make_mm: MakeMM) -> None:
    mm = make_mm()
    first = step(mm, Rollout(), T0)
    second = step(mm, Rollout(), T0 + timedelta(minutes=3))
    assert condition(first, api.READY) == condition(second, api.READY)
    digest = mm["spec"]["model"]["sha256"]
    third = step(mm, Rollout(exists=True, digest=digest, available=True), T0 + timedelta(minutes=4))
    assert condition(third, api.READY)["lastTransitionTime"] == "2026-11-23T09:04:00Z"


def test_carried_fields_survive(make_mm: MakeMM) -> None:
    mm = make_mm()
    mm["status"] = {"drift": {"state": "Ok"}, "rollbackTimes": ["2026-11-22T00:00:00Z"]}
    status = step(mm, Rollout(), T0)
    assert status["drift"] == {"state": "Ok"}
    assert status["rollbackTimes"] == ["2026-11-22T00:00:00Z"]


def test_compute_rollout_requires_current_generation_and_all_replicas() -> None:
    deployment = {
        "metadata": {"generation": 3, "annotations": {api.ANNOTATION_DIGEST: "abc"}},
        "spec": {"replicas": 2},
        "status": {
            "observedGeneration": 3,
            "replicas": 2,
            "updatedReplicas": 2,
            "availableReplicas": 2,
        },
    }
    assert compute_rollout(deployment) == Rollout(exists=True, digest="abc", available=True)
    stale = {**deployment, "status": {**deployment["status"], "observedGeneration": 2}}
    assert compute_rollout(stale).available is False
    surging = {**deployment, "status": {**deployment["status"], "replicas": 3}}
    assert compute_rollout(surging).available is False
    assert compute_rollout(None) == Rollout()


def test_set_condition_replaces_by_type() -> None:
    conditions = set_condition([], "Ready", True, reason="A", message="a", generation=1, now="t1")
    conditions = set_condition(
        conditions, "Ready", False, reason="B", message="b", generation=2, now="t2"
    )
    assert conditions == [
        {
            "type": "Ready",
            "status": "False",
            "reason": "B",
            "message": "b",
            "observedGeneration": 2,
            "lastTransitionTime": "t2",
        }
    ]


@pytest.mark.parametrize("bad", ["", "10", "5 s", "1d"])
def test_parse_duration_names_bad_text(bad: str) -> None:
    with pytest.raises(ValueError, match=re.escape(repr(bad))):
        parse_duration(bad)


def test_parse_duration_accepts_go_durations() -> None:
    assert parse_duration("1h30m") == timedelta(hours=1, minutes=30)
    assert parse_duration("500ms") == timedelta(milliseconds=500)


def test_rejected_child_fails_with_the_api_message(make_mm: MakeMM) -> None:
    mm = make_mm()
    lifecycle = compute_lifecycle(mm["spec"], {}, Rollout(), T0)
    status = compute_status(mm, lifecycle, Rollout(), T0, rejection="Deployment/iris: bad env")
    ready = condition(status, api.READY)
    assert ready["status"] == "False"
    assert ready["reason"] == api.Reason.CHILD_REJECTED
    assert "Deployment/iris: bad env" in ready["message"]
    assert status["phase"] == api.PHASE_FAILED


def test_stuck_pod_reason_names_the_problem(make_mm: MakeMM) -> None:
    mm = make_mm()
    lifecycle = compute_lifecycle(mm["spec"], {}, Rollout(), T0)
    said = PodReadiness(
        pod="iris-abc", ready=False, reason="DigestMismatch", message="sha256 is 00ff"
    )
    status = compute_status(mm, lifecycle, Rollout(exists=True, digest="x"), T0, not_ready=said)
    ready = condition(status, api.READY)
    assert ready["reason"] == "DigestMismatch"
    assert ready["message"] == "pod iris-abc cannot serve version v1: sha256 is 00ff"
    assert status["phase"] == api.PHASE_FAILED


def test_only_running_unready_pods_with_an_ip_are_probed() -> None:
    def pod(name: str, phase: str, ip: str | None, ready: bool) -> dict[str, Any]:
        status: dict[str, Any] = {
            "phase": phase,
            "containerStatuses": [{"name": "model-server", "ready": ready}],
        }
        if ip:
            status["podIP"] = ip
        return {"metadata": {"name": name}, "status": status}

    pods = [
        pod("ready", "Running", "10.0.0.1", True),
        pod("pending", "Pending", None, False),
        pod("stuck-a", "Running", "10.0.0.2", False),
        pod("stuck-b", "Running", "10.0.0.3", False),
    ]
    assert compute_pods_to_probe(pods) == [("stuck-a", "10.0.0.2"), ("stuck-b", "10.0.0.3")]
    assert compute_pods_to_probe(pods, limit=1) == [("stuck-a", "10.0.0.2")]
