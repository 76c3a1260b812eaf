"""Ask serving pods why they are not ready, over their readiness endpoint.

I/O only: one short HTTP GET per pod, with a tight timeout, used only while a
rollout is stuck. The model server answers 503 with a CamelCase reason (for
example DigestMismatch or ArtifactUnavailable) and a message; this module
returns them and decides nothing.
"""

from __future__ import annotations

from dataclasses import dataclass

import httpx


@dataclass(frozen=True)
class PodReadiness:
    """What a serving pod's readiness endpoint said."""

    pod: str
    ready: bool
    reason: str
    message: str


def fetch_pod_readiness(
    pod: str, address: str, port: int, timeout: float = 2.0
) -> PodReadiness | None:
    """GET /v2/health/ready on one pod; None if it cannot be reached or does not answer JSON."""
    host = f"[{address}]" if ":" in address else address
    try:
        response = httpx.get(f"http://{host}:{port}/v2/health/ready", timeout=timeout)
        body = response.json()
    except (httpx.HTTPError, ValueError):
        return None
    if not isinstance(body, dict):
        return None
    return PodReadiness(
        pod=pod,
        ready=response.status_code == 200,
        reason=str(body.get("reason", "ModelNotReady")),
        message=str(body.get("message", "")),
    )
