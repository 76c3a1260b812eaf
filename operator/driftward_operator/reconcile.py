"""One level-based reconcile of a MonitoredModel: read, compute, apply, write status.

This is the glue between the pure core and the cluster. It reads the serving
Deployment (and, when asked to evaluate, the monitors of the serving pods), lets
``policy``, ``lifecycle`` and ``status`` decide, applies the children built by
``children`` and writes the status subresource. It never writes the spec or
the annotations. Running it twice with nothing changed makes no further writes.

A rollback is made crash-safe by its order: a named Event (idempotent), then
the status that records the rollback (the commit point), then the Deployment.
A crash before the commit replays the same decision and finds the Event
already there; a crash after it finds the rollback recorded and only finishes
applying the Deployment.
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
from collections.abc import Callable, Mapping, MutableMapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import httpx

from driftward_operator import api, policy
from driftward_operator.aggregate import (
    Aggregate,
    compute_aggregate,
    compute_policy_verdict,
    compute_selection,
)
from driftward_operator.children import build_children, build_monitor_config
from driftward_operator.kube import KubeClient, KubeError
from driftward_operator.lifecycle import (
    EventSpec,
    VersionRef,
    compute_lifecycle,
    compute_retry,
    compute_rollback,
)
from driftward_operator.metrics import OperatorMetrics
from driftward_operator.monitors import ProfileCache, compute_monitored_pods, fetch_windows
from driftward_operator.pods import PodReadiness, fetch_pod_readiness
from driftward_operator.prometheus import (
    PrometheusError,
    PrometheusSource,
    compute_source,
    fetch_prometheus_windows,
)
from driftward_operator.requests import Requests, compute_requests
from driftward_operator.status import (
    Evaluation,
    compute_pods_to_probe,
    compute_rollout,
    compute_status,
)
from driftward_serving.monitor.config import ConfigError, parse_monitor_config
from driftward_serving.monitor.series import METRIC_NAME
from driftward_serving.monitor.sources import ReferenceError as ReferenceDataError

log = logging.getLogger(__name__)

# API answers that mean the child itself is invalid, so the spec must change.
_SPEC_ERRORS = frozenset({400, 422})


@dataclass(frozen=True)
class ReconcileResult:
    """What one reconcile did, for logs and tests."""

    status: dict[str, Any]
    applied: tuple[str, ...]
    status_written: bool
    events: tuple[EventSpec, ...]


def _fingerprint(manifest: Mapping[str, Any]) -> str:
    return hashlib.sha256(json.dumps(manifest, sort_keys=True).encode()).hexdigest()


def _status_changed(old: Mapping[str, Any], new: Mapping[str, Any]) -> bool:
    return any(old.get(k) != v for k, v in new.items())


def _read_not_ready(kube: KubeClient, mm: Mapping[str, Any]) -> PodReadiness | None:
    """The first stuck serving pod's own account of why it is not ready, if any pod says."""
    metadata = mm["metadata"]
    port = int(mm["spec"].get("serving", {}).get("port", 8080))
    pods = kube.list_pods(metadata["namespace"], f"{api.LABEL_MODEL}={metadata['name']}")
    for name, address in compute_pods_to_probe(pods):
        answer = fetch_pod_readiness(name, address, port)
        if answer is not None and not answer.ready:
            return answer
    return None


