"""The version lifecycle: which version serves, which is candidate, which is stable.

Pure functions over plain data (the spec and status dicts, the Deployment's
observed rollout, and the current time). Nothing here talks to the cluster or
writes the spec; the result is a new status and the Events that mark each
transition.

The rules:

* A version is identified by its label and its artifact digest.
* A version in the spec that is neither active nor known-bad becomes the
  candidate and is deployed at once.
* A candidate whose pods have all been Ready for ``spec.policy.promotionWindow``
  becomes stable; the previous stable version is superseded. The first version
  ever deployed is promoted the same way.
* A version that was rolled back is sticky: it is not deployed again until the
  spec names a new version or digest (or a user asks for a retry).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from driftward_operator import api
from driftward_operator.timeutil import format_time, parse_duration, parse_time

HistoryEntry = dict[str, Any]


@dataclass(frozen=True)
class VersionRef:
    """One model version: its label and the pinned artifact that implements it."""

    version: str
    uri: str
    sha256: str
    format: str = "Skops"
    allow_unsafe_format: bool = False

    @property
    def key(self) -> tuple[str, str]:
        """The identity of a version: its label and its digest."""
        return (self.version, self.sha256)

    @classmethod
    def from_spec(cls, model: Mapping[str, Any]) -> VersionRef:
        """Read the version the spec asks for from spec.model."""
        return cls(
            version=str(model["version"]),
            uri=str(model["uri"]),
            sha256=str(model["sha256"]),
            format=str(model.get("format", "Skops")),
            allow_unsafe_format=bool(model.get("allowUnsafeFormat", False)),
        )

    @classmethod
    def from_history(cls, entry: Mapping[str, Any]) -> VersionRef:
        """Read a version back from a status.history entry."""
        return cls(
            version=str(entry["version"]),
            uri=str(entry["uri"]),
            sha256=str(entry["sha256"]),
            format=str(entry.get("format", "Skops")),
            allow_unsafe_format=bool(entry.get("allowUnsafeFormat", False)),
        )


@dataclass(frozen=True)
class Rollout:
    """What the serving Deployment reports, reduced to what the lifecycle needs."""

    exists: bool = False
    digest: str | None = None
    """The artifact digest the Deployment's pod template serves."""
    available: bool = False
    """All desired replicas run the current template and are available."""
    deadline_exceeded: bool = False
    message: str = ""


@dataclass(frozen=True)
class EventSpec:
    """An Event to emit: Normal or Warning, a CamelCase reason and a message."""

    type: str
    reason: str
    message: str


@dataclass(frozen=True)
class Lifecycle:
    """The lifecycle's decision: the version to serve and the status fields it implies."""

    active: VersionRef
    fields: dict[str, Any]
    events: tuple[EventSpec, ...] = field(default_factory=tuple)
    blocked_version: str | None = None
    """A spec version not deployed because it was rolled back (sticky)."""


def _entry_key(entry: Mapping[str, Any]) -> tuple[str, str]:
    return (str(entry.get("version")), str(entry.get("sha256")))


def _find(history: Sequence[HistoryEntry], key: tuple[str, str]) -> HistoryEntry | None:
    return next((e for e in history if _entry_key(e) == key), None)


def _new_entry(ref: VersionRef, now: str) -> HistoryEntry:
    return {
        "version": ref.version,
        "uri": ref.uri,
        "sha256": ref.sha256,
        "format": ref.format,
        "allowUnsafeFormat": ref.allow_unsafe_format,
        "deployedAt": now,
        "outcome": api.OUTCOME_CANDIDATE,
        "reason": api.Reason.CANDIDATE_DEPLOYED,
        "message": f"version {ref.version} deployed as the candidate",
    }


def compute_trimmed_history(
    history: Sequence[HistoryEntry], limit: int, keep: set[tuple[str, str]]
) -> list[HistoryEntry]:
    """Keep the newest ``limit`` entries, never dropping the ones in ``keep``."""
    kept: list[HistoryEntry] = []
    for entry in history:
        if len(kept) < limit or _entry_key(entry) in keep:
            kept.append(entry)
    return kept


