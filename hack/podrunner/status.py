"""Compute a pod's status (phase, container states, conditions) from what the runner observed.

Pure: the runner records each container's state as a frozen ``ContainerState``
and this module turns them, with the pod as last read, into the ``status``
body to patch. Conditions keep their ``lastTransitionTime`` while their status
does not change, like the kubelet's. Nothing here talks to the API server or
looks at processes.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

# Condition types the runner owns; kwok set Initialized and PodReadyToStartContainers.
INITIALIZED, CONTAINERS_READY, READY = "Initialized", "ContainersReady", "Ready"
REASON_NOT_READY = "ContainersNotReady"
REASON_NOT_INITIALIZED = "ContainersNotInitialized"
REASON_GATES = "ReadinessGatesNotReady"
REASON_POD_COMPLETED = "PodCompleted"


def format_time(moment: datetime) -> str:
    """RFC 3339 in UTC with second precision, as the API writes times."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass(frozen=True)
class Terminated:
    """How a container's process ended."""

    exit_code: int
    reason: str
    started_at: datetime | None
    finished_at: datetime
    message: str = ""
    signal: int | None = None


@dataclass(frozen=True)
class ContainerState:
    """One container as the runner sees it: exactly one of running, waiting or terminated."""

    name: str
    image: str
    running_since: datetime | None = None
    waiting_reason: str = "ContainerCreating"
    waiting_message: str = ""
    terminated: Terminated | None = None
    last_terminated: Terminated | None = None
    ready: bool = False
    started: bool = False
    restart_count: int = 0

    @property
    def succeeded(self) -> bool:
        """The process ran to completion with exit code 0 and will not be restarted."""
        return self.terminated is not None and self.terminated.exit_code == 0


def _terminated(t: Terminated) -> dict[str, Any]:
    body: dict[str, Any] = {
        "exitCode": t.exit_code,
        "reason": t.reason,
        "finishedAt": format_time(t.finished_at),
    }
    if t.started_at is not None:
        body["startedAt"] = format_time(t.started_at)
    if t.message:
        body["message"] = t.message
    if t.signal is not None:
        body["signal"] = t.signal
    return body


def compute_container_status(state: ContainerState) -> dict[str, Any]:
    """One entry of status.containerStatuses."""
    current: dict[str, Any]
    if state.running_since is not None:
        current = {"running": {"startedAt": format_time(state.running_since)}}
    elif state.terminated is not None:
        current = {"terminated": _terminated(state.terminated)}
    else:
        waiting: dict[str, Any] = {"reason": state.waiting_reason}
        if state.waiting_message:
            waiting["message"] = state.waiting_message
        current = {"waiting": waiting}
    last = {"terminated": _terminated(state.last_terminated)} if state.last_terminated else {}
    return {
        "name": state.name,
        "image": state.image,
        "imageID": "",
        "containerID": "",
        "ready": state.ready,
        "started": state.started,
        "restartCount": state.restart_count,
        "state": current,
        "lastState": last,
    }


def compute_phase(init: Sequence[ContainerState], main: Sequence[ContainerState]) -> str:
    """The pod phase: Pending until started, Running, then Succeeded or Failed for good.

    A container's ``terminated`` is set only when it will not be restarted, so
    the restart policy is already folded into the states.
    """
    failed_init = any(s.terminated is not None and not s.succeeded for s in init)
    if failed_init:
        return "Failed"
    if not all(s.succeeded for s in init):
        return "Pending"
    if main and all(s.terminated is not None for s in main):
        return "Succeeded" if all(s.succeeded for s in main) else "Failed"
    if any(s.running_since is not None for s in main):
        return "Running"
    # Restarting after an exit (CrashLoopBackOff) still counts as Running.
    if any(s.last_terminated is not None or s.terminated is not None for s in main):
        return "Running"
    return "Pending"


def _condition(
    previous: Mapping[str, Mapping[str, Any]],
    *,
    type_: str,
    ok: bool,
    reason: str,
    message: str,
    now: datetime,
) -> dict[str, Any]:
    status = "True" if ok else "False"
    before = previous.get(type_, {})
    since = before.get("lastTransitionTime") if before.get("status") == status else None
    condition: dict[str, Any] = {
        "type": type_,
        "status": status,
        "lastProbeTime": None,
        "lastTransitionTime": since or format_time(now),
    }
    if not ok:
        condition["reason"] = reason
        condition["message"] = message
    return condition


def compute_conditions(
    pod: Mapping[str, Any],
    init: Sequence[ContainerState],
    main: Sequence[ContainerState],
    now: datetime,
) -> list[dict[str, Any]]:
    """Initialized, ContainersReady and Ready, keeping transition times that did not change."""
    previous = {c["type"]: c for c in pod.get("status", {}).get("conditions") or []}
    pending_init = [s.name for s in init if not s.succeeded]
    unready = [s.name for s in main if not s.ready and not s.succeeded]
    completed = bool(main) and all(s.terminated is not None for s in main)
    gates = [g["conditionType"] for g in pod.get("spec", {}).get("readinessGates") or []]
    gates_false = [g for g in gates if previous.get(g, {}).get("status") != "True"]
    not_ready_message = f"containers with unready status: [{' '.join(unready)}]"
    containers_ready = not unready and not completed
    if completed:
        ready_reason, ready_message = REASON_POD_COMPLETED, ""
    elif unready:
        ready_reason, ready_message = REASON_NOT_READY, not_ready_message
    else:
        ready_reason = REASON_GATES
        ready_message = f"corresponding condition of pod readiness gate {gates_false} is not True"
    return [
        _condition(
            previous,
            type_=INITIALIZED,
            ok=not pending_init,
            reason=REASON_NOT_INITIALIZED,
            message=f"containers with incomplete status: [{' '.join(pending_init)}]",
            now=now,
        ),
        _condition(
            previous,
            type_=CONTAINERS_READY,
            ok=containers_ready,
            reason=REASON_POD_COMPLETED if completed else REASON_NOT_READY,
            message="" if completed else not_ready_message,
            now=now,
        ),
        _condition(
            previous,
            type_=READY,
            ok=containers_ready and not gates_false,
            reason=ready_reason,
            message=ready_message,
            now=now,
        ),
    ]


def compute_pod_status(
    pod: Mapping[str, Any],
    init: Sequence[ContainerState],
    main: Sequence[ContainerState],
    now: datetime,
) -> dict[str, Any]:
    """The status body to patch: phase, conditions and every container's state."""
    status: dict[str, Any] = {
        "phase": compute_phase(init, main),
        "conditions": compute_conditions(pod, init, main, now),
        "containerStatuses": [compute_container_status(s) for s in main],
    }
    if init:
        status["initContainerStatuses"] = [compute_container_status(s) for s in init]
    return status
