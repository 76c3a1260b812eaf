"""Run a pod's containers as local processes: start, probe, restart, stop.

``ContainerRunner`` owns one container's process and its probes in a thread;
``PodSupervisor`` owns one pod: its finalizer, its sandbox directory, its
containers, and the status it writes (computed by ``status``, written through
``kube``). This module decides nothing about Kubernetes semantics that
``spec`` and ``status`` already compute, and holds no global state.
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import signal
import subprocess
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any, Protocol

from hack.podrunner.probes import run_probe
from hack.podrunner.spec import (
    FINALIZER,
    ContainerPlan,
    PodPlan,
    Probe,
    SpecError,
    build_pod_plan,
    compute_pod_ip,
    compute_references,
    pod_key,
)
from hack.podrunner.status import ContainerState, Terminated, compute_pod_status

log = logging.getLogger("podrunner")
_SETPRIV = shutil.which("setpriv")
_POLL = 0.1


class PodApi(Protocol):
    """What a supervisor needs from the API server (``kube.Kube`` implements it)."""

    def add_finalizer(self, pod: Mapping[str, Any]) -> None: ...
    def remove_finalizer(self, namespace: str, name: str, uid: str) -> None: ...
    def patch_status(
        self, namespace: str, name: str, status: Mapping[str, Any]
    ) -> dict[str, Any] | None: ...
    def read_config_maps(
        self, namespace: str, names: frozenset[str]
    ) -> tuple[dict[str, dict[str, str]], dict[str, dict[str, str]]]: ...
    def read_secrets(self, namespace: str, names: frozenset[str]) -> dict[str, dict[str, str]]: ...


@dataclass(frozen=True)
class RunnerSettings:
    """How the runner runs pods; set once from the command line."""

    workdir: Path
    log_dir: Path
    base_env: Mapping[str, str]
    max_grace_seconds: float = 30.0
    backoff_seconds: float = 1.0
    max_backoff_seconds: float = 30.0


def _now() -> datetime:
    return datetime.now(UTC)


def _kill_group(proc: subprocess.Popen[bytes], sig: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, sig)


class ContainerRunner:
    """One container: its process, its probes and its restarts, in a thread of its own."""

    def __init__(
        self,
        pod: str,
        plan: ContainerPlan,
        *,
        settings: RunnerSettings,
        log_path: Path,
        restart: Callable[[int], bool],
        on_change: Callable[[], None],
        grace: float,
        restart_count: int = 0,
    ) -> None:
        self.pod = pod
        self.plan = plan
        self.settings = settings
        self.log_path = log_path
        self._restart = restart
        self._on_change = on_change
        self._lock = threading.Lock()
        self._state = ContainerState(plan.name, plan.image, restart_count=restart_count)
        self._stopping = threading.Event()
        self._grace = grace
        self._thread = threading.Thread(target=self._run, name=f"{pod}/{plan.name}", daemon=True)

    @property
    def state(self) -> ContainerState:
        """The container's state as last observed."""
        with self._lock:
            return self._state

    def _set(self, **changes: Any) -> None:
        with self._lock:
            before = self._state
            self._state = replace(self._state, **changes)
            changed = self._state != before
        if changed:
            self._on_change()

    def start(self) -> None:
        """Start the container's thread."""
        self._thread.start()

    def join(self, timeout: float | None = None) -> None:
        """Wait for the container's thread (it ends when the process will not be restarted)."""
        self._thread.join(timeout)

    @property
    def done(self) -> bool:
        """True once the thread has ended."""
        return not self._thread.is_alive()

    def stop(self, grace: float) -> None:
        """Stop the process (SIGTERM, then SIGKILL after grace seconds) and never restart it.

        Only the container's own thread touches its process, so a stop that
        races a (re)start cannot leave a process behind.
        """
        self._grace = grace
        self._stopping.set()
        if self._thread.is_alive():
            self._thread.join(timeout=grace + 30)
        if self._thread.is_alive():
            log.error("%s/%s: container thread did not end", self.pod, self.plan.name)

    def _terminate(self, proc: subprocess.Popen[bytes], grace: float) -> None:
        """SIGTERM the process group, then SIGKILL it if it outlives grace seconds."""
        _kill_group(proc, signal.SIGTERM)
        try:
            proc.wait(timeout=grace)
        except subprocess.TimeoutExpired:
            log.warning("%s/%s did not stop in %.0fs: SIGKILL", self.pod, self.plan.name, grace)
            _kill_group(proc, signal.SIGKILL)
            proc.wait()

    def _run(self) -> None:
        backoff = self.settings.backoff_seconds
        while not self._stopping.is_set():
            started = time.monotonic()
            ended = self._run_once()
            if self._stopping.is_set():
                self._set(running_since=None, ready=False, terminated=ended)
                return
            ran = time.monotonic() - started
            if not self._restart(ended.exit_code):
                self._set(running_since=None, ready=False, started=False, terminated=ended)
                return
            if ran >= 60:
                backoff = self.settings.backoff_seconds
            log.info(
                "%s/%s exited (%s %d); restarting in %.0fs",
                self.pod,
                self.plan.name,
                ended.reason,
                ended.exit_code,
                backoff,
            )
            self._set(
                running_since=None,
                ready=False,
                started=False,
                last_terminated=ended,
                restart_count=self.state.restart_count + 1,
                waiting_reason="CrashLoopBackOff",
                waiting_message=f"back-off {backoff:.0f}s restarting failed container "
                f"{self.plan.name} in pod {self.pod}",
            )
            if self._stopping.wait(backoff):
                return
            backoff = min(backoff * 2, self.settings.max_backoff_seconds)

    def _resolve(self) -> str | None:
        program = self.plan.argv[0]
        if "/" in program:
            path = program if os.path.isabs(program) else str(self.plan.cwd / program)
            return path if os.access(path, os.X_OK) else None
        return shutil.which(program, path=self.plan.env.get("PATH"))

    def _run_once(self) -> Terminated:
        """Start the process, probe it until it ends, and say how it ended."""
        started_at = _now()
        program = self._resolve()
        if program is None:
            message = f'exec: "{self.plan.argv[0]}": executable file not found in $PATH'
            log.error("%s/%s: %s", self.pod, self.plan.name, message)
            return Terminated(128, "StartError", None, _now(), message)
        argv = [program, *self.plan.argv[1:]]
        if _SETPRIV:
            # The process dies with the runner's thread even if the runner is SIGKILLed.
            argv = [_SETPRIV, "--pdeathsig", "KILL", "--", *argv]
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        output: IO[bytes]
        with self.log_path.open("ab") as output:
            header = f"=== podrunner: start {self.state.restart_count} at {started_at.isoformat()}"
            output.write(f"{header}: {' '.join(self.plan.argv)}\n".encode())
            output.flush()
            if self._stopping.is_set():
                return Terminated(0, "Completed", None, _now(), "stopped before it started")
            try:
                proc = subprocess.Popen(
                    argv,
                    env=dict(self.plan.env),
                    cwd=self.plan.cwd,
                    stdin=subprocess.DEVNULL,
                    stdout=output,
                    stderr=subprocess.STDOUT,
                    start_new_session=True,
                )
            except OSError as exc:
                return Terminated(128, "StartError", None, _now(), str(exc))
        log.info("%s/%s started pid %d: %s", self.pod, self.plan.name, proc.pid, self.plan.argv)
        self._set(
            running_since=started_at,
            terminated=None,
            waiting_reason="",
            waiting_message="",
            started=self.plan.startup is None,
            ready=False,
        )
        message = self._probe_until_exit(proc)
        code = proc.wait()
        # Children left in the process group (workers, shells) go with their leader.
        _kill_group(proc, signal.SIGKILL)
        finished = _now()
        if code < 0:
            sig = -code
            return Terminated(128 + sig, "Error", started_at, finished, message, signal=sig)
        reason = "Completed" if code == 0 else "Error"
        return Terminated(code, reason, started_at, finished, message)

    def _probe_until_exit(self, proc: subprocess.Popen[bytes]) -> str:
        """Run the probes on schedule while the process lives; kill it if a probe says so."""
        t0 = time.monotonic()
        plan = self.plan
        counts: dict[str, tuple[int, int]] = {}  # kind: (consecutive ok, consecutive failed)
        due: dict[str, float] = {}
        for kind, probe in (
            ("startup", plan.startup),
            ("readiness", plan.readiness),
            ("liveness", plan.liveness),
        ):
            if probe is not None:
                due[kind] = t0 + probe.initial_delay
                counts[kind] = (0, 0)
        if plan.readiness is None and plan.startup is None:
            self._set(ready=True)
        while proc.poll() is None:
            if self._stopping.is_set():
                self._terminate(proc, self._grace)
                return "stopped by the podrunner"
            now = time.monotonic()
            started = self.state.started
            for kind, probe in (
                ("startup", plan.startup),
                ("readiness", plan.readiness),
                ("liveness", plan.liveness),
            ):
                if probe is None or now < due[kind] or proc.poll() is not None:
                    continue
                if kind == "startup" and started:
                    continue
                if kind != "startup" and not started:
                    continue
                due[kind] = now + probe.period
                verdict = self._probe(kind, probe, counts)
                if verdict:
                    log.info("%s/%s: %s; killing it", self.pod, plan.name, verdict)
                    self._terminate(proc, self._grace)
                    return verdict
            if self.state.started and not started and plan.readiness is None:
                self._set(ready=True)
            time.sleep(_POLL)
        return ""

    def _probe(self, kind: str, probe: Probe, counts: dict[str, tuple[int, int]]) -> str:
        """Run one probe and apply its thresholds; a message if the container must be killed."""
        result = run_probe(probe, self.plan.env, self.plan.cwd)
        ok, failed = counts[kind]
        ok, failed = (ok + 1, 0) if result.ok else (0, failed + 1)
        counts[kind] = (ok, failed)
        name = f"{self.pod}/{self.plan.name}"
        if not result.ok:
            log.info(
                "%s %s probe failed (%d/%d): %s",
                name,
                kind,
                failed,
                probe.failure_threshold,
                result.message,
            )
        if kind == "readiness":
            if ok >= probe.success_threshold and not self.state.ready:
                log.info("%s is ready", name)
                self._set(ready=True)
            elif failed >= probe.failure_threshold and self.state.ready:
                log.info("%s is not ready: %s", name, result.message)
                self._set(ready=False)
        elif kind == "startup" and ok >= probe.success_threshold:
            self._set(started=True)
        elif failed >= probe.failure_threshold:
            return f"{kind.capitalize()} probe failed: {result.message}"
        return ""


