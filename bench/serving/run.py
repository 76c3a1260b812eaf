"""Serving benchmark: driftward vs MLServer's and KServe's sklearn runtimes on one model, with wrk.

Run from the repository root with the project's environment (or ``make bench-serving``):

    .venv/bin/python bench/serving/run.py [--repeat 9] [--duration 10] [--connections 32]

What it does, all on 127.0.0.1:

1. Trains LogisticRegression on scikit-learn's bundled breast_cancer data and
   saves it as skops (driftward) and, inside each peer's own environment, as
   joblib (MLServer's and KServe's sklearn runtimes only read joblib/pickle).
   It also writes the breast_cancer table as the monitor's reference CSV.
2. Creates the peers' environments under ~/.cache/driftward/bench on first
   use, with pinned versions: ``mlserver-venv`` (MLServer 1.7.1, and uvloop
   below 0.22, see MLSERVER_PINS) and ``kserve-venv`` (kserve 0.21.0). A peer
   whose environment cannot be built is skipped, and the table says why.
3. Installs wrk through apt-get when missing (as root), or stops with a message.
4. Starts every configuration once, then measures them in interleaved rounds:
   each round measures every configuration in turn, in reverse order on even
   rounds, so a slow minute of the shared machine lands on all of them rather
   than on one (run to run, a lone configuration's throughput moved by +-4%,
   more than the 5% cost it must resolve). The configuration being measured,
   its server plus its sidecar if it has one (the pod), is moved onto one core
   and wrk pinned to the other; the idle ones wait on wrk's core. It checks one
   response by hand, warms up, then runs ``wrk --latency`` at batch 1 with the
   same V2 inference body (one breast_cancer row as a [1, 30] FP64 tensor).
   Meanwhile it reads the CPU time the server's and the sidecar's process
   trees used from /proc, because the machine is shared and a core is rarely
   all ours: "req/s per core" is requests divided by the CPU the pod really used.
5. For the configurations with the hand-off on, keeps the load on for
   PROFILE_SECONDS more after the measured window and samples the server with
   py-spy (installed in ``tools-venv`` under the same cache): the share of the
   event loop's samples spent in the hand-off's code (its aiohttp client
   included), times the server's CPU, plus the sidecar's CPU, is the cost by
   CPU accounting. It is far less noisy than a difference of two
   throughputs, but it cannot see cache effects, so it is a floor.
6. Prints one table per round (req/s, CPU cores used, req/s per core, p50,
   p99, ratios against MLServer), the hand-off and monitor cost, and after
   several rounds a summary. Everything is also written under bench/results/ (git-ignored).

With ``--compare-serving DIR`` (another checkout's ``serving/``, such as a git
worktree of main), the two hand-off configurations also run on that code, in
the same rounds, and the summary gives this code's req/s per pod core against
it, paired by round. Two separate runs of a change cannot resolve a point or
two on this machine; paired rounds can (2026-12-07: +-0.5-0.8 points over 21
rounds).

Configurations: driftward with the record hand-off off, on (records POSTed to a
stub monitor that only parses them), and on with the real monitor
(``driftward-serving monitor`` fed by the same records, evaluating every
MONITOR_INTERVAL); MLServer with its defaults (one inference worker process)
and with ``parallel_workers=0`` (inference in the server process); KServe's
sklearn predict path (``kserve_sklearn.py``).

It is a benchmark, not a test: compare ratios within one run. This script must
not touch anything outside 127.0.0.1, bench/results and ~/.cache/driftward/bench.
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import hashlib
import json
import math
import os
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import numpy as np
import sklearn
import skops.io
from sklearn.datasets import load_breast_cancer
from sklearn.linear_model import LogisticRegression

ROOT = Path(__file__).resolve().parents[2]
HERE = Path(__file__).resolve().parent
CACHE = Path.home() / ".cache" / "driftward" / "bench"
MLSERVER_VENV = CACHE / "mlserver-venv"
KSERVE_VENV = CACHE / "kserve-venv"
MODEL_NAME = "breast-cancer"
MODEL_VERSION = "v1"
HOST = "127.0.0.1"
READY_LIMIT_SECONDS = 180.0
# Often enough that evaluations fall inside every measured run (the CRD default is 30s).
MONITOR_INTERVAL = "5s"
COST_TARGET_PERCENT = 5.0  # issue 4: the hand-off and the monitor cost at most 5%
PROFILE_SECONDS = 8  # extra load while py-spy samples the server (outside the measured window)
PY_SPY_PIN = "py-spy==0.4.3"
TOOLS_VENV = CACHE / "tools-venv"
# Frames from these files are the hand-off's work in the server process. aiohttp is
# its HTTP client and nothing else's; aiohttp's own tasks (writing a POST's body,
# parsing the reply) run with no hand-off frame above them.
HANDOFF_FILES = ("driftward_serving/handoff.py", "driftward_serving/recordbatch.py", "aiohttp/")
# On the stack of the thread that runs the event loop (requests and the hand-off alike).
LOOP_FRAME = "(uvicorn/server.py:"
# The peers' Python: MLServer 1.7 supports 3.9-3.12, kserve 0.21 3.10-3.12.
PEER_PYTHONS = ("3.11", "3.12")
# uvloop 0.22 made asyncio.get_event_loop() raise when no loop is set, as Python 3.14
# will; MLServer 1.7's inference workers call it right after uvloop.install() in a
# fresh process, so with uvloop 0.22 every worker dies at start ("There is no
# current event loop in thread 'MainThread'") and MLServer never becomes ready.
MLSERVER_PINS = ("mlserver==1.7.1", "mlserver-sklearn==1.7.1", "uvloop<0.22")
KSERVE_PINS = ("kserve==0.21.0", "joblib")
MLSERVER_DEFAULT = "MLServer 1.7 default"
MLSERVER_INLINE = "MLServer 1.7 parallel_workers=0"
KSERVE = "KServe 0.21 sklearn"
DW_OFF = "driftward, hand-off off"
DW_STUB = "driftward, hand-off on, stub monitor"
DW_MONITOR = "driftward, hand-off on, real monitor"
# --compare-serving: the same two configurations running another checkout's code.
CMP_STUB = "compared, hand-off on, stub monitor"
CMP_MONITOR = "compared, hand-off on, real monitor"
DW_TWO = "driftward, 2 workers, real monitor (unpinned)"

# What one batch-1 call of the model costs in a given environment (min over repeats, µs).
PREDICT_COST = """
import sys, timeit, joblib
from sklearn.datasets import load_breast_cancer
model, row = joblib.load(sys.argv[1]), load_breast_cancer().data[:1]
for name in ("predict", "predict_proba"):
    call = getattr(model, name)
    best = min(timeit.repeat(lambda: call(row), number=200, repeat=5)) / 200
    print(name, round(best * 1e6))
