"""The serving process's settings: one pydantic-settings class, read once at startup.

Every knob the model server has lives here, under the ``DRIFTWARD_SERVING_``
prefix fixed by docs/contracts.md. The CLI loads the class once and passes the
instance to ``create_app``; nothing else reads the environment. This module must
not do I/O beyond reading the environment, and must not hold a module-level
settings instance.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Literal
from urllib.parse import urlsplit

from pydantic import Field, ValidationError, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

ENV_PREFIX = "DRIFTWARD_SERVING_"
ARTIFACT_SCHEMES = ("file", "http", "https", "s3")
_SHA256 = re.compile(r"^[0-9a-f]{64}$")
_MODEL_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")

ModelFormat = Literal["skops", "joblib", "pickle"]
SklearnVersionMismatch = Literal["warn", "refuse"]


class ServingSettings(BaseSettings):
    """Settings of the model server (environment variables prefixed DRIFTWARD_SERVING_)."""

    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX,
        use_attribute_docstrings=True,
        extra="ignore",
        frozen=True,
        protected_namespaces=(),
    )

    model_name: str = "model"
    """Name the model is served under: the {name} in /v2/models/{name}/... ."""

    model_version: str = "v1"
    """Version label reported in responses, metrics and records sent to the monitor."""

    artifact_uri: str
    """Where the model artifact is: file://, http://, https:// or s3:// (S3-compatible)."""

    artifact_sha256: str
    """Hex sha256 of the artifact; the bytes are checked against it before anything loads."""

    model_format: ModelFormat = "skops"
    """Artifact format: skops (safe, the default), or joblib/pickle (need ALLOW_UNSAFE_FORMATS)."""

    allow_unsafe_formats: bool = False
    """Opt-in to loading joblib/pickle artifacts, which can run arbitrary code when loaded."""

    sklearn_version_mismatch: SklearnVersionMismatch = "warn"
    """An artifact saved with another scikit-learn version: warn (serve it, and say so in
    the log, the ready message, the model metadata and a gauge) or refuse (never ready,
    reason SklearnVersionRefused)."""

    trusted_types: list[str] = Field(default_factory=list)
    """JSON list of extra fully-qualified type names a skops artifact may use."""

    feature_names: list[str] | None = None
    """JSON list giving the feature order for records keyed by name (default: the model's)."""

    host: str = "0.0.0.0"
    """Address the inference API and the metrics endpoint listen on."""

    port: int = Field(default=8080, ge=1, le=65535)
    """Port of the inference API (/v2/..., /predict, /feedback)."""

    metrics_port: int = Field(default=9090, ge=1, le=65535)
    """Port of the Prometheus /metrics endpoint."""

    monitor_url: str = "http://127.0.0.1:8081"
    """Base URL of the monitor sidecar that receives records; empty disables the hand-off."""

    record_queue_size: int = Field(default=10_000, ge=1)
    """Most prediction rows (and, separately, labels) waiting for the monitor; more are dropped."""

    record_batch_size: int = Field(default=5_000, ge=1)
    """Most records sent to the monitor in one POST (joined 1,000 at a time between requests)."""

    record_flush_seconds: float = Field(default=0.5, gt=0, le=60)
    """Longest wait before queued records are sent, if no POST of record_batch_size fills first."""

    monitor_timeout_seconds: float = Field(default=2.0, gt=0, le=60)
    """Time allowed for one POST to the monitor before its batch is dropped."""

    max_body_bytes: int = Field(default=1_048_576, ge=1)
    """Largest request body accepted; larger bodies get 413 before any parsing."""

    max_batch_size: int = Field(default=1_024, ge=1)
    """Most rows (or labels) in one request; more get 413."""

    prediction_id_retention: int = Field(default=100_000, ge=2)
    """Recent prediction ids per worker that a label is accepted for (older ones count as late)."""

    workers: int = Field(default=1, ge=1, le=64)
    """Server processes sharing the port (one per core); `serve --workers` overrides it."""

    shared_state_dir: Path | None = None
    """Set by `serve` for multi-worker runs: where workers share metrics and the id ledger."""

    log_level: Literal["critical", "error", "warning", "info", "debug"] = "info"
    """Log level of the server."""

    @field_validator("artifact_sha256", mode="before")
    @classmethod
    def _check_sha256(cls, value: object) -> object:
        if isinstance(value, str):
            digest = value.strip().lower().removeprefix("sha256:")
            if not _SHA256.match(digest):
                raise ValueError("must be 64 hexadecimal characters (a sha256 digest)")
            return digest
        return value

    @field_validator("artifact_uri")
    @classmethod
    def _check_uri(cls, value: str) -> str:
        scheme = urlsplit(value).scheme
        if scheme not in ARTIFACT_SCHEMES:
            allowed = ", ".join(f"{s}://" for s in ARTIFACT_SCHEMES)
            raise ValueError(f"scheme must be one of {allowed}")
        return value

    @field_validator("model_name")
    @classmethod
    def _check_name(cls, value: str) -> str:
        if not _MODEL_NAME.match(value):
            raise ValueError("must be 1-128 characters of letters, digits, '.', '_' or '-'")
        return value

    @field_validator("monitor_url")
    @classmethod
    def _check_monitor_url(cls, value: str) -> str:
        value = value.strip().rstrip("/")
        if value and urlsplit(value).scheme not in ("http", "https"):
            raise ValueError("must be an http:// or https:// URL, or empty to disable the hand-off")
        return value


def build_settings_error(error: ValidationError) -> str:
    """Render a settings validation error as lines naming the variable, value and rule."""
    lines = ["invalid serving settings:"]
    for item in error.errors():
        field = ".".join(str(part) for part in item["loc"])
        variable = f"{ENV_PREFIX}{field.upper()}"
        if item["type"] == "missing":
            lines.append(f"  {variable} is required but not set")
            continue
        hint = ' (give a JSON list, e.g. ["a", "b"])' if item["type"] == "list_type" else ""
        lines.append(f"  {variable}={item.get('input')!r}: {item['msg']}{hint}")
    return "\n".join(lines)
