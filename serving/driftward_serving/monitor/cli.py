"""The monitor's command lines: ``driftward-serving monitor`` and ``... profile build``.

``driftward_serving.cli`` delegates to ``main_monitor(argv)`` and
``main_profile(argv)``; both return a process exit code. Settings are loaded
here, once, and passed on. A bad config or reference prints what to fix and
exits 2, rather than a traceback.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import json
import logging
import os
import socket
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path

from prometheus_client import CollectorRegistry, make_asgi_app
from starlette.types import ASGIApp, Receive, Scope, Send

from driftward_serving.monitor.allocator import apply_allocator_tuning, find_mallopt
from driftward_serving.monitor.config import ConfigError, ReferenceFormat
from driftward_serving.monitor.profile import (
    DEFAULT_NUMERIC_BINS,
    FeatureSpec,
    FeatureType,
    Task,
    profile_to_json,
)
from driftward_serving.monitor.settings import (
    MonitorSettings,
    SettingsError,
    load_monitor_settings,
)
from driftward_serving.monitor.sources import (
    ReferenceError,
    build_reference_profile,
    fetch_bytes,
    verify_sha256,
)

EXIT_USAGE = 2

log = logging.getLogger("driftward.monitor")


def _monitor_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="driftward-serving monitor",
        description="Run the monitor sidecar. Settings come from DRIFTWARD_MONITOR_* "
        "environment variables; these flags override them.",
    )
    parser.add_argument("--config-path", type=Path, help="the monitor config JSON")
    parser.add_argument("--host", help="the address both listeners bind")
    parser.add_argument("--port", type=int, help="the API port (default 8081)")
    parser.add_argument("--metrics-port", type=int, help="the Prometheus port (default 9091)")
    parser.add_argument("--log-level", help="debug, info, warning or error")
    return parser


class MonitorStartError(Exception):
    """The monitor cannot start serving (a port taken, an address not local)."""


def listen(host: str, port: int, role: str) -> socket.socket:
    """Bind and listen on ``host:port``; MonitorStartError names the role and the port."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    try:
        return socket.create_server((host, port), family=family, backlog=2048)
    except OSError as error:
        raise MonitorStartError(
            f"cannot listen on {host}:{port} for the {role}: {error.strerror or error}"
        ) from error


def by_listener(api: ASGIApp, metrics: ASGIApp, metrics_port: int) -> ASGIApp:
    """One ASGI app for both listeners: the metrics port gets ``metrics``, all else ``api``.

    One uvicorn server on two sockets costs one event loop and one set of timers,
    where two servers cost twice (most of the monitor's idle CPU). Lifespan events
    go to the API app, which owns the monitor's state.
    """

    async def dispatch(scope: Scope, receive: Receive, send: Send) -> None:
        server = scope.get("server")
        if scope["type"] != "lifespan" and server is not None and server[1] == metrics_port:
            await metrics(scope, receive, send)
        else:
            await api(scope, receive, send)

    return dispatch


async def serve_monitor(settings: MonitorSettings, registry: CollectorRegistry) -> None:
    """Serve the monitor API and its metrics until stopped, both on ``settings.host``."""
    import uvicorn  # noqa: PLC0415 -- not needed by the app itself or its tests

    from driftward_serving.monitor.app import create_app  # noqa: PLC0415

    with contextlib.ExitStack() as stack:
        sockets = [
            stack.enter_context(listen(settings.host, settings.port, "monitor API")),
            stack.enter_context(listen(settings.host, settings.metrics_port, "monitor metrics")),
        ]
        app = by_listener(
            create_app(settings, registry), make_asgi_app(registry), settings.metrics_port
        )
        log.info(
            "monitor API on http://%s:%d, metrics on http://%s:%d/metrics",
            settings.host,
            settings.port,
            settings.host,
            settings.metrics_port,
        )
        # No access log: serving POSTs records ~12 times a second at 12k req/s, and
        # refused batches are logged by the app (RefusalLog) with the reason.
        config = uvicorn.Config(app, log_level=settings.log_level.lower(), access_log=False)
        await uvicorn.Server(config).serve(sockets=sockets)