"""

TRAIN_JOBLIB = """
import sys, joblib
from sklearn.datasets import load_breast_cancer
from sklearn.linear_model import LogisticRegression
X, y = load_breast_cancer(return_X_y=True)
joblib.dump(LogisticRegression(max_iter=10000).fit(X, y), sys.argv[1])
"""


@dataclass(frozen=True)
class Result:
    """One wrk run against one server configuration."""

    name: str
    requests_per_second: float
    p50_ms: float
    p99_ms: float
    errors: int
    server_cores: float
    sidecar_cores: float
    notes: str = ""
    handoff_share: float | None = None  # of the server's sampled CPU, from py-spy

    @property
    def cpu_cost(self) -> float | None:
        """The hand-off's and the sidecar's share of the pod's CPU (a floor for the cost)."""
        cores = self.server_cores + self.sidecar_cores
        if self.handoff_share is None or not cores:
            return None
        return (self.handoff_share * self.server_cores + self.sidecar_cores) / cores

    @property
    def per_core(self) -> float:
        """Requests per second per CPU core the server used."""
        return self.requests_per_second / self.server_cores if self.server_cores else 0.0

    @property
    def per_pod_core(self) -> float:
        """Requests per second per CPU core the server and its sidecar used together."""
        cores = self.server_cores + self.sidecar_cores
        return self.requests_per_second / cores if cores else 0.0


@dataclass(frozen=True)
class Running:
    """A started server: where to send requests, and whose CPU time to count."""

    port: int
    server_pid: int
    sidecar_pid: int | None = None
    after: Callable[[], str] | None = None  # read counters before the server stops
    pinned: bool = True  # moved onto the pod's core while measured, parked on wrk's between


@dataclass
class Artifacts:
    """Everything the servers load, built once per invocation."""

    out_dir: Path
    skops_path: Path
    skops_digest: str
    monitor_config: Path
    lua: dict[str, Path]
    mlserver_dir: Path | None = None
    kserve_model: Path | None = None
    mlserver_bin: Path = MLSERVER_VENV / "bin"
    kserve_bin: Path = KSERVE_VENV / "bin"
    skipped: dict[str, str] = field(default_factory=dict)
    model_costs: list[str] = field(default_factory=list)


Scenario = tuple[str, str, Callable[[Artifacts, tuple[str, str] | None], Iterator[Running]]]


def main() -> int:
    """Run every scenario --repeat times and print the comparison tables."""
    args = _parse_args()
    # A plain `kill` must also stop the servers this script started (the finally blocks).
    signal.signal(signal.SIGTERM, lambda *_: sys.exit("stopped by SIGTERM"))
    wrk = ensure_wrk()
    py_spy = None if args.no_profile else ensure_py_spy()
    out_dir = ROOT / "bench" / "results" / time.strftime("serving-%Y%m%d-%H%M%S")
    out_dir.mkdir(parents=True)
    print(f"working in {out_dir}", flush=True)
    art = build_artifacts(out_dir, args)
    pins = compute_pins(args.no_pin)
    bench = Bench(wrk=wrk, args=args, pins=pins, py_spy=py_spy)
    scenarios = select_scenarios(args, art)
    runs: list[list[Result]] = []
    with contextlib.ExitStack() as stack:
        started = []
        for name, lua, start in scenarios:
            print(f"-- starting {name}", flush=True)
            running = stack.enter_context(contextlib.contextmanager(start)(art, pins))
            bench.park(running)
            started.append((name, lua, running))
        for number in range(1, args.repeat + 1):
            print(f"== run {number} of {args.repeat}", flush=True)
            measured = {}
            for index in round_order(len(started), number):
                name, lua, running = started[index]
                measured[index] = bench.run(name, running, art.lua[lua])
            results = [measured[index] for index in range(len(started))]
            runs.append(results)
            report = build_report(results, args, art.skipped, f"run {number}", art.model_costs)
            print(report, flush=True)
    text = "\n\n".join(
        build_report(r, args, art.skipped, f"run {i}", art.model_costs)
        for i, r in enumerate(runs, 1)
    )
    if len(runs) > 1:
        summary = build_summary(runs)
        print(summary)
        text += "\n\n" + summary
    (out_dir / "results.json").write_text(
        json.dumps([[asdict(r) for r in results] for results in runs], indent=2)
    )
    (out_dir / "results.txt").write_text(text + "\n")
    print(f"\nwritten to {out_dir / 'results.txt'}")
    return 0


def _parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--repeat", type=int, default=1, help="interleaved rounds to run")
    parser.add_argument("--duration", type=int, default=15, help="seconds per measured run")
    parser.add_argument("--warmup", type=int, default=4, help="seconds of warm-up per measure")
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--threads", type=int, default=2, help="wrk threads")
    parser.add_argument(
        "--no-profile", action="store_true", help="skip the py-spy CPU attribution of the hand-off"
    )
    parser.add_argument("--no-pin", action="store_true", help="do not pin servers to a core")
    parser.add_argument("--no-mlserver", action="store_true", help="skip MLServer")
    parser.add_argument("--no-kserve", action="store_true", help="skip KServe")
    parser.add_argument(
        "--only-driftward", action="store_true", help="only the driftward configurations"
    )
    parser.add_argument(
        "--peer-sklearn",
        default=sklearn.__version__,
        metavar="VERSION",
        help="scikit-learn for MLServer and KServe (default: ours; others get their own venvs)",
    )
    parser.add_argument(
        "--two-workers", action="store_true", help="also run driftward with --workers 2, unpinned"
    )
    parser.add_argument(
        "--compare-serving",
        type=Path,
        metavar="DIR",
        help="also run the hand-off configurations on the driftward_serving package in DIR "
        "(another checkout's serving/, e.g. a git worktree's), in the same rounds",
    )
    args = parser.parse_args()
    other = args.compare_serving
    if other is not None and not (other / "driftward_serving" / "__init__.py").is_file():
        parser.error(
            f"--compare-serving {str(other)!r}: no driftward_serving/__init__.py there; "
            "give the serving/ directory of another checkout"
        )
    return args


