"""The rollback policy as a pure function: hysteresis, inconclusive holds, cooldown, limits."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from driftward_operator import api
from driftward_operator.policy import (
    Action,
    Finding,
    Kind,
    State,
    Verdict,
    compute_decision,
    compute_rollback_target,
)

T0 = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)
POLICY: dict[str, Any] = {
    "onDrift": "Rollback",
    "onDegradation": "Rollback",
    "onEstimatedDegradation": "Ignore",
    "consecutiveBreaches": 3,
    "cooldown": "10m",
    "maxRollbacks": 2,
    "rollbackRateWindow": "24h",
    "dryRun": False,
}
V1 = {
    "version": "v1",
    "sha256": "1" * 64,
    "uri": "file:///v1",
    "outcome": "Stable",
    "promotedAt": "x",
}
V2 = {"version": "v2", "sha256": "2" * 64, "uri": "file:///v2", "outcome": "Candidate"}


def candidate_status(**extra: Any) -> dict[str, Any]:
    status = {
        "activeVersion": "v2",
        "activeDigest": "2" * 64,
        "stableVersion": "v1",
        "stableDigest": "1" * 64,
        "candidateVersion": "v2",
        "history": [dict(V2), dict(V1)],
    }
    return status | extra


def drift(state: State = State.BREACH, version: str = "v2") -> Verdict:
    return Verdict(
        version, {Kind.DRIFT: Finding(state, "features petal_length, petal_width drifted")}
    )


def run(
    verdicts: list[Verdict | None], status: dict[str, Any], policy: dict[str, Any] = POLICY
) -> Any:
    decision = None
    for i, verdict in enumerate(verdicts):
        decision = compute_decision(verdict, policy, status, T0 + timedelta(minutes=i))
        status = status | {"breaches": decision.breaches, "rollbackTimes": decision.rollback_times}
    return decision


def test_rollback_needs_consecutive_breaches() -> None:
    two = run([drift(), drift()], candidate_status())
    assert two.action is Action.NONE
    assert two.breaches["drift"] == 2
    assert two.promotion_blocked is True
    three = run([drift(), drift(), drift()], candidate_status())
    assert three.action is Action.ROLLBACK
    assert three.reason == api.Reason.DRIFT_DETECTED
    assert three.target["version"] == "v1"
    assert "petal_length" in three.message
    assert "rolled back to stable version v1" in three.message
    assert three.breaches == {"degradation": 0, "drift": 0, "estimatedDegradation": 0}
    assert three.rollback_times == ["2026-11-23T12:02:00Z"]


def test_a_clean_evaluation_resets_the_count() -> None:
    decision = run([drift(), drift(), drift(State.OK), drift(), drift()], candidate_status())
    assert decision.action is Action.NONE
    assert decision.breaches["drift"] == 2


def test_inconclusive_holds_the_count_and_never_acts() -> None:
    held = run([drift(), drift(), drift(State.INCONCLUSIVE)], candidate_status())
    assert held.action is Action.NONE
    assert held.breaches["drift"] == 2
    only_inconclusive = run([drift(State.INCONCLUSIVE)] * 20, candidate_status())
    assert only_inconclusive.action is Action.NONE
    assert only_inconclusive.promotion_blocked is False


def test_realized_degradation_outranks_drift() -> None:
    both = Verdict(
        "v2",
        {
            Kind.DRIFT: Finding(State.BREACH, "feature x drifted"),
            Kind.DEGRADATION: Finding(State.BREACH, "accuracy 0.71 < baseline 0.93 - 0.05"),
        },
    )
    decision = run([both] * 3, candidate_status())
    assert decision.action is Action.ROLLBACK
    assert decision.reason == api.Reason.PERFORMANCE_DEGRADED
    assert "accuracy 0.71" in decision.message


@pytest.mark.parametrize(("action", "expected"), [("Alert", Action.ALERT), ("Ignore", Action.NONE)])
def test_policy_action_per_kind(action: str, expected: Action) -> None:
    decision = run([drift()] * 3, candidate_status(), POLICY | {"onDrift": action})
    assert decision.action is expected


def test_estimated_degradation_is_ignored_by_default() -> None:
    estimated = Verdict(
        "v2", {Kind.ESTIMATED_DEGRADATION: Finding(State.BREACH, "estimated accuracy 0.6")}
    )
    assert run([estimated] * 5, candidate_status()).action is Action.NONE
    opted_in = run(
        [estimated] * 3, candidate_status(), POLICY | {"onEstimatedDegradation": "Rollback"}
    )
    assert opted_in.action is Action.ROLLBACK


def test_dry_run_says_it_would_roll_back_and_changes_nothing() -> None:
    decision = run([drift()] * 3, candidate_status(), POLICY | {"dryRun": True})
    assert decision.action is Action.WOULD_ROLLBACK
    assert decision.message.startswith("dry run: would roll back to stable version v1")
    assert decision.rollback_times == []
    assert decision.breaches["drift"] == 3


def test_cooldown_turns_a_rollback_into_an_alert() -> None:
    status = candidate_status(rollbackTimes=["2026-11-23T11:55:00Z"])
    decision = run([drift()] * 3, status)
    assert decision.action is Action.ALERT
    assert "within the 10m cooldown" in decision.message


def test_rate_limit_turns_a_rollback_into_an_alert() -> None:
    status = candidate_status(rollbackTimes=["2026-11-23T01:00:00Z", "2026-11-23T03:00:00Z"])
    decision = run([drift()] * 3, status)
    assert decision.action is Action.ALERT
    assert "2 rollbacks in the last 24h reached maxRollbacks=2" in decision.message
    old = candidate_status(rollbackTimes=["2026-11-21T01:00:00Z", "2026-11-21T03:00:00Z"])
    assert run([drift()] * 3, old).action is Action.ROLLBACK


def test_verdict_about_another_version_is_ignored() -> None:
    decision = run([drift(version="v1")] * 5, candidate_status())
    assert decision.action is Action.NONE


def test_stable_model_rolls_back_to_the_previous_stable() -> None:
    v0 = {
        "version": "v0",
        "sha256": "0" * 64,
        "uri": "file:///v0",
        "outcome": "Superseded",
        "promotedAt": "y",
    }
    status = {
        "activeVersion": "v1",
        "activeDigest": "1" * 64,
        "stableVersion": "v1",
        "stableDigest": "1" * 64,
        "candidateVersion": "",
        "history": [dict(V1), v0],
    }
    decision = run([drift(version="v1")] * 3, status)
    assert decision.action is Action.ROLLBACK
    assert decision.target["version"] == "v0"


def test_stable_model_without_history_alerts() -> None:
    status = {
        "activeVersion": "v1",
        "activeDigest": "1" * 64,
        "stableVersion": "v1",
        "stableDigest": "1" * 64,
        "history": [dict(V1)],
    }
    decision = run([drift(version="v1")] * 3, status)
    assert decision.action is Action.ALERT
    assert "no earlier stable version" in decision.message


def test_rolled_back_or_never_promoted_versions_are_not_targets() -> None:
    status = {
        "activeVersion": "v3",
        "activeDigest": "3" * 64,
        "stableVersion": "v3",
        "stableDigest": "3" * 64,
        "history": [
            {"version": "v3", "sha256": "3" * 64, "outcome": "Stable", "promotedAt": "z"},
            {"version": "v2", "sha256": "2" * 64, "outcome": "RolledBack"},
            {"version": "vx", "sha256": "9" * 64, "outcome": "Superseded"},
            {"version": "v1", "sha256": "1" * 64, "outcome": "Superseded", "promotedAt": "x"},
        ],
    }
    target = compute_rollback_target(status)
    assert target is not None
    assert target["version"] == "v1"
