"""Request parsing and response building, without HTTP: every class of bad input."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from driftward_serving import protocol
from driftward_serving.protocol import ApiError, InputSpec

SPEC = InputSpec(n_features=3, feature_names=("a", "b", "c"), max_batch=4)
NAMELESS = InputSpec(n_features=3, feature_names=None, max_batch=4)


def rejects(call: Any, *args: Any) -> ApiError:
    """Call and return the ApiError it raised (failing if it raised nothing)."""
    with pytest.raises(ApiError) as caught:
        call(*args)
    return caught.value


def test_rows_become_a_float_matrix() -> None:
    matrix = protocol.parse_predict_request({"instances": [[1, 2, 3.5], [4, 5, 6]]}, SPEC)
    assert matrix.dtype == np.float64
    assert matrix.tolist() == [[1.0, 2.0, 3.5], [4.0, 5.0, 6.0]]


def test_records_are_ordered_by_feature_name() -> None:
    body = {"instances": [{"c": 3, "a": 1, "b": 2}]}
    assert protocol.parse_predict_request(body, SPEC).tolist() == [[1.0, 2.0, 3.0]]


@pytest.mark.parametrize(
    ("body", "status", "reason", "needle"),
    [
        ({"instances": [[1, 2]]}, 422, protocol.WRONG_FEATURE_COUNT, "expected 3 features"),
        ({"instances": [[1, 2, 3], [1, 2]]}, 422, protocol.WRONG_FEATURE_COUNT, "instances[1]"),
        ({"instances": [[1, "x", 3]]}, 422, protocol.NON_NUMERIC, 'instances[0][1] is "x"'),
        ({"instances": [[1, True, 3]]}, 422, protocol.NON_NUMERIC, "instances[0][1] is true"),
        ({"instances": [[1, [2], 3]]}, 422, protocol.NON_NUMERIC, "instances[0][1]"),
        ({"instances": [[1, None, 3]]}, 422, protocol.NON_FINITE, "instances[0][1] is null"),
        ({"instances": [[1, 2, 1e400]]}, 422, protocol.NON_FINITE, "instances[0][2] is inf"),
        ({"instances": []}, 422, protocol.EMPTY_BATCH, "empty"),
        ({"instances": [[1, 2, 3]] * 5}, 413, protocol.BATCH_TOO_LARGE, "at most 4"),
        ({"instances": [1, 2, 3]}, 422, protocol.BAD_SHAPE, "must be a list"),
        ({"instances": "rows"}, 422, protocol.BAD_REQUEST, "must be a list"),
        ({"rows": [[1, 2, 3]]}, 422, protocol.BAD_REQUEST, "instances"),
        ([[1, 2, 3]], 422, protocol.BAD_REQUEST, "instances"),
        ({"instances": [{"a": 1, "b": 2, "c": 3, "d": 4}]}, 422, protocol.UNKNOWN_FEATURES, "'d'"),
        ({"instances": [{"a": 1, "b": 2}]}, 422, protocol.MISSING_FEATURES, "'c'"),
        ({"instances": [{"a": 1, "b": 2, "c": 3}, [1, 2, 3]]}, 422, protocol.BAD_REQUEST, "one"),
    ],
)
def test_bad_predict_bodies_are_named(body: Any, status: int, reason: str, needle: str) -> None:
    error = rejects(protocol.parse_predict_request, body, SPEC)
    assert (error.status, error.reason) == (status, reason)
    assert needle in error.message


def test_records_need_feature_names() -> None:
    error = rejects(protocol.parse_predict_request, {"instances": [{"a": 1}]}, NAMELESS)
    assert "FEATURE_NAMES" in error.message


@pytest.mark.parametrize(
    ("raw", "needle"), [(b"", "empty"), (b"{bad", "not valid JSON"), (b"[1,", "not valid JSON")]
)
def test_malformed_json_is_400(raw: bytes, needle: str) -> None:
    error = rejects(protocol.decode_json, raw)
    assert (error.status, error.reason) == (400, protocol.MALFORMED_JSON)
    assert needle in error.message


def v2(*inputs: dict[str, Any], **extra: Any) -> dict[str, Any]:
    """A V2 request body."""
    return {"inputs": list(inputs), **extra}


def tensor(name: str, shape: list[int], data: Any, datatype: str = "FP64") -> dict[str, Any]:
    """A V2 input tensor."""
    return {"name": name, "shape": shape, "datatype": datatype, "data": data}


def test_v2_single_tensor_flat_and_nested() -> None:
    flat = protocol.parse_v2_request(v2(tensor("x", [2, 3], [1, 2, 3, 4, 5, 6])), SPEC)
    nested = protocol.parse_v2_request(v2(tensor("x", [2, 3], [[1, 2, 3], [4, 5, 6]])), SPEC)
    assert flat.matrix.tolist() == nested.matrix.tolist() == [[1, 2, 3], [4, 5, 6]]
    assert flat.request_id is None
    assert flat.outputs is None


def test_v2_one_tensor_per_feature_in_any_order() -> None:
    body = v2(
        tensor("c", [2], [3, 6]),
        tensor("a", [2, 1], [[1], [4]], "INT64"),
        tensor("b", [2], [2, 5]),
        id="req-1",
        outputs=[{"name": "predict"}],
    )
    parsed = protocol.parse_v2_request(body, SPEC)
    assert parsed.matrix.tolist() == [[1, 2, 3], [4, 5, 6]]
    assert parsed.request_id == "req-1"
    assert parsed.outputs == frozenset({"predict"})


@pytest.mark.parametrize(
    ("body", "status", "reason", "needle"),
    [
        ({"inputs": []}, 422, protocol.BAD_REQUEST, "non-empty"),
        ({"instances": [[1, 2, 3]]}, 422, protocol.BAD_REQUEST, "inputs"),
        (v2(tensor("x", [1, 2], [1, 2])), 422, protocol.WRONG_FEATURE_COUNT, "expected 3"),
        (v2(tensor("x", [1, 3], [1, 2])), 422, protocol.BAD_SHAPE, "needs 3 values"),
        (v2(tensor("x", [3], [1, 2, 3])), 422, protocol.BAD_SHAPE, "expected [batch, 3]"),
        (v2(tensor("x", [1, 3], [1, "a", 3])), 422, protocol.NON_NUMERIC, "data[1]"),
        (v2(tensor("x", [1, 3], [1, None, 3])), 422, protocol.NON_FINITE, "null"),
        (v2(tensor("x", [1, 3], ["a"], "BYTES")), 422, protocol.UNSUPPORTED_DATATYPE, "numeric"),
        (v2(tensor("x", [1, 3], [1, 2, 3], "FP128")), 422, protocol.UNSUPPORTED_DATATYPE, "one of"),
        (v2(tensor("x", [0, 3], [])), 422, protocol.EMPTY_BATCH, "empty"),
        (v2(tensor("x", [5, 3], [1] * 15)), 413, protocol.BATCH_TOO_LARGE, "at most 4"),
        (v2(tensor("x", [-1, 3], [1, 2, 3])), 422, protocol.BAD_SHAPE, "non-negative"),
        (v2(tensor("x", [1, 3], [[1, 2], [3]])), 422, protocol.BAD_SHAPE, "ragged"),
        (v2({"name": "x"}), 422, protocol.BAD_SHAPE, "shape"),
        (v2(tensor("a", [1], [1]), tensor("z", [1], [1])), 422, protocol.UNKNOWN_FEATURES, "'z'"),
        (v2(tensor("a", [1], [1]), tensor("b", [1], [1])), 422, protocol.MISSING_FEATURES, "'c'"),
        (
            v2(tensor("a", [1], [1]), tensor("b", [2], [1, 2]), tensor("c", [1], [1])),
            422,
            protocol.BAD_SHAPE,
            "[batch]",
        ),
        (
            v2(tensor("x", [1, 3], [1, 2, 3]), outputs=[{"name": "logits"}]),
            422,
            protocol.UNKNOWN_OUTPUT,
            "logits",
        ),
        (v2(tensor("x", [1, 3], [1, 2, 3]), id=7), 422, protocol.BAD_REQUEST, '"id"'),
    ],
)
def test_bad_v2_bodies_are_named(body: Any, status: int, reason: str, needle: str) -> None:
    error = rejects(protocol.parse_v2_request, body, SPEC)
    assert (error.status, error.reason) == (status, reason)
    assert needle in error.message


def test_huge_finite_values_and_hidden_bools_are_told_apart() -> None:
    # The finiteness check takes a shortcut whose square overflows for huge values;
    # those are still finite and must pass, while a bool must still be refused.
    parsed = protocol.parse_v2_request(v2(tensor("x", [1, 3], [1e200, -1e300, 2.0])), NAMELESS)
    assert parsed.matrix.tolist() == [[1e200, -1e300, 2.0]]
    matrix = protocol.parse_predict_request({"instances": [[1e300, 1e300, 1]]}, NAMELESS)
    assert matrix.tolist() == [[1e300, 1e300, 1.0]]
    error = rejects(protocol.parse_v2_request, v2(tensor("x", [1, 3], [1.0, True, 2.0])), SPEC)
    assert error.reason == protocol.NON_NUMERIC
    error = rejects(protocol.parse_predict_request, {"instances": [[1.0, 2.0, False]]}, SPEC)
    assert error.reason == protocol.NON_NUMERIC


def test_v2_per_feature_tensors_need_feature_names() -> None:
    body = v2(tensor("a", [1], [1]), tensor("b", [1], [1]), tensor("c", [1], [1]))
    error = rejects(protocol.parse_v2_request, body, NAMELESS)
    assert "[batch, n_features]" in error.message


def test_feedback_single_and_batched() -> None:
    assert protocol.parse_feedback_request({"id": "x", "label": 1}, 4) == [
        protocol.LabelIn(id="x", label=1)
    ]
    batch = {"labels": [{"id": "x", "label": "setosa"}, {"id": "y", "label": 0.5}]}
    assert [lab.label for lab in protocol.parse_feedback_request(batch, 4)] == ["setosa", 0.5]


@pytest.mark.parametrize(
    ("body", "status", "needle"),
    [
        ({"label": 1}, 422, '{"id"'),
        ({"id": 5, "label": 1}, 422, "body.id"),
        ({"id": "x", "label": None}, 422, "body.label is null"),
        ({"id": "x", "label": [1]}, 422, "body.label"),
        ({"labels": []}, 422, "empty"),
        ({"labels": [{"id": "x", "label": 1}] * 5}, 413, "at most 4"),
        ({"labels": [{"id": "x"}]}, 422, "labels[0]"),
        ({"labels": {"id": "x"}}, 422, "must be a list"),
    ],
)
def test_bad_feedback_is_named(body: Any, status: int, needle: str) -> None:
    error = rejects(protocol.parse_feedback_request, body, 4)
    assert error.status == status
    assert needle in error.message


def test_v2_response_has_predict_probabilities_and_ids() -> None:
    body = protocol.build_v2_response(
        model_name="m",
        model_version="v",
        response_id="r",
        outputs=np.array(["a", "b"]),
        proba=np.array([[0.9, 0.1], [0.2, 0.8]]),
        classes=np.array(["a", "b"]),
        ids=["i1", "i2"],
        requested=None,
    )
    tensors = {t["name"]: t for t in body["outputs"]}
    assert tensors["predict"] == {
        "name": "predict",
        "shape": [2],
        "datatype": "BYTES",
        "data": ["a", "b"],
    }
    assert tensors["probabilities"]["shape"] == [2, 2]
    assert list(tensors["probabilities"]["data"]) == [0.9, 0.1, 0.2, 0.8]
    assert tensors["probabilities"]["parameters"] == {"classes": ["a", "b"]}
    assert tensors["prediction_id"]["data"] == ["i1", "i2"]
    assert (body["id"], body["model_name"], body["model_version"]) == ("r", "m", "v")


def test_v2_response_filters_requested_outputs_but_keeps_ids() -> None:
    body = protocol.build_v2_response(
        model_name="m",
        model_version="v",
        response_id="r",
        outputs=np.array([1]),
        proba=np.array([[0.1, 0.9]]),
        classes=np.array([0, 1]),
        ids=["i1"],
        requested=frozenset({"probabilities"}),
    )
    assert [t["name"] for t in body["outputs"]] == ["probabilities", "prediction_id"]


@pytest.mark.parametrize(
    ("array", "datatype"),
    [
        (np.array([1], dtype=np.int64), "INT64"),
        (np.array([1], dtype=np.int32), "INT32"),
        (np.array([1.0]), "FP64"),
        (np.array([True]), "BOOL"),
        (np.array(["a"]), "BYTES"),
        (np.array([1], dtype=np.uint8), "UINT8"),
    ],
)
def test_v2_datatypes(array: np.ndarray, datatype: str) -> None:
    assert protocol.compute_v2_datatype(array) == datatype
