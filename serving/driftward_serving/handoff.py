"""Hand prediction records and labels to the monitor without ever slowing a request.

The request path only calls ``RecordBuffer.offer_*``, which appends
references to the batch's arrays (no copy, no new object per row). A full
buffer drops the new records and counts them (``reason="queue_full"``).
``RecordSender`` runs as a background task on the server's event loop. As
soon as ``record_batch_size`` records are queued it sends that many, and
whatever is left waits for the next full POST; ``record_flush_seconds`` after
its last flush it sends everything queued, however little (a batch processor's
"size or timeout, whichever first"). It joins records into columns
``DRAIN_STEP_ROWS`` at a time, so requests run in between, and POSTs them to
``{MONITOR_URL}/v1/records`` as binary record batches (``recordbatch.py``,
docs/contracts.md): a few arrays, not a JSON record per row. A
failed POST (connection refused, timeout, 5xx) drops that batch and counts it
(``reason="monitor_unavailable"``); the rest waits for the next flush, so a
dead monitor costs one failed connect per flush, not one per request. A POST
the monitor refuses with a 4xx is dropped and counted
(``reason="monitor_refused"``), its answer logged, and the flush goes on.

Each worker process has its own buffer and sender; the monitor accepts records
from any number of senders. This module must not block the event loop on the
network, must not retry a failed batch (the monitor's window tolerates gaps;
retries would grow memory without bound), and must not raise into requests.
"""

from __future__ import annotations

import asyncio
import bisect
import logging
import sys
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from itertools import accumulate, islice
from typing import Any, Final

import aiohttp
import numpy as np

from driftward_serving import recordbatch
from driftward_serving.predictor import Array, FloatMatrix

log = logging.getLogger(__name__)

QUEUE_FULL: Final = "queue_full"
MONITOR_UNAVAILABLE: Final = "monitor_unavailable"
# The monitor read the POST and refused it with a 4xx (invalid, too large, another
# version): a bug or a misconfiguration, not an outage, so it is told apart.
MONITOR_REFUSED: Final = "monitor_refused"
# Only a model that does not declare its input width can change the row layout mid-run.
LAYOUT_CHANGED: Final = "layout_changed"
# A POST serving could not encode (a bug): its records are dropped, and the sender goes
# on with the rest instead of ending and leaving every later record unsent.
UNENCODABLE: Final = "unencodable"
DROP_REASONS: Final = (
    QUEUE_FULL,
    MONITOR_UNAVAILABLE,
    MONITOR_REFUSED,
    LAYOUT_CHANGED,
    UNENCODABLE,
)
# How much of a refusal's body the log line quotes (the monitor names the field there).
REFUSAL_LOG_CHARS: Final = 500
PREDICTION: Final = "prediction"
LABEL: Final = "label"
RECORD_KINDS: Final = (PREDICTION, LABEL)
RECORDS_PATH: Final = "/v1/records"
# Prediction ids are uuid4 hex (ledger.build_prediction_ids).
ID_DTYPE: Final = np.dtype("S32")


@dataclass(frozen=True)
class LabelRecord:
    """One ground-truth label for a prediction id."""

    id: str
    ts: float
    label: str | int | float | bool


@dataclass(frozen=True)
class PredictionColumns:
    """Drained prediction rows joined into columns: one record batch's worth."""

    ids: np.ndarray[Any, np.dtype[np.bytes_]]
    ts: np.ndarray[Any, np.dtype[np.float64]]
    features: FloatMatrix
    outputs: Array
    proba: FloatMatrix | None

    @property
    def rows(self) -> int:
        """How many rows there are."""
        return len(self.ids)

    def build_columns(self) -> dict[str, np.ndarray[Any, Any]]:
        """The rows as the record batch's named columns."""
        columns = {
            recordbatch.ID: self.ids,
            recordbatch.TS: self.ts,
            recordbatch.FEATURES: self.features,
            recordbatch.OUTPUT: self.outputs,
        }
        if self.proba is not None:
            columns[recordbatch.PROBA] = self.proba
        return columns


