"""Artifacts: digest checked before loading, safe formats by default, three transports."""

from __future__ import annotations

import functools
import json
import logging
import pickle
import threading
import zipfile
from collections.abc import Callable, Iterator
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import boto3
import joblib
import numpy as np
import pytest
import sklearn
import skops.io
from moto.server import ThreadedMotoServer
from sklearn.ensemble import RandomForestClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import FunctionTransformer, StandardScaler
from sklearn.tree import DecisionTreeClassifier

from driftward_serving import artifacts
from tests.unit.serving.conftest import MODEL, Artifact, Served, sha256_of

ROW = [5.1, 3.5, 1.4, 0.2]


def double(values: np.ndarray) -> np.ndarray:
    """A user function: skops cannot vouch for it."""
    return values * 2


def assert_not_ready(served: Served, reason: str, needle: str) -> None:
    """The process is up (live), but not ready, and says why everywhere."""
    assert served.client.get("/v2/health/live").status_code == 200
    ready = served.client.get("/v2/health/ready")
    assert ready.status_code == 503
    assert ready.json()["reason"] == reason
    assert needle in ready.json()["message"]
    model_ready = served.client.get(f"/v2/models/{MODEL}/ready")
    assert model_ready.status_code == 503
    assert model_ready.json()["reason"] == reason
    predict = served.client.post("/predict", json={"instances": [ROW]})
    assert predict.status_code == 503
    assert reason in predict.json()["error"]
    assert served.client.post(f"/v2/models/{MODEL}/infer", json={}).status_code == 503
    assert served.client.get(f"/v2/models/{MODEL}").status_code == 503
    assert served.client.post("/feedback", json={"id": "x", "label": 1}).status_code == 503
    assert served.sample("driftward_serving_model_ready") == 0


def test_a_digest_mismatch_keeps_the_process_up_but_not_ready(
    serve: Callable[..., Served], iris_artifact: Artifact
) -> None:
    wrong = "0" * 64
    served = serve(artifact_sha256=wrong)
    assert_not_ready(served, artifacts.DIGEST_MISMATCH, iris_artifact.sha256)


def test_digest_is_checked_before_anything_is_deserialised(
    serve: Callable[..., Served], tmp_path: Path
) -> None:
    """A pickle that runs code when loaded must never be opened when its digest is wrong."""
    marker = tmp_path / "pwned"
    path = tmp_path / "evil.pkl"
    # The classic payload: unpickling calls os.system("touch <marker>").
    path.write_bytes(b"cos\nsystem\n(S'touch " + str(marker).encode() + b"'\ntR.")
    unsafe = {"artifact_uri": path.as_uri(), "model_format": "pickle", "allow_unsafe_formats": True}
    served = serve(**unsafe, artifact_sha256="1" * 64)
    assert_not_ready(served, artifacts.DIGEST_MISMATCH, sha256_of(path))
    assert not marker.exists()
    # Control: with the right digest and the opt-in, the payload does run, which is
    # exactly why pickle needs both.
    opened = serve(**unsafe, artifact_sha256=sha256_of(path))
    assert_not_ready(opened, artifacts.NOT_A_MODEL, "int")
    assert marker.exists()


@pytest.mark.parametrize("model_format", ["pickle", "joblib"])
def test_unsafe_formats_need_the_opt_in(
    serve: Callable[..., Served], iris_artifact: Artifact, tmp_path: Path, model_format: str
) -> None:
    path = tmp_path / f"iris.{model_format}"
    if model_format == "pickle":
        path.write_bytes(pickle.dumps(iris_artifact.model))
    else:
        joblib.dump(iris_artifact.model, path)
    common = {
        "artifact_uri": path.as_uri(),
        "artifact_sha256": sha256_of(path),
        "model_format": model_format,
    }
    refused = serve(**common)
    assert_not_ready(refused, artifacts.UNSAFE_FORMAT_REFUSED, "ALLOW_UNSAFE_FORMATS")
    accepted = serve(**common, allow_unsafe_formats=True)
    assert accepted.client.get("/v2/health/ready").status_code == 200
    response = accepted.client.post("/predict", json={"instances": [ROW]})
    assert response.json()["predictions"] == [0]


