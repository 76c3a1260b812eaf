"""Compute a MonitoredModel's status from what the operator observed and decided.

Pure: it takes the lifecycle's decision and the Deployment's rollout and returns
the whole status, which ``reconcile`` writes once. Re-running it with the same
inputs gives the same status, so a reconcile is idempotent.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from driftward_operator import api, policy
from driftward_operator.aggregate import (
    Aggregate,
    compute_drift_status,
    compute_drift_summary,
    compute_performance_status,
)
from driftward_operator.conditions import Condition, find_condition, set_condition
from driftward_operator.lifecycle import Lifecycle, Rollout, find_rolled_back
from driftward_operator.pods import PodReadiness
from driftward_operator.timeutil import format_time
from driftward_serving.monitor.verdict import State as MonitorState

# Status fields this module does not compute but must carry over unchanged
# (the monitor's verdicts and the rollback policy's memory).
_CARRIED = ("drift", "performance", "breaches", "rollbackTimes", "requests")


@dataclass(frozen=True)
class Evaluation:
    """One evaluation of the monitors' verdicts and what the policy made of it."""

    aggregate: Aggregate | None
    """The verdict merged across the answering pods; None when no pod answered."""
    decision: policy.Decision
    problems: tuple[str, ...] = ()
    """Pods that did not answer or could not be merged."""


def compute_rollout(deployment: Mapping[str, Any] | None) -> Rollout:
    """Reduce a Deployment object (or its absence) to what the lifecycle needs."""
    if deployment is None:
        return Rollout()
    metadata = deployment.get("metadata", {})
    spec = deployment.get("spec", {})
    status = deployment.get("status", {})
    desired = int(spec.get("replicas", 1))
    conditions = status.get("conditions", [])
    progressing = find_condition(conditions, "Progressing") or {}
    available = (
        int(status.get("observedGeneration", 0)) >= int(metadata.get("generation", 0))
        and int(status.get("updatedReplicas", 0)) == desired
        and int(status.get("availableReplicas", 0)) == desired
        and int(status.get("replicas", 0)) == desired
    )
    return Rollout(
        exists=True,
        digest=metadata.get("annotations", {}).get(api.ANNOTATION_DIGEST),
        available=available,
        deadline_exceeded=progressing.get("reason") == "ProgressDeadlineExceeded",
        message=str(progressing.get("message", "")),
    )


def compute_pods_to_probe(
    pods: Sequence[Mapping[str, Any]], limit: int = 3
) -> list[tuple[str, str]]:
    """Running serving pods whose model server is not ready: (name, IP), at most ``limit``."""
    chosen: list[tuple[str, str]] = []
    for pod in pods:
        status = pod.get("status", {})
        address = status.get("podIP")
        if status.get("phase") != "Running" or not address:
            continue
        containers = {c.get("name"): c for c in status.get("containerStatuses", [])}
        if containers.get("model-server", {}).get("ready") is True:
            continue
        chosen.append((str(pod["metadata"]["name"]), str(address)))
        if len(chosen) == limit:
            break
    return chosen


