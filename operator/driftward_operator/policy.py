"""The rollback policy: a pure function from verdicts, policy, status and time to a decision.

Nothing here reads the cluster or the monitors. ``compute_decision`` takes the
latest aggregated verdict (merged across all serving pods), the spec's policy,
the status's memory (consecutive breaches, past rollbacks, history) and the
current time, and says what to do: nothing, alert, roll back, or, in dry-run,
say that it would have rolled back.

The rules, in the order they apply:

* Each kind of breach (drift, realized degradation, estimated degradation) has
  its own counter. A breaching evaluation adds one, a clean one resets it, and
  an Inconclusive one holds it: too little data never moves the decision.
* A kind acts once its counter reaches ``consecutiveBreaches``, with the action
  the policy names for it (Rollback, Alert or Ignore). Realized degradation
  outranks drift, which outranks estimated degradation.
* A rollback needs a target: the stable version while a candidate serves, or,
  when the stable version itself breaches, the previous stable version in the
  history. Without one, the operator alerts.
* Cooldown and the rate limit (``maxRollbacks`` per ``rollbackRateWindow``)
  turn a rollback into an alert. Dry-run turns it into a "would roll back".
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from enum import StrEnum
from typing import Any

from driftward_operator import api
from driftward_operator.timeutil import format_time, parse_duration, parse_time


class State(StrEnum):
    """A verdict's state for one kind of check, as the monitor reports it."""

    OK = "Ok"
    BREACH = "Breach"
    INCONCLUSIVE = "Inconclusive"


class Kind(StrEnum):
    """The kinds of breach the policy acts on, strongest evidence first."""

    DEGRADATION = "degradation"
    DRIFT = "drift"
    ESTIMATED_DEGRADATION = "estimatedDegradation"


_ACTION_FIELD = {
    Kind.DEGRADATION: "onDegradation",
    Kind.DRIFT: "onDrift",
    Kind.ESTIMATED_DEGRADATION: "onEstimatedDegradation",
}
_DEFAULT_ACTION = {
    Kind.DEGRADATION: "Rollback",
    Kind.DRIFT: "Rollback",
    Kind.ESTIMATED_DEGRADATION: "Ignore",
}
_REASON = {
    Kind.DEGRADATION: api.Reason.PERFORMANCE_DEGRADED,
    Kind.DRIFT: api.Reason.DRIFT_DETECTED,
    Kind.ESTIMATED_DEGRADATION: api.Reason.ESTIMATED_DEGRADED,
}


@dataclass(frozen=True)
class Finding:
    """One kind of check in an aggregated verdict: its state and the evidence behind it."""

    state: State
    evidence: str = ""
    """Names the features or metric values, for conditions and Events."""


@dataclass(frozen=True)
class Verdict:
    """The monitor's verdict merged across all serving pods of the active version."""

    version: str
    findings: Mapping[Kind, Finding]


class Action(StrEnum):
    """What the operator does after an evaluation."""

    NONE = "None"
    ALERT = "Alert"
    ROLLBACK = "Rollback"
    WOULD_ROLLBACK = "WouldRollback"


@dataclass(frozen=True)
class Decision:
    """The policy's answer for one evaluation."""

    action: Action
    breaches: dict[str, int]
    kind: Kind | None = None
    reason: str = ""
    message: str = ""
    target: Mapping[str, Any] | None = None
    """The history entry to roll back to, for Rollback and WouldRollback."""
    promotion_blocked: bool = False
    rollback_times: list[str] = field(default_factory=list)


def compute_breaches(previous: Mapping[str, Any], verdict: Verdict | None) -> dict[str, int]:
    """Update the breach counters: +1 on breach, 0 when clean, held when inconclusive."""
    counters = {kind.value: int(previous.get(kind.value, 0)) for kind in Kind}
    if verdict is None:
        return counters
    for kind, finding in verdict.findings.items():
        if finding.state is State.BREACH:
            counters[kind.value] += 1
        elif finding.state is State.OK:
            counters[kind.value] = 0
    return counters