def test_skops_types_outside_the_allow_list_are_refused(
    serve: Callable[..., Served], iris_artifact: Artifact, tmp_path: Path
) -> None:
    model = make_pipeline(FunctionTransformer(double), RandomForestClassifier(n_estimators=2))
    model.fit(iris_artifact.X, iris_artifact.y)
    path = tmp_path / "custom.skops"
    skops.io.dump(model, path)
    settings = {"artifact_uri": path.as_uri(), "artifact_sha256": sha256_of(path)}
    served = serve(**settings)
    assert_not_ready(served, artifacts.UNTRUSTED_TYPES, f"{__name__}.double")
    trusted = serve(**settings, trusted_types=[f"{__name__}.double"])
    assert trusted.client.get("/v2/health/ready").status_code == 200


def test_library_classes_are_trusted_functions_and_strangers_are_not() -> None:
    refused = artifacts.compute_refused_types(
        [
            "sklearn.tree._tree.Tree",
            "sklearn.ensemble._hist_gradient_boosting.predictor.TreePredictor",
            "numpy.float64",
            "numpy.load",
            "builtins.eval",
            "os.system",
            "sklearn.no.such.Thing",
            "mypkg.Custom",
        ],
        trusted_types=["mypkg.Custom"],
    )
    assert refused == ["builtins.eval", "numpy.load", "os.system", "sklearn.no.such.Thing"]


def test_a_random_forest_loads_through_the_allow_list(
    serve: Callable[..., Served], iris_artifact: Artifact, tmp_path: Path
) -> None:
    model = RandomForestClassifier(n_estimators=3, random_state=0)
    model.fit(iris_artifact.X, iris_artifact.y)
    path = tmp_path / "forest.skops"
    skops.io.dump(model, path)
    assert skops.io.get_untrusted_types(file=path)  # skops alone would refuse it
    served = serve(artifact_uri=path.as_uri(), artifact_sha256=sha256_of(path))
    assert served.client.get("/v2/health/ready").status_code == 200


def test_a_pickle_named_skops_fails_cleanly(
    serve: Callable[..., Served], iris_artifact: Artifact, tmp_path: Path
) -> None:
    path = tmp_path / "not-really.skops"
    path.write_bytes(pickle.dumps(iris_artifact.model))
    served = serve(artifact_uri=path.as_uri(), artifact_sha256=sha256_of(path))
    assert_not_ready(served, artifacts.LOAD_FAILED, "MODEL_FORMAT")


def test_a_missing_file_is_fetch_failed(serve: Callable[..., Served], tmp_path: Path) -> None:
    served = serve(artifact_uri=(tmp_path / "nope.skops").as_uri())
    assert_not_ready(served, artifacts.FETCH_FAILED, "nope.skops")


def test_something_that_is_not_a_model_is_refused(
    serve: Callable[..., Served], tmp_path: Path
) -> None:
    path = tmp_path / "dict.skops"
    skops.io.dump({"weights": [1, 2, 3]}, path)
    served = serve(artifact_uri=path.as_uri(), artifact_sha256=sha256_of(path))
    assert_not_ready(served, artifacts.NOT_A_MODEL, "no predict")


def test_a_model_with_several_outputs_is_refused_at_load(
    serve: Callable[..., Served], tmp_path: Path
) -> None:
    X = np.random.default_rng(0).normal(size=(40, len(ROW)))
    path = tmp_path / "two-targets.skops"
    skops.io.dump(DecisionTreeClassifier(max_depth=2).fit(X, (X[:, :2] > 0).astype(int)), path)
    served = serve(artifact_uri=path.as_uri(), artifact_sha256=sha256_of(path))
    assert_not_ready(served, artifacts.NOT_A_MODEL, "predicts 2 outputs per row")


