"""The HTTP API: both protocols, health, labels, and a clean 4xx for every bad input."""

from __future__ import annotations

import dataclasses
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np
import pytest

from driftward_serving import protocol
from tests.unit.serving.conftest import FEATURES, MODEL, VERSION, Artifact, Served

ROW = [5.1, 3.5, 1.4, 0.2]
INFER = f"/v2/models/{MODEL}/infer"
ERRORS = "driftward_serving_errors_total"
REQUESTS = "driftward_serving_requests_total"


def infer_body(rows: list[list[float]], **extra: Any) -> dict[str, Any]:
    """A V2 request with one [batch, 4] tensor."""
    flat = [v for row in rows for v in row]
    tensor = {"name": "input-0", "shape": [len(rows), 4], "datatype": "FP64", "data": flat}
    return {"inputs": [tensor], **extra}


def test_health_and_readiness(served: Served) -> None:
    assert served.client.get("/v2/health/live").json() == {"live": True}
    assert served.client.get("/v2/health/ready").json() == {"ready": True}
    ready = served.client.get(f"/v2/models/{MODEL}/ready")
    assert ready.status_code == 200
    assert served.client.get(f"/v2/models/{MODEL}/versions/{VERSION}/ready").status_code == 200
    assert served.sample("driftward_serving_model_ready") == 1


def test_model_metadata(served: Served) -> None:
    meta = served.client.get(f"/v2/models/{MODEL}").json()
    assert meta["name"] == MODEL
    assert meta["versions"] == [VERSION]
    assert meta["inputs"][0]["shape"] == [-1, 4]
    assert [o["name"] for o in meta["outputs"]] == ["predict", "probabilities", "prediction_id"]
    assert meta["parameters"]["feature_names"] == FEATURES
    assert meta["parameters"]["classes"] == [0, 1, 2]
    assert served.client.get("/v2").json()["name"] == "driftward-serving"


def test_v2_infer_answers_like_the_model(served: Served, iris_artifact: Artifact) -> None:
    rows = iris_artifact.X[[0, 60, 120]].tolist()
    response = served.client.post(INFER, json=infer_body(rows, id="req-7"))
    assert response.status_code == 200
    body = response.json()
    assert (body["model_name"], body["model_version"], body["id"]) == (MODEL, VERSION, "req-7")
    tensors = {t["name"]: t for t in body["outputs"]}
    expected = iris_artifact.model.predict(np.array(rows))
    assert tensors["predict"]["data"] == expected.tolist()
    assert tensors["predict"]["datatype"] == "INT64"
    proba = np.array(tensors["probabilities"]["data"]).reshape(tensors["probabilities"]["shape"])
    np.testing.assert_allclose(proba, iris_artifact.model.predict_proba(np.array(rows)))
    ids = tensors["prediction_id"]["data"]
    assert len(set(ids)) == 3
    assert all(uuid.UUID(hex=i).version == 4 for i in ids)
    assert served.sample(REQUESTS, endpoint="/v2/models/{name}/infer", code="200") == 1
    assert (
        served.sample("driftward_serving_batch_size_rows_sum", endpoint="/v2/models/{name}/infer")
        == 3
    )


def test_v2_infer_with_version_path_and_per_feature_tensors(served: Served) -> None:
    inputs = [
        {"name": name, "shape": [1], "datatype": "FP32", "data": [value]}
        for name, value in zip(FEATURES, ROW, strict=True)
    ]
    response = served.client.post(
        f"/v2/models/{MODEL}/versions/{VERSION}/infer", json={"inputs": inputs[::-1]}
    )
    assert response.status_code == 200
    assert response.json()["outputs"][0]["data"] == [0]
    assert len(response.json()["id"]) == 32


