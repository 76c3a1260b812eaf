"""Where the record hand-off's cost goes: each stage alone, in µs per record.

``run.py`` measures the hand-off as lost throughput at saturation. On a small,
noisy machine that figure moves by a point or two between rounds, so a change
to one stage is hard to judge there. This script times each stage on its own:

- offer in a request loop: what the hand-off adds to a batch-1 request, from
  rounds of ``app.handle_infer`` (parse, predict, offer, answer; no HTTP) with
  the hand-off on and off, interleaved in one process. This is the request
  path's figure: it also counts what holding or copying the rows costs the
  rest of the request (allocations that no longer reuse hot memory), which
  the tight loop below cannot see;
- offer alone: ``RecordBuffer.offer_predictions`` in a tight loop over
  prebuilt arrays;
- drain, encode: joining one POST's worth of rows into columns, and encoding it;
- flush: ``RecordSender.flush`` of one POST's worth to the stub monitor
  (drain, encode and the aiohttp POST), in this process's CPU;
- stub monitor: the stub's CPU per record (HTTP and parse), the floor for any monitor;
- monitor parse, monitor intake: the real monitor's record-batch parse and
  window intake, in process, once its join buffer is full;
- real monitor: the ``driftward-serving monitor`` process's CPU per record over
  HTTP, at ``--rate`` records a second, with its evaluation every interval.

The serving-side stages and the in-process monitor run in this process; the
sidecars run as their own processes. Everything is paced at ``--rate`` records
a second in POSTs of serving's default size, as serving sends them. Each row's share of a
request is given at a few request rates per core: at batch 1 a request is one
record, so at R req/s a request has 1e6 / R µs of a core, and a stage's share
is what a saturated pod loses to it.

    .venv/bin/python bench/serving/budget.py [--rate 12000] [--seconds 10]
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import os
import signal
import statistics
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import orjson
import skops.io
from prometheus_client import CollectorRegistry
from sklearn.datasets import load_breast_cancer
from sklearn.linear_model import LogisticRegression

sys.path.insert(0, str(Path(__file__).resolve().parent))
import run as serving_bench  # bench/ is not a package: run.py is beside this script

from driftward_serving import recordbatch
from driftward_serving.app import INFER_PATH, ServingState, handle_infer
from driftward_serving.artifacts import read_model_state
from driftward_serving.handoff import (
    PREDICTION,
    RecordBuffer,
    RecordSender,
    build_records_payload,
)
from driftward_serving.ledger import build_prediction_ids, open_ledgers
from driftward_serving.metrics import build_metrics
from driftward_serving.monitor.allocator import apply_allocator_tuning, find_mallopt
from driftward_serving.monitor.app import MonitorService, create_app
from driftward_serving.monitor.settings import load_monitor_settings
from driftward_serving.protocol import ERROR_REASONS, build_input_spec
from driftward_serving.settings import ServingSettings

# Rows per POST: serving's default record_batch_size.
BATCH: int = ServingSettings.model_fields["record_batch_size"].default
RATES = (3_000, 10_000, 13_000)
# Interleaved rounds of BATCH requests, hand-off on and off, for the request path's stage.
REQUEST_ROUNDS = 30
SERVING, SIDECAR = "serving", "sidecar"
# The serving stages the table adds up: what one request pays, and what its flush pays.
REQUEST_PATH = "offer in a request loop (request path)"
FLUSH = "flush: drain, encode, aiohttp POST"
# What each sidecar process's CPU pays for (the stub parses a batch and drops it).
SIDECAR_STAGES = {
    "stub": "stub process (HTTP, parse)",
    "monitor": "monitor process (HTTP, parse, intake, evaluation)",
}
# One request's worth of offer_predictions arguments, at batch 1.
Row = tuple[list[str], np.ndarray[Any, Any], np.ndarray[Any, Any], np.ndarray[Any, Any]]


@dataclass(frozen=True)
class Stage:
    """One stage's cost."""

    name: str
    where: str
    us_per_record: float