def compute_lifecycle(
    spec: Mapping[str, Any],
    status: Mapping[str, Any],
    rollout: Rollout,
    now: datetime,
    *,
    promotion_blocked: bool = False,
    promote_now: bool = False,
) -> Lifecycle:
    """Decide the active, candidate and stable versions and the history, from spec and status.

    ``promotion_blocked`` holds a candidate in its window (for example while the
    monitor reports a breach), so that only a clean window promotes.
    ``promote_now`` (a user's promote request) promotes a serving candidate
    without waiting for the window.
    """
    stamp = format_time(now)
    desired = VersionRef.from_spec(spec["model"])
    policy = spec.get("policy", {})
    history: list[HistoryEntry] = [dict(e) for e in status.get("history", [])]
    events: list[EventSpec] = []

    active_key = (str(status.get("activeVersion", "")), str(status.get("activeDigest", "")))
    stable_key = (str(status.get("stableVersion", "")), str(status.get("stableDigest", "")))
    active_entry = _find(history, active_key)
    stable_entry = _find(history, stable_key) if stable_key[0] else None
    candidate = str(status.get("candidateVersion", "")) or None

    blocked: str | None = None
    desired_entry = _find(history, desired.key)
    if desired.key != active_key:
        if desired_entry is not None and desired_entry.get("outcome") == api.OUTCOME_ROLLED_BACK:
            # Sticky rollback: a GitOps re-sync of the same spec must not bring it back.
            blocked = desired.version
        elif stable_entry is not None and desired.key == stable_key:
            active_entry, candidate = stable_entry, None
            events.append(
                EventSpec("Normal", api.Reason.STABLE, f"serving stable version {desired.version}")
            )
        else:
            if desired_entry is not None:
                history.remove(desired_entry)
            if active_entry is not None and active_entry.get("outcome") == api.OUTCOME_CANDIDATE:
                active_entry.update(
                    outcome=api.OUTCOME_SUPERSEDED,
                    reason=api.Reason.SUPERSEDED,
                    message=f"replaced by version {desired.version} before promotion",
                )
            active_entry = _new_entry(desired, stamp)
            history.insert(0, active_entry)
            candidate = desired.version
            events.append(
                EventSpec(
                    "Normal",
                    api.Reason.CANDIDATE_DEPLOYED,
                    f"deploying version {desired.version} (sha256 {desired.sha256[:12]}) "
                    "as the candidate",
                )
            )
    if active_entry is None:
        # Status lost or never written: start from the spec, as on first create.
        active_entry = _new_entry(desired, stamp)
        history.insert(0, active_entry)
        candidate = desired.version
    active = VersionRef.from_history(active_entry)

    serving_active = rollout.available and rollout.digest == active.sha256
    if candidate == active.version and serving_active:
        if "readyAt" not in active_entry:
            active_entry["readyAt"] = stamp
        window_text = str(policy.get("promotionWindow", "1h"))
        window = parse_duration(window_text)
        window_passed = now - parse_time(active_entry["readyAt"]) >= window
        if promote_now or (not promotion_blocked and window_passed):
            if stable_entry is not None and stable_entry is not active_entry:
                stable_entry.update(
                    outcome=api.OUTCOME_SUPERSEDED,
                    reason=api.Reason.SUPERSEDED,
                    message=f"superseded by version {active.version}",
                )
            active_entry.update(
                promotedAt=stamp,
                outcome=api.OUTCOME_STABLE,
                reason=api.Reason.PROMOTED,
                message=(
                    f"promoted by {api.ANNOTATION_PROMOTE}"
                    if promote_now
                    else f"served Ready and clean for the promotion window ({window_text})"
                ),
            )
            stable_entry, candidate = active_entry, None
            events.append(
                EventSpec(
                    "Normal",
                    api.Reason.PROMOTED,
                    f"version {active.version} promoted to stable "
                    + ("on request" if promote_now else "after a clean promotion window"),
                )
            )

    keep = {active.key} | ({_entry_key(stable_entry)} if stable_entry is not None else set())
    limit = int(policy.get("historyLimit", 10))
    fields: dict[str, Any] = {
        "activeVersion": active.version,
        "activeDigest": active.sha256,
        "stableVersion": str(stable_entry["version"]) if stable_entry is not None else "",
        "stableDigest": str(stable_entry["sha256"]) if stable_entry is not None else "",
        "candidateVersion": candidate or "",
        "history": compute_trimmed_history(history, limit, keep),
    }
    return Lifecycle(active=active, fields=fields, events=tuple(events), blocked_version=blocked)


def compute_rollback(
    status: Mapping[str, Any],
    target: Mapping[str, Any],
    *,
    reason: str,
    message: str,
    now: datetime,
) -> dict[str, Any]:
    """The status after rolling the active version back to ``target`` (a history entry).

    The active version's entry becomes RolledBack, which makes it sticky in
    ``compute_lifecycle``. When the stable version itself is rolled back, the
    target becomes stable again.
    """
    stamp = format_time(now)
    history: list[HistoryEntry] = [dict(e) for e in status.get("history", [])]
    active_key = (str(status.get("activeVersion", "")), str(status.get("activeDigest", "")))
    stable_key = (str(status.get("stableVersion", "")), str(status.get("stableDigest", "")))
    target_key = _entry_key(target)
    for entry in history:
        if _entry_key(entry) == active_key:
            entry.update(
                outcome=api.OUTCOME_ROLLED_BACK, reason=reason, message=message, rolledBackAt=stamp
            )
        elif _entry_key(entry) == target_key and entry.get("outcome") != api.OUTCOME_STABLE:
            entry.update(
                outcome=api.OUTCOME_STABLE,
                reason=api.Reason.STABLE,
                message=f"serving again after version {active_key[0]} was rolled back",
            )
    new = dict(status)
    new.update(
        history=history,
        activeVersion=target_key[0],
        activeDigest=target_key[1],
        candidateVersion="",
    )
    if stable_key == active_key or not stable_key[0]:
        new.update(stableVersion=target_key[0], stableDigest=target_key[1])
    return new


def compute_retry(status: Mapping[str, Any], spec: Mapping[str, Any]) -> dict[str, Any] | None:
    """The status that lets the spec's rolled-back version deploy again, or None if it is not.

    The entry loses its sticky RolledBack outcome; ``compute_lifecycle`` then
    deploys the version as a fresh candidate with a new history entry.
    """
    desired = VersionRef.from_spec(spec["model"])
    history: list[HistoryEntry] = [dict(e) for e in status.get("history", [])]
    entry = _find(history, desired.key)
    if entry is None or entry.get("outcome") != api.OUTCOME_ROLLED_BACK:
        return None
    entry.update(
        outcome=api.OUTCOME_SUPERSEDED,
        reason=api.Reason.RETRY,
        message=f"{api.ANNOTATION_RETRY} asked to deploy version {desired.version} again",
    )
    return {**status, "history": history}


def find_rolled_back(status: Mapping[str, Any], version: str) -> Mapping[str, Any] | None:
    """The RolledBack history entry of ``version``, which says why it was rolled back."""
    return next(
        (
            e
            for e in status.get("history", [])
            if e.get("version") == version and e.get("outcome") == api.OUTCOME_ROLLED_BACK
        ),
        None,
    )