def test_predict_with_rows_and_with_records(served: Served, iris_artifact: Artifact) -> None:
    rows = iris_artifact.X[[0, 120]].tolist()
    by_rows = served.client.post("/predict", json={"instances": rows}).json()
    records = [dict(zip(FEATURES, row, strict=True)) for row in rows]
    by_name = served.client.post("/predict", json={"instances": records}).json()
    assert by_rows["predictions"] == by_name["predictions"] == [0, 2]
    np.testing.assert_allclose(by_rows["probabilities"], iris_artifact.model.predict_proba(rows))
    assert len(by_rows["ids"]) == 2
    assert set(by_rows["ids"]).isdisjoint(by_name["ids"])


@pytest.mark.parametrize(
    ("path", "content", "status", "reason"),
    [
        ("/predict", b'{"instances": [[1, 2, 3]]}', 422, protocol.WRONG_FEATURE_COUNT),
        ("/predict", b'{"instances": [[1, 2, 3, "x"]]}', 422, protocol.NON_NUMERIC),
        ("/predict", b'{"instances": [[1, 2, 3, null]]}', 422, protocol.NON_FINITE),
        # JSON has no NaN or Infinity, and overflowing numbers are refused by the parser.
        ("/predict", b'{"instances": [[1, 2, 3, 1e999]]}', 400, protocol.MALFORMED_JSON),
        ("/predict", b'{"instances": [[1, 2, 3, NaN]]}', 400, protocol.MALFORMED_JSON),
        ("/predict", b'{"instances": []}', 422, protocol.EMPTY_BATCH),
        ("/predict", b'{"instances": [{"sepal_length": 1}]}', 422, protocol.MISSING_FEATURES),
        (
            "/predict",
            b'{"instances": [{"sepal_length": 1, "sepal_width": 1, "petal_length": 1, '
            b'"petal_width": 1, "colour": 2}]}',
            422,
            protocol.UNKNOWN_FEATURES,
        ),
        ("/predict", b"{not json", 400, protocol.MALFORMED_JSON),
        ("/predict", b"", 400, protocol.MALFORMED_JSON),
        (
            INFER,
            b'{"inputs": [{"name": "x", "shape": [1, 4], "datatype": "BYTES", "data": []}]}',
            422,
            protocol.UNSUPPORTED_DATATYPE,
        ),
        ("/v2/models/other/infer", b"{}", 404, protocol.MODEL_NOT_FOUND),
        (f"/v2/models/{MODEL}/versions/v0/infer", b"{}", 404, protocol.MODEL_NOT_FOUND),
        ("/feedback", b'{"labels": []}', 422, protocol.EMPTY_BATCH),
    ],
)
def test_bad_input_gets_a_named_4xx_and_is_counted(
    served: Served, path: str, content: bytes, status: int, reason: str
) -> None:
    response = served.client.post(
        path, content=content, headers={"Content-Type": "application/json"}
    )
    assert response.status_code == status
    body = response.json()
    assert body["reason"] == reason
    assert body["error"]
    endpoint = {
        "/predict": "/predict",
        INFER: "/v2/models/{name}/infer",
        "/feedback": "/feedback",
    }.get(path, "/v2/models/{name}/infer")
    if "versions" in path:
        endpoint = "/v2/models/{name}/versions/{version}/infer"
    assert served.sample(ERRORS, endpoint=endpoint, reason=reason) == 1
    assert served.sample(REQUESTS, endpoint=endpoint, code=str(status)) == 1


def test_batches_over_the_limit_are_413(serve: Callable[..., Served]) -> None:
    served = serve(max_batch_size=2)
    response = served.client.post("/predict", json={"instances": [ROW] * 3})
    assert response.status_code == 413
    assert "at most 2" in response.json()["error"]
    response = served.client.post(INFER, json=infer_body([ROW] * 3))
    assert response.status_code == 413


def test_oversized_bodies_are_413_before_parsing(serve: Callable[..., Served]) -> None:
    served = serve(max_body_bytes=64)
    # Not even JSON: a 400 here would mean the body was parsed before its size was checked.
    response = served.client.post("/predict", content=b"x" * 65)
    assert response.status_code == 413
    assert response.json()["reason"] == protocol.BODY_TOO_LARGE
    assert served.sample(ERRORS, endpoint="/predict", reason=protocol.BODY_TOO_LARGE) == 1