def main() -> int:
    """Time every stage and print the table."""
    args = _parse_args()
    # A plain `kill` must also stop the sidecars this script started (the finally blocks).
    signal.signal(signal.SIGTERM, lambda *_: sys.exit("stopped by SIGTERM"))
    X, y = load_breast_cancer(return_X_y=True)
    model = LogisticRegression(max_iter=10000).fit(X, y)
    with tempfile.TemporaryDirectory(prefix="driftward-budget-") as scratch:
        out_dir = Path(scratch)
        config = serving_bench.build_monitor_config(out_dir, model, X, y)
        service = build_service(config)
        warm = service.settings.join_buffer_size // BATCH + 10
        measured = max(1, round(args.seconds * args.rate / BATCH))
        batches = list(build_batches(model, X, warm + measured))
        print(f"-- {len(batches)} batches of {BATCH} rows; {warm} warm the monitor", flush=True)
        print(f"-- serving's buffer and the monitor's intake, in process, at {args.rate:,}/s")
        stages = [time_request_path(model, X, out_dir)]
        stages += time_buffer(batches[warm:], args.rate)
        # The monitor process raises glibc's allocator thresholds at start; serving does
        # not. Raised here, after serving's stages, the in-process monitor rows run as the
        # monitor does (measured on 2026-12-08, the intake row did not move: 0.70-0.72 µs
        # per record with them, 0.65-0.70 without).
        for line in apply_allocator_tuning(os.environ, find_mallopt()):
            print(f"-- monitor's {line}")
        stages += time_monitor_intake(service, batches, warm, args.rate)
        for sidecar in ("stub", "monitor"):
            print(f"-- feeding the {sidecar} at {args.rate:,} records/s", flush=True)
            stages += measure_sidecar(
                sidecar, config=config, out_dir=out_dir, batches=batches, warm=warm, rate=args.rate
            )
    table = build_table(stages)
    print(table)
    result = serving_bench.ROOT / "bench" / "results" / time.strftime("handoff-%Y%m%d-%H%M%S.txt")
    result.parent.mkdir(parents=True, exist_ok=True)
    result.write_text(table + "\n")
    print(f"\nwritten to {result}")
    return 0


def _parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--rate", type=int, default=12_000, help="records a second, the pace of every stage"
    )
    parser.add_argument(
        "--seconds", type=float, default=10.0, help="seconds measured for each group of stages"
    )
    args = parser.parse_args()
    if args.rate < BATCH:
        parser.error(f"--rate must be at least {BATCH} (one POST a second), not {args.rate}")
    if args.seconds <= 0:
        parser.error(f"--seconds must be more than 0, not {args.seconds}")
    return args


def build_service(config: Path) -> MonitorService:
    """The real monitor's service, in this process, without its evaluation loop."""
    settings = load_monitor_settings({}, config_path=config)
    app = create_app(settings, CollectorRegistry(), run_loop=False)
    service: MonitorService = app.state.service
    return service


def build_batches(model: LogisticRegression, X: np.ndarray, count: int) -> Iterator[list[Row]]:
    """`count` POSTs' worth of batch-1 requests: fresh ids, real rows and real outputs."""
    rng = np.random.default_rng(0)
    for _ in range(count):
        rows = X[rng.integers(len(X), size=BATCH)]
        outputs, proba = model.predict(rows), model.predict_proba(rows)
        ids = [text for text, _ in build_prediction_ids(os.urandom(16 * BATCH))]
        yield [
            (ids[i : i + 1], rows[i : i + 1], outputs[i : i + 1], proba[i : i + 1])
            for i in range(BATCH)
        ]


def offer(buffer: RecordBuffer, batch: list[Row]) -> None:
    """Queue a POST's worth of batch-1 requests, as the request path does."""
    for ids, features, outputs, proba in batch:
        if buffer.offer_predictions(ids, time.time(), features, outputs, proba) is not None:
            raise SystemExit("the record buffer refused a row; the budget would be wrong")


def pace(started: float, number: int, rate: int) -> None:
    """Wait until batch `number` is due at `rate` records a second.

    Work done once per POST must be timed at the POST rate: on the machines this
    was written on, code that last ran 80 ms ago runs 3-5x slower than in a tight loop.
    """
    time.sleep(max(0.0, started + number * BATCH / rate - time.monotonic()))


