"""The ``driftward-serving`` command: serve, local, and the monitor's subcommands.

* ``serve [--workers N]`` runs the model server from DRIFTWARD_SERVING_*
  settings (what the operator's pods run).
* ``local --artifact PATH_OR_URI --sha256 HEX [...]`` is the laptop command:
  it turns its flags into the same settings, serves on 127.0.0.1, prints where
  the API and the metrics are, and with ``--reference DATASET --features ...``
  also starts ``driftward-serving monitor`` as a child process wired to it.
* ``monitor`` and ``profile`` belong to the monitor package and are delegated
  to ``driftward_serving.monitor.cli``, imported only when asked for so the
  server never pays for it.

The serving stack (uvicorn, scikit-learn) is imported inside the functions
that need it, so ``driftward-serving monitor`` starts without loading it.

This module parses arguments and wires processes; it must not hold serving
logic, and must not read settings anywhere but at startup.
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import signal
import subprocess
import sys
import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, get_args
from urllib.parse import urlsplit

from pydantic import ValidationError

from driftward_serving.settings import (
    ENV_PREFIX,
    ServingSettings,
    SklearnVersionMismatch,
    build_settings_error,
)

if TYPE_CHECKING:
    from driftward_serving.artifacts import ModelState

MONITOR_ENV_PREFIX = "DRIFTWARD_MONITOR_"
FEATURE_TYPES = ("numeric", "categorical")


def main(argv: Sequence[str] | None = None) -> int:
    """Run a driftward-serving subcommand and return its exit code."""
    args = list(sys.argv[1:] if argv is None else argv)
    if args and args[0] in ("monitor", "profile"):
        return _delegate(args[0], args[1:])
    parsed = build_parser().parse_args(args)
    if parsed.command == "serve":
        return _serve(parsed.workers)
    return _local(parsed)


def build_parser() -> argparse.ArgumentParser:
    """The argument parser for serve and local (monitor/profile parse their own)."""
    parser = argparse.ArgumentParser(
        prog="driftward-serving",
        description="Serve a scikit-learn model over the Open Inference Protocol.",
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    serve = commands.add_parser("serve", help="run the model server from DRIFTWARD_SERVING_*")
    serve.add_argument("--workers", type=int, default=None, help="processes (one per core)")
    local = commands.add_parser("local", help="serve a model on this machine, no Kubernetes")
    local.add_argument("--artifact", required=True, help="model file path or file/http/s3 URI")
    local.add_argument("--sha256", required=True, help="expected sha256 of the artifact")
    local.add_argument("--format", default="skops", choices=("skops", "joblib", "pickle"))
    local.add_argument(
        "--allow-unsafe-formats", action="store_true", help="accept joblib/pickle artifacts"
    )
    local.add_argument(
        "--sklearn-version-mismatch",
        default="warn",
        choices=get_args(SklearnVersionMismatch),
        help="an artifact saved with another scikit-learn: serve it and say so, or refuse it",
    )
    local.add_argument("--name", default="model", help="model name in /v2/models/{name}")
    local.add_argument("--model-version", default="local", help="version label")
    local.add_argument("--host", default="127.0.0.1")
    local.add_argument("--port", type=int, default=8080)
    local.add_argument("--metrics-port", type=int, default=9090)
    local.add_argument("--workers", type=int, default=1)
    local.add_argument(
        "--features",
        help="feature order, comma-separated; NAME or NAME:categorical (default numeric)",
    )
    monitor = local.add_argument_group(
        "monitor", "with --reference, the monitor runs beside the server (CRD defaults otherwise)"
    )
    monitor.add_argument("--reference", help="reference dataset (CSV/Parquet) to start the monitor")
    monitor.add_argument(
        "--task", default="classification", choices=("classification", "regression")
    )
    monitor.add_argument(
        "--target", help="the reference's label column: classes, output drift, performance"
    )
    monitor.add_argument(
        "--baseline", type=float, help="the metric's expected value; turns on performance"
    )
    monitor.add_argument("--metric", default="Accuracy", help="Accuracy, F1Macro, ROCAUC, MAE, ...")
    monitor.add_argument("--max-degradation", type=float, help="allowed drop (default 0.05)")
    monitor.add_argument("--min-labels", type=int, help="labels before judging (default 200)")
    monitor.add_argument("--window-size", type=int, help="predictions per window (default 5000)")
    monitor.add_argument(
        "--min-samples", type=int, help="predictions before judging (default 1000)"
    )
    monitor.add_argument("--interval", help="how often the window is judged (default 30s)")
    monitor.add_argument("--monitor-port", type=int, default=8081)
    monitor.add_argument("--monitor-metrics-port", type=int, default=9091)
    return parser


def _load_settings(**overrides: object) -> ServingSettings | None:
    try:
        return ServingSettings(**overrides)  # type: ignore[arg-type]  # the rest from env
    except ValidationError as exc:
        print(build_settings_error(exc), file=sys.stderr)
        return None


def _serve(workers: int | None) -> int:
    overrides = {} if workers is None else {"workers": workers}
    settings = _load_settings(**overrides)
    if settings is None:
        return 2
    from driftward_serving.runner import run_server  # noqa: PLC0415 - see module docstring

    run_until_signalled(lambda: run_server(settings))
    return 0


class _Stopped(Exception):
    """Raised by our signal handler to unwind to main after a graceful shutdown."""


def _stop(signum: int, _frame: object) -> None:
    raise _Stopped(signum)


def run_until_signalled(run: Callable[[], None]) -> None:
    """Run the server; on SIGINT/SIGTERM return normally (exit 0) with cleanups done.

    uvicorn handles the signal itself, shuts down gracefully, then re-raises the
    signal to the handler that was there before it. With the default handler the
    process would die at that point and skip our cleanups (the monitor child in
    `local`), so we install one that unwinds instead.
    """
    previous = {sig: signal.signal(sig, _stop) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        run()
    except _Stopped:
        pass
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def _delegate(command: str, argv: list[str]) -> int:
    try:
        module = importlib.import_module("driftward_serving.monitor.cli")
    except ImportError as exc:
        print(
            f"driftward-serving {command}: the monitor is not available in this build ({exc})",
            file=sys.stderr,
        )
        return 2
    entry = getattr(module, "main_monitor" if command == "monitor" else "main_profile")
    return int(entry(argv) or 0)


def build_artifact_uri(artifact: str) -> str:
    """Turn a local path into a file:// URI; leave URIs alone."""
    if urlsplit(artifact).scheme in ("file", "http", "https", "s3"):
        return artifact
    return Path(artifact).expanduser().resolve().as_uri()


