"""hack/podrunner/status.py: the pod status written from observed container states."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from hack.podrunner.status import ContainerState, Terminated, compute_pod_status

T0 = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)
T1 = T0 + timedelta(seconds=30)


def pod(
    conditions: list[dict[str, Any]] | None = None, gates: list[str] | None = None
) -> dict[str, Any]:
    spec: dict[str, Any] = {}
    if gates:
        spec["readinessGates"] = [{"conditionType": g} for g in gates]
    return {"spec": spec, "status": {"conditions": conditions or []}}


def conditions(status: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {c["type"]: c for c in status["conditions"]}


def running(name: str, ready: bool) -> ContainerState:
    return ContainerState(
        name, "img", running_since=T0, started=True, ready=ready, waiting_reason=""
    )


def test_waiting_containers_leave_the_pod_pending() -> None:
    status = compute_pod_status(pod(), [], [ContainerState("a", "img")], T0)
    assert status["phase"] == "Pending"
    assert status["containerStatuses"][0]["state"] == {"waiting": {"reason": "ContainerCreating"}}
    assert conditions(status)["Ready"]["status"] == "False"


def test_ready_needs_every_container_ready() -> None:
    status = compute_pod_status(pod(), [], [running("a", True), running("b", False)], T0)
    assert status["phase"] == "Running"
    ready = conditions(status)["Ready"]
    assert ready["status"] == "False"
    assert ready["reason"] == "ContainersNotReady"
    assert ready["message"] == "containers with unready status: [b]"
    assert [c["ready"] for c in status["containerStatuses"]] == [True, False]
    status = compute_pod_status(pod(), [], [running("a", True), running("b", True)], T0)
    assert conditions(status)["Ready"]["status"] == "True"
    assert conditions(status)["ContainersReady"]["status"] == "True"


def test_transition_time_moves_only_when_the_status_changes() -> None:
    first = compute_pod_status(pod(), [], [running("a", False)], T0)
    again = compute_pod_status(pod(first["conditions"]), [], [running("a", False)], T1)
    assert again == first
    flipped = compute_pod_status(pod(first["conditions"]), [], [running("a", True)], T1)
    assert conditions(flipped)["Ready"]["lastTransitionTime"] == "2026-01-01T12:00:30Z"
    assert conditions(flipped)["Initialized"]["lastTransitionTime"] == "2026-01-01T12:00:00Z"


def test_readiness_gates_hold_ready_back() -> None:
    status = compute_pod_status(pod(gates=["example.com/lb"]), [], [running("a", True)], T0)
    assert conditions(status)["ContainersReady"]["status"] == "True"
    assert conditions(status)["Ready"]["reason"] == "ReadinessGatesNotReady"
    gate = {"type": "example.com/lb", "status": "True"}
    status = compute_pod_status(pod([gate], gates=["example.com/lb"]), [], [running("a", True)], T0)
    assert conditions(status)["Ready"]["status"] == "True"


def test_a_crash_loop_is_running_with_the_last_exit_recorded() -> None:
    exit_3 = Terminated(3, "Error", T0, T1)
    state = ContainerState(
        "a", "img", waiting_reason="CrashLoopBackOff", last_terminated=exit_3, restart_count=2
    )
    status = compute_pod_status(pod(), [], [state], T1)
    assert status["phase"] == "Running"
    entry = status["containerStatuses"][0]
    assert entry["restartCount"] == 2
    assert entry["state"] == {"waiting": {"reason": "CrashLoopBackOff"}}
    assert entry["lastState"]["terminated"]["exitCode"] == 3


def test_terminated_for_good_ends_the_phase() -> None:
    ok = ContainerState("a", "img", terminated=Terminated(0, "Completed", T0, T1))
    bad = ContainerState("b", "img", terminated=Terminated(1, "Error", T0, T1))
    assert compute_pod_status(pod(), [], [ok], T1)["phase"] == "Succeeded"
    assert compute_pod_status(pod(), [], [ok, bad], T1)["phase"] == "Failed"
    assert conditions(compute_pod_status(pod(), [], [ok], T1))["Ready"]["reason"] == "PodCompleted"


def test_init_containers_gate_initialized() -> None:
    init = [running("setup", False)]
    status = compute_pod_status(
        pod(), init, [ContainerState("a", "img", waiting_reason="PodInitializing")], T0
    )
    assert status["phase"] == "Pending"
    assert conditions(status)["Initialized"]["status"] == "False"
    assert "setup" in conditions(status)["Initialized"]["message"]
    done = [ContainerState("setup", "img", terminated=Terminated(0, "Completed", T0, T0))]
    status = compute_pod_status(pod(), done, [running("a", True)], T0)
    assert status["phase"] == "Running"
    assert conditions(status)["Initialized"]["status"] == "True"
    assert status["initContainerStatuses"][0]["state"]["terminated"]["reason"] == "Completed"