def read_aggregate(
    kube: KubeClient,
    mm: Mapping[str, Any],
    active: VersionRef,
    profiles: ProfileCache,
    now: datetime,
) -> tuple[Aggregate | None, tuple[str, ...]]:
    """Read every serving pod's monitor window for the active version and merge them."""
    metadata = mm["metadata"]
    try:
        source = compute_source(mm["spec"])
    except PrometheusError as exc:
        return None, (str(exc),)
    if source is not None:
        return _read_prometheus_aggregate(mm, active, source, profiles, now)
    pods = kube.list_pods(metadata["namespace"], f"{api.LABEL_MODEL}={metadata['name']}")
    targets = compute_monitored_pods(pods, active.version)
    if not targets:
        return None, (f"no Running pod serves version {active.version}",)
    selection = compute_selection(fetch_windows(targets))
    if selection.profile_digest is None:
        return None, selection.problems
    address = dict(targets)[selection.pods[0]]
    try:
        config = parse_monitor_config(build_monitor_config(mm, active))
        profile = profiles.fetch(selection.profile_digest, address)
    except (ConfigError, ValueError, KeyError, httpx.HTTPError) as exc:
        return None, (*selection.problems, f"pod {selection.pods[0]}: reference profile: {exc}")
    return compute_aggregate(selection, profile, config, now), selection.problems


def _read_prometheus_aggregate(
    mm: Mapping[str, Any],
    active: VersionRef,
    source: PrometheusSource,
    profiles: ProfileCache,
    now: datetime,
) -> tuple[Aggregate | None, tuple[str, ...]]:
    """The same merge as the Pods source, on windows read back from Prometheus."""
    metadata = mm["metadata"]
    try:
        answers = fetch_prometheus_windows(
            source, metadata["namespace"], metadata["name"], active.version
        )
    except PrometheusError as exc:
        return None, (str(exc),)
    if not answers:
        return None, (
            f"Prometheus at {source.url} has no {METRIC_NAME} series for version "
            f"{active.version} (is it scraping the monitor-metrics port?)",
        )
    selection = compute_selection(answers)
    if selection.profile_digest is None:
        return None, selection.problems
    try:
        config = parse_monitor_config(build_monitor_config(mm, active))
        profile = profiles.build(config, selection.profile_digest)
    except (ConfigError, ReferenceDataError, ValueError, KeyError) as exc:
        return None, (*selection.problems, f"reference profile: {exc}")
    return compute_aggregate(selection, profile, config, now), selection.problems


def compute_event_name(mm: Mapping[str, Any], entry: Mapping[str, Any], what: str) -> str:
    """A stable Event name for one transition of one deployment of a version.

    Replaying the same transition after a crash yields the same name, so the
    API server refuses the duplicate.
    """
    metadata = mm["metadata"]
    key = "|".join(
        [
            str(metadata.get("uid", "")),
            what,
            str(entry.get("version")),
            str(entry.get("sha256")),
            str(entry.get("deployedAt")),
        ]
    )
    return f"{metadata['name']}.{what}.{hashlib.sha256(key.encode()).hexdigest()[:16]}"


@dataclass(frozen=True)
class Plan:
    """What this reconcile decided before touching the cluster."""

    status: dict[str, Any]
    """The status the lifecycle starts from, with a rollback or retry already folded in."""
    evaluation: Evaluation | None
    rollback: policy.Decision | None
    events: tuple[EventSpec, ...]
    requests: Requests


