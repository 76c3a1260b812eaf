"""A stand-in monitor for the serving benchmark: accepts POST /v1/records (and GET /healthz).

It parses each batch (as the real monitor must: a binary record batch, or
JSON from other producers) and answers with the counts
docs/contracts.md promises, so the serving side does all of its hand-off work.
It keeps no state and computes no drift: it must not be used for anything but
measuring serving's hand-off overhead. It raises glibc's allocator thresholds
at import, as the real monitor does at start (``monitor/allocator.py``). Without
them every POST's body faulted its pages in afresh, and the stub's CPU per
record read twice what it does with them (1.0 against 0.5 µs, bench/README.md),
which overstated the floor that a real monitor is judged against.
Run as: ``uvicorn monitor_stub:app``.
"""

from __future__ import annotations

import os
from typing import Any

import orjson

from driftward_serving.monitor.allocator import apply_allocator_tuning, find_mallopt
from driftward_serving.recordbatch import MEDIA_TYPE, parse_record_batch

apply_allocator_tuning(os.environ, find_mallopt())


async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    """Answer POST /v1/records with accepted counts, GET /healthz with ok; 404 otherwise."""
    if scope["type"] != "http":
        return
    chunks: list[bytes] = []
    more = True
    while more:  # joined once at the end, as the real monitor does: `+=` copies O(n^2)
        message = await receive()
        chunks.append(message.get("body", b""))
        more = message.get("more_body", False)
    body = b"".join(chunks)
    status, reply = 404, b'{"error": "not found"}'
    if scope["method"] == "GET" and scope["path"] == "/healthz":
        status, reply = 200, b'{"status": "ok"}'
    if scope["method"] == "POST" and scope["path"] == "/v1/records":
        content_type = dict(scope["headers"]).get(b"content-type", b"").decode()
        if content_type == MEDIA_TYPE:
            batch = parse_record_batch(body, max_rows=100_000)
            predictions, labels = batch.rows, len(batch.labels)
        else:
            records = orjson.loads(body)
            predictions, labels = len(records["predictions"]), len(records["labels"])
        status = 200
        reply = orjson.dumps(
            {
                "accepted_predictions": predictions,
                "accepted_labels": labels,
                "unknown_labels": 0,
                "duplicate_labels": 0,
                "late_labels": 0,
            }
        )
    headers = [(b"content-type", b"application/json"), (b"content-length", b"%d" % len(reply))]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": reply})
