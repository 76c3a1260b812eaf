"""The operator's settings, read once at start-up from DRIFTWARD_OPERATOR_* variables.

Only declarations and validation: the settings object is passed explicitly to
whatever needs it, never imported as a module-level singleton.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class OperatorSettings(BaseSettings):
    """How the operator runs: where it watches, how often it re-checks, how it shares work."""

    model_config = SettingsConfigDict(env_prefix="DRIFTWARD_OPERATOR_", extra="ignore")

    namespaces: list[str] = Field(default_factory=list)
    """Namespaces to watch, as a JSON list (e.g. '["ml-prod","ml-staging"]'); empty watches all."""

    resync_seconds: float = Field(default=15.0, gt=0, le=3600)
    """How often each MonitoredModel is reconciled even when nothing changed, in seconds."""

    apply_refresh_seconds: float = Field(default=300.0, ge=0, le=86400)
    """Re-apply unchanged children at least this often, in seconds, to repair manual edits."""

    peering_name: str = "driftward"
    """The kopf peering object shared by the operator's replicas, so that only one acts."""

    standalone: bool = False
    """Run without peering (a single replica, or tests)."""

    priority: int | None = Field(default=None, ge=0, le=2**31)
    """This replica's peering priority; unset picks a random one so replicas never tie."""

    liveness_port: int = Field(default=8080, ge=0, le=65535)
    """The port of the /healthz endpoint for the liveness probe; 0 disables it."""

    evaluate_verdicts: bool = True
    """Read the serving pods' monitors every spec.monitoring.interval and apply the policy.

    Turn it off only where the operator cannot reach pod IPs; then nothing is
    rolled back automatically."""
    http_port: int = Field(default=8000, ge=0, le=65535)
    """The port of /metrics and the health analysis (/v1/analysis, /v1/gate); 0 disables it."""
    http_host: str = "0.0.0.0"
    """The address the metrics and analysis endpoint listens on."""
    fault: Literal["", "exit-after-rollback-event", "exit-after-rollback-status"] = ""
    """Testing only: exit the process at this point of a rollback, to prove crash safety."""
    field_manager: str = "driftward-operator"
    """The server-side apply field manager that owns every child's fields."""