def compute_plan(
    mm: Mapping[str, Any],
    aggregate: Aggregate | None,
    problems: tuple[str, ...],
    now: datetime,
    *,
    evaluated: bool,
) -> Plan:
    """Fold user requests and the policy's decision into the status the lifecycle starts from."""
    spec = mm["spec"]
    status: dict[str, Any] = dict(mm.get("status") or {})
    requests = compute_requests(mm)
    events: list[EventSpec] = []
    if requests.retry is not None:
        retried = compute_retry(status, spec)
        if retried is None:
            events.append(
                EventSpec(
                    "Warning",
                    api.Reason.REQUEST_IGNORED,
                    f"{api.ANNOTATION_RETRY}: version {spec['model']['version']} is not rolled "
                    "back, nothing to retry",
                )
            )
        else:
            status = retried
            events.append(
                EventSpec(
                    "Normal",
                    api.Reason.RETRY,
                    f"retrying version {spec['model']['version']} as a new candidate",
                )
            )
    evaluation = None
    decision: policy.Decision | None = None
    if evaluated:
        verdict = compute_policy_verdict(aggregate) if aggregate is not None else None
        decision = policy.compute_decision(verdict, spec.get("policy", {}), status, now)
        evaluation = Evaluation(aggregate, decision, problems)
    if requests.rollback is not None:
        target = policy.compute_rollback_target(status)
        if target is None:
            events.append(
                EventSpec(
                    "Warning",
                    api.Reason.REQUEST_IGNORED,
                    f"{api.ANNOTATION_ROLLBACK}: there is no stable version to roll back to",
                )
            )
        else:
            decision = policy.Decision(
                policy.Action.ROLLBACK,
                breaches={k.value: 0 for k in policy.Kind},
                reason=api.Reason.MANUAL_ROLLBACK,
                message=(
                    f"rolled back to stable version {target['version']} on request "
                    f"({api.ANNOTATION_ROLLBACK}={requests.rollback})"
                ),
                target=target,
                promotion_blocked=True,
                rollback_times=list(status.get("rollbackTimes", [])),
            )
            evaluation = Evaluation(aggregate, decision, problems) if evaluated else None
    rollback = None
    if decision is not None and decision.action is policy.Action.ROLLBACK:
        assert decision.target is not None
        rollback = decision
        status = compute_rollback(
            status, decision.target, reason=decision.reason, message=decision.message, now=now
        )
        if evaluation is None:
            status["breaches"] = dict(decision.breaches)
    elif decision is not None and decision.action is not policy.Action.NONE:
        kind = decision.kind.value if decision.kind is not None else ""
        needed = int(spec.get("policy", {}).get("consecutiveBreaches", 3))
        # Say it once per breach episode, not at every evaluation that keeps breaching.
        if decision.breaches.get(kind, 0) == needed:
            reason = (
                api.Reason.WOULD_ROLL_BACK
                if decision.action is policy.Action.WOULD_ROLLBACK
                else decision.reason
            )
            events.append(EventSpec("Warning", reason, decision.message))
    return Plan(status, evaluation, rollback, tuple(events), requests)