def build_features(spec: str) -> list[dict[str, str]]:
    """Parse "a,b:categorical" into the monitor's feature list."""
    features = []
    for item in spec.split(","):
        name, _, kind = item.strip().partition(":")
        kind = kind or "numeric"
        if not name or kind not in FEATURE_TYPES:
            raise ValueError(f"bad feature {item!r}: use NAME or NAME:{'|'.join(FEATURE_TYPES)}")
        features.append({"name": name, "type": kind})
    return features


def _local(args: argparse.Namespace) -> int:
    features = None
    if args.features:
        try:
            features = build_features(args.features)
        except ValueError as exc:
            print(f"driftward-serving local: {exc}", file=sys.stderr)
            return 2
    if args.reference and features is None:
        print("driftward-serving local: --reference needs --features", file=sys.stderr)
        return 2
    monitor_config = None
    if args.reference and features is not None:
        try:
            monitor_config = build_local_monitor_config(args, features)
        except ValueError as exc:
            print(f"driftward-serving local: {exc}", file=sys.stderr)
            return 2
    else:
        given = [f for f in MONITOR_ONLY_FLAGS if getattr(args, f.lstrip("-").replace("-", "_"))]
        if given:
            print(f"driftward-serving local: {given[0]} needs --reference", file=sys.stderr)
            return 2
    monitor_url = f"http://127.0.0.1:{args.monitor_port}" if args.reference else ""
    env = {
        "MODEL_NAME": args.name,
        "MODEL_VERSION": args.model_version,
        "ARTIFACT_URI": build_artifact_uri(args.artifact),
        "ARTIFACT_SHA256": args.sha256,
        "MODEL_FORMAT": args.format,
        "ALLOW_UNSAFE_FORMATS": "true" if args.allow_unsafe_formats else "false",
        "SKLEARN_VERSION_MISMATCH": args.sklearn_version_mismatch,
        "HOST": args.host,
        "PORT": str(args.port),
        "METRICS_PORT": str(args.metrics_port),
        "MONITOR_URL": monitor_url,
        "WORKERS": str(args.workers),
    }
    if features is not None:
        env["FEATURE_NAMES"] = json.dumps([f["name"] for f in features])
    # Settings (and spawned workers) read the environment, so the flags become variables.
    os.environ.update({ENV_PREFIX + key: value for key, value in env.items()})
    settings = _load_settings()
    if settings is None:
        return 2
    monitor = _start_monitor(args, monitor_config) if monitor_config is not None else None
    _print_banner(settings, args)
    from driftward_serving.runner import run_server  # noqa: PLC0415 - see module docstring

    def announce(state: ModelState) -> None:
        status = "ready" if state.ready else f"NOT READY ({state.reason})"
        print(f"model {status}: {state.message}", flush=True)

    try:
        run_until_signalled(lambda: run_server(settings, on_ready=announce))
    finally:
        if monitor is not None:
            monitor.terminate()
            try:
                monitor.wait(timeout=10)
            except subprocess.TimeoutExpired:
                monitor.kill()
    return 0