def time_request_path(model: LogisticRegression, X: np.ndarray, out_dir: Path) -> Stage:
    """What the hand-off adds to a batch-1 request: the median over interleaved rounds of
    5,000 ``handle_infer`` calls with a RecordBuffer minus rounds without one."""
    path = out_dir / "model.skops"
    skops.io.dump(model, path)
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    settings = ServingSettings(
        artifact_uri=path.as_uri(), artifact_sha256=digest, model_name=serving_bench.MODEL_NAME
    )
    model_state = read_model_state(settings)
    if model_state.predictor is None:
        raise SystemExit(f"the budget's model did not load: {model_state.message}")
    metrics = build_metrics(CollectorRegistry(), settings.model_name, "v1", ERROR_REASONS)
    state = ServingState(
        settings=settings,
        metrics=metrics,
        model=model_state,
        ledgers=open_ledgers(None, 1, settings.prediction_id_retention),
        buffer=None,
        spec=build_input_spec(model_state.predictor, settings.max_batch_size),
    )
    bodies = [
        orjson.dumps(
            {"inputs": [{"name": "x", "shape": [1, X.shape[1]], "datatype": "FP64", "data": row}]}
        )
        for row in X[:512].tolist()
    ]
    buffer = RecordBuffer(BATCH)
    added: list[float] = []
    for number in range(REQUEST_ROUNDS + 1):
        took = {}
        for queue in (None, buffer) if number % 2 else (buffer, None):
            state.buffer = queue
            start = time.process_time()
            for i in range(BATCH):
                handle_infer(state, INFER_PATH, bodies[i % len(bodies)])
            took[queue is not None] = time.process_time() - start
            columns, _ = buffer.drain(BATCH)
            offered = columns.rows if columns is not None else 0
            if offered != (BATCH if queue is not None else 0):
                raise SystemExit(f"{BATCH} requests offered {offered} records to the hand-off")
        if number:  # the first round warms both
            added.append(1e6 * (took[True] - took[False]) / BATCH)
    return Stage(REQUEST_PATH, SERVING, statistics.median(added))


def time_buffer(batches: list[list[Row]], rate: int) -> list[Stage]:
    """Offer, drain and encode, each timed alone in this process's CPU."""
    buffer = RecordBuffer(BATCH)
    offered = drained = encoded = 0.0
    started = time.monotonic()
    for number, batch in enumerate(batches):
        pace(started, number, rate)
        start = time.process_time()
        offer(buffer, batch)
        queued = time.process_time()
        columns, labels = buffer.drain(BATCH)
        joined = time.process_time()
        build_records_payload(
            serving_bench.MODEL_NAME, serving_bench.MODEL_VERSION, columns, labels
        )
        done = time.process_time()
        offered, drained, encoded = (
            offered + queued - start,
            drained + joined - queued,
            encoded + done - joined,
        )
    records = len(batches) * BATCH
    return [
        Stage("offer alone, tight loop", SERVING, 1e6 * offered / records),
        Stage("drain: join into columns", SERVING, 1e6 * drained / records),
        Stage("encode the record batch", SERVING, 1e6 * encoded / records),
    ]


def time_monitor_intake(
    service: MonitorService, batches: list[list[Row]], warm: int, rate: int
) -> list[Stage]:
    """The real monitor's parse and window intake in process, after `warm` batches
    have filled its join buffer (so evictions are paid as in a long-running pod)."""
    buffer = RecordBuffer(BATCH)
    parsed = ingested = 0.0
    started = time.monotonic()
    for number, batch in enumerate(batches):
        if number >= warm:
            pace(started, number - warm, rate)
        else:
            started = time.monotonic()
        offer(buffer, batch)
        columns, labels = buffer.drain(BATCH)
        body = build_records_payload(service.model, service.version, columns, labels)
        start = time.process_time()
        parsed_batch = recordbatch.parse_record_batch(body, max_rows=len(body))
        middle = time.process_time()
        result = service.ingest_columns(parsed_batch, [])
        end = time.process_time()
        if result["accepted_predictions"] != BATCH:
            raise SystemExit(f"the monitor accepted {result} of a {BATCH}-row batch")
        if number >= warm:
            parsed, ingested = parsed + middle - start, ingested + end - middle
    records = (len(batches) - warm) * BATCH
    return [
        Stage("monitor: parse (in process)", SIDECAR, 1e6 * parsed / records),
        Stage("monitor: window intake (in process)", SIDECAR, 1e6 * ingested / records),
    ]


