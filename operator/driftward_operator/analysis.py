"""Is this model healthy now, and why: the answer Argo Rollouts and Flagger consume.

Pure: computed from a MonitoredModel's status alone, so it is exactly as fresh
as the operator's last evaluation and needs no access to the pods. The HTTP
adapter lives in ``server``; the CLI in ``cli``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from driftward_operator import api
from driftward_operator.conditions import find_condition

# A model is unhealthy while any of these is True, and while Ready is not True.
_BAD_WHEN_TRUE = (api.DRIFTED, api.DEGRADED, api.ROLLED_BACK)


def compute_analysis(mm: Mapping[str, Any], version: str | None = None) -> dict[str, Any]:
    """The health verdict as JSON: ``healthy`` plus the conditions and figures behind it.

    With ``version``, the model is healthy only while that version is the one
    serving (an analysis of a candidate fails once it has been rolled back).
    """
    metadata = mm.get("metadata", {})
    status: Mapping[str, Any] = mm.get("status") or {}
    conditions = status.get("conditions", [])
    reasons: list[str] = []
    ready = find_condition(conditions, api.READY)
    if ready is None or ready.get("status") != "True":
        reasons.append(
            f"Ready is not True: {ready.get('message', '') if ready else 'no status yet'}"
        )
    for type_ in _BAD_WHEN_TRUE:
        found = find_condition(conditions, type_)
        if found is not None and found.get("status") == "True":
            reasons.append(f"{type_} ({found.get('reason')}): {found.get('message', '')}")
    active = str(status.get("activeVersion", ""))
    if version is not None and active != version:
        reasons.append(f"version {version} is not serving; version {active or 'none'} is")
    spec_version = str(mm.get("spec", {}).get("model", {}).get("version", ""))
    return {
        "name": metadata.get("name"),
        "namespace": metadata.get("namespace"),
        "healthy": not reasons,
        "phase": status.get("phase", api.PHASE_PENDING),
        "specVersion": spec_version,
        "activeVersion": active,
        "stableVersion": status.get("stableVersion", ""),
        "drift": status.get("drift"),
        "performance": status.get("performance"),
        "reasons": reasons,
    }