@pytest.fixture
def http_root(tmp_path: Path) -> Iterator[tuple[Path, str]]:
    """A static file server on 127.0.0.1 over a temporary directory."""
    handler = functools.partial(SimpleHTTPRequestHandler, directory=str(tmp_path))
    handler.log_message = lambda *_: None  # type: ignore[attr-defined]
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield tmp_path, f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def save_as_if_with(version: str, model: object, path: Path) -> None:
    """Save `model` as skops, recorded as saved by scikit-learn `version`."""
    skops.io.dump(model, path)
    with zipfile.ZipFile(path) as source:
        members = {name: source.read(name) for name in source.namelist()}
    schema = json.loads(members["schema.json"])

    def rewrite(node: object) -> None:
        if isinstance(node, dict):
            for key, value in node.items():
                if key == "_sklearn_version":
                    value["content"] = json.dumps(version)  # a JsonNode holds JSON text
                else:
                    rewrite(value)
        elif isinstance(node, list):
            for value in node:
                rewrite(value)

    rewrite(schema)
    members["schema.json"] = json.dumps(schema).encode()
    with zipfile.ZipFile(path, "w") as target:
        for name, data in members.items():
            target.writestr(name, data)


def test_another_scikit_learn_version_is_served_and_said_everywhere(
    serve: Callable[..., Served], iris_artifact: Artifact, tmp_path: Path
) -> None:
    path = tmp_path / "old.skops"
    model = make_pipeline(StandardScaler(), LogisticRegression(max_iter=1000))
    save_as_if_with("1.4.2", model.fit(iris_artifact.X, iris_artifact.y), path)
    served = serve(artifact_uri=path.as_uri(), artifact_sha256=sha256_of(path))
    assert served.client.get("/v2/health/ready").status_code == 200
    assert served.sample("driftward_serving_model_sklearn_version_mismatch") == 1.0
    parameters = served.client.get(f"/v2/models/{MODEL}").json()["parameters"]
    assert parameters["sklearn_version"] == sklearn.__version__
    mismatch = parameters["sklearn_version_mismatch"]
    assert mismatch.startswith("saved with scikit-learn 1.4.2 (LogisticRegression, Pipeline, ")
    assert f"served with scikit-learn {sklearn.__version__}" in mismatch
    assert served.app.serving.model.message.endswith(mismatch)
    answer = served.client.post("/predict", json={"instances": [ROW]})
    assert answer.status_code == 200


def test_another_scikit_learn_version_is_refused_when_asked(
    serve: Callable[..., Served], iris_artifact: Artifact, tmp_path: Path
) -> None:
    path = tmp_path / "old.skops"
    save_as_if_with(
        "1.4.2", LogisticRegression(max_iter=1000).fit(iris_artifact.X, iris_artifact.y), path
    )
    refused = serve(
        artifact_uri=path.as_uri(),
        artifact_sha256=sha256_of(path),
        sklearn_version_mismatch="refuse",
    )
    assert_not_ready(refused, artifacts.SKLEARN_VERSION_REFUSED, "saved with scikit-learn 1.4.2")
    message = refused.client.get("/v2/health/ready").json()["message"]
    assert "DRIFTWARD_SERVING_SKLEARN_VERSION_MISMATCH=refuse" in message
    assert refused.sample("driftward_serving_model_sklearn_version_mismatch") == 1.0
    same = serve(sklearn_version_mismatch="refuse")  # the iris artifact, saved by this version
    assert same.client.get("/v2/health/ready").status_code == 200


def test_the_same_scikit_learn_version_says_nothing(served: Served) -> None:
    assert served.sample("driftward_serving_model_sklearn_version_mismatch") == 0.0
    parameters = served.client.get(f"/v2/models/{MODEL}").json()["parameters"]
    assert parameters["sklearn_version_mismatch"] is None


