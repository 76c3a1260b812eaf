"""Read the monitors of a model's serving pods: their windows and their reference profile.

I/O only: short HTTP GETs to each pod's monitor port, with tight timeouts. A
pod that does not answer is reported as such, never guessed at. Decisions are
left to ``aggregate`` and ``policy``.
"""

from __future__ import annotations

import hashlib
import json
from collections import OrderedDict
from collections.abc import Mapping, Sequence
from typing import Any

import httpx

from driftward_operator import api
from driftward_operator.aggregate import PodWindow
from driftward_serving.monitor.config import MonitorConfig
from driftward_serving.monitor.profile import Profile, compute_profile_digest, profile_from_json
from driftward_serving.monitor.sources import read_reference_profile_isolated

_PROFILE_CACHE_SIZE = 64


def _url(address: str, path: str) -> str:
    host = f"[{address}]" if ":" in address else address
    return f"http://{host}:{api.MONITOR_PORT}{path}"


def compute_monitored_pods(
    pods: Sequence[Mapping[str, Any]], version: str
) -> list[tuple[str, str]]:
    """(name, IP) of the Running pods that serve ``version``; others have no say in its verdict."""
    chosen = []
    for pod in pods:
        metadata = pod.get("metadata", {})
        status = pod.get("status", {})
        if metadata.get("deletionTimestamp") or status.get("phase") != "Running":
            continue
        if metadata.get("labels", {}).get(api.LABEL_VERSION) != version:
            continue
        if status.get("podIP"):
            chosen.append((str(metadata["name"]), str(status["podIP"])))
    return sorted(chosen)


def fetch_windows(pods: Sequence[tuple[str, str]], timeout: float = 3.0) -> list[PodWindow]:
    """GET /v1/window from each pod's monitor."""
    answers = []
    with httpx.Client(timeout=timeout) as client:
        for name, address in pods:
            try:
                response = client.get(_url(address, "/v1/window"))
                response.raise_for_status()
                document = response.json()
            except (httpx.HTTPError, ValueError) as exc:
                answers.append(PodWindow(name, error=f"GET /v1/window failed: {exc}"))
                continue
            if not isinstance(document, dict):
                answers.append(PodWindow(name, error="GET /v1/window did not return an object"))
                continue
            answers.append(PodWindow(name, document=document))
    return answers


class ProfileCache:
    """Reference profiles by digest: fetched once from a pod, then reused for every window."""

    def __init__(self, size: int = _PROFILE_CACHE_SIZE) -> None:
        self._profiles: OrderedDict[str, Profile] = OrderedDict()
        self._size = size

    def fetch(self, digest: str, address: str, timeout: float = 10.0) -> Profile:
        """The profile with ``digest``, from the cache or from the pod at ``address``."""
        if digest in self._profiles:
            self._profiles.move_to_end(digest)
            return self._profiles[digest]
        response = httpx.get(_url(address, "/v1/profile"), timeout=timeout)
        response.raise_for_status()
        document = response.json()
        profile = profile_from_json(document)
        served = document.get("digest")
        if served != digest:
            raise ValueError(
                f"the pod's profile has digest {str(served)[:12]}, its window {digest[:12]}"
            )
        self._remember(digest, profile)
        return profile

    def build(self, config: MonitorConfig, digest: str) -> Profile:
        """The profile with ``digest``, built by the operator from the configured reference.

        For the Prometheus source, where no pod can be asked. The operator
        fetches ``spec.monitoring.reference`` (http(s):// or s3://; file://
        only if the operator's own filesystem has it), verifies its sha256 and
        profiles it exactly as the monitor does, in a child process. The
        result must have the digest the monitors report, or it is refused.
        """
        if digest in self._profiles:
            self._profiles.move_to_end(digest)
            return self._profiles[digest]
        key = (
            "reference:"
            + hashlib.sha256(
                json.dumps(
                    {
                        key: value
                        for key, value in config.to_json().items()
                        if key in ("reference", "features")
                    }
                    | {"task": config.model.task.value},
                    sort_keys=True,
                ).encode()
            ).hexdigest()
        )
        profile = self._profiles.get(key)
        if profile is None:
            profile = read_reference_profile_isolated(config)
            self._remember(key, profile)
        built = compute_profile_digest(profile)
        if built != digest:
            raise ValueError(
                f"the operator's profile of {config.reference.uri} has digest {built[:12]}, "
                f"the monitors' windows {digest[:12]}: the operator and the monitors run "
                "different driftward releases, or see different reference data"
            )
        self._remember(digest, profile)
        return profile

    def _remember(self, key: str, profile: Profile) -> None:
        self._profiles[key] = profile
        self._profiles.move_to_end(key)
        if len(self._profiles) > self._size:
            self._profiles.popitem(last=False)