MONITOR_ONLY_FLAGS = (
    "--target",
    "--baseline",
    "--max-degradation",
    "--min-labels",
    "--window-size",
    "--min-samples",
    "--interval",
)


def build_local_monitor_config(
    args: argparse.Namespace, features: list[dict[str, str]]
) -> dict[str, object]:
    """The monitor.json that `local` hands its monitor; ValueError says which flag is wrong."""
    from driftward_serving.artifacts import read_file_sha256  # noqa: PLC0415
    from driftward_serving.monitor.config import (  # noqa: PLC0415 - only with --reference
        ConfigError,
        parse_monitor_config,
    )

    reference = Path(args.reference).expanduser().resolve()
    if not reference.is_file():
        raise ValueError(f"--reference {args.reference!r} is not a file")
    source: dict[str, object] = {
        "uri": reference.as_uri(),
        "sha256": read_file_sha256(reference),
        "format": "parquet" if reference.suffix.lower() in (".parquet", ".pq") else "csv",
    }
    if args.target:
        source["targetColumn"] = args.target
    config: dict[str, object] = {
        "model": {"name": args.name, "version": args.model_version, "task": args.task},
        "reference": source,
        "features": features,
    }
    window = {"size": args.window_size, "minSamples": args.min_samples}
    if any(value is not None for value in window.values()):
        config["window"] = {k: v for k, v in window.items() if v is not None}
    if args.interval:
        config["interval"] = args.interval
    if args.baseline is not None:
        performance = {
            "metric": args.metric,
            "baseline": args.baseline,
            "maxDegradation": args.max_degradation,
            "minLabels": args.min_labels,
        }
        config["performance"] = {k: v for k, v in performance.items() if v is not None}
    elif args.max_degradation is not None or args.min_labels is not None:
        raise ValueError("--max-degradation and --min-labels need --baseline")
    try:
        parse_monitor_config(config)
    except ConfigError as error:
        raise ValueError(
            f"{error}\n(window.* comes from --window-size/--min-samples, performance.* from "
            "--metric/--baseline/--max-degradation/--min-labels, interval from --interval)"
        ) from None
    return config


def _start_monitor(args: argparse.Namespace, config: dict[str, object]) -> subprocess.Popen[bytes]:
    config_path = Path(tempfile.mkdtemp(prefix="driftward-local-")) / "monitor.json"
    config_path.write_text(json.dumps(config, indent=2))
    env = dict(os.environ)
    env.update(
        {
            f"{MONITOR_ENV_PREFIX}CONFIG_PATH": str(config_path),
            f"{MONITOR_ENV_PREFIX}HOST": "127.0.0.1",
            f"{MONITOR_ENV_PREFIX}PORT": str(args.monitor_port),
            f"{MONITOR_ENV_PREFIX}METRICS_PORT": str(args.monitor_metrics_port),
            f"{MONITOR_ENV_PREFIX}MODEL_NAME": args.name,
            f"{MONITOR_ENV_PREFIX}MODEL_VERSION": args.model_version,
        }
    )
    command = [sys.executable, "-m", "driftward_serving.cli", "monitor"]
    return subprocess.Popen(command, env=env)


def _print_banner(settings: ServingSettings, args: argparse.Namespace) -> None:
    api = f"http://{settings.host}:{settings.port}"
    name = settings.model_name
    lines = [
        f"driftward serving model {name!r} version {settings.model_version!r}",
        f"  inference API  {api}",
        f'    POST {api}/predict            {{"instances": [[...]]}}',
        f"    POST {api}/v2/models/{name}/infer",
        f'    POST {api}/feedback           {{"id": ..., "label": ...}}',
        f"    GET  {api}/v2/health/ready",
        f"  metrics        http://{settings.host}:{settings.metrics_port}/metrics",
    ]
    if args.reference:
        monitor = f"http://127.0.0.1:{args.monitor_port}"
        every = args.interval or "30s"
        lines += [
            f"  monitor        {monitor}",
            f"    verdict      GET  {monitor}/v1/verdict    Ok, Drifted, Degraded or Inconclusive",
            f"    drift report GET  {monitor}/report        open it in a browser",
            f"    judge now    POST {monitor}/v1/evaluate  (otherwise every {every})",
            f"  monitor metrics http://127.0.0.1:{args.monitor_metrics_port}/metrics",
        ]
    else:
        lines.append("  monitor        off (give --reference and --features to start it)")
    print("\n".join(lines), flush=True)


if __name__ == "__main__":
    sys.exit(main())