def test_class_names_the_monitor_cannot_take_are_refused_only_with_a_monitor(
    serve: Callable[..., Served], tmp_path: Path
) -> None:
    X = np.random.default_rng(0).normal(size=(40, len(ROW)))
    long_name = "x" * 600
    y = np.where(X[:, 0] > 0, long_name, "short")
    path = tmp_path / "long-classes.skops"
    skops.io.dump(DecisionTreeClassifier(max_depth=2).fit(X, y), path)
    uri, digest = path.as_uri(), sha256_of(path)
    monitored = serve(artifact_uri=uri, artifact_sha256=digest, monitor_url="http://127.0.0.1:9")
    assert_not_ready(monitored, artifacts.NOT_A_MODEL, "is 600 characters long")
    assert "up to 512 characters" in monitored.client.get("/v2/health/ready").json()["message"]
    unmonitored = serve(artifact_uri=uri, artifact_sha256=digest)  # monitor_url ""
    answer = unmonitored.client.post("/predict", json={"instances": [[1.0, 0, 0, 0]]})
    assert answer.status_code == 200
    assert answer.json()["predictions"] == [long_name]


def test_loads_over_http(
    serve: Callable[..., Served], iris_artifact: Artifact, http_root: tuple[Path, str]
) -> None:
    root, url = http_root
    (root / "iris.skops").write_bytes(iris_artifact.path.read_bytes())
    served = serve(artifact_uri=f"{url}/iris.skops")
    assert served.client.get("/v2/health/ready").status_code == 200
    assert served.client.post("/predict", json={"instances": [ROW]}).json()["predictions"] == [0]
    missing = serve(artifact_uri=f"{url}/missing.skops")
    assert_not_ready(missing, artifacts.FETCH_FAILED, "HTTP 404")


@pytest.fixture
def s3_endpoint(monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """An in-process S3-compatible server (moto) on 127.0.0.1, with AWS env pointing at it."""
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    endpoint = f"http://{host}:{port}"
    monkeypatch.setenv("AWS_ENDPOINT_URL", endpoint)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    for name in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_CONFIG_FILE"):
        monkeypatch.delenv(name, raising=False)
    yield endpoint
    server.stop()


def test_loads_from_s3_compatible_storage(
    serve: Callable[..., Served], iris_artifact: Artifact, s3_endpoint: str
) -> None:
    s3 = boto3.client("s3", endpoint_url=s3_endpoint)
    s3.create_bucket(Bucket="models")
    s3.put_object(Bucket="models", Key="iris/v3/model.skops", Body=iris_artifact.path.read_bytes())
    served = serve(artifact_uri="s3://models/iris/v3/model.skops")
    assert served.client.get("/v2/health/ready").status_code == 200
    assert served.client.post("/predict", json={"instances": [ROW]}).json()["predictions"] == [0]
    missing = serve(artifact_uri="s3://models/iris/v4/model.skops")
    assert_not_ready(missing, artifacts.FETCH_FAILED, "s3://models/iris/v4/model.skops")


class NoDeclaredWidth:
    """Predicts one value per row and declares no input width (no n_features_in_)."""

    def predict(self, data: np.ndarray) -> np.ndarray:
        return np.asarray(data).sum(axis=1)


def test_a_model_without_a_declared_width_is_logged_as_unprobed(
    serve: Callable[..., Served], tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "duck.pkl"
    path.write_bytes(pickle.dumps(NoDeclaredWidth()))
    with caplog.at_level(logging.WARNING, logger="driftward_serving"):
        served = serve(
            artifact_uri=path.as_uri(),
            artifact_sha256=sha256_of(path),
            model_format="pickle",
            allow_unsafe_formats=True,
        )
    assert served.client.get("/v2/health/ready").status_code == 200
    assert "declares no input width, so how many outputs" in caplog.text
