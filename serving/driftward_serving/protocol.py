"""Wire formats: parse request bodies into validated matrices and build response bodies.

Two inference protocols are spoken, both answering with class probabilities
where the model has ``predict_proba`` and one prediction id (uuid4 hex) per row:

* Open Inference Protocol V2 (KServe, MLServer, Triton).
  Request: ``{"id"?: str, "inputs": [...], "outputs"?: [{"name": ...}]}`` where
  ``inputs`` is either one tensor of shape ``[batch, n_features]``, or one
  tensor per feature, named by feature, of shape ``[batch]`` or ``[batch, 1]``.
  ``data`` may be flat (row-major) or nested. Numeric datatypes only.
  Response: ``{"model_name", "model_version", "id", "parameters", "outputs"}``
  with the tensors ``predict`` (``[batch]``), ``probabilities``
  (``[batch, n_classes]``, FP64, row-major, ``parameters.classes`` gives the
  column order) and ``prediction_id`` (BYTES, ``[batch]``). ``id`` echoes the
  request's id, or is a fresh uuid4 hex when it had none; the per-row ids that
  labels join on are the ``prediction_id`` tensor. A request's ``outputs``
  list filters ``predict``/``probabilities``; ``prediction_id`` is always
  returned because labels cannot be joined without it.
* Simple JSON: ``POST /predict`` with ``{"instances": [[...], ...]}`` (rows in
  feature order) or ``{"instances": [{"f1": 1.0, ...}, ...]}`` (records keyed
  by feature name), answered by ``{"model", "version", "predictions",
  "probabilities"?, "ids"}``.

Labels: ``POST /feedback`` takes ``{"id": ..., "label": ...}`` or
``{"labels": [{"id": ..., "label": ...}, ...]}``.

Input policy: every value must be a finite JSON number; null, NaN and ±inf are
rejected (serving cannot know how a model treats missing values). Every bad
input raises ``ApiError`` carrying a 4xx status, a bounded ``reason`` (used as
a metric label) and a message naming what is wrong.

This module is pure: no I/O, no HTTP framework, no clock, no randomness.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, NoReturn

import numpy as np
import numpy.typing as npt
import orjson
import sklearn

from driftward_serving.predictor import FloatMatrix, Predictor

# Reasons are metric label values: keep this set closed.
MALFORMED_JSON = "malformed_json"
BODY_TOO_LARGE = "body_too_large"
BATCH_TOO_LARGE = "batch_too_large"
EMPTY_BATCH = "empty_batch"
BAD_REQUEST = "bad_request"
WRONG_FEATURE_COUNT = "wrong_feature_count"
NON_NUMERIC = "non_numeric"
NON_FINITE = "non_finite"
UNKNOWN_FEATURES = "unknown_features"
MISSING_FEATURES = "missing_features"
BAD_SHAPE = "bad_shape"
UNSUPPORTED_DATATYPE = "unsupported_datatype"
UNKNOWN_OUTPUT = "unknown_output"
MODEL_NOT_FOUND = "model_not_found"
MODEL_NOT_READY = "model_not_ready"
MODEL_REJECTED_INPUT = "model_rejected_input"
NOT_FOUND = "not_found"
METHOD_NOT_ALLOWED = "method_not_allowed"
INTERNAL = "internal"
ERROR_REASONS = (
    MALFORMED_JSON,
    BODY_TOO_LARGE,
    BATCH_TOO_LARGE,
    EMPTY_BATCH,
    BAD_REQUEST,
    WRONG_FEATURE_COUNT,
    NON_NUMERIC,
    NON_FINITE,
    UNKNOWN_FEATURES,
    MISSING_FEATURES,
    BAD_SHAPE,
    UNSUPPORTED_DATATYPE,
    UNKNOWN_OUTPUT,
    MODEL_NOT_FOUND,
    MODEL_NOT_READY,
    MODEL_REJECTED_INPUT,
    NOT_FOUND,
    METHOD_NOT_ALLOWED,
    INTERNAL,
)

V2_NUMERIC = frozenset(
    {"UINT8", "UINT16", "UINT32", "UINT64", "INT8", "INT16", "INT32", "INT64"}
    | {"FP16", "FP32", "FP64"}
)
V2_DATATYPES = V2_NUMERIC | {"BOOL", "BYTES"}
OUTPUT_PREDICT = "predict"
OUTPUT_PROBABILITIES = "probabilities"
OUTPUT_PREDICTION_ID = "prediction_id"
MAX_ID_LENGTH = 128


class ApiError(Exception):
    """A request answered with an error status: the client's fault (4xx) or not ready (503)."""

    def __init__(self, status: int, reason: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.reason = reason
        self.message = message


@dataclass(frozen=True)
class InputSpec:
    """What a valid row looks like for the loaded model."""

    n_features: int | None
    feature_names: tuple[str, ...] | None
    max_batch: int

    @property
    def name_set(self) -> frozenset[str]:
        """Return the feature names as a set (empty if unknown)."""
        return frozenset(self.feature_names or ())


@dataclass(frozen=True)
class V2Request:
    """A parsed V2 inference request."""

    matrix: FloatMatrix
    request_id: str | None
    outputs: frozenset[str] | None


@dataclass(frozen=True)
class LabelIn:
    """One ground-truth label as the client sent it."""

    id: str
    label: str | int | float | bool


def build_input_spec(predictor: Predictor, max_batch: int) -> InputSpec:
    """Describe the rows the predictor accepts."""
    return InputSpec(
        n_features=predictor.n_features,
        feature_names=predictor.feature_names,
        max_batch=max_batch,
    )


def decode_json(raw: bytes) -> object:
    """Parse a JSON body, or raise 400 naming where it is broken."""
    if not raw:
        raise ApiError(400, MALFORMED_JSON, "the request body is empty; send a JSON object")
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise ApiError(400, MALFORMED_JSON, f"the request body is not valid JSON: {exc}") from exc


def build_error_body(message: str, reason: str) -> dict[str, str]:
    """Build the JSON error body every failed request gets (V2 uses the "error" key)."""
    return {"error": message, "reason": reason}


def parse_predict_request(body: object, spec: InputSpec) -> FloatMatrix:
    """Validate a /predict body into a float matrix."""
    if not isinstance(body, dict) or "instances" not in body:
        raise ApiError(
            422,
            BAD_REQUEST,
            'expected a JSON object {"instances": [[...], ...]} or '
            '{"instances": [{"feature": value, ...}, ...]}',
        )
    instances = body["instances"]
    if not isinstance(instances, list):
        raise ApiError(422, BAD_REQUEST, '"instances" must be a list of rows')
    _check_batch(len(instances), spec.max_batch, "instances")
    if isinstance(instances[0], dict):
        instances = build_rows_from_records(instances, spec)
    return build_matrix(instances, spec.n_features, "instances")


def build_rows_from_records(records: list[Any], spec: InputSpec) -> list[list[Any]]:
    """Order records keyed by feature name into rows, naming unknown or missing features."""
    names = spec.feature_names
    if names is None:
        raise ApiError(
            422,
            BAD_REQUEST,
            "this model has no feature names, so records keyed by name cannot be ordered; "
            "send rows as lists, or set DRIFTWARD_SERVING_FEATURE_NAMES",
        )
    name_set = spec.name_set
    rows = []
    for index, record in enumerate(records):
        if not isinstance(record, dict):
            raise ApiError(
                422,
                BAD_REQUEST,
                f"instances[{index}] is not an object but instances[0] is; use one form per batch",
            )
        if record.keys() != name_set:
            unknown = sorted(set(record) - name_set)
            if unknown:
                raise ApiError(
                    422,
                    UNKNOWN_FEATURES,
                    f"instances[{index}] has unknown features {unknown}; "
                    f"the model's features are {list(names)}",
                )
            missing = [name for name in names if name not in record]
            raise ApiError(
                422, MISSING_FEATURES, f"instances[{index}] is missing features {missing}"
            )
        rows.append([record[name] for name in names])
    return rows


def build_matrix(rows: Sequence[Any], n_features: int | None, where: str) -> FloatMatrix:
    """Turn a list of rows into a finite float64 matrix, or say which value is wrong."""
    try:
        array = np.array(rows)
    except (ValueError, TypeError, OverflowError):
        # Ragged rows or mixed nesting: find the first offending row for the message.
        _raise_row_shape(rows, n_features, where)
    if array.dtype.kind not in "iuf" or _holds_bool(rows):
        array = _coerce_objects(array, rows, where)
    if array.ndim != 2:
        _raise_row_shape(rows, n_features, where)
    if n_features is not None and array.shape[1] != n_features:
        raise ApiError(
            422,
            WRONG_FEATURE_COUNT,
            f"expected {n_features} features per row, got {array.shape[1]} in {where}",
        )
    matrix = np.ascontiguousarray(array, dtype=np.float64)
    _check_finite(matrix, where)
    return matrix


def _holds_bool(values: Sequence[Any]) -> bool:
    """True if a bool hides in rows (or a flat list): NumPy silently turns them into 0/1."""
    # The element types, collected in C: one set per list instead of a test per value.
    kinds = set(map(type, values))
    if bool in kinds:
        return True
    if list in kinds:
        return any(bool in set(map(type, item)) for item in values if isinstance(item, list))
    return False


def _check_finite(array: npt.NDArray[Any], where: str) -> None:
    # Integers are always finite. For floats, one dot product (a BLAS call, cheaper than
    # an isfinite mask or a ufunc reduction) is finite only if every value is; otherwise
    # look for the culprit (squares of large finite values can overflow, so only a
    # value found non-finite is refused).
    if array.dtype.kind != "f":
        return
    flat = array.reshape(-1)
    with np.errstate(over="ignore", invalid="ignore"):
        total = flat.dot(flat)
    if math.isfinite(total):
        return
    bad = np.argwhere(~np.isfinite(array))
    if bad.size:
        index = tuple(int(i) for i in bad[0])
        path = where + "".join(f"[{i}]" for i in index)
        raise ApiError(422, NON_FINITE, f"{path} is {array[index]}; values must be finite numbers")


def _coerce_objects(array: npt.NDArray[Any], values: Any, where: str) -> FloatMatrix:
    """Accept an array only if every leaf is a real number; else name the first bad one."""
    for path, value in _leaves(values, where):
        if value is None:
            raise ApiError(
                422, NON_FINITE, f"{path} is null; missing values are not accepted (send a number)"
            )
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ApiError(
                422, NON_NUMERIC, f"{path} is {_show(value)}; features must be JSON numbers"
            )
    try:
        return array.astype(np.float64)
    except (ValueError, TypeError, OverflowError) as exc:
        raise ApiError(422, NON_NUMERIC, f"{where} holds values that are not numbers") from exc


def _leaves(value: Any, path: str) -> list[tuple[str, Any]]:
    if isinstance(value, list | tuple):
        out: list[tuple[str, Any]] = []
        for index, item in enumerate(value):
            out.extend(_leaves(item, f"{path}[{index}]"))
        return out
    return [(path, value)]


def _raise_row_shape(rows: Sequence[Any], n_features: int | None, where: str) -> NoReturn:
    expected = f"{n_features} numbers" if n_features is not None else "numbers"
    for index, row in enumerate(rows):
        if not isinstance(row, list):
            raise ApiError(
                422,
                BAD_SHAPE,
                f"{where}[{index}] is {_show(row)}; each row must be a list of {expected}",
            )
        for col, value in enumerate(row):
            if isinstance(value, list | dict):
                raise ApiError(
                    422,
                    NON_NUMERIC,
                    f"{where}[{index}][{col}] is {_show(value)}; expected a number",
                )
        if n_features is not None and len(row) != n_features:
            raise ApiError(
                422,
                WRONG_FEATURE_COUNT,
                f"expected {n_features} features per row, got {len(row)} in {where}[{index}]",
            )
    raise ApiError(422, BAD_SHAPE, f"rows in {where} must all have the same length")


def _show(value: object) -> str:
    text = orjson.dumps(value).decode() if _jsonable(value) else repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


def _jsonable(value: object) -> bool:
    try:
        orjson.dumps(value)
    except TypeError:
        return False
    return True


def _check_batch(size: int, max_batch: int, what: str) -> None:
    if size == 0:
        raise ApiError(422, EMPTY_BATCH, f'"{what}" is empty; send at least one')
    if size > max_batch:
        raise ApiError(
            413, BATCH_TOO_LARGE, f'"{what}" has {size} entries; at most {max_batch} are accepted'
        )


def parse_v2_request(body: object, spec: InputSpec) -> V2Request:
    """Validate an Open Inference Protocol V2 request into a float matrix."""
    if not isinstance(body, dict):
        raise ApiError(422, BAD_REQUEST, 'expected a JSON object with an "inputs" list')
    inputs = body.get("inputs")
    if not isinstance(inputs, list) or not inputs:
        raise ApiError(422, BAD_REQUEST, '"inputs" must be a non-empty list of tensors')
    request_id = body.get("id")
    if request_id is not None and (not isinstance(request_id, str) or len(request_id) > 256):
        raise ApiError(422, BAD_REQUEST, '"id" must be a string of at most 256 characters')
    tensors = [_parse_tensor(tensor, index) for index, tensor in enumerate(inputs)]
    single = len(tensors) == 1 and (tensors[0][0] not in spec.name_set or spec.n_features == 1)
    matrix = _tensor_matrix(tensors[0], spec) if single else _column_matrix(tensors, spec)
    return V2Request(matrix=matrix, request_id=request_id, outputs=_requested_outputs(body))


Tensor = tuple[str, list[int], Any]


def _parse_tensor(tensor: object, index: int) -> Tensor:
    where = f"inputs[{index}]"
    if not isinstance(tensor, dict):
        raise ApiError(
            422, BAD_REQUEST, f"{where} must be an object with name, shape, datatype, data"
        )
    name, shape = tensor.get("name"), tensor.get("shape")
    datatype, data = tensor.get("datatype"), tensor.get("data")
    if not isinstance(name, str):
        raise ApiError(422, BAD_REQUEST, f"{where}.name must be a string")
    if (
        not isinstance(shape, list)
        or not shape
        or not all(isinstance(d, int) and not isinstance(d, bool) and d >= 0 for d in shape)
    ):
        raise ApiError(422, BAD_SHAPE, f"{where}.shape must be a list of non-negative integers")
    if datatype not in V2_DATATYPES:
        raise ApiError(
            422, UNSUPPORTED_DATATYPE, f"{where}.datatype must be one of {sorted(V2_DATATYPES)}"
        )
    if datatype not in V2_NUMERIC:
        raise ApiError(
            422,
            UNSUPPORTED_DATATYPE,
            f"{where}.datatype is {datatype}; features must be numeric ({sorted(V2_NUMERIC)})",
        )
    if not isinstance(data, list):
        raise ApiError(422, BAD_REQUEST, f"{where}.data must be a list")
    return name, shape, data


def _tensor_values(tensor: Tensor, where: str) -> FloatMatrix:
    """Flatten a tensor's data (flat or nested) and check it fills the declared shape."""
    _, shape, data = tensor
    size = math.prod(shape)
    try:
        array = np.array(data)
    except (ValueError, TypeError, OverflowError) as exc:
        raise ApiError(422, BAD_SHAPE, f"{where}.data is a ragged nested list") from exc
    if array.dtype.kind not in "iuf" or _holds_bool(data):
        array = _coerce_objects(array, data, f"{where}.data")
    _check_finite(array, f"{where}.data")
    values = np.ascontiguousarray(array, dtype=np.float64).reshape(-1)
    if values.shape[0] != size:
        raise ApiError(
            422,
            BAD_SHAPE,
            f"{where}.shape {shape} needs {size} values but data has {values.shape[0]}",
        )
    return values


def _tensor_matrix(tensor: Tensor, spec: InputSpec) -> FloatMatrix:
    name, shape, _ = tensor
    width = spec.n_features or "n_features"
    if len(shape) != 2:
        raise ApiError(
            422,
            BAD_SHAPE,
            f"inputs[0] ({name!r}) has shape {shape}; expected [batch, {width}]",
        )
    _check_batch(shape[0], spec.max_batch, "inputs[0]")
    if spec.n_features is not None and shape[1] != spec.n_features:
        raise ApiError(
            422,
            WRONG_FEATURE_COUNT,
            f"expected {spec.n_features} features per row, got shape {shape} in inputs[0]",
        )
    return _tensor_values(tensor, "inputs[0]").reshape(shape[0], shape[1])


def _column_matrix(tensors: list[Tensor], spec: InputSpec) -> FloatMatrix:
    names = spec.feature_names
    if names is None:
        raise ApiError(
            422,
            BAD_REQUEST,
            "send one input tensor of shape [batch, n_features]: this model has no feature "
            "names to match one-tensor-per-feature inputs against",
        )
    given = [t[0] for t in tensors]
    unknown = sorted(set(given) - spec.name_set)
    if unknown:
        raise ApiError(
            422, UNKNOWN_FEATURES, f"inputs name unknown features {unknown}; expected {list(names)}"
        )
    if len(set(given)) != len(given):
        raise ApiError(422, BAD_REQUEST, "each feature may appear in only one input tensor")
    missing = [n for n in names if n not in given]
    if missing:
        raise ApiError(422, MISSING_FEATURES, f"inputs are missing features {missing}")
    rows = {t[1][0] for t in tensors}
    if len(rows) != 1 or any(len(t[1]) > 2 or (len(t[1]) == 2 and t[1][1] != 1) for t in tensors):
        raise ApiError(
            422, BAD_SHAPE, "per-feature input tensors must all have shape [batch] or [batch, 1]"
        )
    _check_batch(rows.pop(), spec.max_batch, "inputs")
    columns = {t[0]: _tensor_values(t, f"inputs[{i}]") for i, t in enumerate(tensors)}
    return np.ascontiguousarray(np.stack([columns[n] for n in names], axis=1))


def _requested_outputs(body: dict[str, Any]) -> frozenset[str] | None:
    outputs = body.get("outputs")
    if outputs is None:
        return None
    if not isinstance(outputs, list) or not all(
        isinstance(o, dict) and isinstance(o.get("name"), str) for o in outputs
    ):
        raise ApiError(422, BAD_REQUEST, '"outputs" must be a list of objects with a "name"')
    names = frozenset(o["name"] for o in outputs)
    known = {OUTPUT_PREDICT, OUTPUT_PROBABILITIES, OUTPUT_PREDICTION_ID}
    unknown = sorted(names - known)
    if unknown:
        raise ApiError(
            422, UNKNOWN_OUTPUT, f"unknown outputs {unknown}; this model produces {sorted(known)}"
        )
    return names


def parse_feedback_request(body: object, max_batch: int) -> list[LabelIn]:
    """Validate a /feedback body (one label or a batch) into labels."""
    if isinstance(body, dict) and "labels" in body:
        items = body["labels"]
        if not isinstance(items, list):
            raise ApiError(422, BAD_REQUEST, '"labels" must be a list of {"id": ..., "label": ...}')
        _check_batch(len(items), max_batch, "labels")
        return [_parse_label(item, f"labels[{i}]") for i, item in enumerate(items)]
    if isinstance(body, dict) and "id" in body:
        return [_parse_label(body, "body")]
    raise ApiError(
        422,
        BAD_REQUEST,
        'expected {"id": ..., "label": ...} or {"labels": [{"id": ..., "label": ...}, ...]}',
    )


def _parse_label(item: object, where: str) -> LabelIn:
    if not isinstance(item, dict) or "id" not in item or "label" not in item:
        raise ApiError(422, BAD_REQUEST, f'{where} must be an object with "id" and "label"')
    ident, label = item["id"], item["label"]
    if not isinstance(ident, str) or not ident or len(ident) > MAX_ID_LENGTH:
        raise ApiError(
            422, BAD_REQUEST, f"{where}.id must be a prediction id string (at most {MAX_ID_LENGTH})"
        )
    if not isinstance(label, str | int | float) or (
        isinstance(label, float) and not math.isfinite(label)
    ):
        raise ApiError(
            422, BAD_REQUEST, f"{where}.label is {_show(label)}; expected a number, string or bool"
        )
    return LabelIn(id=ident, label=label)


def build_model_not_found(
    name: str, version: str | None, served: str, served_version: str
) -> ApiError:
    """Build the 404 for a request naming a model (or version) this server does not serve."""
    wanted = name if version is None else f"{name} version {version}"
    return ApiError(
        404,
        MODEL_NOT_FOUND,
        f"model {wanted!r} is not served here; this server serves {served!r} "
        f"version {served_version!r}",
    )


def build_json_values(array: npt.NDArray[Any]) -> Any:
    """Return an array orjson can serialise directly, or plain Python values otherwise."""
    if array.dtype.kind in "biuf" and array.dtype.isnative and array.flags.c_contiguous:
        return array
    return array.tolist()


def compute_v2_datatype(array: npt.NDArray[Any]) -> str:
    """Map a NumPy dtype to the V2 tensor datatype name."""
    kind, size = array.dtype.kind, array.dtype.itemsize
    if kind == "b":
        return "BOOL"
    if kind == "i":
        return f"INT{size * 8}"
    if kind == "u":
        return f"UINT{size * 8}"
    if kind == "f":
        return f"FP{size * 8}"
    return "BYTES"


def build_v2_response(
    *,
    model_name: str,
    model_version: str,
    response_id: str,
    outputs: npt.NDArray[Any],
    proba: FloatMatrix | None,
    classes: npt.NDArray[Any] | None,
    ids: list[str],
    requested: frozenset[str] | None,
) -> dict[str, Any]:
    """Build a V2 inference response with predict, probabilities and prediction_id tensors."""
    tensors: list[dict[str, Any]] = []
    if requested is None or OUTPUT_PREDICT in requested:
        tensors.append(
            {
                "name": OUTPUT_PREDICT,
                "shape": list(outputs.shape),
                "datatype": compute_v2_datatype(outputs),
                "data": build_json_values(outputs.reshape(-1)),
            }
        )
    if proba is not None and (requested is None or OUTPUT_PROBABILITIES in requested):
        probabilities: dict[str, Any] = {
            "name": OUTPUT_PROBABILITIES,
            "shape": list(proba.shape),
            "datatype": "FP64",
            "data": build_json_values(np.ascontiguousarray(proba).reshape(-1)),
        }
        if classes is not None:
            probabilities["parameters"] = {"classes": classes.tolist()}
        tensors.append(probabilities)
    tensors.append(
        {"name": OUTPUT_PREDICTION_ID, "shape": [len(ids)], "datatype": "BYTES", "data": ids}
    )
    return {
        "model_name": model_name,
        "model_version": model_version,
        "id": response_id,
        "parameters": {"content_type": "np"},
        "outputs": tensors,
    }


def build_predict_response(
    *,
    model_name: str,
    model_version: str,
    outputs: npt.NDArray[Any],
    proba: FloatMatrix | None,
    ids: list[str],
) -> dict[str, Any]:
    """Build a /predict response: predictions, probabilities (if any) and ids per row."""
    body: dict[str, Any] = {
        "model": model_name,
        "version": model_version,
        "predictions": build_json_values(outputs),
    }
    if proba is not None:
        body["probabilities"] = build_json_values(proba)
    body["ids"] = ids
    return body


def build_model_metadata(
    *,
    model_name: str,
    model_version: str,
    predictor: Predictor,
    model_format: str,
    sha256: str,
    sklearn_mismatch: str = "",
) -> dict[str, Any]:
    """Build the V2 model metadata document."""
    n_features = predictor.n_features if predictor.n_features is not None else -1
    outputs: list[dict[str, Any]] = [{"name": OUTPUT_PREDICT, "datatype": "BYTES", "shape": [-1]}]
    if predictor.classes is not None:
        outputs[0]["datatype"] = compute_v2_datatype(predictor.classes)
        outputs.append(
            {
                "name": OUTPUT_PROBABILITIES,
                "datatype": "FP64",
                "shape": [-1, int(predictor.classes.shape[0])],
            }
        )
    else:
        outputs[0]["datatype"] = "FP64"
    outputs.append({"name": OUTPUT_PREDICTION_ID, "datatype": "BYTES", "shape": [-1]})
    parameters: dict[str, Any] = {
        "task": predictor.task,
        "format": model_format,
        "sha256": sha256,
        "kernel": predictor.kernel_name,
        "feature_names": list(predictor.feature_names) if predictor.feature_names else None,
        "classes": predictor.classes.tolist() if predictor.classes is not None else None,
        "sklearn_version": sklearn.__version__,
        # The sentence naming the versions the artifact was saved with, when any differs.
        "sklearn_version_mismatch": sklearn_mismatch or None,
    }
    return {
        "name": model_name,
        "versions": [model_version],
        "platform": "sklearn",
        "inputs": [{"name": "input-0", "datatype": "FP64", "shape": [-1, n_features]}],
        "outputs": outputs,
        "parameters": parameters,
    }
