"""One level-based reconcile of a MonitoredModel: read, compute, apply, write status once.

This is the glue between the pure core and the cluster. It reads the serving
Deployment, lets ``lifecycle`` and ``status`` decide, applies the children built
by ``children`` and writes the status subresource once. It never writes the
spec. Running it twice with nothing changed makes no further writes.
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
from collections.abc import Mapping, MutableMapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from driftward_operator import api
from driftward_operator.children import build_children
from driftward_operator.kube import KubeClient, KubeError
from driftward_operator.lifecycle import EventSpec, compute_lifecycle
from driftward_operator.pods import PodReadiness, fetch_pod_readiness
from driftward_operator.status import compute_pods_to_probe, compute_rollout, compute_status

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


def reconcile(
    kube: KubeClient,
    mm: Mapping[str, Any],
    now: datetime,
    applied_cache: MutableMapping[str, tuple[str, float]],
    refresh_seconds: float,
) -> ReconcileResult:
    """Bring one MonitoredModel's children and status in line with its spec."""
    metadata = mm["metadata"]
    namespace, name = metadata["namespace"], metadata["name"]
    old_status: Mapping[str, Any] = mm.get("status") or {}

    deployment = kube.read("apps/v1", "Deployment", namespace, name)
    rollout = compute_rollout(deployment)
    lifecycle = compute_lifecycle(mm["spec"], old_status, rollout, now)

    applied: list[str] = []
    rejection: str | None = None
    monotonic = time.monotonic()
    for child in build_children(mm, lifecycle.active):
        key = f"{child['kind']}/{child['metadata']['name']}"
        fingerprint = _fingerprint(child)
        cached = applied_cache.get(key)
        fresh = (
            cached is not None
            and cached[0] == fingerprint
            and monotonic - cached[1] < refresh_seconds
        )
        # A missing Deployment means someone deleted it: apply regardless of the cache.
        if fresh and not (child["kind"] == "Deployment" and deployment is None):
            continue
        try:
            kube.apply(child)
        except KubeError as exc:
            if exc.status not in _SPEC_ERRORS:
                raise
            # The spec produced an invalid child. Retrying at once cannot help, so
            # report it in status and try again at the next resync.
            rejection = f"{key}: {exc.message}"
            applied_cache.pop(key, None)
            break
        applied_cache[key] = (fingerprint, monotonic)
        applied.append(key)

    not_ready = None
    if rollout.exists and not (rollout.available and rollout.digest == lifecycle.active.sha256):
        not_ready = _read_not_ready(kube, mm)
    status = compute_status(mm, lifecycle, rollout, now, rejection=rejection, not_ready=not_ready)
    written = False
    if _status_changed(old_status, status):
        kube.patch_status(namespace, name, status)
        written = True
        # Events only after the status that records the transition is stored, so a
        # crash in between replays the transition rather than losing its record.
        for event in lifecycle.events:
            kube.create_event(
                mm, type_=event.type, reason=event.reason, message=event.message, now=now
            )
    if applied:
        log.info("applied %s for %s/%s", ", ".join(applied), namespace, name)
    return ReconcileResult(
        status=status, applied=tuple(applied), status_written=written, events=lifecycle.events
    )