@dataclass
class RecordBuffer:
    """Bounded queues of prediction rows and labels waiting for the monitor.

    A request only appends references to its arrays (well under a microsecond
    at batch 1); ``drain(limit)`` joins the oldest rows, one POST's worth, into
    columns, off the request path.
    """

    capacity: int
    labels: deque[LabelRecord] = field(default_factory=deque)
    rows: int = 0
    # Set once `full_at` records wait. The running sender puts its POST size and an
    # event of its own loop here, so a busy server sends full POSTs at once.
    full: asyncio.Event | None = None
    full_at: int = sys.maxsize
    _ids: list[str] = field(default_factory=list)
    _ts: list[float] = field(default_factory=list)
    _sizes: list[int] = field(default_factory=list)
    _features: list[FloatMatrix] = field(default_factory=list)
    _outputs: list[Array] = field(default_factory=list)
    _proba: list[FloatMatrix | None] = field(default_factory=list)
    _width: int = -1

    def offer_predictions(
        self,
        ids: list[str],
        ts: float,
        features: FloatMatrix,
        outputs: Array,
        proba: FloatMatrix | None,
    ) -> str | None:
        """Queue a batch if it fits; otherwise return why it was dropped (the caller counts)."""
        n = len(ids)
        if self.rows + n > self.capacity:
            return QUEUE_FULL
        if features.shape[1] != self._width:
            if self.rows:
                return LAYOUT_CHANGED
            self._width = features.shape[1]
        self.rows += n
        if self.rows >= self.full_at and self.full is not None:
            self.full.set()
        self._ids.extend(ids)
        self._ts.append(ts)
        self._sizes.append(n)
        self._features.append(features)
        self._outputs.append(outputs)
        self._proba.append(proba)
        return None

    def offer_labels(self, labels: list[LabelRecord]) -> int:
        """Queue as many labels as fit; return how many were dropped."""
        room = max(0, self.capacity - len(self.labels))
        self.labels.extend(labels[:room])
        if len(self) >= self.full_at and self.full is not None:
            self.full.set()
        return len(labels) - min(room, len(labels))

    def drain(self, limit: int) -> tuple[PredictionColumns | None, list[LabelRecord]]:
        """Take the oldest batches (at most `limit` rows, whole unless one alone is larger)
        as columns, and as many labels as fit in the rest of `limit`."""
        sizes = self._sizes
        if sizes and sizes[0] > limit:
            self._split_first(limit)
        # Every batch has a row, so at most `limit` batches fit: sum only those.
        totals = list(accumulate(islice(sizes, limit)))
        count = bisect.bisect_right(totals, limit)
        rows = totals[count - 1] if count else 0
        labels = [self.labels.popleft() for _ in range(min(len(self.labels), limit - rows))]
        if not count:
            return None, labels
        joined_proba = _join_proba(self._proba[:count], sizes[:count])
        stamps = np.array(self._ts[:count], dtype=np.float64)
        columns = PredictionColumns(
            ids=_build_ids(self._ids[:rows]),
            ts=stamps if count == rows else np.repeat(stamps, sizes[:count]),
            features=_join_arrays(self._features[:count]),
            outputs=_plain(_one_per_row(_join_arrays(self._outputs[:count]))),
            proba=joined_proba,
        )
        self.rows -= rows
        del self._ids[:rows]
        for queued in (self._ts, sizes, self._features, self._outputs, self._proba):
            del queued[:count]
        return columns, labels

    def _split_first(self, rows: int) -> None:
        """Cut the oldest batch in two after `rows` rows (views, no copy)."""
        self._sizes[0:1] = [rows, self._sizes[0] - rows]
        self._ts[0:1] = [self._ts[0], self._ts[0]]
        for queued in (self._features, self._outputs):
            queued[0:1] = [queued[0][:rows], queued[0][rows:]]
        proba = self._proba[0]
        self._proba[0:1] = [None, None] if proba is None else [proba[:rows], proba[rows:]]

    def __len__(self) -> int:
        return self.rows + len(self.labels)


def _join_arrays(arrays: list[np.ndarray[Any, Any]]) -> np.ndarray[Any, Any]:
    """``np.concatenate`` along rows, ~4x faster for many one-row arrays of one dtype."""
    first = arrays[0]
    # Object arrays are buffers of pointers: joined as bytes they would be addresses.
    if not first.dtype.hasobject and len({a.dtype for a in arrays}) == 1:
        try:
            joined = b"".join(arrays)  # type: ignore[arg-type]  # ndarrays are buffers
        except (BufferError, TypeError):  # an array that is not C-contiguous
            return np.concatenate(arrays)
        return np.frombuffer(joined, dtype=first.dtype).reshape(-1, *first.shape[1:])
    return np.concatenate(arrays)


def _one_per_row(outputs: Array) -> Array:
    """Outputs of shape (n, 1), which a regressor fitted on a one-column target (a
    DataFrame's ``df[["y"]]``) predicts, as the (n,) column the record batch carries.
    Serving still answers them as the model shaped them. Models with more outputs per
    row are refused at load (predictor.build_predictor)."""
    return outputs.reshape(-1) if outputs.ndim == 2 and outputs.shape[1] == 1 else outputs


