"""Hand prediction records and labels to the monitor without ever slowing a request.

The request path only calls ``RecordBuffer.offer_*``: an O(1) append of the
batch's arrays (rows are expanded into JSON records later, off the request
path, in chunks between which requests run). A full buffer drops the new records and counts them
(``reason="queue_full"``). ``RecordSender`` runs as a background task on the
server's event loop: every ``record_flush_seconds`` it drains the buffer in
POSTs of at most ``record_batch_size`` records to ``{MONITOR_URL}/v1/records``
(format in docs/contracts.md). A failed POST (connection refused, timeout,
non-2xx) drops that batch and counts it (``reason="monitor_unavailable"``),
then waits before trying again, so a dead monitor costs one failed connect per
flush, not one per request.

Each worker process has its own buffer and sender; the monitor accepts records
from any number of senders. This module must not block the event loop on the
network, must not retry a failed batch (the monitor's window tolerates gaps;
retries would grow memory without bound), and must not raise into requests.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Final

import aiohttp
import numpy as np
import numpy.typing as npt
import orjson

from driftward_serving.predictor import FloatMatrix

log = logging.getLogger(__name__)

QUEUE_FULL: Final = "queue_full"
MONITOR_UNAVAILABLE: Final = "monitor_unavailable"
DROP_REASONS: Final = (QUEUE_FULL, MONITOR_UNAVAILABLE)
PREDICTION: Final = "prediction"
LABEL: Final = "label"
RECORD_KINDS: Final = (PREDICTION, LABEL)
RECORDS_PATH: Final = "/v1/records"


@dataclass(frozen=True)
class PredictionBatch:
    """The rows of one request, kept as arrays until the sender expands them."""

    ids: list[str]
    ts: float
    features: FloatMatrix
    outputs: npt.NDArray[Any]
    proba: FloatMatrix | None


@dataclass(frozen=True)
class LabelRecord:
    """One ground-truth label for a prediction id."""

    id: str
    ts: float
    label: str | int | float | bool


@dataclass
class RecordBuffer:
    """Bounded queues of prediction rows and labels waiting for the monitor."""

    capacity: int
    predictions: deque[PredictionBatch] = field(default_factory=deque)
    labels: deque[LabelRecord] = field(default_factory=deque)
    rows: int = 0

    def offer_predictions(self, batch: PredictionBatch) -> bool:
        """Queue a batch if its rows fit; return False (caller counts the drop) if not."""
        size = len(batch.ids)
        if self.rows + size > self.capacity:
            return False
        self.predictions.append(batch)
        self.rows += size
        return True

    def offer_labels(self, labels: list[LabelRecord]) -> int:
        """Queue as many labels as fit; return how many were dropped."""
        room = max(0, self.capacity - len(self.labels))
        self.labels.extend(labels[:room])
        return len(labels) - min(room, len(labels))

    def take(self, limit: int) -> tuple[list[PredictionBatch], list[LabelRecord]]:
        """Remove up to about `limit` records (whole batches) from the front."""
        taken: list[PredictionBatch] = []
        rows = 0
        while self.predictions and (not taken or rows + len(self.predictions[0].ids) <= limit):
            batch = self.predictions.popleft()
            taken.append(batch)
            rows += len(batch.ids)
        self.rows -= rows
        labels = [self.labels.popleft() for _ in range(min(len(self.labels), limit - rows))]
        return taken, labels

    def __len__(self) -> int:
        return self.rows + len(self.labels)


def build_prediction_records(batches: list[PredictionBatch]) -> list[dict[str, Any]]:
    """Expand queued batches into the monitor's prediction records, in order.

    The arrays of all batches are joined first and converted to Python values
    once: at batch 1 that is three conversions per flush instead of three per row.
    """
    if not batches:
        return []
    ids: list[str] = []
    stamps: list[float] = []
    for batch in batches:
        ids.extend(batch.ids)
        stamps.extend([batch.ts] * len(batch.ids))
    features = np.concatenate([b.features for b in batches]).tolist()
    outputs = np.concatenate([b.outputs for b in batches]).tolist()
    if all(b.proba is not None for b in batches):
        proba: list[Any] = np.concatenate([b.proba for b in batches]).tolist()
    else:
        proba = []
        for batch in batches:
            proba.extend(
                batch.proba.tolist() if batch.proba is not None else [None] * len(batch.ids)
            )
    return [
        {"id": ident, "ts": ts, "features": row, "output": out, "proba": p}
        for ident, ts, row, out, p in zip(ids, stamps, features, outputs, proba, strict=True)
    ]


def build_records_body(
    model: str, version: str, predictions: list[dict[str, Any]], labels: list[LabelRecord]
) -> bytes:
    """Serialise prediction records and labels into the monitor's /v1/records body."""
    body = {
        "model": model,
        "version": version,
        "predictions": predictions,
        "labels": [{"id": lab.id, "ts": lab.ts, "label": lab.label} for lab in labels],
    }
    return orjson.dumps(body, option=orjson.OPT_SERIALIZE_NUMPY)


