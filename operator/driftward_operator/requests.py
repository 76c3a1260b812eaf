"""User requests made through annotations: retry, rollback and promote.

Pure: reads the MonitoredModel's annotations and ``status.requests``. A request
is an annotation whose value differs from the value the operator last handled,
so setting it to a new value (a timestamp, say) asks again. The operator records
handled values in status and never edits annotations, so a GitOps tool that owns
them sees no drift.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from driftward_operator import api


@dataclass(frozen=True)
class Requests:
    """The requests to act on in this reconcile, and the values to record as handled."""

    retry: str | None = None
    rollback: str | None = None
    promote: str | None = None
    handled: dict[str, str] = field(default_factory=dict)


def compute_requests(mm: Mapping[str, Any]) -> Requests:
    """Which request annotations carry a value not yet handled."""
    annotations: Mapping[str, Any] = mm["metadata"].get("annotations") or {}
    previous: Mapping[str, Any] = (mm.get("status") or {}).get("requests") or {}
    handled = {str(k): str(v) for k, v in previous.items()}
    new: dict[str, str | None] = {}
    for key, annotation in api.REQUEST_ANNOTATIONS.items():
        value = annotations.get(annotation)
        if value is None or str(value) == previous.get(key):
            new[key] = None
            continue
        new[key] = str(value)
        handled[key] = str(value)
    return Requests(
        retry=new["retry"], rollback=new["rollback"], promote=new["promote"], handled=handled
    )
