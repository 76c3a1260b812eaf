"""The monitor sidecar's process settings, from ``DRIFTWARD_MONITOR_*`` environment variables.

Loaded once at start-up by the CLI and passed explicitly to ``create_app``;
there is no module-level instance. What to watch and how to judge it lives in
the monitor config JSON (``CONFIG_PATH``), not here. This module must not read
that file or start anything.
"""

from __future__ import annotations

from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class MonitorSettings(BaseSettings):
    """Settings of one monitor sidecar process."""

    model_config = SettingsConfigDict(
        env_prefix="DRIFTWARD_MONITOR_", protected_namespaces=(), extra="ignore"
    )

    config_path: Path = Path("/etc/driftward/monitor.json")
    """The monitor config JSON (the ConfigMap's monitor.json the operator builds)."""

    host: str = "0.0.0.0"
    """The address both listeners bind; the operator reaches the monitor over the pod IP."""

    port: int = Field(default=8081, ge=1, le=65535)
    """Record intake, verdict, window export and HTML report."""

    metrics_port: int = Field(default=9091, ge=1, le=65535)
    """Prometheus /metrics, on its own listener."""

    model_name: str = ""
    """The model's name for metric labels; empty takes model.name from the config."""

    model_version: str = ""
    """The version for metric labels and record checks; empty takes the config's model.version."""

    join_buffer_size: int = Field(default=50_000, ge=100, le=5_000_000)
    """How many recent prediction ids a label can still join (never fewer than window.size)."""

    max_body_bytes: int = Field(default=32 * 1024 * 1024, ge=1024)
    """The largest POST /v1/records body accepted; larger ones get 413."""

    max_batch_size: int = Field(default=10_000, ge=1)
    """The most predictions plus labels in one POST /v1/records; larger batches get 413."""

    max_reference_bytes: int = Field(default=2 * 1024**3, ge=1024)
    """The largest reference file the monitor will download and read."""

    log_level: str = "info"
    """The log level of the monitor (debug, info, warning, error)."""
