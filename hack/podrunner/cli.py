"""The ``podrunner`` command: watch a podrunner cluster's pods and run their containers.

    python -m hack.podrunner --kubeconfig K [--namespace NS ...] [--log-dir DIR]

This module parses arguments, wires the API client, the watches and the pod
runner together, and turns SIGINT/SIGTERM into a clean shutdown (every process
stopped, every pod released). It holds no pod logic.
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
import tempfile
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from hack.podrunner.kube import Kube
from hack.podrunner.spec import build_base_env
from hack.podrunner.supervisor import PodRunner, RunnerSettings

log = logging.getLogger("podrunner")


def build_parser() -> argparse.ArgumentParser:
    """The command line."""
    parser = argparse.ArgumentParser(
        prog="python -m hack.podrunner",
        description="Run the pods of a kwok cluster in podrunner mode as local processes "
        "bound to their loopback pod IPs, and report their real readiness.",
    )
    parser.add_argument(
        "--kubeconfig",
        default=os.environ.get("KUBECONFIG"),
        help="the cluster's kubeconfig (default: $KUBECONFIG)",
    )
    parser.add_argument(
        "--namespace",
        "-n",
        action="append",
        default=[],
        help="run pods of this namespace only (repeatable; default: every namespace)",
    )
    parser.add_argument(
        "--workdir",
        type=Path,
        default=None,
        help="where pod sandboxes (volumes, HOME, TMPDIR) live (default: a new temp dir)",
    )
    parser.add_argument(
        "--log-dir",
        type=Path,
        default=None,
        help="container logs go to LOG_DIR/<namespace>/<pod>/<container>.log "
        "(default: WORKDIR/logs)",
    )
    parser.add_argument(
        "--bin-dir",
        type=Path,
        default=Path(sys.executable).parent,
        help="put first on the containers' PATH (default: this Python's bin, i.e. the venv)",
    )
    parser.add_argument(
        "--max-grace-seconds",
        type=float,
        default=30.0,
        help="cap on a pod's terminationGracePeriodSeconds and on probe-kill waits",
    )
    parser.add_argument(
        "--backoff-seconds",
        type=float,
        default=1.0,
        help="first restart back-off; doubles per restart up to --max-backoff-seconds",
    )
    parser.add_argument("--max-backoff-seconds", type=float, default=30.0)
    parser.add_argument(
        "--ready-file",
        type=Path,
        default=None,
        help="written once the first list of pods has been handled (for scripts and tests)",
    )
    parser.add_argument(
        "--log-level", default="info", choices=["debug", "info", "warning", "error"]
    )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run until SIGINT/SIGTERM; return the exit code."""
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.getLogger("httpx").setLevel(logging.WARNING)
    logging.basicConfig(
        level=args.log_level.upper(),
        format="%(asctime)s podrunner %(levelname)s %(message)s",
        stream=sys.stderr,
    )
    for name, value in (
        ("--max-grace-seconds", args.max_grace_seconds),
        ("--backoff-seconds", args.backoff_seconds),
        ("--max-backoff-seconds", args.max_backoff_seconds),
    ):
        if value < 0:
            parser.error(f"{name}={value} is not allowed: use a number of seconds >= 0")
    if not args.kubeconfig or not Path(args.kubeconfig).is_file():
        parser.error(
            f"--kubeconfig={args.kubeconfig!r} is not a readable file: pass the kubeconfig "
            "printed by `DRIFTWARD_TESTBED_PODRUNNER=1 hack/testbed/cluster.sh up NAME PATH`"
        )
    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="driftward-podrunner-"))
    settings = RunnerSettings(
        workdir=workdir,
        log_dir=args.log_dir or workdir / "logs",
        base_env=build_base_env(os.environ, args.bin_dir),
        max_grace_seconds=args.max_grace_seconds,
        backoff_seconds=args.backoff_seconds,
        max_backoff_seconds=args.max_backoff_seconds,
    )
    settings.log_dir.mkdir(parents=True, exist_ok=True)
    kube = Kube(args.kubeconfig)
    runner = PodRunner(kube, settings)
    stop = threading.Event()
    received: list[int] = []

    def on_signal(signum: int, _frame: object) -> None:
        # Only note it; the main loop below acts. Python runs this handler on the main
        # thread when that thread next runs bytecode, and a main thread parked in an
        # untimed Event.wait() may never wake when the kernel hands the signal to another
        # thread: py-spy found a podrunner 35 min past its SIGTERM still in wait().
        received.append(signum)

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)

    scopes: list[str | None] = list(args.namespace) or [None]
    listed = {scope: threading.Event() for scope in scopes}

    def on_snapshot(scope: str | None, pods: list[dict[str, Any]]) -> None:
        runner.sync(scope, pods)
        listed[scope].set()

    watchers = [
        threading.Thread(
            target=kube.watch_pods,
            args=(scope, on_snapshot, runner.handle, stop),
            name=f"watch {scope or 'all'}",
            daemon=True,
        )
        for scope in scopes
    ]
    for w in watchers:
        w.start()
    log.info(
        "watching pods in %s; sandboxes in %s; logs in %s",
        ", ".join(args.namespace) or "every namespace",
        workdir,
        settings.log_dir,
    )
    while not received and not all(e.is_set() for e in listed.values()):
        time.sleep(0.2)
    if args.ready_file is not None and not received:
        args.ready_file.write_text(f"{os.getpid()}\n")
    while not received:
        time.sleep(0.2)
    log.info("%s: shutting down", signal.Signals(received[0]).name)
    stop.set()
    runner.shutdown()
    kube.close()
    log.info("stopped")
    return 0