def _plain(outputs: Array) -> Array:
    """Outputs that are Python objects as the plain NumPy array of their values, which
    a record batch can carry; others as they are.

    Only classes of several types (``[1, "a"]``, which ``predictor.plain_values``
    leaves as objects) or a model whose predict returns objects get here. NumPy infers
    text for a mix of numbers and text, so 1 travels as "1"; values it cannot infer a
    plain type for travel as their ``str``.
    """
    if not outputs.dtype.hasobject:
        return outputs
    plain = np.array(outputs.tolist())
    if plain.dtype.hasobject or plain.shape != outputs.shape:
        return outputs.astype(str)
    return plain


def _join_proba(probas: list[FloatMatrix | None], sizes: list[int]) -> FloatMatrix | None:
    """Probability rows joined; None when no batch has any."""
    if all(p is None for p in probas):
        return None
    # A batch without probabilities among batches with them (not seen from one
    # model, but cheap to keep right) gets NaN rows, which the monitor skips.
    width = next(p.shape[1] for p in probas if p is not None)
    return _join_arrays(
        [
            p if p is not None else np.full((n, width), np.nan)
            for p, n in zip(probas, sizes, strict=True)
        ]
    )


def join_columns(pieces: list[PredictionColumns]) -> PredictionColumns | None:
    """Drained pieces, oldest first, as one batch of columns (None when there are none)."""
    if len(pieces) <= 1:
        return pieces[0] if pieces else None
    return PredictionColumns(
        ids=np.concatenate([piece.ids for piece in pieces]),
        ts=np.concatenate([piece.ts for piece in pieces]),
        features=_join_arrays([piece.features for piece in pieces]),
        outputs=_join_arrays([piece.outputs for piece in pieces]),
        proba=_join_proba([piece.proba for piece in pieces], [piece.rows for piece in pieces]),
    )


def _build_ids(ids: list[str]) -> np.ndarray[Any, np.dtype[np.bytes_]]:
    joined = "".join(ids).encode("ascii")
    if len(joined) == ID_DTYPE.itemsize * len(ids):  # serving's own ids: always 32 hex
        return np.frombuffer(joined, dtype=ID_DTYPE)
    return np.array(ids, dtype=ID_DTYPE)


def build_records_payload(
    model: str, version: str, predictions: PredictionColumns | None, labels: list[LabelRecord]
) -> bytes:
    """Encode drained rows and labels as the monitor's /v1/records body."""
    return recordbatch.build_record_batch(
        model,
        version,
        predictions.build_columns() if predictions is not None else {},
        [{"id": lab.id, "ts": lab.ts, "label": lab.label} for lab in labels],
    )