def compute_status(
    mm: Mapping[str, Any],
    lifecycle: Lifecycle,
    rollout: Rollout,
    now: datetime,
    *,
    rejection: str | None = None,
    not_ready: PodReadiness | None = None,
    evaluation: Evaluation | None = None,
    requests: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    """The whole status to write for this reconcile.

    ``rejection`` is the API server's message when it refused a child built from
    the spec (a mistake the CRD's schema cannot catch, such as a bad env source).
    ``not_ready`` is what a stuck serving pod said about itself (for example a
    digest mismatch), which names the problem better than the Deployment can.
    ``evaluation`` is this reconcile's merged verdict and the policy's decision,
    if the monitors were read this time; otherwise their last results carry over.
    ``requests`` records the request annotations handled so far.
    """
    stamp = format_time(now)
    generation = int(mm["metadata"].get("generation", 0))
    previous: Mapping[str, Any] = mm.get("status") or {}
    conditions: list[dict[str, Any]] = [dict(c) for c in previous.get("conditions", [])]
    fields = lifecycle.fields
    active = lifecycle.active.version
    candidate = fields["candidateVersion"]

    serving = rollout.available and rollout.digest == lifecycle.active.sha256
    ready = compute_ready(
        active, rollout, serving=serving, rejection=rejection, not_ready=not_ready
    )
    conditions = set_condition(
        conditions,
        api.READY,
        ready[0],
        reason=ready[1],
        message=ready[2],
        generation=generation,
        now=stamp,
    )

    if candidate:
        progressing = (
            True,
            api.Reason.IN_PROMOTION_WINDOW if serving else api.Reason.DEPLOYMENT_PROGRESSING,
            f"candidate version {candidate} is "
            + ("serving and in its promotion window" if serving else "rolling out"),
        )
    elif not serving:
        progressing = (True, api.Reason.DEPLOYMENT_PROGRESSING, f"rolling out version {active}")
    else:
        progressing = (False, api.Reason.STABLE, f"version {active} is stable")
    conditions = set_condition(
        conditions,
        api.PROGRESSING,
        progressing[0],
        reason=progressing[1],
        message=progressing[2],
        generation=generation,
        now=stamp,
    )

    if evaluation is not None:
        conditions = compute_verdict_conditions(
            conditions, evaluation, generation=generation, now=stamp
        )
    # Drift and degradation come from the monitor's verdicts; until the first
    # evaluation they are Unknown rather than a guessed False.
    for type_ in (api.DRIFTED, api.DEGRADED):
        if find_condition(conditions, type_) is None:
            conditions = set_condition(
                conditions,
                type_,
                None,
                reason=api.Reason.NOT_EVALUATED,
                message="no verdict from the monitor yet",
                generation=generation,
                now=stamp,
            )
    if lifecycle.blocked_version is not None:
        entry = find_rolled_back(fields, lifecycle.blocked_version) or {}
        why = str(entry.get("message") or f"version {lifecycle.blocked_version} was rolled back")
        conditions = set_condition(
            conditions,
            api.ROLLED_BACK,
            True,
            reason=str(entry.get("reason") or api.Reason.VERSION_ROLLED_BACK),
            message=(
                f"{why}. Version {lifecycle.blocked_version} stays out of service; serving "
                f"{active}. Set a new spec.model.version or sha256, or set the "
                f"{api.ANNOTATION_RETRY} annotation to a new value to try it again"
            ),
            generation=generation,
            now=stamp,
        )
    else:
        conditions = set_condition(
            conditions,
            api.ROLLED_BACK,
            False,
            reason=api.Reason.NOT_ROLLED_BACK,
            message=f"the spec's version {active} is in service",
            generation=generation,
            now=stamp,
        )

    status: dict[str, Any] = {k: previous[k] for k in _CARRIED if k in previous}
    status.update(fields)
    if evaluation is not None:
        status["breaches"] = dict(evaluation.decision.breaches)
        status["rollbackTimes"] = list(evaluation.decision.rollback_times)
        if evaluation.aggregate is not None:
            status["drift"] = compute_drift_status(evaluation.aggregate, now)
            performance = compute_performance_status(evaluation.aggregate)
            if performance is not None:
                status["performance"] = performance
    if requests is not None:
        status["requests"] = dict(requests)
    status["observedGeneration"] = generation
    status["conditions"] = sorted(conditions, key=lambda c: api.CONDITION_TYPES.index(c["type"]))
    status["phase"] = compute_phase(
        status,
        serving=serving,
        deadline_exceeded=rollout.deadline_exceeded
        or rejection is not None
        or not_ready is not None,
    )
    return status


def compute_phase(status: Mapping[str, Any], *, serving: bool, deadline_exceeded: bool) -> str:
    """A one-word summary of the status, for kubectl's Health column."""
    conditions = status.get("conditions", [])

    def true(type_: str) -> bool:
        found = find_condition(conditions, type_)
        return found is not None and found.get("status") == "True"

    if deadline_exceeded:
        return api.PHASE_FAILED
    if true(api.ROLLED_BACK):
        return api.PHASE_ROLLED_BACK
    if true(api.DEGRADED) or true(api.DRIFTED):
        return api.PHASE_DEGRADED
    if not serving:
        return api.PHASE_PROGRESSING if status.get("activeVersion") else api.PHASE_PENDING
    if status.get("candidateVersion"):
        return api.PHASE_PROGRESSING
    return api.PHASE_HEALTHY


def compute_ready(
    active: str,
    rollout: Rollout,
    *,
    serving: bool,
    rejection: str | None,
    not_ready: PodReadiness | None,
) -> tuple[bool, str, str]:
    """The Ready condition's status, reason and message, most specific cause first."""
    if rejection is not None:
        return (
            False,
            api.Reason.CHILD_REJECTED,
            f"the API server rejected a child built from the spec; fix the spec: {rejection}",
        )
    if not_ready is not None and not serving:
        return (
            False,
            not_ready.reason,
            f"pod {not_ready.pod} cannot serve version {active}: {not_ready.message}",
        )
    if serving:
        return (
            True,
            api.Reason.DEPLOYMENT_AVAILABLE,
            f"version {active} is serving on all replicas",
        )
    if not rollout.exists:
        return (False, api.Reason.DEPLOYMENT_MISSING, "the serving Deployment does not exist yet")
    if rollout.deadline_exceeded:
        return (
            False,
            api.Reason.PROGRESS_DEADLINE_EXCEEDED,
            f"version {active} did not become ready: {rollout.message}",
        )
    return (False, api.Reason.DEPLOYMENT_PROGRESSING, f"rolling out version {active}")


_DRIFT_CONDITION = {
    MonitorState.DRIFTED: (True, api.Reason.DRIFT_DETECTED),
    MonitorState.OK: (False, api.Reason.NO_DRIFT),
    MonitorState.INCONCLUSIVE: (None, api.Reason.INCONCLUSIVE),
}
_PERFORMANCE_CONDITION = {
    MonitorState.DEGRADED: (True, api.Reason.PERFORMANCE_DEGRADED),
    MonitorState.OK: (False, api.Reason.PERFORMANCE_OK),
    MonitorState.INCONCLUSIVE: (None, api.Reason.INCONCLUSIVE),
}


def compute_verdict_conditions(
    conditions: Sequence[Mapping[str, Any]],
    evaluation: Evaluation,
    *,
    generation: int,
    now: str,
) -> list[Condition]:
    """Drifted and Degraded from a merged verdict, with the policy's words where it acted."""
    aggregate, decision = evaluation.aggregate, evaluation.decision
    result = [dict(c) for c in conditions]
    if aggregate is None:
        message = "no monitor window could be read: " + "; ".join(evaluation.problems[:3])
        for type_ in (api.DRIFTED, api.DEGRADED):
            result = set_condition(
                result,
                type_,
                None,
                reason=api.Reason.MONITORS_UNREACHABLE,
                message=message,
                generation=generation,
                now=now,
            )
        return result
    verdict = aggregate.verdict
    pods = f" ({len(aggregate.pods)} pods merged)"
    drift_status, drift_reason = _DRIFT_CONDITION[verdict.drift.state]
    drift_message = f"version {verdict.version}: {compute_drift_summary(verdict)}"
    degraded: tuple[bool | None, str, str]
    if verdict.performance is not None:
        perf = verdict.performance
        perf_status, perf_reason = _PERFORMANCE_CONDITION[perf.state]
        degraded = (perf_status, perf_reason, f"version {verdict.version}: {perf.reason}")
    else:
        degraded = (
            False,
            api.Reason.PERFORMANCE_OK,
            "realized performance is not monitored (spec.monitoring.performance is not set)",
        )
    if decision.action is not policy.Action.NONE and decision.kind is not None:
        if decision.kind is policy.Kind.DRIFT:
            drift_message = decision.message
            if decision.action is policy.Action.ALERT:
                # Drift that cannot be rolled back leaves the model degraded.
                degraded = (True, decision.reason, decision.message)
        else:
            degraded = (True, decision.reason, decision.message)
    result = set_condition(
        result,
        api.DRIFTED,
        drift_status,
        reason=drift_reason,
        message=drift_message + pods,
        generation=generation,
        now=now,
    )
    return set_condition(
        result,
        api.DEGRADED,
        degraded[0],
        reason=degraded[1],
        message=degraded[2] + pods,
        generation=generation,
        now=now,
    )