class PodSupervisor:
    """One pod: finalizer, sandbox, containers, and the status written from them."""

    def __init__(self, pod: Mapping[str, Any], api: PodApi, settings: RunnerSettings) -> None:
        self.key = pod_key(pod)
        self.uid = str(pod["metadata"]["uid"])
        self.api = api
        self.settings = settings
        self._pod: dict[str, Any] = dict(pod)
        self._lock = threading.Lock()
        self._dirty = threading.Event()
        self._stopping = threading.Event()
        self._stopped = threading.Event()
        self._init: list[ContainerRunner] = []
        self._main: list[ContainerRunner] = []
        self._plan: PodPlan | None = None
        self._config_error: tuple[str, str] | None = None
        self._last_written: dict[str, Any] | None = None
        self._shutdown = False
        ns, name = self.key.split("/", 1)
        self.namespace, self.name = ns, name
        self.sandbox = settings.workdir / "pods" / ns / f"{name}-{self.uid[:8]}"
        self._thread = threading.Thread(target=self._run, name=self.key, daemon=True)

    def start(self) -> None:
        """Start running the pod in the background (unless it was already stopped)."""
        with self._lock:
            if not self._stopping.is_set():
                self._thread.start()

    def observe(self, pod: Mapping[str, Any]) -> None:
        """Take a newer copy of the pod from the watch (for conditions and readiness gates)."""
        with self._lock:
            self._pod = dict(pod)

    @property
    def stopped(self) -> bool:
        """True once every process is gone and the pod is released."""
        return self._stopped.is_set()

    def _mark_dirty(self) -> None:
        self._dirty.set()

    # -- the pod's life --------------------------------------------------------

    def _run(self) -> None:
        try:
            self._hold()
            plan = self._wait_for_plan()
            if plan is None:
                return
            self._plan = plan
            self._materialize(plan)
            if self._run_init(plan):
                for container in plan.containers:
                    if self._stopping.is_set():
                        break
                    runner = self._runner(container, plan, restart=self._main_restart(plan))
                    self._main.append(runner)
                    runner.start()
            self._write_loop()
        except Exception:
            log.exception("%s: supervisor failed", self.key)

    def _hold(self) -> None:
        """Add the finalizer; a pod that cannot be held still runs (its deletion is not waited)."""
        for attempt in range(3):
            try:
                self.api.add_finalizer(self._pod)
                return
            except Exception as exc:
                log.warning("%s: finalizer not added (attempt %d): %r", self.key, attempt + 1, exc)
                self._stopping.wait(1.0)

    def _wait_for_plan(self) -> PodPlan | None:
        """Build the plan, retrying while it names ConfigMaps/Secrets that do not exist yet."""
        while not self._stopping.is_set():
            with self._lock:
                pod = dict(self._pod)
            refs = compute_references(pod)
            try:
                data, binary = self.api.read_config_maps(self.namespace, refs.config_maps)
                secrets = self.api.read_secrets(self.namespace, refs.secrets)
                plan = build_pod_plan(
                    pod,
                    self.sandbox,
                    base_env=self.settings.base_env,
                    config_maps=data,
                    secrets=secrets,
                    binary_config_maps=binary,
                    max_grace_seconds=self.settings.max_grace_seconds,
                )
                self._config_error = None
                return plan
            except SpecError as exc:
                if self._config_error != ("CreateContainerConfigError", str(exc)):
                    log.error("%s cannot start: %s", self.key, exc)
                    self._config_error = ("CreateContainerConfigError", str(exc))
                    self._mark_dirty()
                    self._flush(wait=0)
            except Exception as exc:
                log.warning("%s: reading what the pod references failed: %r", self.key, exc)
            self._stopping.wait(2.0)
        return None

    def _materialize(self, plan: PodPlan) -> None:
        for sub in ("home", "tmp"):
            (plan.sandbox / sub).mkdir(parents=True, exist_ok=True)
        for volume in plan.volumes:
            volume.path.mkdir(parents=True, exist_ok=True)
            for relative, content in volume.files.items():
                target = volume.path / relative
                target.parent.mkdir(parents=True, exist_ok=True)
                target.write_bytes(content)

    def _runner(
        self, container: ContainerPlan, plan: PodPlan, restart: Callable[[int], bool]
    ) -> ContainerRunner:
        with self._lock:
            statuses = (self._pod.get("status") or {}).get("containerStatuses") or []
        previous: dict[str, Any] = next(
            (s for s in statuses if s.get("name") == container.name), {}
        )
        return ContainerRunner(
            self.key,
            container,
            settings=self.settings,
            log_path=self.settings.log_dir / plan.namespace / plan.name / f"{container.name}.log",
            restart=restart,
            on_change=self._mark_dirty,
            grace=plan.grace_seconds,
            restart_count=int(previous.get("restartCount", 0)),
        )

    @staticmethod
    def _main_restart(plan: PodPlan) -> Callable[[int], bool]:
        policy = plan.restart_policy
        return lambda code: policy == "Always" or (policy == "OnFailure" and code != 0)

    def _run_init(self, plan: PodPlan) -> bool:
        """Run init containers one after the other; False if one failed for good or we stopped."""
        never = plan.restart_policy == "Never"
        for container in plan.init_containers:
            runner = self._runner(container, plan, restart=lambda code: code != 0 and not never)
            self._init.append(runner)
        self._mark_dirty()
        for runner in self._init:
            runner.start()
            while not runner.done and not self._stopping.is_set():
                self._flush(wait=0.5)
            if self._stopping.is_set() or not runner.state.succeeded:
                return False
        return True

    def _write_loop(self) -> None:
        self._mark_dirty()
        while not self._stopping.is_set():
            self._flush(wait=1.0)

    def _flush(self, wait: float) -> None:
        if self._dirty.wait(wait):
            self._dirty.clear()
            with self._lock:
                pod = dict(self._pod)
            try:
                self._write_status(pod)
            except Exception as exc:
                # The API server may be briefly unavailable: keep the change and retry.
                log.warning("%s: status not written (%r); retrying", self.key, exc)
                self._dirty.set()
                self._stopping.wait(1.0)

    def _states(self) -> tuple[list[ContainerState], list[ContainerState]]:
        plan = self._plan
        if plan is None:
            pod = self._pod
            reason, message = self._config_error or ("ContainerCreating", "")
            waiting = [
                ContainerState(
                    c["name"], c.get("image", ""), waiting_reason=reason, waiting_message=message
                )
                for c in pod.get("spec", {}).get("containers") or []
            ]
            return [], waiting
        init = [r.state for r in self._init]
        started = {r.plan.name: r.state for r in self._main}
        if self._shutdown:
            started = {
                name: replace(
                    s,
                    running_since=None,
                    terminated=None,
                    ready=False,
                    started=False,
                    last_terminated=s.terminated or s.last_terminated,
                    waiting_reason="RunnerStopped",
                    waiting_message="the podrunner stopped; start it again to run this pod",
                )
                for name, s in started.items()
            }
        main = [
            started.get(c.name) or ContainerState(c.name, c.image, waiting_reason="PodInitializing")
            for c in plan.containers
        ]
        return init, main

    def _write_status(self, pod: Mapping[str, Any]) -> None:
        init, main = self._states()
        status = compute_pod_status(pod, init, main, _now())
        if status == self._last_written:
            return
        written = self.api.patch_status(self.namespace, self.name, status)
        self._last_written = status
        if written is not None:
            with self._lock:
                self._pod = written

    # -- stopping --------------------------------------------------------------

    def stop(self, grace: float | None, *, pod_exists: bool = True, shutdown: bool = False) -> None:
        """Stop every process; write the final status and drop the finalizer if the pod exists.

        On deletion the containers end as terminated. On the runner's shutdown
        they end as waiting (RunnerStopped) and the pod stays Running but not
        Ready, as when a node's kubelet goes away; a new runner restarts them.
        """
        with self._lock:
            self._shutdown = shutdown
            self._stopping.set()
        plan = self._plan
        limit = self.settings.max_grace_seconds
        if grace is None:
            grace = plan.grace_seconds if plan is not None else limit
        grace = min(grace, limit)
        # The supervisor thread starts containers: let it notice the stop first.
        if self._thread.is_alive():
            self._thread.join(timeout=30)
        runners = [*self._init, *self._main]
        stoppers = [threading.Thread(target=r.stop, args=(grace,), daemon=True) for r in runners]
        for t in stoppers:
            t.start()
        for t in stoppers:
            t.join()
        if pod_exists:
            try:
                with self._lock:
                    pod = dict(self._pod)
                self._write_status(pod)
            except Exception as exc:
                log.warning("%s: final status not written: %s", self.key, exc)
            for attempt in range(3):
                try:
                    self.api.remove_finalizer(self.namespace, self.name, self.uid)
                    break
                except Exception as exc:
                    log.warning("%s: finalizer not removed (%d): %r", self.key, attempt + 1, exc)
                    time.sleep(1.0)
        shutil.rmtree(self.sandbox, ignore_errors=True)
        with contextlib.suppress(OSError):
            self.sandbox.parent.rmdir()  # the namespace's directory, once empty
        self._stopped.set()
        log.info("%s stopped (%d containers)", self.key, len(runners))


