"""The version lifecycle as a pure function: candidate, promotion, supersession, stickiness."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from driftward_operator import api
from driftward_operator.lifecycle import Rollout, compute_lifecycle

T0 = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)
MakeMM = Callable[..., dict[str, Any]]


def serving(digest: str) -> Rollout:
    return Rollout(exists=True, digest=digest, available=True)


def run(mm: dict[str, Any], status: dict[str, Any], rollout: Rollout, now: datetime) -> Any:
    return compute_lifecycle(mm["spec"], status, rollout, now)


def test_first_version_is_a_candidate_then_promoted_after_window(make_mm: MakeMM) -> None:
    mm = make_mm(policy__promotionWindow="10m")
    digest = mm["spec"]["model"]["sha256"]

    first = run(mm, {}, Rollout(), T0)
    assert first.fields["activeVersion"] == "v1"
    assert first.fields["candidateVersion"] == "v1"
    assert first.fields["stableVersion"] == ""
    assert [e.reason for e in first.events] == [api.Reason.CANDIDATE_DEPLOYED]

    ready = run(mm, first.fields, serving(digest), T0 + timedelta(minutes=1))
    assert ready.fields["history"][0]["readyAt"] == "2026-11-23T09:01:00Z"
    assert ready.fields["candidateVersion"] == "v1"
    assert ready.events == ()

    early = run(mm, ready.fields, serving(digest), T0 + timedelta(minutes=10))
    assert early.fields["stableVersion"] == ""

    promoted = run(mm, ready.fields, serving(digest), T0 + timedelta(minutes=11))
    assert promoted.fields["stableVersion"] == "v1"
    assert promoted.fields["candidateVersion"] == ""
    entry = promoted.fields["history"][0]
    assert entry["outcome"] == api.OUTCOME_STABLE
    assert entry["promotedAt"] == "2026-11-23T09:11:00Z"
    assert [e.reason for e in promoted.events] == [api.Reason.PROMOTED]


def test_no_promotion_while_the_deployment_serves_another_digest(make_mm: MakeMM) -> None:
    mm = make_mm(policy__promotionWindow="1s")
    first = run(mm, {}, Rollout(), T0)
    stale = run(mm, first.fields, serving("0" * 64), T0 + timedelta(hours=2))
    assert stale.fields["stableVersion"] == ""
    assert "readyAt" not in stale.fields["history"][0]


def test_promotion_blocked_holds_the_candidate(make_mm: MakeMM) -> None:
    mm = make_mm(policy__promotionWindow="1s")
    digest = mm["spec"]["model"]["sha256"]
    first = run(mm, {}, Rollout(), T0)
    ready = run(mm, first.fields, serving(digest), T0)
    held = compute_lifecycle(
        mm["spec"], ready.fields, serving(digest), T0 + timedelta(hours=1), promotion_blocked=True
    )
    assert held.fields["candidateVersion"] == "v1"
    assert held.fields["stableVersion"] == ""


def promoted_v1(make_mm: MakeMM) -> tuple[dict[str, Any], dict[str, Any]]:
    mm = make_mm(policy__promotionWindow="1m")
    digest = mm["spec"]["model"]["sha256"]
    status = run(mm, {}, Rollout(), T0).fields
    status = run(mm, status, serving(digest), T0).fields
    status = run(mm, status, serving(digest), T0 + timedelta(minutes=2)).fields
    assert status["stableVersion"] == "v1"
    return mm, status


def test_new_version_becomes_candidate_and_supersedes_stable_on_promotion(make_mm: MakeMM) -> None:
    mm, status = promoted_v1(make_mm)
    v2_digest = "a" * 64
    mm["spec"]["model"].update(version="v2", sha256=v2_digest)

    deployed = run(mm, status, serving(mm["spec"]["model"]["sha256"]), T0 + timedelta(minutes=5))
    assert deployed.active.version == "v2"
    assert deployed.active.sha256 == v2_digest
    assert deployed.fields["candidateVersion"] == "v2"
    assert deployed.fields["stableVersion"] == "v1"
    assert [e["version"] for e in deployed.fields["history"]] == ["v2", "v1"]

    ready = run(mm, deployed.fields, serving(v2_digest), T0 + timedelta(minutes=6))
    promoted = run(mm, ready.fields, serving(v2_digest), T0 + timedelta(minutes=8))
    assert promoted.fields["stableVersion"] == "v2"
    outcomes = {e["version"]: e["outcome"] for e in promoted.fields["history"]}
    assert outcomes == {"v2": api.OUTCOME_STABLE, "v1": api.OUTCOME_SUPERSEDED}


def test_same_version_new_digest_is_a_new_candidate(make_mm: MakeMM) -> None:
    mm, status = promoted_v1(make_mm)
    mm["spec"]["model"]["sha256"] = "b" * 64
    result = run(mm, status, Rollout(), T0 + timedelta(minutes=5))
    assert result.active.sha256 == "b" * 64
    assert result.fields["candidateVersion"] == "v1"
    assert len(result.fields["history"]) == 2


def test_candidate_replaced_before_promotion_is_superseded(make_mm: MakeMM) -> None:
    mm, status = promoted_v1(make_mm)
    mm["spec"]["model"].update(version="v2", sha256="c" * 64)
    status = run(mm, status, Rollout(), T0 + timedelta(minutes=5)).fields
    mm["spec"]["model"].update(version="v3", sha256="d" * 64)
    result = run(mm, status, Rollout(), T0 + timedelta(minutes=6))
    outcomes = {e["version"]: e["outcome"] for e in result.fields["history"]}
    assert outcomes == {
        "v3": api.OUTCOME_CANDIDATE,
        "v2": api.OUTCOME_SUPERSEDED,
        "v1": api.OUTCOME_STABLE,
    }


def test_rolled_back_version_is_sticky(make_mm: MakeMM) -> None:
    mm, status = promoted_v1(make_mm)
    mm["spec"]["model"].update(version="v2", sha256="e" * 64)
    status = run(mm, status, Rollout(), T0 + timedelta(minutes=5)).fields
    # What a rollback leaves behind: v1 active again, v2 marked RolledBack.
    status["history"][0]["outcome"] = api.OUTCOME_ROLLED_BACK
    status.update(activeVersion="v1", activeDigest=status["stableDigest"], candidateVersion="")

    again = run(mm, status, Rollout(), T0 + timedelta(minutes=7))
    assert again.active.version == "v1"
    assert again.blocked_version == "v2"
    assert again.events == ()

    mm["spec"]["model"].update(version="v3", sha256="f" * 64)
    fixed = run(mm, again.fields, Rollout(), T0 + timedelta(minutes=8))
    assert fixed.active.version == "v3"
    assert fixed.blocked_version is None


def test_spec_back_to_stable_serves_stable_without_a_candidate(make_mm: MakeMM) -> None:
    mm, status = promoted_v1(make_mm)
    v1 = dict(mm["spec"]["model"])
    mm["spec"]["model"].update(version="v2", sha256="1" * 64)
    status = run(mm, status, Rollout(), T0 + timedelta(minutes=5)).fields
    mm["spec"]["model"] = v1
    result = run(mm, status, Rollout(), T0 + timedelta(minutes=6))
    assert result.active.version == "v1"
    assert result.fields["candidateVersion"] == ""
    assert result.fields["stableVersion"] == "v1"


def test_history_is_trimmed_but_keeps_active_and_stable(make_mm: MakeMM) -> None:
    mm, status = promoted_v1(make_mm)
    mm["spec"]["policy"]["historyLimit"] = 2
    for i in range(5):
        mm["spec"]["model"].update(version=f"c{i}", sha256=f"{i}" * 64)
        status = run(mm, status, Rollout(), T0 + timedelta(minutes=10 + i)).fields
    versions = [e["version"] for e in status["history"]]
    assert versions[:2] == ["c4", "c3"]
    assert "v1" in versions  # the stable rollback target is never trimmed
    assert len(versions) == 3


def test_lifecycle_is_deterministic(make_mm: MakeMM) -> None:
    mm, status = promoted_v1(make_mm)
    once = run(mm, status, serving(mm["spec"]["model"]["sha256"]), T0 + timedelta(hours=1))
    twice = run(mm, once.fields, serving(mm["spec"]["model"]["sha256"]), T0 + timedelta(hours=1))
    assert once.fields == twice.fields
    assert twice.events == ()
