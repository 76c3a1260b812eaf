"""The monitor sidecar's process settings, from ``DRIFTWARD_MONITOR_*`` environment variables.

Loaded once at start-up by the CLI (``load_monitor_settings``) and passed
explicitly to ``create_app``; there is no module-level instance. What to watch
and how to judge it lives in the monitor config JSON (``CONFIG_PATH``), not
here. This module must not read that file or start anything.

A msgspec struct rather than pydantic-settings (STYLE.md's rule for settings):
the sidecar imports in under 0.5 s only without pydantic. The class keeps that
rule's shape: one class for the process, one prefix, a docstring per field,
and a bad value refused with its variable, value and rule.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any

import msgspec

from driftward_serving.monitor.config import describe_problem

ENV_PREFIX = "DRIFTWARD_MONITOR_"

Port = Annotated[int, msgspec.Meta(ge=1, le=65535)]


class SettingsError(ValueError):
    """A setting that cannot be used; the message names the variable, its value and the rule."""


class MonitorSettings(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """Settings of one monitor sidecar process."""

    config_path: Path = Path("/etc/driftward/monitor.json")
    """The monitor config JSON (the ConfigMap's monitor.json the operator builds)."""

    host: str = "0.0.0.0"
    """The address both listeners bind; the operator reaches the monitor over the pod IP."""

    port: Port = 8081
    """Record intake, verdict, window export and HTML report."""

    metrics_port: Port = 9091
    """Prometheus /metrics, on its own listener."""

    model_name: str = ""
    """The model's name for metric labels; empty takes model.name from the config."""

    model_version: str = ""
    """The version for metric labels and record checks; empty takes the config's model.version."""

    join_buffer_size: Annotated[int, msgspec.Meta(ge=100, le=5_000_000)] = 50_000
    """How many recent prediction ids a label can still join (never fewer than window.size)."""

    max_body_bytes: Annotated[int, msgspec.Meta(ge=1024)] = 32 * 1024 * 1024
    """The largest POST /v1/records body accepted; larger ones get 413."""

    max_batch_size: Annotated[int, msgspec.Meta(ge=1)] = 10_000
    """The most predictions plus labels in one POST /v1/records; larger batches get 413."""

    max_reference_bytes: Annotated[int, msgspec.Meta(ge=1024)] = 2 * 1024**3
    """The largest reference file the monitor will download and read."""

    log_level: str = "info"
    """The log level of the monitor (debug, info, warning, error)."""


def _path(kind: type, value: Any) -> Any:
    if kind is Path and isinstance(value, str | os.PathLike):
        return Path(value)
    raise TypeError(f"Expected `{kind.__name__}`, got `{type(value).__name__}`")


def load_monitor_settings(
    environ: Mapping[str, str] | None = None, **overrides: Any
) -> MonitorSettings:
    """The settings from ``DRIFTWARD_MONITOR_*`` variables, with ``overrides`` (flags) winning.

    Variables with the prefix that name no setting are ignored, as
    pydantic-settings does; a bad value raises SettingsError.
    """
    environ = os.environ if environ is None else environ
    names = {field.name for field in msgspec.structs.fields(MonitorSettings)}
    values: dict[str, Any] = {}
    sources: dict[str, str] = {}
    for key, value in environ.items():
        name = key[len(ENV_PREFIX) :].lower() if key.upper().startswith(ENV_PREFIX) else ""
        if name in names:
            values[name], sources[name] = value, key
    for name, value in overrides.items():
        values[name], sources[name] = value, f"--{name.replace('_', '-')}"
    try:
        settings = msgspec.convert(values, MonitorSettings, strict=False, dec_hook=_path)
    except msgspec.ValidationError as error:
        problem = describe_problem(error, values)
        name, _, rest = problem.partition(":")
        raise SettingsError(
            f"monitor setting {sources.get(name, name)} is not valid:{rest}"
        ) from None
    if settings.port == settings.metrics_port:
        raise SettingsError(
            f"monitor settings {sources.get('port', 'port')} and "
            f"{sources.get('metrics_port', 'metrics_port')} are both {settings.port}; "
            "the API and the metrics need two different ports"
        )
    return settings
