"""Run one probe against a container's process, the way the kubelet would.

httpGet passes on a status from 200 to 399 (HTTPS is not verified, as in the
kubelet), tcpSocket on an accepted connection, exec on exit code 0. Each call
returns whether it passed and a short message for logs and the pod's status.
This module performs the network call or runs the command and nothing else: it
keeps no state and never touches the API server.
"""

from __future__ import annotations

import socket
import subprocess
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import httpx
from hack.podrunner.spec import Exec, HttpGet, Probe, TcpSocket


@dataclass(frozen=True)
class ProbeResult:
    """The outcome of one probe run."""

    ok: bool
    message: str


def run_probe(probe: Probe, env: Mapping[str, str], cwd: Path) -> ProbeResult:
    """Run the probe once, within its timeout."""
    action = probe.action
    if action is None:
        return ProbeResult(False, probe.error or "probe has no handler")
    if isinstance(action, HttpGet):
        return _http(action, probe.timeout)
    if isinstance(action, TcpSocket):
        return _tcp(action, probe.timeout)
    return _exec(action, probe.timeout, env, cwd)


def _http(get: HttpGet, timeout: float) -> ProbeResult:
    host = f"[{get.host}]" if ":" in get.host else get.host
    url = f"{get.scheme.lower()}://{host}:{get.port}{get.path}"
    headers = {"User-Agent": "kube-probe/podrunner", **dict(get.headers)}
    try:
        response = httpx.get(url, headers=headers, timeout=timeout, verify=False, trust_env=False)
    except httpx.HTTPError as exc:
        return ProbeResult(False, f"Get {url!r}: {type(exc).__name__}: {exc}")
    if 200 <= response.status_code < 400:
        return ProbeResult(True, f"HTTP {response.status_code}")
    body = response.text[:200].replace("\n", " ")
    return ProbeResult(False, f"HTTP probe failed with statuscode: {response.status_code} {body}")


def _tcp(tcp: TcpSocket, timeout: float) -> ProbeResult:
    try:
        with socket.create_connection((tcp.host, tcp.port), timeout=timeout):
            return ProbeResult(True, "connected")
    except OSError as exc:
        return ProbeResult(False, f"dial tcp {tcp.host}:{tcp.port}: {exc}")


def _exec(command: Exec, timeout: float, env: Mapping[str, str], cwd: Path) -> ProbeResult:
    if not command.argv:
        return ProbeResult(False, "exec probe has an empty command")
    try:
        done = subprocess.run(
            list(command.argv),
            env=dict(env),
            cwd=cwd,
            capture_output=True,
            timeout=timeout,
            check=False,
        )
    except subprocess.TimeoutExpired:
        return ProbeResult(False, f"command timed out after {timeout}s")
    except OSError as exc:
        return ProbeResult(False, f"exec {command.argv[0]!r}: {exc}")
    output = (done.stdout + done.stderr).decode(errors="replace").strip()[:200]
    return ProbeResult(done.returncode == 0, f"exit code {done.returncode} {output}".strip())
