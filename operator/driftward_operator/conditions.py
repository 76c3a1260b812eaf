"""Kubernetes-style status conditions as plain dicts.

Pure helpers: they never touch the cluster. ``set_condition`` keeps
``lastTransitionTime`` when the status does not change, as the API conventions
ask, so re-running a reconcile leaves conditions byte-identical.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

Condition = dict[str, Any]


def find_condition(conditions: Sequence[Mapping[str, Any]], type_: str) -> Mapping[str, Any] | None:
    """Return the condition of this type, or None."""
    return next((c for c in conditions if c.get("type") == type_), None)


def set_condition(
    conditions: Sequence[Mapping[str, Any]],
    type_: str,
    status: bool | None,
    *,
    reason: str,
    message: str,
    generation: int,
    now: str,
) -> list[Condition]:
    """Return a new list with this condition set; the transition time moves only on a change."""
    status_text = "Unknown" if status is None else ("True" if status else "False")
    previous = find_condition(conditions, type_)
    transition = now
    if previous is not None and previous.get("status") == status_text:
        transition = str(previous.get("lastTransitionTime") or now)
    updated: Condition = {
        "type": type_,
        "status": status_text,
        "reason": reason,
        "message": message,
        "observedGeneration": generation,
        "lastTransitionTime": transition,
    }
    others = [dict(c) for c in conditions if c.get("type") != type_]
    return [*others, updated]


def is_true(conditions: Sequence[Mapping[str, Any]], type_: str) -> bool:
    """Whether the condition of this type exists with status True."""
    found = find_condition(conditions, type_)
    return found is not None and found.get("status") == "True"