def build_records_payload(
    model: str, version: str, batches: list[PredictionBatch], labels: list[LabelRecord]
) -> bytes:
    """Serialise queued batches and labels into the monitor's /v1/records body."""
    return build_records_body(model, version, build_prediction_records(batches), labels)


SentCounter = Callable[[str, int], None]
DropCounter = Callable[[str, str, int], None]
LOG_EVERY_SECONDS: Final = 60.0
# Batches expanded between two yields to the event loop while a POST body is built:
# a flush of 1,000 records must not hold requests up for the whole build.
ENCODE_CHUNK: Final = 128


class RecordSender:
    """Background task that drains a RecordBuffer to the monitor in batches."""

    def __init__(
        self,
        *,
        buffer: RecordBuffer,
        monitor_url: str,
        model: str,
        version: str,
        batch_size: int,
        flush_seconds: float,
        timeout_seconds: float,
        on_sent: SentCounter,
        on_dropped: DropCounter,
    ) -> None:
        self._buffer = buffer
        self._url = monitor_url + RECORDS_PATH
        self._model = model
        self._version = version
        self._batch_size = batch_size
        self._flush_seconds = flush_seconds
        self._timeout = aiohttp.ClientTimeout(total=timeout_seconds)
        self._on_sent = on_sent
        self._on_dropped = on_dropped
        self._session: aiohttp.ClientSession | None = None
        self._failing_since: float | None = None
        self._last_log = 0.0

    async def run(self) -> None:
        """Flush forever, every flush interval; cancel the task to stop."""
        self._session = aiohttp.ClientSession(
            timeout=self._timeout,
            # Loopback sidecar: no proxies from the environment, no cookies.
            trust_env=False,
            cookie_jar=aiohttp.DummyCookieJar(),
        )
        try:
            while True:
                await asyncio.sleep(self._flush_seconds)
                await self.flush()
        finally:
            await self._session.close()

    async def flush(self) -> None:
        """Send everything queued now; stop at the first failure (the rest waits)."""
        while len(self._buffer):
            batches, labels = self._buffer.take(self._batch_size)
            n_predictions = sum(len(b.ids) for b in batches)
            payload = await self._encode(batches, labels)
            if await self._post(payload):
                self._on_sent(PREDICTION, n_predictions)
                self._on_sent(LABEL, len(labels))
                continue
            self._on_dropped(PREDICTION, MONITOR_UNAVAILABLE, n_predictions)
            self._on_dropped(LABEL, MONITOR_UNAVAILABLE, len(labels))
            return

    async def _encode(self, batches: list[PredictionBatch], labels: list[LabelRecord]) -> bytes:
        """Build a POST body, letting requests run between chunks of batches."""
        predictions: list[dict[str, Any]] = []
        for start in range(0, len(batches), ENCODE_CHUNK):
            if start:
                await asyncio.sleep(0)
            predictions.extend(build_prediction_records(batches[start : start + ENCODE_CHUNK]))
        return build_records_body(self._model, self._version, predictions, labels)

    async def _post(self, payload: bytes) -> bool:
        if self._session is None:
            return False
        try:
            async with self._session.post(
                self._url, data=payload, headers={"Content-Type": "application/json"}
            ) as response:
                await response.read()
                if response.status < 300:
                    self._note_success()
                    return True
                self._note_failure(f"HTTP {response.status}")
        except (aiohttp.ClientError, TimeoutError, OSError) as exc:
            self._note_failure(type(exc).__name__)
        return False

    def _note_success(self) -> None:
        if self._failing_since is not None:
            log.info("monitor at %s reachable again; records flow", self._url)
        self._failing_since = None

    def _note_failure(self, what: str) -> None:
        # One line when the monitor goes away and one a minute after: a dead sidecar
        # must not flood the logs at the flush rate.
        now = time.monotonic()
        if self._failing_since is None or now - self._last_log >= LOG_EVERY_SECONDS:
            since = 0.0 if self._failing_since is None else now - self._failing_since
            log.warning(
                "monitor at %s unavailable (%s, failing for %.0fs); records are dropped "
                "and counted in driftward_serving_records_dropped_total",
                self._url,
                what,
                since,
            )
            self._last_log = now
        if self._failing_since is None:
            self._failing_since = now
