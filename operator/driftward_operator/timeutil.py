"""Durations and timestamps as the MonitoredModel API writes them.

Pure: parses Go-style durations ("90s", "1h30m") the way the CRD's pattern
allows, and formats RFC 3339 UTC timestamps with second precision.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

_DURATION_PART = re.compile(r"([0-9]+(?:\.[0-9]+)?)(ms|s|m|h)")
_UNIT_SECONDS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0}


def parse_duration(text: str) -> timedelta:
    """Parse a duration such as "30s", "1h30m" or "500ms"; raise ValueError naming the text."""
    parts = _DURATION_PART.findall(text)
    if not text or "".join(n + u for n, u in parts) != text:
        raise ValueError(
            f"invalid duration {text!r}: use a number and a unit (ms, s, m, h), e.g. 30s"
        )
    return timedelta(seconds=sum(float(n) * _UNIT_SECONDS[u] for n, u in parts))


def format_time(moment: datetime) -> str:
    """Format a moment as RFC 3339 in UTC with second precision, as Kubernetes does."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_time(text: str) -> datetime:
    """Parse an RFC 3339 timestamp written by format_time (or by the API server)."""
    return datetime.fromisoformat(text.replace("Z", "+00:00"))