def compute_rollback_target(status: Mapping[str, Any]) -> Mapping[str, Any] | None:
    """The version to roll back to: the stable one, or the previous stable if stable is active."""
    history: Sequence[Mapping[str, Any]] = status.get("history", [])
    active = (status.get("activeVersion"), status.get("activeDigest"))
    stable = (status.get("stableVersion"), status.get("stableDigest"))
    if stable[0] and stable != active:
        return next((e for e in history if (e.get("version"), e.get("sha256")) == stable), None)
    # The stable version itself breaches: go back to the last version that was
    # promoted before it and has not been rolled back since.
    for entry in history:
        key = (entry.get("version"), entry.get("sha256"))
        if key == active or not entry.get("promotedAt"):
            continue
        if entry.get("outcome") == api.OUTCOME_SUPERSEDED:
            return entry
    return None


def compute_decision(
    verdict: Verdict | None,
    policy: Mapping[str, Any],
    status: Mapping[str, Any],
    now: datetime,
) -> Decision:
    """Decide what to do about the latest verdict."""
    breaches = compute_breaches(status.get("breaches", {}), verdict)
    recent = _recent_rollbacks(status, policy, now)
    quiet = Decision(
        Action.NONE,
        breaches=breaches,
        promotion_blocked=any(breaches.values()),
        rollback_times=recent,
    )
    if verdict is None or verdict.version != status.get("activeVersion"):
        # A verdict about another version (mid-rollout) says nothing about this one.
        return quiet
    needed = int(policy.get("consecutiveBreaches", 3))
    for kind in Kind:
        finding = verdict.findings.get(kind)
        action = str(policy.get(_ACTION_FIELD[kind], _DEFAULT_ACTION[kind]))
        if finding is None or breaches[kind.value] < needed or action == "Ignore":
            continue
        evidence = (
            f"version {verdict.version}: {finding.evidence} "
            f"({breaches[kind.value]} consecutive evaluations)"
        )
        acting = replace(quiet, kind=kind, reason=_REASON[kind])
        if action == "Alert":
            return replace(acting, action=Action.ALERT, message=evidence)
        return _decide_rollback(acting, evidence, policy, status, now)
    return quiet


def _decide_rollback(
    acting: Decision,
    evidence: str,
    policy: Mapping[str, Any],
    status: Mapping[str, Any],
    now: datetime,
) -> Decision:
    """Roll back, or say why not (no target, cooldown, rate limit) and alert; dry-run only says."""
    target = compute_rollback_target(status)
    if target is None:
        message = f"{evidence}; no earlier stable version to roll back to, alerting instead"
        return replace(acting, action=Action.ALERT, message=message)
    blocked = _rate_limit(acting.rollback_times, policy, now)
    if blocked:
        return replace(acting, action=Action.ALERT, message=f"{evidence}; {blocked}")
    if policy.get("dryRun", False):
        message = f"dry run: would roll back to stable version {target['version']}: {evidence}"
        return replace(acting, action=Action.WOULD_ROLLBACK, message=message, target=target)
    return replace(
        acting,
        action=Action.ROLLBACK,
        message=f"{evidence}; rolled back to stable version {target['version']}",
        target=target,
        breaches={k.value: 0 for k in Kind},
        promotion_blocked=True,
        rollback_times=[*acting.rollback_times, format_time(now)],
    )


def _recent_rollbacks(
    status: Mapping[str, Any], policy: Mapping[str, Any], now: datetime
) -> list[str]:
    window = parse_duration(str(policy.get("rollbackRateWindow", "24h")))
    return [t for t in status.get("rollbackTimes", []) if now - parse_time(t) < window]


def _rate_limit(recent: Sequence[str], policy: Mapping[str, Any], now: datetime) -> str | None:
    """Why a rollback may not happen now (cooldown or rate limit), or None."""
    if recent:
        cooldown_text = str(policy.get("cooldown", "10m"))
        since = now - max(parse_time(t) for t in recent)
        if since < parse_duration(cooldown_text):
            seconds = int(since.total_seconds())
            return f"the last rollback was {seconds}s ago, within the {cooldown_text} cooldown"
    limit = int(policy.get("maxRollbacks", 3))
    if len(recent) >= limit:
        window = str(policy.get("rollbackRateWindow", "24h"))
        return f"{len(recent)} rollbacks in the last {window} reached maxRollbacks={limit}"
    return None