SentCounter = Callable[[str, int], None]
DropCounter = Callable[[str, str, int], None]
LOG_EVERY_SECONDS: Final = 60.0
# Rows joined into columns per event-loop step. A POST carries up to record_batch_size
# rows, joined this many at a time with requests served in between: joining 5,000 at
# once would hold the loop for ~3 ms (drain costs ~0.6 µs a row in bench/serving/budget.py).
DRAIN_STEP_ROWS: Final = 1_000


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
        self._logged_errors: dict[str, float] = {}
        self._flushing = asyncio.Lock()

    async def run(self) -> None:
        """Send full POSTs as they fill, and all that waits when a flush interval passes
        without one; forever, until the task is cancelled."""
        self._session = aiohttp.ClientSession(
            timeout=self._timeout,
            # Loopback sidecar: no proxies from the environment, no cookies.
            trust_env=False,
            cookie_jar=aiohttp.DummyCookieJar(),
        )
        full = asyncio.Event()
        self._buffer.full, self._buffer.full_at = full, self._batch_size
        try:
            while True:
                whole_posts_only = await self._wait_for_records(full)
                try:
                    await self.flush(whole_posts_only=whole_posts_only)
                except Exception:
                    # A bug must not end the sender: the queue then only fills and drops.
                    self._log_every_minute(
                        "flush", "record flush failed; the sender tries again next interval"
                    )
        finally:
            self._buffer.full, self._buffer.full_at = None, sys.maxsize
            await self._session.close()

    async def _wait_for_records(self, full: asyncio.Event) -> bool:
        """Wait until a POST's worth is queued (True) or the flush interval ends (False)."""
        if len(self._buffer) < self._batch_size:
            # Set during the last flush by records that the same flush then took: waking
            # on it would send nothing and restart the interval the rest is waiting out.
            full.clear()
        try:
            async with asyncio.timeout(self._flush_seconds):
                await full.wait()
        except TimeoutError:
            return False
        return True

    async def flush(self, *, whole_posts_only: bool = False) -> None:
        """Send everything queued now, or only full POSTs of it; stop at the first
        failure (the rest waits)."""
        async with self._flushing:
            # Only what is queued now: records that arrive while this flush awaits its
            # POSTs wait for the next one, or the sender would chase them with a stream
            # of tiny POSTs (measured: the monitor's CPU went from 0.03 to 0.19 core).
            pending = len(self._buffer)
            if whole_posts_only:
                # Woken by a full queue: the remainder waits to fill the next POST, so
                # a busy server sends 5,000-row POSTs, not one of 5,000 and one of 1,000
                # per interval (each POST has a fixed cost of ~1-4 ms on both sides).
                pending -= pending % self._batch_size
            while pending > 0 and len(self._buffer):
                # One POST's worth at a time: joining a whole flush into columns at once
                # held requests up for ~2 ms at 4,000 req/s (a p99 step in bench/serving).
                predictions, labels = await self._drain_post()
                rows = predictions.rows if predictions is not None else 0
                pending -= rows + len(labels)
                try:
                    payload = build_records_payload(self._model, self._version, predictions, labels)
                except Exception:
                    self._log_every_minute(
                        "encode",
                        "could not encode a records POST; its records are dropped and counted "
                        'in driftward_serving_records_dropped_total{reason="unencodable"}',
                    )
                    self._on_dropped(PREDICTION, UNENCODABLE, rows)
                    self._on_dropped(LABEL, UNENCODABLE, len(labels))
                    continue
                failed = await self._post(payload)
                if failed is not None:
                    self._on_dropped(PREDICTION, failed, rows)
                    self._on_dropped(LABEL, failed, len(labels))
                    if failed == MONITOR_UNAVAILABLE:
                        return
                    continue
                self._on_sent(PREDICTION, rows)
                self._on_sent(LABEL, len(labels))

    async def _drain_post(self) -> tuple[PredictionColumns | None, list[LabelRecord]]:
        """One POST's worth of records, joined DRAIN_STEP_ROWS at a time."""
        pieces: list[PredictionColumns] = []
        labels: list[LabelRecord] = []
        room = self._batch_size
        while True:
            predictions, more = self._buffer.drain(min(room, DRAIN_STEP_ROWS))
            if predictions is not None:
                pieces.append(predictions)
                room -= predictions.rows
            labels.extend(more)
            room -= len(more)
            if room <= 0 or not len(self._buffer):
                return join_columns(pieces), labels
            await asyncio.sleep(0)  # let requests run between steps

    async def _post(self, payload: bytes) -> str | None:
        """POST one batch; None once the monitor took it, else why it was dropped."""
        if self._session is None:
            return MONITOR_UNAVAILABLE
        try:
            async with self._session.post(
                self._url, data=payload, headers={"Content-Type": recordbatch.MEDIA_TYPE}
            ) as response:
                answer = await response.read()
                if response.status < 300:
                    self._note_success()
                    return None
                if response.status < 500:
                    self._note_success()  # it answered: reachable, but it refused this batch
                    self._note_refusal(response.status, answer)
                    return MONITOR_REFUSED
                self._note_failure(f"HTTP {response.status}")
        except (aiohttp.ClientError, TimeoutError, OSError) as exc:
            self._note_failure(type(exc).__name__)
        return MONITOR_UNAVAILABLE

    def _note_refusal(self, status: int, answer: bytes) -> None:
        """Log a refusal with the monitor's reason, at most once a minute."""
        now = time.monotonic()
        last = self._logged_errors.get("refused")
        if last is None or now - last >= LOG_EVERY_SECONDS:
            self._logged_errors["refused"] = now
            log.warning(
                "monitor at %s refused a records POST (HTTP %d: %s); its records are dropped "
                'and counted in driftward_serving_records_dropped_total{reason="monitor_refused"}',
                self._url,
                status,
                answer[:REFUSAL_LOG_CHARS].decode("utf-8", "replace"),
            )

    def _log_every_minute(self, what: str, message: str) -> None:
        """Log the exception being handled, with its traceback, at most once a minute
        for each kind of failure."""
        now = time.monotonic()
        last = self._logged_errors.get(what)
        if last is None or now - last >= LOG_EVERY_SECONDS:
            self._logged_errors[what] = now
            log.exception(message)

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