def reconcile(
    kube: KubeClient,
    mm: Mapping[str, Any],
    now: datetime,
    applied_cache: MutableMapping[str, tuple[str, float]],
    refresh_seconds: float,
    *,
    profiles: ProfileCache | None = None,
    evaluate: bool = False,
    metrics: OperatorMetrics | None = None,
    fault: Callable[[str], None] | None = None,
) -> ReconcileResult:
    """Bring one MonitoredModel's children and status in line with its spec and its verdicts.

    With ``evaluate`` the serving pods' monitors are read, merged and judged by
    the policy; otherwise the last verdict's conditions carry over. ``fault``
    is called at the rollback's crash points, for the crash-safety tests.
    """
    metadata = mm["metadata"]
    namespace, name = metadata["namespace"], metadata["name"]
    old_status: Mapping[str, Any] = mm.get("status") or {}

    deployment = kube.read("apps/v1", "Deployment", namespace, name)
    rollout = compute_rollout(deployment)
    aggregate: Aggregate | None = None
    problems: tuple[str, ...] = ()
    if evaluate and old_status.get("activeVersion"):
        active_now = VersionRef.from_history(
            {
                "version": old_status["activeVersion"],
                "sha256": old_status.get("activeDigest", ""),
                "uri": "",
            }
        )
        aggregate, problems = read_aggregate(kube, mm, active_now, profiles or ProfileCache(), now)
    plan = compute_plan(
        mm, aggregate, problems, now, evaluated=evaluate and bool(old_status.get("activeVersion"))
    )
    promotion_blocked = any(int(v) > 0 for v in plan.status.get("breaches", {}).values())
    if plan.evaluation is not None:
        promotion_blocked = plan.evaluation.decision.promotion_blocked
    lifecycle = compute_lifecycle(
        mm["spec"],
        plan.status,
        rollout,
        now,
        promotion_blocked=promotion_blocked,
        promote_now=plan.requests.promote is not None,
    )
    events = [*plan.events, *lifecycle.events]

    def status_for(rejection: str | None, not_ready: PodReadiness | None) -> dict[str, Any]:
        return compute_status(
            {**mm, "status": plan.status},
            lifecycle,
            rollout,
            now,
            rejection=rejection,
            not_ready=not_ready,
            evaluation=plan.evaluation,
            requests=plan.requests.handled,
        )

    written = False
    if plan.rollback is not None:
        # The commit point comes before the Deployment changes: see the module docstring.
        rolled_back = next(
            e
            for e in plan.status["history"]
            if e.get("outcome") == api.OUTCOME_ROLLED_BACK
            and (e.get("version"), e.get("sha256"))
            == (old_status.get("activeVersion"), old_status.get("activeDigest"))
        )
        kube.create_event(
            mm,
            type_="Warning",
            reason=plan.rollback.reason,
            message=plan.rollback.message,
            now=now,
            name=compute_event_name(mm, rolled_back, "rollback"),
        )
        if fault is not None:
            fault("exit-after-rollback-event")
        kube.patch_status(namespace, name, status_for(None, None))
        written = True
        if fault is not None:
            fault("exit-after-rollback-status")
        if metrics is not None:
            metrics.rollbacks.labels(namespace, name, plan.rollback.reason).inc()
        log.warning("rolled back %s/%s: %s", namespace, name, plan.rollback.message)

    applied, rejection = _apply_children(
        kube,
        mm,
        lifecycle.active,
        deployment_missing=deployment is None,
        applied_cache=applied_cache,
        refresh_seconds=refresh_seconds,
    )
    not_ready = None
    if rollout.exists and not (rollout.available and rollout.digest == lifecycle.active.sha256):
        not_ready = _read_not_ready(kube, mm)
    status = status_for(rejection, not_ready)
    if _status_changed(old_status, status) and not (written and status == status_for(None, None)):
        kube.patch_status(namespace, name, status)
        written = True
    if written:
        # Events only after the status that records the transition is stored, so a
        # crash in between replays the transition rather than losing its record.
        for event in events:
            kube.create_event(
                mm, type_=event.type, reason=event.reason, message=event.message, now=now
            )
    if metrics is not None and plan.evaluation is not None:
        metrics.record_evaluation(namespace, name, plan.evaluation)
    if applied:
        log.info("applied %s for %s/%s", ", ".join(applied), namespace, name)
    return ReconcileResult(
        status=status, applied=tuple(applied), status_written=written, events=tuple(events)
    )


def _apply_children(
    kube: KubeClient,
    mm: Mapping[str, Any],
    active: VersionRef,
    *,
    deployment_missing: bool,
    applied_cache: MutableMapping[str, tuple[str, float]],
    refresh_seconds: float,
) -> tuple[list[str], str | None]:
    """Server-side apply the children that changed; the API server's refusal, if any."""
    applied: list[str] = []
    monotonic = time.monotonic()
    for child in build_children(mm, active):
        key = f"{child['kind']}/{child['metadata']['name']}"
        fingerprint = _fingerprint(child)
        cached = applied_cache.get(key)
        fresh = (
            cached is not None
            and cached[0] == fingerprint
            and monotonic - cached[1] < refresh_seconds
        )
        # A missing Deployment means someone deleted it: apply regardless of the cache.
        if fresh and not (child["kind"] == "Deployment" and deployment_missing):
            continue
        try:
            kube.apply(child)
        except KubeError as exc:
            if exc.status not in _SPEC_ERRORS:
                raise
            # The spec produced an invalid child. Retrying at once cannot help, so
            # report it in status and try again at the next resync.
            applied_cache.pop(key, None)
            return applied, f"{key}: {exc.message}"
        applied_cache[key] = (fingerprint, monotonic)
        applied.append(key)
    return applied, None
