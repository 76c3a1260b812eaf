"""The record hand-off: bounded, never in a request's way, every drop counted."""

from __future__ import annotations

import socket
from collections.abc import Callable, Iterator

import numpy as np
import orjson
import pytest

from driftward_serving.handoff import (
    LabelRecord,
    PredictionBatch,
    RecordBuffer,
    build_records_payload,
)
from tests.unit.serving.conftest import MonitorStub, Served, free_port, wait_for

DROPPED = "driftward_serving_records_dropped_total"
SENT = "driftward_serving_records_sent_total"


def batch(rows: int, start: int = 0) -> PredictionBatch:
    """A prediction batch of `rows` rows with ids p{start}..."""
    return PredictionBatch(
        ids=[f"p{start + i}" for i in range(rows)],
        ts=100.0,
        features=np.arange(rows * 2, dtype=np.float64).reshape(rows, 2),
        outputs=np.array(["a"] * rows),
        proba=np.full((rows, 2), 0.5),
    )


def test_buffer_refuses_batches_beyond_capacity() -> None:
    buffer = RecordBuffer(capacity=5)
    assert buffer.offer_predictions(batch(3))
    assert not buffer.offer_predictions(batch(3))
    assert buffer.offer_predictions(batch(2))
    assert len(buffer) == 5
    labels = [LabelRecord(id=f"l{i}", ts=1.0, label=i) for i in range(7)]
    assert buffer.offer_labels(labels) == 2


def test_take_returns_whole_batches_up_to_the_limit_in_order() -> None:
    buffer = RecordBuffer(capacity=100)
    for start in (0, 10, 20):
        buffer.offer_predictions(batch(4, start))
    buffer.offer_labels([LabelRecord(id="l", ts=1.0, label=1)])
    taken, labels = buffer.take(9)
    assert [b.ids[0] for b in taken] == ["p0", "p10"]
    assert labels == [LabelRecord(id="l", ts=1.0, label=1)]
    taken, labels = buffer.take(9)
    assert [b.ids[0] for b in taken] == ["p20"]
    assert labels == []
    assert len(buffer) == 0


def test_payload_follows_the_contract() -> None:
    payload = orjson.loads(
        build_records_payload("iris", "v2", [batch(2)], [LabelRecord(id="p0", ts=200.0, label="a")])
    )
    assert payload == {
        "model": "iris",
        "version": "v2",
        "predictions": [
            {"id": "p0", "ts": 100.0, "features": [0.0, 1.0], "output": "a", "proba": [0.5, 0.5]},
            {"id": "p1", "ts": 100.0, "features": [2.0, 3.0], "output": "a", "proba": [0.5, 0.5]},
        ],
        "labels": [{"id": "p0", "ts": 200.0, "label": "a"}],
    }


def test_regression_records_have_null_proba() -> None:
    rows = PredictionBatch(
        ids=["r"], ts=1.0, features=np.zeros((1, 2)), outputs=np.array([1.5]), proba=None
    )
    payload = orjson.loads(build_records_payload("m", "v", [rows], []))
    assert payload["predictions"][0]["proba"] is None
    assert payload["predictions"][0]["output"] == 1.5


def test_records_and_labels_reach_the_monitor(
    serve: Callable[..., Served], monitor_stub: MonitorStub
) -> None:
    served = serve(monitor_url=monitor_stub.url, record_flush_seconds=0.05)
    response = served.client.post("/predict", json={"instances": [[5.1, 3.5, 1.4, 0.2]] * 3})
    ids = response.json()["ids"]
    feedback = served.client.post("/feedback", json={"id": ids[0], "label": 0})
    assert feedback.json()["queued_for_monitor"] == 1
    wait_for(lambda: len(monitor_stub.predictions) == 3, "3 predictions at the monitor")
    wait_for(lambda: len(monitor_stub.labels) == 1, "1 label at the monitor")
    body = monitor_stub.bodies[0]
    assert (body["model"], body["version"]) == ("iris", "v3")
    assert [p["id"] for p in monitor_stub.predictions] == ids
    record = monitor_stub.predictions[0]
    assert record["features"] == [5.1, 3.5, 1.4, 0.2]
    assert record["output"] == 0
    assert len(record["proba"]) == 3
    assert monitor_stub.labels[0]["id"] == ids[0]
    assert monitor_stub.labels[0]["label"] == 0
    wait_for(lambda: served.sample(SENT, kind="prediction") == 3, "sent counter")
    assert served.sample(SENT, kind="label") == 1
    assert served.sample(DROPPED, kind="prediction", reason="monitor_unavailable") == 0


def test_a_full_queue_drops_and_counts_but_requests_succeed(
    serve: Callable[..., Served], monitor_stub: MonitorStub
) -> None:
    # A flush interval longer than the test: nothing leaves the queue while we fill it.
    served = serve(monitor_url=monitor_stub.url, record_queue_size=5, record_flush_seconds=60)
    codes = [
        served.client.post("/predict", json={"instances": [[5.1, 3.5, 1.4, 0.2]]}).status_code
        for _ in range(20)
    ]
    assert codes == [200] * 20
    assert served.sample(DROPPED, kind="prediction", reason="queue_full") == 15
    assert monitor_stub.bodies == []


def test_a_dead_monitor_never_fails_requests_and_drops_are_counted(
    serve: Callable[..., Served],
) -> None:
    dead = f"http://127.0.0.1:{free_port()}"  # nothing listens here
    served = serve(monitor_url=dead, record_flush_seconds=0.02)
    for _ in range(30):
        response = served.client.post("/predict", json={"instances": [[5.1, 3.5, 1.4, 0.2]]})
        assert response.status_code == 200
    wait_for(
        lambda: served.sample(DROPPED, kind="prediction", reason="monitor_unavailable") == 30,
        "all 30 records counted as monitor_unavailable",
    )
    assert served.sample(SENT, kind="prediction") == 0


@pytest.fixture
def black_hole() -> Iterator[str]:
    """A port that accepts connections (via the backlog) and never answers."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen(64)
        yield f"http://127.0.0.1:{sock.getsockname()[1]}"


def test_a_black_hole_monitor_never_holds_up_requests(
    serve: Callable[..., Served], black_hole: str
) -> None:
    served = serve(
        monitor_url=black_hole,
        record_flush_seconds=0.02,
        monitor_timeout_seconds=0.3,
        record_queue_size=10,
    )
    buffer = served.app.serving.buffer
    assert buffer is not None
    first = served.client.post("/predict", json={"instances": [[5.1, 3.5, 1.4, 0.2]]})
    assert first.status_code == 200
    # Wait until the sender is stuck in a POST that will never be answered...
    wait_for(lambda: len(buffer) == 0, "the sender to take the batch")
    # ...then keep predicting: every request must be answered while it hangs.
    for _ in range(40):
        response = served.client.post("/predict", json={"instances": [[5.1, 3.5, 1.4, 0.2]]})
        assert response.status_code == 200

    def dropped() -> float:
        return served.sample(
            DROPPED, kind="prediction", reason="monitor_unavailable"
        ) + served.sample(DROPPED, kind="prediction", reason="queue_full")

    # Every record ends up counted: timed out with its batch, or refused by a full queue.
    wait_for(lambda: dropped() == 41, "all 41 records to be counted as dropped")
    assert served.sample(DROPPED, kind="prediction", reason="monitor_unavailable") >= 1
    assert served.sample(SENT, kind="prediction") == 0
