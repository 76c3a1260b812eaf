"""The record hand-off: bounded, never in a request's way, every drop counted."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import skops.io
from sklearn.datasets import load_diabetes, load_iris
from sklearn.linear_model import LinearRegression, LogisticRegression

from driftward_serving import handoff
from driftward_serving.handoff import (
    LAYOUT_CHANGED,
    QUEUE_FULL,
    LabelRecord,
    RecordBuffer,
    RecordSender,
    build_records_payload,
)
from tests.unit.serving.conftest import (
    MonitorStub,
    Served,
    decode_records_body,
    free_port,
    sha256_of,
    wait_for,
)

DROPPED = "driftward_serving_records_dropped_total"
SENT = "driftward_serving_records_sent_total"


def offer(buffer: RecordBuffer, rows: int, start: int = 0, ts: float = 100.0) -> str | None:
    """Offer a classification batch of `rows` rows with ids p{start}... and 2 features."""
    return buffer.offer_predictions(
        [f"p{start + i}" for i in range(rows)],
        ts,
        np.arange(start * 2, (start + rows) * 2, dtype=np.float64).reshape(rows, 2),
        np.array(["a"] * rows),
        np.full((rows, 2), 0.5),
    )


def test_buffer_refuses_batches_beyond_capacity() -> None:
    buffer = RecordBuffer(capacity=5)
    assert offer(buffer, 3) is None
    assert offer(buffer, 3) == QUEUE_FULL
    assert offer(buffer, 2) is None
    assert len(buffer) == 5
    labels = [LabelRecord(id=f"l{i}", ts=1.0, label=i) for i in range(7)]
    assert buffer.offer_labels(labels) == 2


def test_drain_joins_the_oldest_whole_batches_into_columns_in_order() -> None:
    buffer = RecordBuffer(capacity=100)
    for start, ts in ((0, 1.0), (10, 2.0), (20, 3.0)):
        offer(buffer, 2, start, ts)
    buffer.offer_labels([LabelRecord(id=f"l{i}", ts=1.0, label=i) for i in range(3)])
    columns, labels = buffer.drain(5)
    assert columns is not None
    assert columns.ids.tolist() == [b"p0", b"p1", b"p10", b"p11"]  # whole batches only
    assert columns.ts.tolist() == [1.0, 1.0, 2.0, 2.0]
    assert columns.features[:, 0].tolist() == [0.0, 2.0, 20.0, 22.0]
    assert labels == [LabelRecord(id="l0", ts=1.0, label=0)]  # the room left under 5
    columns, labels = buffer.drain(5)
    assert columns is not None
    assert columns.ids.tolist() == [b"p20", b"p21"]
    assert [lab.id for lab in labels] == ["l1", "l2"]
    assert len(buffer) == 0
    assert buffer.drain(5) == (None, [])


def test_a_batch_larger_than_the_limit_is_cut_in_order() -> None:
    buffer = RecordBuffer(capacity=100)
    offer(buffer, 7)
    offer(buffer, 1, start=7)
    taken = []
    while len(buffer):
        columns, _ = buffer.drain(3)
        assert columns is not None
        assert columns.proba is not None
        assert len(columns.proba) == len(columns.features) == columns.rows <= 3
        taken.append([raw.decode() for raw in columns.ids.tolist()])
    assert taken == [["p0", "p1", "p2"], ["p3", "p4", "p5"], ["p6", "p7"]]


def test_rows_that_are_not_contiguous_are_joined_all_the_same() -> None:
    buffer = RecordBuffer(capacity=10)
    wide = np.arange(12, dtype=np.float64).reshape(2, 6)
    buffer.offer_predictions(["a", "b"], 1.0, wide[:, ::2], np.zeros(2), None)  # strided view
    buffer.offer_predictions(["c"], 1.0, np.asfortranarray([[7.0, 8.0, 9.0]]), np.zeros(1), None)
    columns, _ = buffer.drain(10)
    assert columns is not None
    assert columns.features.tolist() == [[0, 2, 4], [6, 8, 10], [7, 8, 9]]


def test_serving_ids_are_packed_without_a_conversion_per_id() -> None:
    buffer = RecordBuffer(capacity=10)
    ids = [f"{i:032x}" for i in range(3)]
    buffer.offer_predictions(ids, 1.0, np.zeros((3, 1)), np.zeros(3), None)
    columns, _ = buffer.drain(10)
    assert columns is not None
    assert [raw.decode() for raw in columns.ids.tolist()] == ids


def test_a_batch_of_another_width_is_refused_while_rows_wait() -> None:
    buffer = RecordBuffer(capacity=10)
    offer(buffer, 1)
    wide = np.zeros((1, 3))
    refused = buffer.offer_predictions(["w"], 1.0, wide, np.array(["a"]), None)
    assert refused == LAYOUT_CHANGED
    buffer.drain(10)
    # Once the queue is empty, the new width is taken.
    assert buffer.offer_predictions(["w"], 1.0, wide, np.array(["a"]), None) is None


def test_a_batch_without_probabilities_gets_nan_rows_among_batches_with_them() -> None:
    buffer = RecordBuffer(capacity=10)
    offer(buffer, 1)
    buffer.offer_predictions(["r"], 1.0, np.zeros((1, 2)), np.array(["b"]), None)
    columns, _ = buffer.drain(10)
    assert columns is not None
    assert columns.proba is not None
    assert columns.proba[0].tolist() == [0.5, 0.5]
    assert np.isnan(columns.proba[1]).all()


def test_payload_follows_the_contract() -> None:
    buffer = RecordBuffer(capacity=10)
    offer(buffer, 2)
    columns, _ = buffer.drain(10)
    raw = build_records_payload("iris", "v2", columns, [LabelRecord(id="p0", ts=200.0, label="a")])
    assert raw[:4] == b"DWRB"
    assert decode_records_body(raw) == {
        "model": "iris",
        "version": "v2",
        "predictions": [
            {"id": "p0", "ts": 100.0, "features": [0.0, 1.0], "output": "a", "proba": [0.5, 0.5]},
            {"id": "p1", "ts": 100.0, "features": [2.0, 3.0], "output": "a", "proba": [0.5, 0.5]},
        ],
        "labels": [{"id": "p0", "ts": 200.0, "label": "a"}],
    }


def test_labels_can_travel_alone() -> None:
    alone = decode_records_body(
        build_records_payload("m", "v", None, [LabelRecord(id="x", ts=1.0, label=True)])
    )
    assert alone["predictions"] == []
    assert alone["labels"] == [{"id": "x", "ts": 1.0, "label": True}]


def test_regression_records_have_no_proba_column() -> None:
    buffer = RecordBuffer(capacity=10)
    buffer.offer_predictions(["r"], 1.0, np.zeros((1, 2)), np.array([1.5]), None)
    columns, _ = buffer.drain(10)
    payload = decode_records_body(build_records_payload("m", "v", columns, []))
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


def test_records_the_monitor_refuses_are_counted_apart_and_its_reason_logged(
    serve: Callable[..., Served], monitor_stub: MonitorStub, caplog: pytest.LogCaptureFixture
) -> None:
    monitor_stub.refusal = (
        409,
        {"error": "version_mismatch", "message": "this monitor watches version 'v1', not 'v3'"},
    )
    served = serve(monitor_url=monitor_stub.url, record_batch_size=2, record_flush_seconds=0.05)
    caplog.set_level(logging.WARNING, logger="driftward_serving.handoff")
    response = served.client.post("/predict", json={"instances": [[5.1, 3.5, 1.4, 0.2]] * 5})
    assert response.status_code == 200
    wait_for(
        lambda: served.sample(DROPPED, kind="prediction", reason="monitor_refused") == 5,
        "all 5 records counted as monitor_refused",
    )
    assert served.sample(DROPPED, kind="prediction", reason="monitor_unavailable") == 0
    assert served.sample(SENT, kind="prediction") == 0
    assert monitor_stub.refused == 3  # POSTs of 2, 2 and 1: a refusal does not stop a flush
    refusals = [
        r.getMessage() for r in caplog.records if "refused a records POST" in r.getMessage()
    ]
    assert refusals == [
        f"monitor at {monitor_stub.url}/v1/records refused a records POST (HTTP 409: "
        '{"error": "version_mismatch", "message": "this monitor watches version \'v1\', '
        "not 'v3'\"}); its records are dropped and counted in "
        'driftward_serving_records_dropped_total{reason="monitor_refused"}'
    ]  # once a minute, not once a POST


def test_a_flush_is_split_into_posts_of_at_most_the_batch_size(
    serve: Callable[..., Served], monitor_stub: MonitorStub
) -> None:
    served = serve(monitor_url=monitor_stub.url, record_batch_size=2, record_flush_seconds=0.05)
    response = served.client.post("/predict", json={"instances": [[5.1, 3.5, 1.4, 0.2]] * 5})
    ids = response.json()["ids"]
    served.client.post("/feedback", json={"labels": [{"id": i, "label": 0} for i in ids[:3]]})
    wait_for(lambda: len(monitor_stub.labels) == 3, "the labels at the monitor")
    sizes = [len(b["predictions"]) + len(b["labels"]) for b in monitor_stub.bodies]
    assert max(sizes) == 2
    assert sum(sizes) == 8
    assert [p["id"] for p in monitor_stub.predictions] == ids
    assert [lab["id"] for lab in monitor_stub.labels] == ids[:3]


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


def build_offline_sender(
    sender_class: type[RecordSender],
    buffer: RecordBuffer,
    batch_size: int,
    flush_seconds: float = 1.0,
) -> RecordSender:
    """A sender whose subclass overrides _post, so no monitor is needed; counts ignored."""
    return sender_class(
        buffer=buffer,
        monitor_url="http://127.0.0.1:9",
        model="m",
        version="v",
        batch_size=batch_size,
        flush_seconds=flush_seconds,
        timeout_seconds=1.0,
        on_sent=lambda kind, n: None,
        on_dropped=lambda kind, reason, n: None,
    )


def test_a_flush_sends_what_was_queued_and_leaves_later_records_for_the_next() -> None:
    buffer = RecordBuffer(capacity=100)
    for i in range(5):
        offer(buffer, 1, start=i)
    posted: list[int] = []

    class Sender(RecordSender):
        async def _post(self, payload: bytes) -> str | None:
            posted.append(len(decode_records_body(payload)["predictions"]))
            offer(buffer, 1, start=100 + len(posted))  # a request lands mid-POST
            return None

    sender = build_offline_sender(Sender, buffer, batch_size=2)
    asyncio.run(sender.flush())
    assert posted == [2, 2, 2]  # the 5 queued rows, plus one that arrived meanwhile
    assert len(buffer) == 2  # the rest waits for the next flush


def run_sender(
    buffer: RecordBuffer,
    flush_seconds: float,
    traffic: Callable[[], Any],
    done: Callable[[list[list[str]]], bool],
) -> list[list[str]]:
    """Run a sender (POST size 3) while `traffic` queues records; returns each POST's ids
    once `done` says so (or after 10 s)."""
    posted: list[list[str]] = []

    class Sender(RecordSender):
        async def _post(self, payload: bytes) -> str | None:
            body = decode_records_body(payload)
            posted.append([r["id"] for r in body["predictions"] + body["labels"]])
            return None

    async def main() -> None:
        task = asyncio.create_task(build_offline_sender(Sender, buffer, 3, flush_seconds).run())
        while buffer.full is None:  # the sender has started and watches the buffer
            await asyncio.sleep(0)
        await traffic()
        for _ in range(1_000):
            if done(posted):
                break
            await asyncio.sleep(0.01)
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task

    asyncio.run(main())
    return posted


def test_a_busy_server_sends_each_post_as_it_fills_and_the_rest_waits() -> None:
    buffer = RecordBuffer(capacity=100)

    async def traffic() -> None:
        offer(buffer, 4, start=0)  # one request of 4 rows: a full POST, and p3 waits
        await asyncio.sleep(0.05)
        assert len(buffer) == 1
        for i in range(4, 7):
            offer(buffer, 1, start=i)
            await asyncio.sleep(0)  # requests one by one, the sender running in between
        buffer.offer_labels([LabelRecord(id="l0", ts=1.0, label=1)])
        await asyncio.sleep(0.05)
        assert len(buffer) == 2  # p6 and l0: not a full POST, and the interval is long
        buffer.offer_labels([LabelRecord(id="l1", ts=1.0, label=0)])

    # A 60 s interval: only a full queue can send anything within the test.
    posted = run_sender(buffer, 60.0, traffic, lambda posted: len(posted) == 3)
    assert posted == [["p0", "p1", "p2"], ["p3", "p4", "p5"], ["p6", "l0", "l1"]]
    assert len(buffer) == 0


def test_a_quiet_server_sends_what_waits_when_the_interval_passes() -> None:
    buffer = RecordBuffer(capacity=100)

    async def traffic() -> None:
        offer(buffer, 2, start=0)

    posted = run_sender(buffer, 0.05, traffic, lambda posted: len(posted) == 1)
    assert posted == [["p0", "p1"]]
    assert (buffer.full, buffer.full_at) == (None, sys.maxsize)  # the sender let go


def test_records_a_flush_took_do_not_wake_the_sender_again() -> None:
    """Six rows wake the sender (POST size 3); one more lands during its first POST, so
    four wait for a moment and the queue reads full. The second POST takes three of them:
    the one left must wait for the interval, not cause a flush that sends nothing."""
    buffer = RecordBuffer(capacity=100)
    flushes: list[tuple[bool, int, int]] = []  # whole POSTs only?, queued before, after

    class Sender(RecordSender):
        async def flush(self, *, whole_posts_only: bool = False) -> None:
            before = len(self._buffer)
            await super().flush(whole_posts_only=whole_posts_only)
            flushes.append((whole_posts_only, before, len(self._buffer)))

        async def _post(self, payload: bytes) -> str | None:
            if not flushes and len(buffer) == 3:  # the first POST of the first flush
                offer(buffer, 1, start=50)
            return None

    async def main() -> None:
        task = asyncio.create_task(build_offline_sender(Sender, buffer, 3, 0.2).run())
        while buffer.full is None:
            await asyncio.sleep(0)
        offer(buffer, 6, start=0)
        for _ in range(1_000):
            if len(flushes) >= 2:
                break
            await asyncio.sleep(0.01)
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task

    asyncio.run(main())
    assert flushes[:2] == [(True, 6, 1), (False, 1, 0)]


def test_a_post_is_joined_in_steps_with_requests_served_in_between(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(handoff, "DRAIN_STEP_ROWS", 2)
    buffer = RecordBuffer(capacity=100)
    for i in range(7):
        offer(buffer, 1, start=i)
    buffer.offer_labels([LabelRecord(id="l0", ts=1.0, label=1)])
    events: list[str] = []
    posted: list[dict[str, Any]] = []

    class Sender(RecordSender):
        async def _post(self, payload: bytes) -> str | None:
            events.append("post")
            posted.append(decode_records_body(payload))
            return None

    async def requests() -> None:  # stands in for the requests the loop serves meanwhile
        while True:
            events.append("request")
            await asyncio.sleep(0)

    async def main() -> None:
        served = asyncio.create_task(requests())
        await asyncio.sleep(0)
        await sender.flush()
        served.cancel()

    sender = build_offline_sender(Sender, buffer, batch_size=5)
    asyncio.run(main())
    # Five rows in three steps (2, 2, 1), then two rows and the label in two more.
    assert [[p["id"] for p in body["predictions"]] for body in posted] == [
        ["p0", "p1", "p2", "p3", "p4"],
        ["p5", "p6"],
    ]
    assert [lab["id"] for lab in posted[1]["labels"]] == ["l0"]
    assert [p["features"] for p in posted[0]["predictions"]][4] == [8.0, 9.0]
    first_post = events.index("post")
    assert events[:first_post].count("request") >= 3  # the loop was free between steps
    assert len(buffer) == 0


def test_joined_steps_keep_nan_rows_for_a_piece_without_probabilities() -> None:
    buffer = RecordBuffer(capacity=100)
    offer(buffer, 2, start=0)
    buffer.offer_predictions(["q0"], 1.0, np.ones((1, 2)), np.array(["b"]), None)
    first, _ = buffer.drain(2)
    second, _ = buffer.drain(2)
    assert first is not None
    assert second is not None
    assert second.proba is None
    joined = handoff.join_columns([first, second])
    assert joined is not None
    assert joined.ids.tolist() == [b"p0", b"p1", b"q0"]
    assert joined.outputs.tolist() == ["a", "a", "b"]
    assert joined.proba is not None
    assert joined.proba[:2].tolist() == [[0.5, 0.5], [0.5, 0.5]]
    assert np.isnan(joined.proba[2]).all()
    assert handoff.join_columns([first]) is first
    assert handoff.join_columns([]) is None


def test_a_model_served_from_a_pandas_label_column_answers_and_reaches_the_monitor(
    serve: Callable[..., Served], monitor_stub: MonitorStub, tmp_path: Path
) -> None:
    """The user's path for labels read with pandas: the served artifact's classes_
    are Python strings (an object array)."""
    X, y = load_iris(return_X_y=True)
    names = np.array(["setosa", "versicolor", "virginica"], dtype=object)[y]
    model = LogisticRegression(max_iter=1000).fit(X, names)
    assert model.classes_.dtype == object
    path = tmp_path / "named.skops"
    skops.io.dump(model, path)
    served = serve(
        artifact_uri=path.as_uri(),
        artifact_sha256=sha256_of(path),
        monitor_url=monitor_stub.url,
        record_flush_seconds=0.05,
    )
    response = served.client.post("/predict", json={"instances": [[5.1, 3.5, 1.4, 0.2]] * 2})
    assert response.status_code == 200, response.text
    answer = response.json()
    assert answer["predictions"] == ["setosa", "setosa"]
    wait_for(lambda: len(monitor_stub.predictions) == 2, "2 predictions at the monitor")
    assert [p["output"] for p in monitor_stub.predictions] == ["setosa", "setosa"]
    assert [p["id"] for p in monitor_stub.predictions] == answer["ids"]


def test_a_regressor_fitted_on_a_one_column_target_reaches_the_monitor(
    serve: Callable[..., Served], monitor_stub: MonitorStub, tmp_path: Path
) -> None:
    """``fit(X, df[["y"]])``: predict answers an (n, 1) block, which the monitor's
    record batch (one output per row) would refuse as it is."""
    X, y = load_diabetes(return_X_y=True)
    model = LinearRegression().fit(X, y.reshape(-1, 1))
    path = tmp_path / "column.skops"
    skops.io.dump(model, path)
    served = serve(
        artifact_uri=path.as_uri(),
        artifact_sha256=sha256_of(path),
        feature_names=None,
        monitor_url=monitor_stub.url,
        record_flush_seconds=0.05,
    )
    response = served.client.post("/predict", json={"instances": X[:2].tolist()})
    assert response.status_code == 200, response.text
    want = model.predict(X[:2])
    assert np.allclose(response.json()["predictions"], want)  # answered as the model shapes it
    wait_for(lambda: len(monitor_stub.predictions) == 2, "2 predictions at the monitor")
    assert np.allclose([p["output"] for p in monitor_stub.predictions], want[:, 0])
    assert served.sample(DROPPED, kind="prediction", reason="monitor_refused") == 0


def test_outputs_that_are_python_objects_travel_as_their_values() -> None:
    buffer = RecordBuffer(capacity=10)
    for i, output in enumerate(["one", 1, None]):
        outputs = np.array([output], dtype=object)
        assert buffer.offer_predictions([f"p{i}"], 1.0, np.zeros((1, 1)), outputs, None) is None
        if i == 1:
            mixed, _ = buffer.drain(10)
            assert mixed is not None
            assert mixed.outputs.tolist() == ["one", "1"]  # NumPy's text for a mix
    odd, _ = buffer.drain(10)
    assert odd is not None
    assert odd.outputs.tolist() == ["None"]
    body = decode_records_body(build_records_payload("m", "v", odd, []))
    assert body["predictions"][0]["output"] == "None"


def test_a_record_batch_refuses_columns_of_python_objects() -> None:
    with pytest.raises(TypeError, match="column 'output': dtype object holds Python objects"):
        build_records_payload(
            "m",
            "v",
            handoff.PredictionColumns(
                ids=np.array([b"a"], dtype="S1"),
                ts=np.zeros(1),
                features=np.zeros((1, 1)),
                outputs=np.array(["x"], dtype=object),
                proba=None,
            ),
            [],
        )


def test_a_post_that_cannot_be_encoded_is_counted_and_the_rest_still_goes(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    buffer = RecordBuffer(capacity=100)
    for i in range(6):
        offer(buffer, 1, start=i)
    buffer.offer_labels([LabelRecord(id="l0", ts=1.0, label=1)])
    encode = handoff.build_records_payload
    attempts: list[int] = []

    def fails_on_the_second(*args: Any) -> bytes:
        attempts.append(1)
        if len(attempts) == 2:
            raise ValueError("a bug in the encoder")
        return encode(*args)

    monkeypatch.setattr(handoff, "build_records_payload", fails_on_the_second)
    posted: list[list[str]] = []
    dropped: list[tuple[str, str, int]] = []

    class Sender(RecordSender):
        async def _post(self, payload: bytes) -> str | None:
            body = decode_records_body(payload)
            posted.append([r["id"] for r in body["predictions"] + body["labels"]])
            return None

    sender = build_offline_sender(Sender, buffer, batch_size=3)
    sender._on_dropped = lambda kind, reason, n: dropped.append((kind, reason, n))
    asyncio.run(sender.flush())
    assert posted == [["p0", "p1", "p2"], ["l0"]]
    assert dropped == [("prediction", "unencodable", 3), ("label", "unencodable", 0)]
    assert len(buffer) == 0
    (logged,) = [r for r in caplog.records if r.name == handoff.__name__]
    assert logged.getMessage() == (
        "could not encode a records POST; its records are dropped and counted in "
        'driftward_serving_records_dropped_total{reason="unencodable"}'
    )
    assert logged.exc_info is not None
    assert "a bug in the encoder" in str(logged.exc_info[1])


def test_a_failing_flush_does_not_end_the_sender(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    buffer = RecordBuffer(capacity=100)
    offer(buffer, 1)
    flushes: list[int] = []
    posted: list[int] = []

    class Sender(RecordSender):
        async def flush(self, *, whole_posts_only: bool = False) -> None:
            flushes.append(1)
            if len(flushes) <= 2:
                raise RuntimeError("a bug in the flush")
            await super().flush(whole_posts_only=whole_posts_only)

        async def _post(self, payload: bytes) -> str | None:
            posted.append(len(decode_records_body(payload)["predictions"]))
            return None

    async def main() -> None:
        task = asyncio.create_task(sender.run())
        for _ in range(200):
            await asyncio.sleep(0.01)
            if posted:
                break
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task

    sender = build_offline_sender(Sender, buffer, batch_size=3, flush_seconds=0.01)
    asyncio.run(main())
    assert posted == [1]
    logged = [r for r in caplog.records if r.name == handoff.__name__]
    assert len(logged) == 1  # two failures, one line a minute
    assert logged[0].getMessage() == "record flush failed; the sender tries again next interval"
    assert logged[0].exc_info is not None