# --------------------------------------------------------------------------- setup


def ensure_wrk() -> str:
    """Return the wrk binary, installing Debian's package when possible."""
    found = shutil.which("wrk")
    if found:
        return found
    if os.geteuid() == 0 and shutil.which("apt-get"):
        print("wrk not found; installing it with apt-get", flush=True)
        subprocess.run(["apt-get", "update", "-qq"], check=True)
        subprocess.run(["apt-get", "install", "-y", "-qq", "wrk"], check=True)
        found = shutil.which("wrk")
    if not found:
        sys.exit("wrk is required: install it with `sudo apt-get install -y wrk` and run again")
    return found


def ensure_py_spy() -> str | None:
    """py-spy in its own environment under the bench cache; None (and why) if it cannot be had."""
    binary = TOOLS_VENV / "bin" / "py-spy"
    if binary.exists():
        return str(binary)
    print(f"installing {PY_SPY_PIN} into {TOOLS_VENV}", flush=True)
    try:
        subprocess.run([sys.executable, "-m", "venv", str(TOOLS_VENV)], check=True)
        subprocess.run(
            [str(TOOLS_VENV / "bin" / "pip"), "install", "-q", PY_SPY_PIN],
            check=True,
            capture_output=True,
        )
    except subprocess.CalledProcessError as exc:
        print(f"py-spy unavailable ({exc}); the CPU attribution is skipped", flush=True)
        return None
    return str(binary)


def handoff_share(raw: str) -> float:
    """The share of the event loop's py-spy samples (``raw`` output) in the hand-off's code.

    Only stacks of the thread running uvicorn's server count: py-spy's idle
    detection does not see the other threads wait here (the /metrics listener in
    select(), the thread pool in queue.get()), and counting them halved the share.
    """
    total = ours = 0
    for line in raw.splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack or not count.isdigit() or LOOP_FRAME not in stack:
            continue
        total += int(count)
        if any(name in stack for name in HANDOFF_FILES):
            ours += int(count)
    if not total:
        raise ValueError("py-spy recorded no samples of the event loop")
    return ours / total


def find_peer_python() -> str | None:
    """A Python the peers support: this one if it fits, else python3.1x on PATH or pyenv."""
    if f"{sys.version_info[0]}.{sys.version_info[1]}" in PEER_PYTHONS:
        return sys.executable
    for version in PEER_PYTHONS:
        found = shutil.which(f"python{version}")
        if found:
            return found
        pyenv = Path.home() / ".pyenv" / "versions"
        for candidate in sorted(pyenv.glob(f"{version}.*/bin/python{version}"), reverse=True):
            return str(candidate)
    return None


def peer_venv(base: Path, sklearn_version: str) -> Path:
    """The peer's venv for a scikit-learn version (ours by default, a sibling otherwise)."""
    if sklearn_version == sklearn.__version__:
        return base
    return base.with_name(f"{base.name}-sklearn{sklearn_version}")


def ensure_peer_venv(
    venv: Path, pins: tuple[str, ...], sklearn_version: str
) -> tuple[Path | None, str]:
    """Create (or repair) a peer's venv with its pins; return (bin dir, "") or (None, why)."""
    bin_dir = venv / "bin"
    # scikit-learn pinned (to ours unless --peer-sklearn), so the peers load the model
    # with the library version the table names.
    wanted = [*pins, f"scikit-learn=={sklearn_version}"]
    log = CACHE / f"{venv.name}-install.log"
    try:
        if not (bin_dir / "python").exists():
            python = find_peer_python()
            if python is None:
                return None, f"no Python {' or '.join(PEER_PYTHONS)} found to build {venv}"
            print(f"creating {venv} ({', '.join(wanted)})", flush=True)
            subprocess.run([python, "-m", "venv", str(venv)], check=True)
            subprocess.run(
                [str(bin_dir / "pip"), "install", "--quiet", "--upgrade", "pip"], check=True
            )
        # A no-op (and no network) when the pins are already satisfied; repairs a venv
        # that drifted, e.g. one created before uvloop was pinned.
        with log.open("w") as out:
            subprocess.run(
                [str(bin_dir / "pip"), "install", "--quiet", *wanted],
                check=True,
                stdout=out,
                stderr=subprocess.STDOUT,
            )
    except subprocess.CalledProcessError:
        tail = log.read_text()[-600:] if log.exists() else ""
        return None, f"pip install {' '.join(wanted)} into {venv} failed:\n{tail}"
    return bin_dir, ""


def build_artifacts(out_dir: Path, args: argparse.Namespace) -> Artifacts:
    """Train the model, write every server's copy of it, the reference and the wrk scripts."""
    X, y = load_breast_cancer(return_X_y=True)
    model = LogisticRegression(max_iter=10000).fit(X, y)
    skops_path = out_dir / "model.skops"
    skops.io.dump(model, skops_path)
    art = Artifacts(
        model_costs=[driftward_kernel_cost(skops_path, X[:1])],
        out_dir=out_dir,
        skops_path=skops_path,
        skops_digest=hashlib.sha256(skops_path.read_bytes()).hexdigest(),
        monitor_config=build_monitor_config(out_dir, model, X, y),
        lua=build_lua_scripts(out_dir, X),
    )
    peers = []
    if not (args.only_driftward or args.no_mlserver):
        peers.append(("mlserver", peer_venv(MLSERVER_VENV, args.peer_sklearn), MLSERVER_PINS))
    if not (args.only_driftward or args.no_kserve):
        peers.append(("kserve", peer_venv(KSERVE_VENV, args.peer_sklearn), KSERVE_PINS))
    for peer, venv, pins in peers:
        bin_dir, why = ensure_peer_venv(venv, pins, args.peer_sklearn)
        if bin_dir is None:
            print(f"!! skipping {peer}: {why}", flush=True)
            art.skipped[peer] = why
            continue
        model_dir = out_dir / f"{peer}-model"
        model_dir.mkdir()
        joblib_path = model_dir / "model.joblib"
        subprocess.run([str(bin_dir / "python"), "-c", TRAIN_JOBLIB, str(joblib_path)], check=True)
        cost = subprocess.run(
            [str(bin_dir / "python"), "-c", PREDICT_COST, str(joblib_path)],
            check=True,
            capture_output=True,
            text=True,
        ).stdout.split()
        art.model_costs.append(
            f"{peer}: scikit-learn {args.peer_sklearn} {cost[0]} {cost[1]} µs, "
            f"{cost[2]} {cost[3]} µs per batch-1 call"
        )
        if peer == "mlserver":
            art.mlserver_dir, art.mlserver_bin = model_dir, bin_dir
        else:
            art.kserve_model, art.kserve_bin = joblib_path, bin_dir
    return art


