"""The driftward-serving command: settings errors, delegation, and real server processes."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import types
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from driftward_serving import cli, runner
from driftward_serving.settings import ServingSettings
from tests.unit.serving.conftest import FEATURES, Artifact, free_port, wait_for

ROW = [5.1, 3.5, 1.4, 0.2]
CONSOLE_SCRIPT = Path(sys.executable).parent / "driftward-serving"


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    """No DRIFTWARD_SERVING_* variables from the outside world."""
    for name in list(os.environ):
        if name.startswith("DRIFTWARD_SERVING_"):
            monkeypatch.delenv(name)
    return monkeypatch


def test_missing_settings_name_the_variable(
    clean_env: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    assert cli.main(["serve"]) == 2
    err = capsys.readouterr().err
    assert "DRIFTWARD_SERVING_ARTIFACT_URI is required" in err
    assert "DRIFTWARD_SERVING_ARTIFACT_SHA256 is required" in err


@pytest.mark.parametrize(
    ("variable", "value", "needle"),
    [
        ("ARTIFACT_SHA256", "abc", "64 hexadecimal"),
        ("ARTIFACT_URI", "ftp://x/model", "file://, http://, https://, s3://"),
        ("MODEL_FORMAT", "onnx", "'skops', 'joblib' or 'pickle'"),
        ("SKLEARN_VERSION_MISMATCH", "ignore", "'warn' or 'refuse'"),
        ("PORT", "0", "greater than or equal to 1"),
        ("MONITOR_URL", "tcp://monitor", "empty to disable"),
        ("FEATURE_NAMES", "a,b", "give a JSON list"),
        ("MODEL_NAME", "a/b", "letters, digits"),
    ],
)
def test_bad_settings_name_variable_value_and_rule(
    clean_env: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    variable: str,
    value: str,
    needle: str,
) -> None:
    clean_env.setenv("DRIFTWARD_SERVING_ARTIFACT_URI", "file:///m.skops")
    clean_env.setenv("DRIFTWARD_SERVING_ARTIFACT_SHA256", "a" * 64)
    clean_env.setenv(f"DRIFTWARD_SERVING_{variable}", value)
    code = cli.main(["serve"])
    err = capsys.readouterr().err
    assert code == 2
    assert f"DRIFTWARD_SERVING_{variable}" in err
    assert needle in err
    assert repr(value) in err


def test_settings_accept_a_prefixed_uppercase_digest(clean_env: pytest.MonkeyPatch) -> None:
    settings = ServingSettings(
        artifact_uri="s3://bucket/key", artifact_sha256="sha256:" + "AB" * 32
    )
    assert settings.artifact_sha256 == "ab" * 32
    assert settings.monitor_url == "http://127.0.0.1:8081"


@pytest.mark.parametrize(
    ("command", "entry"), [("monitor", "main_monitor"), ("profile", "main_profile")]
)
def test_monitor_commands_are_delegated(
    monkeypatch: pytest.MonkeyPatch, command: str, entry: str
) -> None:
    seen: list[list[str]] = []
    fake = types.ModuleType("driftward_serving.monitor.cli")
    setattr(fake, entry, lambda argv: seen.append(list(argv)) or 7)
    monkeypatch.setitem(sys.modules, "driftward_serving.monitor.cli", fake)
    assert cli.main([command, "build", "--x", "1"]) == 7
    assert seen == [["build", "--x", "1"]]


def test_feature_specs_and_artifact_paths(tmp_path: Path) -> None:
    assert cli.build_features("a, b:categorical") == [
        {"name": "a", "type": "numeric"},
        {"name": "b", "type": "categorical"},
    ]
    with pytest.raises(ValueError, match="NAME or NAME:numeric"):
        cli.build_features("a:text")
    assert cli.build_artifact_uri(str(tmp_path / "m.skops")) == (tmp_path / "m.skops").as_uri()
    assert cli.build_artifact_uri("s3://b/k") == "s3://b/k"


@pytest.fixture
def ports() -> tuple[int, int]:
    """An API port and a metrics port."""
    return free_port(), free_port()


def stop(process: subprocess.Popen[str]) -> str:
    """SIGTERM the process, wait for it, and return its output."""
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
    try:
        out, _ = process.communicate(timeout=30)
    except subprocess.TimeoutExpired:
        process.kill()
        out, _ = process.communicate()
    return out


@pytest.fixture
def local_server(
    iris_artifact: Artifact, ports: tuple[int, int], clean_env: pytest.MonkeyPatch
) -> Iterator[tuple[subprocess.Popen[str], int, int]]:
    """`driftward-serving local` as a real process."""
    api, metrics = ports
    command = [
        str(CONSOLE_SCRIPT),
        "local",
        "--artifact",
        str(iris_artifact.path),
        "--sha256",
        iris_artifact.sha256,
        "--name",
        "iris",
        "--features",
        ",".join(FEATURES),
        "--port",
        str(api),
        "--metrics-port",
        str(metrics),
    ]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    yield process, api, metrics
    stop(process)


def ready(port: int) -> bool:
    """True once the server at `port` answers ready."""
    try:
        return httpx.get(f"http://127.0.0.1:{port}/v2/health/ready", timeout=2).status_code == 200
    except httpx.HTTPError:
        return False


def test_local_serves_a_model_on_this_machine(
    local_server: tuple[subprocess.Popen[str], int, int],
) -> None:
    process, api, metrics = local_server
    wait_for(lambda: ready(api) or process.poll() is not None, "local to be ready", 90)
    assert process.poll() is None
    by_name = dict(zip(FEATURES, ROW, strict=True))
    response = httpx.post(f"http://127.0.0.1:{api}/predict", json={"instances": [by_name]})
    assert response.status_code == 200
    assert response.json()["predictions"] == [0]
    infer = httpx.post(
        f"http://127.0.0.1:{api}/v2/models/iris/infer",
        json={"inputs": [{"name": "x", "shape": [1, 4], "datatype": "FP64", "data": ROW}]},
    )
    assert infer.status_code == 200
    exposition = httpx.get(f"http://127.0.0.1:{metrics}/metrics").text
    assert (
        'driftward_serving_requests_total{code="200",endpoint="/predict",model="iris",'
        'version="local"} 1.0' in exposition
    )
    out = stop(process)
    assert process.returncode == 0
    assert f"inference API  http://127.0.0.1:{api}" in out
    assert f"metrics        http://127.0.0.1:{metrics}/metrics" in out
    assert "model ready" in out


def test_workers_share_metrics_and_the_label_ledger(
    iris_artifact: Artifact, ports: tuple[int, int], clean_env: pytest.MonkeyPatch
) -> None:
    api, metrics = ports
    env = dict(os.environ)
    env.update(
        {
            "DRIFTWARD_SERVING_MODEL_NAME": "iris",
            "DRIFTWARD_SERVING_ARTIFACT_URI": iris_artifact.uri,
            "DRIFTWARD_SERVING_ARTIFACT_SHA256": iris_artifact.sha256,
            "DRIFTWARD_SERVING_HOST": "127.0.0.1",
            "DRIFTWARD_SERVING_PORT": str(api),
            "DRIFTWARD_SERVING_METRICS_PORT": str(metrics),
            "DRIFTWARD_SERVING_MONITOR_URL": "",
        }
    )
    process = subprocess.Popen(
        [str(CONSOLE_SCRIPT), "serve", "--workers", "2"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        # Both workers must be up: readiness is answered by whichever accepts first.
        wait_for(lambda: ready(api) or process.poll() is not None, "workers to be ready", 120)
        assert process.poll() is None
        ids = []
        for _ in range(20):
            # A fresh connection per request, so the kernel spreads them over the workers.
            response = httpx.post(f"http://127.0.0.1:{api}/predict", json={"instances": [ROW]})
            assert response.status_code == 200
            ids.extend(response.json()["ids"])
        outcomes = [
            httpx.post(f"http://127.0.0.1:{api}/feedback", json={"id": i, "label": 0}).json()
            for i in ids
        ]
        assert [o["accepted"] for o in outcomes] == [1] * 20
        exposition = httpx.get(f"http://127.0.0.1:{metrics}/metrics").text
        assert (
            'driftward_serving_labels_received_total{model="iris",outcome="accepted",'
            'version="v1"} 20.0' in exposition
        )
        assert (
            'driftward_serving_requests_total{code="200",endpoint="/predict",model="iris",'
            'version="v1"} 20.0' in exposition
        )
    finally:
        out = stop(process)
    assert process.returncode == 0, out


def test_local_passes_the_version_mismatch_policy_to_the_server(
    iris_artifact: Artifact, clean_env: pytest.MonkeyPatch
) -> None:
    seen: list[ServingSettings] = []
    clean_env.setattr(runner, "run_server", lambda settings, on_ready=None: seen.append(settings))
    argv = ["local", "--artifact", str(iris_artifact.path), "--sha256", iris_artifact.sha256]
    before = dict(os.environ)
    try:  # local turns its flags into DRIFTWARD_SERVING_* variables of this process
        assert cli.main([*argv, "--sklearn-version-mismatch", "refuse"]) == 0
        assert cli.main(argv) == 0
    finally:
        os.environ.clear()
        os.environ.update(before)
    assert [s.sklearn_version_mismatch for s in seen] == ["refuse", "warn"]