class PodRunner:
    """Routes watch events to one supervisor per pod, and stops them all on shutdown."""

    def __init__(self, api: PodApi, settings: RunnerSettings) -> None:
        self.api = api
        self.settings = settings
        self._lock = threading.Lock()
        self._pods: dict[str, PodSupervisor] = {}
        self._namespace_of: dict[str, str] = {}
        self._warned: set[str] = set()
        self._closing = False

    def running(self) -> list[str]:
        """namespace/name of every pod the runner currently holds."""
        with self._lock:
            return sorted(s.key for s in self._pods.values())

    def sync(self, namespace: str | None, pods: list[dict[str, Any]]) -> None:
        """A fresh list: handle each pod, and forget pods that vanished while not watched."""
        seen = {p["metadata"]["uid"] for p in pods}
        with self._lock:
            gone = [
                uid
                for uid, ns in self._namespace_of.items()
                if uid not in seen and (namespace is None or ns == namespace)
            ]
        for uid in gone:
            self._forget(uid, pod_exists=False)
        for pod in pods:
            self.handle("ADDED", pod)

    def handle(self, kind: str, pod: dict[str, Any]) -> None:
        """One watch event."""
        meta = pod.get("metadata", {})
        uid = str(meta.get("uid", ""))
        if kind == "DELETED":
            self._forget(uid, pod_exists=False)
            return
        with self._lock:
            if self._closing:
                return
            supervisor = self._pods.get(uid)
        deleting = meta.get("deletionTimestamp") is not None
        if supervisor is not None:
            supervisor.observe(pod)
            if deleting:
                self._forget(uid, pod_exists=True, grace=meta.get("deletionGracePeriodSeconds"))
            return
        if deleting:
            if spec_finalizer_held(pod):
                # Left by an earlier runner whose processes died with it: just release it.
                threading.Thread(
                    target=self.api.remove_finalizer,
                    args=(meta["namespace"], meta["name"], uid),
                    daemon=True,
                ).start()
            return
        if self._should_run(pod):
            self._run(pod)

    def _should_run(self, pod: dict[str, Any]) -> bool:
        status = pod.get("status", {})
        if status.get("phase") in ("Succeeded", "Failed"):
            return False
        if not pod.get("spec", {}).get("nodeName") or not status.get("podIP"):
            return False
        if compute_pod_ip(pod) is not None:
            return True
        uid = pod["metadata"]["uid"]
        if uid not in self._warned:
            self._warned.add(uid)
            log.warning(
                "%s has pod IP %s, which is not a loopback address (or uses hostNetwork): "
                "not running it. Start the cluster in podrunner mode "
                "(DRIFTWARD_TESTBED_PODRUNNER=1 hack/testbed/cluster.sh up ...).",
                pod_key(pod),
                status.get("podIP"),
            )
        return False

    def _run(self, pod: dict[str, Any]) -> None:
        uid = pod["metadata"]["uid"]
        supervisor = PodSupervisor(pod, self.api, self.settings)
        with self._lock:
            if self._closing or uid in self._pods:
                return
            self._pods[uid] = supervisor
            self._namespace_of[uid] = supervisor.namespace
        log.info("%s: running on %s", supervisor.key, compute_pod_ip(pod))
        supervisor.start()

    def _forget(self, uid: str, *, pod_exists: bool, grace: float | None = None) -> None:
        with self._lock:
            supervisor = self._pods.pop(uid, None)
            self._namespace_of.pop(uid, None)
        if supervisor is None:
            return
        # A force-deleted pod's IP may be handed out again at once: stop quickly.
        wait = grace if pod_exists else 1.0
        threading.Thread(
            target=supervisor.stop,
            args=(wait,),
            kwargs={"pod_exists": pod_exists},
            name=f"stop {supervisor.key}",
            daemon=True,
        ).start()

    def shutdown(self) -> None:
        """Stop every pod's processes, mark them not Ready and release them."""
        with self._lock:
            self._closing = True
            supervisors = list(self._pods.values())
            self._pods.clear()
            self._namespace_of.clear()
        threads = [
            threading.Thread(target=s.stop, args=(None,), kwargs={"shutdown": True}, daemon=True)
            for s in supervisors
        ]
        for t in threads:
            t.start()
        for t in threads:
            t.join()


def spec_finalizer_held(pod: Mapping[str, Any]) -> bool:
    """Whether the pod carries the runner's finalizer."""
    return FINALIZER in (pod.get("metadata", {}).get("finalizers") or [])