def main_monitor(argv: Sequence[str]) -> int:
    """Run the monitor sidecar until it is stopped; returns the exit code."""
    args = _monitor_parser().parse_args(list(argv))
    overrides = {
        key: value
        for key, value in {
            "config_path": args.config_path,
            "host": args.host,
            "port": args.port,
            "metrics_port": args.metrics_port,
            "log_level": args.log_level,
        }.items()
        if value is not None
    }
    try:
        settings = load_monitor_settings(os.environ, **overrides)
    except SettingsError as error:
        print(f"driftward monitor cannot start: {error}", file=sys.stderr)
        return EXIT_USAGE
    logging.basicConfig(
        level=settings.log_level.upper(), format="%(levelname)s %(name)s %(message)s"
    )
    for line in apply_allocator_tuning(os.environ, find_mallopt()):
        log.info("%s", line)
    import uvloop  # noqa: PLC0415 -- the event loop serving uses too; only needed to run

    try:
        uvloop.run(serve_monitor(settings, CollectorRegistry()))
    except (ConfigError, ReferenceError, MonitorStartError) as error:
        print(f"driftward monitor cannot start: {error}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        pass
    return 0


# --- profile build -----------------------------------------------------------


def parse_feature_specs(text: str) -> list[FeatureSpec]:
    """Parse ``name:numeric,color:categorical``; ValueError says which entry is wrong."""
    specs: list[FeatureSpec] = []
    for entry in (e.strip() for e in text.split(",")):
        if not entry:
            continue
        name, sep, kind = entry.rpartition(":")
        try:
            feature_type = FeatureType(kind.strip().lower())
        except ValueError:
            feature_type = None
        if not sep or not name or feature_type is None:
            raise ValueError(f"--features entry {entry!r} must be NAME:numeric or NAME:categorical")
        specs.append(FeatureSpec(name, feature_type))
    if not specs:
        raise ValueError("--features names no feature; give NAME:numeric,NAME:categorical,...")
    return specs


def _profile_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="driftward-serving profile",
        description="Build a reference profile (JSON) from a CSV or Parquet dataset.",
    )
    commands = parser.add_subparsers(dest="command", required=True)
    build = commands.add_parser("build", help="profile a dataset pinned by its sha256")
    build.add_argument("--dataset", required=True, help="a path, file://, http(s):// or s3:// URI")
    build.add_argument(
        "--sha256", required=True, help="the dataset's sha256; checked before reading"
    )
    build.add_argument(
        "--features", required=True, help="NAME:numeric or NAME:categorical, comma-separated"
    )
    build.add_argument("--target", help="the label column (classes, calibration)")
    build.add_argument("--prediction", help="the model's prediction column (output drift)")
    build.add_argument(
        "--proba-columns", default="", help="class-probability columns, in the model's class order"
    )
    build.add_argument(
        "--classes",
        default="",
        help="class labels in model.classes_ order (default: sorted labels)",
    )
    build.add_argument("--task", choices=[t.value for t in Task], help="default: inferred")
    build.add_argument("--format", choices=["csv", "parquet"], help="default: from the extension")
    build.add_argument(
        "--bins", type=int, default=DEFAULT_NUMERIC_BINS, help="numeric quantile bins"
    )
    build.add_argument("--out", required=True, type=Path, help="where to write the profile JSON")
    return parser


def _write_atomically(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(handle, "wb") as out:
            out.write(data)
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def main_profile(argv: Sequence[str]) -> int:
    """``profile build``: verify a dataset's digest, profile it, write the JSON; exit code."""
    args = _profile_parser().parse_args(list(argv))
    try:
        features = parse_feature_specs(args.features)
        if not 2 <= args.bins <= 1000:
            raise ValueError(f"--bins {args.bins} must be between 2 and 1000")
        uri = args.dataset if "://" in args.dataset else Path(args.dataset).resolve().as_uri()
        fmt_name = args.format or (
            "parquet" if args.dataset.lower().endswith((".parquet", ".pq")) else "csv"
        )
        fmt = ReferenceFormat.PARQUET if fmt_name == "parquet" else ReferenceFormat.CSV
        data = fetch_bytes(uri)
        verify_sha256(data, args.sha256, f"dataset {args.dataset}")
        profile = build_reference_profile(
            data,
            fmt,
            features,
            sha256=args.sha256.lower(),
            target=args.target,
            prediction=args.prediction,
            proba_columns=[c for c in args.proba_columns.split(",") if c],
            classes=[c for c in args.classes.split(",") if c] or None,
            task=Task(args.task) if args.task else None,
            n_bins=args.bins,
        )
    except (ValueError, ReferenceError) as error:
        print(f"driftward profile build: {error}", file=sys.stderr)
        return EXIT_USAGE
    text = json.dumps(profile_to_json(profile), indent=1).encode() + b"\n"
    _write_atomically(args.out, text)
    print(
        f"wrote {args.out}: {profile.rows} rows, {len(profile.features)} features, "
        f"task {profile.task.value if profile.task else 'none'}, "
        f"classes {','.join(profile.classes) if profile.classes else 'none'}\n"
        f"profile sha256 {hashlib.sha256(text).hexdigest()} "
        "(pin it as reference.sha256 with format Profile)"
    )
    return 0