def driftward_kernel_cost(skops_path: Path, row: np.ndarray) -> str:
    """What driftward's chosen kernel costs per batch-1 call here (min over repeats)."""
    import timeit  # noqa: PLC0415

    from driftward_serving.predictor import build_predictor  # noqa: PLC0415

    predictor = build_predictor(skops.io.load(skops_path))
    matrix = np.ascontiguousarray(row, dtype=np.float64)
    best = min(timeit.repeat(lambda: predictor.kernel(matrix), number=2000, repeat=5)) / 2000
    return f"driftward: kernel {predictor.kernel_name} {best * 1e6:.0f} µs per batch-1 call"


def feature_names() -> list[str]:
    """breast_cancer's feature names as column names ("mean radius" -> "mean_radius")."""
    return [name.replace(" ", "_") for name in load_breast_cancer().feature_names]


def build_monitor_config(
    out_dir: Path, model: LogisticRegression, X: np.ndarray, y: np.ndarray
) -> Path:
    """The reference CSV (features, label, the model's outputs) and a monitor.json for it,
    as ``driftward-serving local --reference`` would build them."""
    names = feature_names()
    reference = out_dir / "reference.csv"
    predicted = model.predict(X)
    proba = model.predict_proba(X)
    with reference.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow([*names, "target", "prediction", "proba_0", "proba_1"])
        for row, label, out, p in zip(X.tolist(), y, predicted, proba.tolist(), strict=True):
            writer.writerow([*row, int(label), int(out), *p])
    config = {
        "model": {"name": MODEL_NAME, "version": MODEL_VERSION, "task": "classification"},
        "reference": {
            "uri": reference.as_uri(),
            "sha256": hashlib.sha256(reference.read_bytes()).hexdigest(),
            "format": "csv",
            "targetColumn": "target",
            "predictionColumn": "prediction",
            "probaColumns": ["proba_0", "proba_1"],
        },
        "features": [{"name": name, "type": "numeric"} for name in names],
        "interval": MONITOR_INTERVAL,
    }
    path = out_dir / "monitor.json"
    path.write_text(json.dumps(config, indent=2))
    return path


def build_lua_scripts(out_dir: Path, X: np.ndarray) -> dict[str, Path]:
    """wrk scripts POSTing one breast_cancer row as V2 JSON.

    driftward returns predicted classes, probabilities and prediction ids by
    default; MLServer is asked for predict and predict_proba; KServe's sklearn
    path answers predict_proba (PREDICT_PROBA=true), one output only.
    """
    tensor = {"name": "input-0", "shape": [1, 30], "datatype": "FP64", "data": X[0].tolist()}
    bodies = {
        "driftward": {"inputs": [tensor]},
        "mlserver": {
            "inputs": [tensor],
            "outputs": [{"name": "predict"}, {"name": "predict_proba"}],
        },
        "kserve": {"inputs": [tensor]},
    }
    paths = {}
    for name, body in bodies.items():
        path = out_dir / f"{name}.lua"
        path.write_text(
            'wrk.method = "POST"\n'
            'wrk.headers["Content-Type"] = "application/json"\n'
            f"wrk.body = [==[{json.dumps(body)}]==]\n"
        )
        paths[name] = path
    return paths


def select_scenarios(args: argparse.Namespace, art: Artifacts) -> list[Scenario]:
    """The configurations of one run, in order."""
    scenarios: list[Scenario] = [
        (DW_OFF, "driftward", lambda a, p: driftward_server(a, p, sidecar=None)),
        (DW_STUB, "driftward", lambda a, p: driftward_server(a, p, sidecar="stub")),
        (DW_MONITOR, "driftward", lambda a, p: driftward_server(a, p, sidecar="monitor")),
    ]
    other = args.compare_serving
    if other is not None:
        scenarios += [
            (CMP_STUB, "driftward", lambda a, p: driftward_server(a, p, "stub", code=other)),
            (CMP_MONITOR, "driftward", lambda a, p: driftward_server(a, p, "monitor", code=other)),
        ]
    if args.two_workers:
        scenarios.append(
            (DW_TWO, "driftward", lambda a, p: driftward_server(a, None, "monitor", workers=2))
        )
    if art.mlserver_dir is not None:
        scenarios.append(
            (MLSERVER_DEFAULT, "mlserver", lambda a, p: mlserver_server(a, p, parallel=None))
        )
        scenarios.append((MLSERVER_INLINE, "mlserver", lambda a, p: mlserver_server(a, p, 0)))
    if art.kserve_model is not None:
        scenarios.append((KSERVE, "kserve", kserve_server))
    return scenarios


# --------------------------------------------------------------------------- processes


def compute_pins(disabled: bool) -> tuple[str, str] | None:
    """CPU lists for (the pod: server and sidecar, the load generator), or None."""
    if disabled or not shutil.which("taskset") or (os.cpu_count() or 1) < 2:
        return None
    return "1", "0"


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        port: int = sock.getsockname()[1]
        return port


def wait_ready(url: str, process: subprocess.Popen[bytes], log: Path) -> None:
    """Poll a readiness URL until 200, failing with the server's log if it dies."""
    deadline = time.monotonic() + READY_LIMIT_SECONDS
    while time.monotonic() < deadline:
        if process.poll() is not None:
            sys.exit(f"server exited early; see {log}:\n{log.read_text()[-3000:]}")
        with (
            contextlib.suppress(urllib.error.URLError, ConnectionError, OSError),
            urllib.request.urlopen(url, timeout=2) as response,
        ):
            if response.status == 200:
                return
        time.sleep(0.5)
    sys.exit(f"server not ready after {READY_LIMIT_SECONDS}s; see {log}")


def _pinned(command: list[str], cpus: str | None) -> list[str]:
    return ["taskset", "-c", cpus, *command] if cpus else command


def _start(
    command: list[str], log: Path, *, cwd: Path | None = None, env: dict[str, str] | None = None
) -> subprocess.Popen[bytes]:
    with log.open("wb") as log_file:
        return subprocess.Popen(
            command, cwd=cwd, env=env, stdout=log_file, stderr=subprocess.STDOUT
        )