def test_oversized_chunked_bodies_are_413(serve: Callable[..., Served]) -> None:
    served = serve(max_body_bytes=64)

    def chunks() -> Iterator[bytes]:
        for _ in range(10):
            yield b"x" * 16

    response = served.client.post("/predict", content=chunks())
    assert response.status_code == 413
    assert response.json()["reason"] == protocol.BODY_TOO_LARGE


def test_unknown_paths_and_methods_get_json_errors(served: Served) -> None:
    missing = served.client.get("/v1/nothing")
    assert missing.status_code == 404
    assert missing.json()["reason"] == protocol.NOT_FOUND
    wrong_method = served.client.get("/predict")
    assert wrong_method.status_code == 405
    assert wrong_method.json()["reason"] == protocol.METHOD_NOT_ALLOWED
    assert served.client.get("/v2/models/other").status_code == 404
    assert served.sample(ERRORS, endpoint="unmatched", reason=protocol.NOT_FOUND) == 1


def test_a_server_fault_is_a_clean_counted_500(
    served: Served, monkeypatch: pytest.MonkeyPatch
) -> None:
    state = served.app.serving
    assert state.model.predictor is not None

    def broken(_: np.ndarray) -> None:
        raise RuntimeError("disk on fire")

    predictor = dataclasses.replace(state.model.predictor, kernel=broken)
    monkeypatch.setattr(state, "model", dataclasses.replace(state.model, predictor=predictor))
    for path, body in (("/predict", {"instances": [ROW]}), (INFER, infer_body([ROW]))):
        response = served.client.post(path, json=body)
        assert response.status_code == 500
        assert response.json() == {
            "error": "internal server error; the failure is logged and counted",
            "reason": "internal",
        }
        assert "disk on fire" not in response.text
    assert served.sample(ERRORS, endpoint="/predict", reason="internal") == 1
    assert served.sample(ERRORS, endpoint="/v2/models/{name}/infer", reason="internal") == 1


def test_feedback_outcomes_are_reported_and_counted(served: Served) -> None:
    ids = served.client.post("/predict", json={"instances": [ROW, ROW]}).json()["ids"]
    single = served.client.post("/feedback", json={"id": ids[0], "label": 0}).json()
    assert single["accepted"] == 1
    unknown_id = uuid.uuid4().hex
    batch = served.client.post(
        "/feedback",
        json={
            "labels": [
                {"id": ids[1], "label": 0},
                {"id": ids[0], "label": 0},
                {"id": unknown_id, "label": 1},
                {"id": "not-a-prediction", "label": 1},
            ]
        },
    ).json()
    assert (batch["received"], batch["accepted"], batch["duplicate"], batch["unknown"]) == (
        4,
        1,
        1,
        2,
    )
    assert [r["outcome"] for r in batch["results"]] == [
        "accepted",
        "duplicate",
        "unknown",
        "unknown",
    ]
    # The hand-off is off in these settings, so nothing was queued; nothing was lost either.
    assert batch["queued_for_monitor"] == 0
    labels = "driftward_serving_labels_received_total"
    assert served.sample(labels, outcome="accepted") == 2
    assert served.sample(labels, outcome="duplicate") == 1
    assert served.sample(labels, outcome="unknown") == 2


def test_labels_for_old_predictions_are_late(serve: Callable[..., Served]) -> None:
    served = serve(prediction_id_retention=4)
    first = served.client.post("/predict", json={"instances": [ROW]}).json()["ids"][0]
    served.client.post("/predict", json={"instances": [ROW] * 6})
    outcome = served.client.post("/feedback", json={"id": first, "label": 0}).json()
    assert outcome["late"] == 1
    assert served.sample("driftward_serving_labels_received_total", outcome="late") == 1
    assert served.sample("driftward_serving_prediction_ids_evicted_total", tier="expired") > 0
