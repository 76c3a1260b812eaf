"""Run the server process(es): uvicorn for the API, a separate listener for /metrics.

One worker: the app, its registry and the metrics listener live in this
process. N workers (one per core): this process becomes the supervisor. It
creates a private state directory holding prometheus-client's multiprocess
files and the shared prediction-id ledger, exports its location to the
workers through the environment, lets uvicorn fork N workers on one shared
socket (each builds its own app with ``create_app_from_env``), and serves the
merged metrics of all workers on METRICS_PORT itself. Every worker runs its own
record hand-off to the monitor. The state directory is removed on exit.

This module must not contain request handling or model logic.
"""

from __future__ import annotations

import copy
import logging
import os
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import uvicorn
from prometheus_client import CollectorRegistry, start_http_server
from uvicorn.config import LOGGING_CONFIG

from driftward_serving.app import create_app
from driftward_serving.artifacts import ModelState
from driftward_serving.coalesce import CoalescingHttpToolsProtocol
from driftward_serving.ledger import create_ledger_files
from driftward_serving.metrics import build_multiprocess_registry
from driftward_serving.settings import ENV_PREFIX, ServingSettings

log = logging.getLogger(__name__)

APP_FACTORY = "driftward_serving.app:create_app_from_env"
MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"


def build_log_config(level: str) -> dict[str, Any]:
    """Uvicorn's logging config extended to driftward's own loggers."""
    config = copy.deepcopy(LOGGING_CONFIG)
    config["loggers"]["driftward_serving"] = {
        "handlers": ["default"],
        "level": level.upper(),
        "propagate": False,
    }
    return config


def _uvicorn_options(settings: ServingSettings) -> dict[str, Any]:
    return {
        "host": settings.host,
        "port": settings.port,
        "loop": "uvloop",
        # httptools, answering each response with one write instead of two (coalesce.py).
        "http": CoalescingHttpToolsProtocol,
        # An access log line per request would cost more than the prediction.
        "access_log": False,
        "log_config": build_log_config(settings.log_level),
        "log_level": settings.log_level,
        "backlog": 2048,
        "timeout_graceful_shutdown": 10,
    }


def run_server(
    settings: ServingSettings, on_ready: Callable[[ModelState], None] | None = None
) -> None:
    """Serve until SIGINT/SIGTERM, with one process or settings.workers processes."""
    if settings.workers == 1:
        _run_single(settings, on_ready)
    else:
        _run_workers(settings)


def _run_single(settings: ServingSettings, on_ready: Callable[[ModelState], None] | None) -> None:
    registry = CollectorRegistry()
    app = create_app(settings, registry=registry, on_ready=on_ready)
    metrics_server, _ = start_http_server(settings.metrics_port, settings.host, registry)
    try:
        uvicorn.Server(uvicorn.Config(app, **_uvicorn_options(settings))).run()
    finally:
        metrics_server.shutdown()


def _run_workers(settings: ServingSettings) -> None:
    state_dir = Path(tempfile.mkdtemp(prefix="driftward-serving-"))
    metrics_dir = state_dir / "metrics"
    metrics_dir.mkdir()
    create_ledger_files(state_dir, settings.workers, settings.prediction_id_retention)
    # Workers are spawned fresh and read everything from the environment; prometheus-client
    # switches to multiprocess mode when it sees this variable at import time.
    os.environ[MULTIPROC_ENV] = str(metrics_dir)
    os.environ[f"{ENV_PREFIX}SHARED_STATE_DIR"] = str(state_dir)
    os.environ[f"{ENV_PREFIX}WORKERS"] = str(settings.workers)
    registry = build_multiprocess_registry(str(metrics_dir))
    metrics_server, _ = start_http_server(settings.metrics_port, settings.host, registry)
    log.info("starting %d workers; shared state in %s", settings.workers, state_dir)
    try:
        uvicorn.run(
            APP_FACTORY, factory=True, workers=settings.workers, **_uvicorn_options(settings)
        )
    finally:
        metrics_server.shutdown()
        shutil.rmtree(state_dir, ignore_errors=True)