def stop_process(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.send_signal(signal.SIGINT)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def driftward_server(
    art: Artifacts,
    pins: tuple[str, str] | None,
    sidecar: str | None,
    workers: int = 1,
    code: Path | None = None,
) -> Iterator[Running]:
    """Run `driftward-serving serve`, with a stub or the real monitor when the hand-off is on;
    both import driftward_serving from `code` when it is given (--compare-serving)."""
    port, metrics_port = free_port(), free_port()
    code_env = {} if code is None else {"PYTHONPATH": str(code.resolve())}
    pod_cpus = pins[0] if pins else None
    bin_dir = Path(sys.executable).parent
    side: subprocess.Popen[bytes] | None = None
    process: subprocess.Popen[bytes] | None = None
    try:
        monitor_url = ""
        if sidecar is not None:
            side_port = free_port()
            side_log = art.out_dir / f"{sidecar}-{side_port}.log"
            side = start_sidecar(
                art.monitor_config, sidecar, side_port, side_log, pod_cpus, extra_env=code_env
            )
            monitor_url = f"http://{HOST}:{side_port}"
            wait_ready(f"{monitor_url}/healthz", side, side_log)
            if sidecar == "monitor":
                warm_monitor(monitor_url)
        env = dict(os.environ)
        env.update(
            {
                "DRIFTWARD_SERVING_MODEL_NAME": MODEL_NAME,
                "DRIFTWARD_SERVING_MODEL_VERSION": MODEL_VERSION,
                "DRIFTWARD_SERVING_ARTIFACT_URI": art.skops_path.as_uri(),
                "DRIFTWARD_SERVING_ARTIFACT_SHA256": art.skops_digest,
                "DRIFTWARD_SERVING_HOST": HOST,
                "DRIFTWARD_SERVING_PORT": str(port),
                "DRIFTWARD_SERVING_METRICS_PORT": str(metrics_port),
                "DRIFTWARD_SERVING_MONITOR_URL": monitor_url,
                "DRIFTWARD_SERVING_LOG_LEVEL": "warning",
                **code_env,
            }
        )
        log = art.out_dir / f"driftward-{port}.log"
        command = [str(bin_dir / "driftward-serving"), "serve", "--workers", str(workers)]
        process = _start(_pinned(command, pod_cpus), log, env=env)
        wait_ready(f"http://{HOST}:{port}/v2/health/ready", process, log)
        yield Running(
            port=port,
            server_pid=process.pid,
            sidecar_pid=side.pid if side else None,
            after=(lambda: read_handoff_counters(metrics_port)) if side else None,
            pinned=pins is not None,
        )
    finally:
        if process is not None:
            stop_process(process)
        if side is not None:
            stop_process(side)


def start_sidecar(
    monitor_config: Path,
    sidecar: str,
    port: int,
    log: Path,
    cpus: str | None,
    *,
    extra_env: dict[str, str] | None = None,
) -> subprocess.Popen[bytes]:
    """The stub monitor or the real one (`driftward-serving monitor`) on `port`."""
    env = dict(os.environ)
    env.update(extra_env or {})
    if sidecar == "stub":
        command = [
            sys.executable, "-m", "uvicorn", "monitor_stub:app", "--host", HOST,
            "--port", str(port), "--no-access-log", "--log-level", "warning",
        ]  # fmt: skip
        return _start(_pinned(command, cpus), log, cwd=HERE, env=env)
    env.update(
        {
            "DRIFTWARD_MONITOR_CONFIG_PATH": str(monitor_config),
            "DRIFTWARD_MONITOR_HOST": HOST,
            "DRIFTWARD_MONITOR_PORT": str(port),
            "DRIFTWARD_MONITOR_METRICS_PORT": str(free_port()),
            "DRIFTWARD_MONITOR_LOG_LEVEL": "warning",
        }
    )
    command = [str(Path(sys.executable).parent / "driftward-serving"), "monitor"]
    return _start(_pinned(command, cpus), log, env=env)


def warm_monitor(url: str) -> None:
    """Evaluate once now: the first evaluation imports scipy.special (~0.5 s of CPU, once
    per process), so the measured runs see the monitor's steady state."""
    request = urllib.request.Request(f"{url}/v1/evaluate", method="POST")
    with urllib.request.urlopen(request, timeout=60) as response:
        response.read()


def read_handoff_counters(metrics_port: int) -> str:
    """driftward's records sent and dropped, from its /metrics."""
    with urllib.request.urlopen(f"http://{HOST}:{metrics_port}/metrics", timeout=5) as response:
        text = response.read().decode()
    sent = dropped = 0.0
    for line in text.splitlines():
        if 'kind="prediction"' not in line:
            continue
        if line.startswith("driftward_serving_records_sent_total"):
            sent += float(line.rsplit(" ", 1)[1])
        elif line.startswith("driftward_serving_records_dropped_total"):
            dropped += float(line.rsplit(" ", 1)[1])
    return f"records sent {sent:,.0f}, dropped {dropped:,.0f}"


def mlserver_server(
    art: Artifacts, pins: tuple[str, str] | None, parallel: int | None
) -> Iterator[Running]:
    """Run `mlserver start` with its defaults, or with parallel_workers set."""
    assert art.mlserver_dir is not None
    port, grpc_port, metrics_port = free_port(), free_port(), free_port()
    # Every configuration runs at once, so each reads its settings from its own directory.
    model_dir = art.out_dir / f"mlserver-{port}"
    model_dir.mkdir()
    shutil.copy2(art.mlserver_dir / "model.joblib", model_dir / "model.joblib")
    settings: dict[str, object] = {
        "host": HOST,
        "http_port": port,
        "grpc_port": grpc_port,
        "metrics_port": metrics_port,
        "debug": False,
    }
    if parallel is not None:
        settings["parallel_workers"] = parallel
    (model_dir / "settings.json").write_text(json.dumps(settings))
    (model_dir / "model-settings.json").write_text(
        json.dumps(
            {
                "name": MODEL_NAME,
                "implementation": "mlserver_sklearn.SKLearnModel",
                "parameters": {"uri": "./model.joblib", "version": MODEL_VERSION},
            }
        )
    )
    log = art.out_dir / f"mlserver-{port}.log"
    command = [str(art.mlserver_bin / "mlserver"), "start", str(model_dir)]
    process = _start(_pinned(command, pins[0] if pins else None), log, cwd=model_dir)
    try:
        wait_ready(f"http://{HOST}:{port}/v2/models/{MODEL_NAME}/ready", process, log)
        yield Running(port=port, server_pid=process.pid)
    finally:
        stop_process(process)


def kserve_server(art: Artifacts, pins: tuple[str, str] | None) -> Iterator[Running]:
    """Run KServe's ModelServer with the sklearnserver predict path (kserve_sklearn.py)."""
    assert art.kserve_model is not None
    port = free_port()
    log = art.out_dir / f"kserve-{port}.log"
    command = [
        str(art.kserve_bin / "python"), str(HERE / "kserve_sklearn.py"),
        "--model_name", MODEL_NAME, "--model_path", str(art.kserve_model),
        "--http_port", str(port),
    ]  # fmt: skip
    env = dict(os.environ, PREDICT_PROBA="true")
    process = _start(_pinned(command, pins[0] if pins else None), log, env=env)
    try:
        wait_ready(f"http://{HOST}:{port}/v2/models/{MODEL_NAME}/ready", process, log)
        yield Running(port=port, server_pid=process.pid)
    finally:
        stop_process(process)


# --------------------------------------------------------------------------- measuring


def _process_table() -> dict[int, tuple[int, float]]:
    """pid -> (parent pid, CPU seconds used so far) for every process we can read."""
    tick = os.sysconf("SC_CLK_TCK")
    table = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            text = (entry / "stat").read_text()
        except OSError:
            continue
        fields = text[text.rindex(")") + 2 :].split()
        # After "pid (comm) ": state, ppid, ..., utime at index 11, stime at 12.
        table[int(entry.name)] = (int(fields[1]), (int(fields[11]) + int(fields[12])) / tick)
    return table


def _tree(root: int, table: dict[int, tuple[int, float]]) -> list[int]:
    """A process and all its live descendants, from a _process_table()."""
    children: dict[int, list[int]] = {}
    for pid, (ppid, _) in table.items():
        children.setdefault(ppid, []).append(pid)
    tree, todo = [], [root]
    while todo:
        pid = todo.pop()
        tree.append(pid)
        todo.extend(children.get(pid, []))
    return tree


def tree_cpu_seconds(root: int | None) -> float:
    """CPU seconds used by a process and all its live descendants."""
    if root is None:
        return 0.0
    table = _process_table()
    return sum(table.get(pid, (0, 0.0))[1] for pid in _tree(root, table))


def read_thread_cpu_ns(root: int | None) -> dict[int, int]:
    """Nanoseconds on a CPU of every live thread of a process and its live descendants,
    by thread id (``/proc/PID/task/TID/schedstat``, not 10 ms ticks)."""
    threads = {}
    for task in _tree_tasks([root] if root is not None else []):
        with contextlib.suppress(OSError, ValueError, IndexError):  # a thread that just ended
            threads[int(task.name)] = int((task / "schedstat").read_text().split()[0])
    return threads


def _tree_tasks(roots: list[int]) -> Iterator[Path]:
    """The /proc task directory of every live thread in the process trees of `roots`."""
    table = _process_table()
    for pid in (pid for root in roots for pid in _tree(root, table)):
        with contextlib.suppress(OSError):  # a process that just ended
            yield from list(Path(f"/proc/{pid}/task").iterdir())


def compute_thread_cpu_seconds(before: dict[int, int], after: dict[int, int]) -> float | None:
    """CPU seconds used between two read_thread_cpu_ns readings, or None when a thread of
    the first ended before the second (its time is gone, so the sum would be short).
    Threads that started in between count whole: all their time is in the window."""
    if not before.keys() <= after.keys():
        return None
    return sum(ns - before.get(tid, 0) for tid, ns in after.items()) / 1e9


def pin_tree(running: Running, cpus: str) -> None:
    """Move every thread of the server's and the sidecar's process trees onto ``cpus``."""
    cores = {int(cpu) for cpu in cpus.split(",")}
    roots = [pid for pid in (running.server_pid, running.sidecar_pid) if pid is not None]
    for task in _tree_tasks(roots):
        with contextlib.suppress(OSError):  # a thread that just ended
            os.sched_setaffinity(int(task.name), cores)


def round_order(count: int, number: int) -> list[int]:
    """Which configuration to measure when in round ``number`` (from 1): reversed on even ones.

    Alternating the order gives every configuration, on average, the same
    position in a round, so drift within a round (a neighbour's job starting,
    caches and the page cache filling) does not favour the first ones.
    """
    order = list(range(count))
    return order[::-1] if number % 2 == 0 else order


def check_response(url: str, lua: Path) -> None:
    """POST the benchmark body once and stop unless the server answers it properly."""
    body = re.search(r"\[==\[(.*)\]==\]", lua.read_text(), re.S)
    assert body is not None
    request = urllib.request.Request(
        url, data=body.group(1).encode(), headers={"Content-Type": "application/json"}
    )
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            answer = json.loads(response.read())
    except urllib.error.HTTPError as exc:
        sys.exit(f"{url} answered {exc.code}: {exc.read()[:500]!r}")
    if not answer.get("outputs"):
        sys.exit(f"{url} answered without outputs: {answer}")


@dataclass
class Bench:
    """Runs wrk with the shared settings."""

    wrk: str
    args: argparse.Namespace
    pins: tuple[str, str] | None
    py_spy: str | None = None

    def run(self, name: str, running: Running, lua: Path) -> Result:
        """Move the pod onto its core, measure it, and park it on wrk's core again."""
        if self.pins is not None and running.pinned:
            pin_tree(running, self.pins[0])
        try:
            return self._measure(name, running, lua)
        finally:
            self.park(running)

    def park(self, running: Running) -> None:
        """Move an idle pod onto wrk's core, out of the measured pod's way."""
        if self.pins is not None and running.pinned:
            pin_tree(running, self.pins[1])

    def _measure(self, name: str, running: Running, lua: Path) -> Result:
        """Warm up, then measure one server; returns the parsed wrk numbers and CPU use."""
        url = f"http://{HOST}:{running.port}/v2/models/{MODEL_NAME}/infer"
        check_response(url, lua)
        base = [self.wrk, f"-t{self.args.threads}", f"-c{self.args.connections}", "--latency"]
        base += ["-s", str(lua)]
        cpus = self.pins[1] if self.pins else None
        print(f"-- {name}: warm-up {self.args.warmup}s", flush=True)
        subprocess.run(
            _pinned([*base, f"-d{self.args.warmup}s", url], cpus), check=True, capture_output=True
        )
        print(f"-- {name}: measuring {self.args.duration}s", flush=True)
        server0 = tree_cpu_seconds(running.server_pid)
        side0 = tree_cpu_seconds(running.sidecar_pid)
        started = time.monotonic()
        done = subprocess.run(
            _pinned([*base, f"-d{self.args.duration}s", url], cpus),
            check=True,
            capture_output=True,
            text=True,
        )
        wall = time.monotonic() - started
        server = (tree_cpu_seconds(running.server_pid) - server0) / wall
        side = (tree_cpu_seconds(running.sidecar_pid) - side0) / wall
        share = None
        if self.py_spy and running.sidecar_pid is not None:
            share = self._profile(running, [*base, f"-d{PROFILE_SECONDS}s", url], cpus)
        notes = running.after() if running.after else ""
        result = replace(parse_wrk(name, done.stdout, server, side, notes), handoff_share=share)
        print(
            f"   {result.requests_per_second:,.0f} req/s on {server:.2f}+{side:.2f} cores, "
            f"p50 {result.p50_ms:.2f} ms, p99 {result.p99_ms:.2f} ms, "
            f"non-2xx {result.errors}{', ' + notes if notes else ''}",
            flush=True,
        )
        return result

    def _profile(self, running: Running, wrk: list[str], cpus: str | None) -> float | None:
        """Sample the loaded server with py-spy, after the measured window; the hand-off's share."""
        assert self.py_spy is not None
        print(f"-- profiling the server for {PROFILE_SECONDS - 2}s (py-spy, 100 Hz)", flush=True)
        load = subprocess.Popen(_pinned(wrk, cpus), stdout=subprocess.DEVNULL)
        with tempfile.TemporaryDirectory(prefix="driftward-bench-spy-") as scratch:
            raw = Path(scratch) / "samples.txt"
            try:
                time.sleep(1)
                # Blocking sampling: --nonblocking mixes frames of different moments.
                subprocess.run(
                    [
                        self.py_spy,
                        "record",
                        "-p",
                        str(running.server_pid),
                        "-r",
                        "100",
                        "-d",
                        str(PROFILE_SECONDS - 2),
                        "-f",
                        "raw",
                        "-o",
                        str(raw),
                        "--subprocesses",
                    ],
                    check=True,
                    capture_output=True,
                )
                return handoff_share(raw.read_text())
            except (subprocess.CalledProcessError, ValueError, OSError) as exc:
                print(f"   py-spy failed ({exc}); no CPU attribution for this run", flush=True)
                return None
            finally:
                load.wait()


def parse_wrk(name: str, output: str, server: float, side: float, notes: str = "") -> Result:
    """Read req/s, p50, p99 and non-2xx responses from wrk --latency output."""

    def latency(percentile: str) -> float:
        match = re.search(rf"^\s+{percentile}%\s+([\d.]+)(us|ms|s)\s*$", output, re.M)
        if match is None:
            raise ValueError(f"no {percentile}% latency in wrk output:\n{output}")
        value, unit = float(match.group(1)), match.group(2)
        return value * {"us": 0.001, "ms": 1.0, "s": 1000.0}[unit]

    rps = re.search(r"Requests/sec:\s+([\d.]+)", output)
    errors = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", output)
    socket_errors = re.search(r"Socket errors: (.*)", output)
    if rps is None:
        raise ValueError(f"no Requests/sec in wrk output:\n{output}")
    if socket_errors:
        notes = f"{notes}; wrk socket errors {socket_errors.group(1)}".lstrip("; ")
    return Result(
        name=name,
        requests_per_second=float(rps.group(1)),
        p50_ms=latency("50"),
        p99_ms=latency("99"),
        errors=int(errors.group(1)) if errors else 0,
        server_cores=server,
        sidecar_cores=side,
        notes=notes,
    )


# --------------------------------------------------------------------------- reporting


def _cost(off: Result | None, on: Result | None) -> str:
    """How much throughput turning something on loses (negative: noise made it faster)."""
    if off is None or on is None:
        return "n/a"
    raw = (off.requests_per_second - on.requests_per_second) / off.requests_per_second
    pod = (off.per_pod_core - on.per_pod_core) / off.per_pod_core
    server = (off.per_core - on.per_core) / off.per_core
    return (
        f"{raw * 100:.1f}% of req/s, {pod * 100:.1f}% of req/s per pod core, "
        f"{server * 100:.1f}% of req/s per server core (target <= {COST_TARGET_PERCENT:.0f}%)"
    )


def build_report(
    results: list[Result],
    args: argparse.Namespace,
    skipped: dict[str, str],
    title: str,
    model_costs: list[str] | None = None,
) -> str:
    """One run's table, ratios against MLServer, and the hand-off and monitor costs."""
    by_name = {r.name: r for r in results}
    bases = [by_name.get(MLSERVER_DEFAULT), by_name.get(MLSERVER_INLINE), by_name.get(KSERVE)]

    def ratio(r: Result, base: Result | None) -> str:
        return f"{r.per_pod_core / base.per_pod_core:.2f}x" if base else "-"

    lines = [
        f"{title}: batch 1, {args.connections} connections, wrk -t{args.threads}, "
        f"{args.duration}s each, V2 infer; server and sidecar share one pinned core",
        "cores = CPU the server (+sidecar) used; req/s/core = req/s / cores; "
        "ratios compare req/s/core",
        f"{'configuration':<38} {'req/s':>6} {'cores':>9} {'req/s/core':>10} "
        f"{'p50 ms':>7} {'p99 ms':>7} {'vs MLS':>7} {'vs MLS/0':>8} {'vs KS':>6}",
    ]
    for r in results:
        cores = f"{r.server_cores:.2f}" + (f"+{r.sidecar_cores:.2f}" if r.sidecar_cores else "")
        lines.append(
            f"{r.name:<38} {r.requests_per_second:>6,.0f} {cores:>9} {r.per_pod_core:>10,.0f} "
            f"{r.p50_ms:>7.2f} {r.p99_ms:>7.2f} {ratio(r, bases[0]):>7} "
            f"{ratio(r, bases[1]):>8} {ratio(r, bases[2]):>6}"
        )
        if r.errors:
            lines.append(f"   !! {r.errors} non-2xx responses in this run")
        if r.notes:
            lines.append(f"   {r.notes}")
    off = by_name.get(DW_OFF)
    lines.append(f"hand-off cost (stub monitor): {_cost(off, by_name.get(DW_STUB))}")
    lines.append(f"hand-off + real monitor cost: {_cost(off, by_name.get(DW_MONITOR))}")
    for label, on in (
        ("stub monitor", by_name.get(DW_STUB)),
        ("real monitor", by_name.get(DW_MONITOR)),
    ):
        if on is not None and on.handoff_share is not None and on.cpu_cost is not None:
            lines.append(
                f"by CPU accounting ({label}): the hand-off's code took "
                f"{on.handoff_share * 100:.1f}% of the server's py-spy samples and the sidecar "
                f"{on.sidecar_cores:.2f} core: {on.cpu_cost * 100:.1f}% of the pod's CPU "
                "(a floor: cache effects are not counted)"
            )
    for peer, why in skipped.items():
        lines.append(f"{peer} skipped: {why.splitlines()[0]}")
    for cost in model_costs or []:
        lines.append(f"model cost, {cost}")
    return "\n".join(lines)


def median_interval(values: list[float], confidence: float = 0.9) -> tuple[float, float, float]:
    """A distribution-free confidence interval for the median of per-run costs.

    The k-th smallest and k-th largest of n values hold the median with
    probability 1 - 2 P(Binomial(n, 1/2) < k). k is the largest whose coverage
    is at least ``confidence``; with too few runs for that, the interval is the
    whole range and the coverage returned is lower than asked (75% for 3 runs).
    """
    ordered = sorted(values)
    n = len(ordered)

    def coverage(k: int) -> float:
        return 1.0 - 2.0 * sum(math.comb(n, i) for i in range(k)) / 2**n

    k = 1
    while 2 * (k + 1) <= n and coverage(k + 1) >= confidence:
        k += 1
    return ordered[k - 1], ordered[n - k], coverage(k)


def cost_verdict(low: float, high: float, coverage: float) -> str:
    """Met only when the whole interval is within the target; missed only when it is all above;
    and no call at all from an interval below 90% confidence (fewer than 5 runs)."""
    target = f"{COST_TARGET_PERCENT:.0f}%"
    if coverage < 0.9:
        return f"too few runs to judge the {target} target (use --repeat 9)"
    if high <= COST_TARGET_PERCENT:
        return f"met (<= {target})"
    if low > COST_TARGET_PERCENT:
        return f"not met (> {target})"
    return f"not decided by these runs (the target is {target}; run more)"


def build_comparison(runs: list[list[Result]]) -> list[str]:
    """This code's hand-off configurations against --compare-serving's, paired by round
    (the machine's slow and fast minutes land on both codes)."""
    lines = []
    for ours, other in ((DW_STUB, CMP_STUB), (DW_MONITOR, CMP_MONITOR)):
        gains = [
            100 * (by_name[ours].per_pod_core / by_name[other].per_pod_core - 1)
            for by_name in ({r.name: r for r in results} for results in runs)
            if ours in by_name and other in by_name
        ]
        if gains:
            lines.append(f"{ours} against the compared code, req/s per pod core: {_spread(gains)}")
    return lines


def _spread(percents: list[float]) -> str:
    """The median of per-run percentages, every run, and the interval for the median."""
    each = "/".join(f"{c:.1f}" for c in percents)
    low, high, coverage = median_interval(percents)
    return (
        f"{statistics.median(percents):.1f}% [{each}]; "
        f"median within [{low:.1f}, {high:.1f}] at {coverage:.0%} confidence"
    )


def build_summary(runs: list[list[Result]]) -> str:
    """Medians over runs, with every run's value, per configuration."""
    names = list(dict.fromkeys(r.name for results in runs for r in results))
    lines = [
        f"summary over {len(runs)} runs: median [each run]",
        f"{'configuration':<38} {'req/s':>22} {'req/s/core':>22} {'p99 ms':>20}",
    ]
    for name in names:
        rows = [r for results in runs for r in results if r.name == name]
        rps = [r.requests_per_second for r in rows]
        core = [r.per_pod_core for r in rows]
        p99 = [r.p99_ms for r in rows]

        def show(values: list[float], fmt: str) -> str:
            each = "/".join(format(v, fmt) for v in values)
            return f"{statistics.median(values):{fmt}} [{each}]"

        lines.append(
            f"{name:<38} {show(rps, '.0f'):>22} {show(core, '.0f'):>22} {show(p99, '.1f'):>20}"
        )
    for label, on_name in (
        ("hand-off cost (stub)", DW_STUB),
        ("+ real monitor", DW_MONITOR),
        ("compared code: hand-off cost (stub)", CMP_STUB),
        ("compared code: + real monitor", CMP_MONITOR),
    ):
        costs = []
        for results in runs:
            by_name = {r.name: r for r in results}
            if DW_OFF in by_name and on_name in by_name:
                off, on = by_name[DW_OFF], by_name[on_name]
                costs.append(100 * (off.per_pod_core - on.per_pod_core) / off.per_pod_core)
        if costs:
            low, high, coverage = median_interval(costs)
            lines.append(
                f"{label}, of req/s per pod core: {_spread(costs)}: "
                f"{cost_verdict(low, high, coverage)}"
            )
        accounted = [
            100 * r.cpu_cost
            for results in runs
            for r in results
            if r.name == on_name and r.cpu_cost is not None
        ]
        if accounted:
            lines.append(f"{label}, by CPU accounting, of the pod's CPU: {_spread(accounted)}")
    lines += build_comparison(runs)
    for base in (MLSERVER_DEFAULT, MLSERVER_INLINE, KSERVE):
        for ours in (DW_OFF, DW_MONITOR):
            per_core, raw = [], []
            for results in runs:
                by_name = {r.name: r for r in results}
                if base in by_name and ours in by_name:
                    mine, theirs = by_name[ours], by_name[base]
                    per_core.append(mine.per_pod_core / theirs.per_pod_core)
                    raw.append(mine.requests_per_second / theirs.requests_per_second)
            if per_core:
                lines.append(
                    f"{ours} vs {base}: req/s/core x{statistics.median(per_core):.1f} "
                    f"[{'/'.join(f'{v:.1f}' for v in per_core)}], "
                    f"req/s x{statistics.median(raw):.1f} [{'/'.join(f'{v:.1f}' for v in raw)}]"
                )
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