def measure_sidecar(
    sidecar: str, *, config: Path, out_dir: Path, batches: list[list[Row]], warm: int, rate: int
) -> list[Stage]:
    """Feed a sidecar process `batches` (the first `warm` unpaced), the rest at `rate`."""
    port = serving_bench.free_port()
    log = out_dir / f"{sidecar}.log"
    process = serving_bench.start_sidecar(config, sidecar, port, log, None)
    url = f"http://{serving_bench.HOST}:{port}"
    try:
        serving_bench.wait_ready(f"{url}/healthz", process, log)
        if sidecar == "monitor":
            serving_bench.warm_monitor(url)
        flush, side = asyncio.run(feed(url, process.pid, batches, warm, rate))
    finally:
        serving_bench.stop_process(process)
    stages = [Stage(SIDECAR_STAGES[sidecar], SIDECAR, side)]
    if sidecar == "stub":
        stages.insert(0, Stage(FLUSH, SERVING, flush))
    return stages


async def feed(
    url: str, pid: int, batches: list[list[Row]], warm: int, rate: int
) -> tuple[float, float]:
    """Flush each batch through a real RecordSender; returns µs per record of this
    process's CPU in flush, and of the sidecar's CPU, over the paced batches."""
    buffer = RecordBuffer(BATCH)
    dropped: list[tuple[str, str, int]] = []
    sender = RecordSender(
        buffer=buffer,
        monitor_url=url,
        model=serving_bench.MODEL_NAME,
        version=serving_bench.MODEL_VERSION,
        batch_size=BATCH,
        flush_seconds=3600.0,  # flushed by hand below; run() only owns the HTTP session
        timeout_seconds=10.0,
        on_sent=lambda kind, rows: None,
        on_dropped=lambda kind, reason, rows: dropped.append((kind, reason, rows)),
    )
    running = asyncio.create_task(sender.run())
    await asyncio.sleep(0)  # let run() open its session
    flushing = 0.0
    try:
        for batch in batches[:warm]:
            offer(buffer, batch)
            await sender.flush()
        side_before, started = serving_bench.tree_cpu_seconds(pid), time.monotonic()
        threads_before = serving_bench.read_thread_cpu_ns(pid)
        for number, batch in enumerate(batches[warm:]):
            await asyncio.sleep(max(0.0, started + number * BATCH / rate - time.monotonic()))
            offer(buffer, batch)
            before = time.process_time()
            await sender.flush()
            flushing += time.process_time() - before
        # Let the last batch's work in the sidecar finish before reading its CPU.
        end = started + len(batches[warm:]) * BATCH / rate
        await asyncio.sleep(max(0.0, end - time.monotonic()))
        side = serving_bench.compute_thread_cpu_seconds(
            threads_before, serving_bench.read_thread_cpu_ns(pid)
        )
        if side is None:  # a thread ended in the window: its ns are gone, the ticks are not
            print("   (a sidecar thread ended mid-window: its CPU is read in 10 ms ticks)")
            side = serving_bench.tree_cpu_seconds(pid) - side_before
    finally:
        running.cancel()
        await asyncio.gather(running, return_exceptions=True)
    if any(kind == PREDICTION and rows for kind, _, rows in dropped):
        raise SystemExit(f"the sidecar at {url} dropped records: {dropped}")
    records = len(batches[warm:]) * BATCH
    return 1e6 * flushing / records, 1e6 * side / records


def build_table(stages: list[Stage]) -> str:
    """µs per record and its share of a batch-1 request at each of RATES req/s per core."""
    rates = " / ".join(f"{rate:,}" for rate in RATES)
    lines = [
        f"{'stage':<50} {'where':<8} {'µs/record':>9}   share of a request at {rates} req/s",
    ]

    def row(name: str, where: str, us: float) -> str:
        shares = " / ".join(f"{100 * us * rate / 1e6:4.1f}%" for rate in RATES)
        return f"{name:<50} {where:<8} {us:9.2f}   {shares}"

    by_name = {stage.name: stage for stage in stages}
    for stage in sorted(stages, key=lambda stage: stage.where == SIDECAR):
        lines.append(row(stage.name, stage.where, stage.us_per_record))
    serving = by_name[REQUEST_PATH].us_per_record + by_name[FLUSH].us_per_record
    lines.append(row("serving side: offer + flush", SERVING, serving))
    for sidecar, name in SIDECAR_STAGES.items():
        side = by_name[name].us_per_record
        lines.append(row(f"serving side + {sidecar} process", "pod", serving + side))
    lines.append(
        "(CPU per record from process times; the sidecars' in ns from "
        "/proc/PID/task/*/schedstat. The target: the hand-off and the monitor cost at most "
        "5% of a request.)"
    )
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
