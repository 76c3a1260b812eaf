"""The laptop command with its monitor: a shift reads Drifted, wrong labels read Degraded.

``driftward-serving local --reference ... --features ...`` runs as a real
process on 127.0.0.1 (the server, and the monitor as its child), exactly as
the README tells a user to run it. The test drives it only through HTTP:

1. unshifted traffic, until the monitor's drift verdict is Ok;
2. shifted traffic, until ``/v1/verdict`` says Drifted, while serving's
   median latency stays near what it was before (the monitor must not block
   requests; the bound is generous: this is not a timing test);
3. correct labels through ``POST /feedback``, until performance is computed
   and Ok; then wrong labels, until it is Degraded.
"""

from __future__ import annotations

import signal
import statistics
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pyarrow as pa
import pyarrow.csv as pa_csv
import pytest

from tests.unit.serving.conftest import FEATURES, Artifact, free_port, wait_for

CONSOLE_SCRIPT = Path(sys.executable).parent / "driftward-serving"
WINDOW = 400
BATCH = 10


@dataclass
class Local:
    """A running `driftward-serving local` and where it listens."""

    process: subprocess.Popen[str]
    log: Path
    api: str
    metrics: str
    monitor: str
    monitor_metrics: str

    def output(self) -> str:
        """Everything the process printed so far."""
        return self.log.read_text(errors="replace")


def _stop(process: subprocess.Popen[str]) -> None:
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
    try:
        process.wait(timeout=30)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def _answers(url: str) -> bool:
    try:
        return httpx.get(url, timeout=2).status_code == 200
    except httpx.HTTPError:
        return False


@pytest.fixture
def local(iris_artifact: Artifact, tmp_path: Path) -> Iterator[Local]:
    """The laptop command with a monitor: 400-prediction window, judged every second."""
    reference = tmp_path / "iris.csv"
    columns = {name: iris_artifact.X[:, i] for i, name in enumerate(FEATURES)}
    pa_csv.write_csv(pa.table({**columns, "species": iris_artifact.y}), reference)
    api, metrics, monitor, monitor_metrics = (free_port() for _ in range(4))
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
        "--reference",
        str(reference),
        "--target",
        "species",
        "--metric",
        "Accuracy",
        "--baseline",
        "0.95",
        "--min-labels",
        "100",
        "--window-size",
        str(WINDOW),
        "--min-samples",
        "200",
        "--interval",
        "1s",
        "--port",
        str(api),
        "--metrics-port",
        str(metrics),
        "--monitor-port",
        str(monitor),
        "--monitor-metrics-port",
        str(monitor_metrics),
    ]
    log = tmp_path / "local.log"
    # A file, not a pipe: access logs would fill a pipe nobody reads and block the server.
    with log.open("w") as out:
        process = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT, text=True)
    running = Local(
        process,
        log,
        f"http://127.0.0.1:{api}",
        f"http://127.0.0.1:{metrics}",
        f"http://127.0.0.1:{monitor}",
        f"http://127.0.0.1:{monitor_metrics}",
    )
    try:
        wait_for(
            lambda: (
                (
                    _answers(f"{running.api}/v2/health/ready")
                    and _answers(f"{running.monitor}/readyz")
                )
                or process.poll() is not None
            ),
            "the server and the monitor to be ready",
            120,
        )
        assert process.poll() is None, running.output()
        yield running
    finally:
        _stop(process)


def _send(
    client: httpx.Client, local: Local, rows: np.ndarray
) -> tuple[list[str], list[int], list[float]]:
    """POST /predict in batches of BATCH; returns ids, predicted classes and latencies."""
    ids: list[str] = []
    predicted: list[int] = []
    seconds: list[float] = []
    for start in range(0, len(rows), BATCH):
        began = time.perf_counter()
        response = client.post(
            f"{local.api}/predict", json={"instances": rows[start : start + BATCH].tolist()}
        )
        seconds.append(time.perf_counter() - began)
        assert response.status_code == 200, response.text
        body = response.json()
        ids += body["ids"]
        predicted += body["predictions"]
    return ids, predicted, seconds


def _verdict(client: httpx.Client, local: Local) -> dict[str, Any]:
    response = client.get(f"{local.monitor}/v1/verdict")
    assert response.status_code == 200, response.text
    verdict: dict[str, Any] = response.json()
    return verdict


def _wait_verdict(
    client: httpx.Client, local: Local, what: str, check: Any, limit: float = 60.0
) -> dict[str, Any]:
    """Poll /v1/verdict (judged every second) until ``check(verdict)`` holds."""
    seen: list[dict[str, Any]] = []

    def holds() -> bool:
        seen.append(_verdict(client, local))
        return bool(check(seen[-1]))

    try:
        wait_for(holds, what, limit)
    except BaseException:
        print(seen[-1] if seen else "no verdict", local.output()[-3000:])
        raise
    return seen[-1]


def test_local_judges_drift_and_degradation_without_slowing_serving(
    local: Local, iris_artifact: Artifact
) -> None:
    rng = np.random.default_rng(5)
    out = local.output()
    assert f"verdict      GET  {local.monitor}/v1/verdict" in out
    assert f"drift report GET  {local.monitor}/report" in out
    assert f"monitor metrics {local.monitor_metrics}/metrics" in out
    assert f"metrics        {local.metrics}/metrics" in out

    with httpx.Client(timeout=30) as client:
        # 1. Traffic like the reference: a full window, and the drift verdict is Ok.
        picks = rng.integers(0, len(iris_artifact.y), size=WINDOW)
        _, _, baseline = _send(client, local, iris_artifact.X[picks])
        verdict = _wait_verdict(
            client,
            local,
            "a full window judged Ok for drift",
            lambda v: v["window"]["samples"] >= WINDOW and v["drift"]["state"] == "Ok",
        )
        assert verdict["drift"]["driftedFeatures"] == []
        # No labels yet: performance is Inconclusive, never a false Degraded.
        assert verdict["performance"]["state"] == "Inconclusive"

        # 2. The inputs shift: two of four features move by several standard deviations.
        shifted_rows = iris_artifact.X[rng.integers(0, len(iris_artifact.y), size=WINDOW)].copy()
        shifted_rows[:, 0] += 1.5
        shifted_rows[:, 2] += 2.0
        _, _, shifted = _send(client, local, shifted_rows)
        verdict = _wait_verdict(
            client, local, "the verdict to read Drifted", lambda v: v["state"] == "Drifted"
        )
        assert {"sepal_length", "petal_length"} <= set(verdict["drift"]["driftedFeatures"])
        evidence = {e["feature"]: e for e in verdict["drift"]["features"]}
        assert evidence["petal_length"]["correctedP"] < 0.01
        # Serving was not held up by the monitor while it ingested and judged the shift.
        baseline_p50 = statistics.median(baseline)
        assert statistics.median(shifted) <= 3 * max(baseline_p50, 0.005), (baseline, shifted)
        report = client.get(f"{local.monitor}/report")
        assert report.status_code == 200
        assert "petal_length" in report.text

        # 3a. Traffic like the reference again, with its true labels: performance is computed.
        picks = rng.integers(0, len(iris_artifact.y), size=WINDOW)
        ids, _, _ = _send(client, local, iris_artifact.X[picks])
        truth = iris_artifact.y[picks].tolist()
        labels = [{"id": i, "label": int(y)} for i, y in zip(ids, truth, strict=True)]
        response = client.post(f"{local.api}/feedback", json={"labels": labels})
        assert response.status_code == 200, response.text
        verdict = _wait_verdict(
            client,
            local,
            "performance computed from the labels",
            lambda v: (
                v["performance"]["labels"] >= len(labels) - 10 and v["performance"]["state"] == "Ok"
            ),
        )
        performance = verdict["performance"]
        assert performance["value"] >= 0.9
        assert performance["labelCoverage"] > 0.9
        assert {m["metric"] for m in performance["metrics"]} >= {"Accuracy", "F1Macro"}

        # 3b. The model starts being wrong: accuracy falls and the verdict reads Degraded.
        picks = rng.integers(0, len(iris_artifact.y), size=WINDOW)
        ids, predicted, _ = _send(client, local, iris_artifact.X[picks])
        wrong = [{"id": i, "label": (p + 1) % 3} for i, p in zip(ids, predicted, strict=True)]
        response = client.post(f"{local.api}/feedback", json={"labels": wrong})
        assert response.status_code == 200, response.text
        verdict = _wait_verdict(
            client, local, "the verdict to read Degraded", lambda v: v["state"] == "Degraded"
        )
        assert verdict["performance"]["severity"] == "high"
        assert verdict["performance"]["value"] < 0.5

        metrics = client.get(f"{local.monitor_metrics}/metrics").text
    assert 'driftward_monitor_verdict_state{model="iris",state="Degraded",version="local"} 1.0' in (
        metrics
    )


def _local_args(tmp_path: Path, *extra: str) -> list[str]:
    return ["local", "--artifact", str(tmp_path / "m.skops"), "--sha256", "a" * 64, *extra]


@pytest.mark.parametrize(
    ("extra", "needle"),
    [
        (["--baseline", "0.9"], "--baseline needs --reference"),
        (["--window-size", "500"], "--window-size needs --reference"),
        (
            ["--features", "a", "--reference", "absent.csv"],
            "--reference 'absent.csv' is not a file",
        ),
        (
            ["--features", "a", "--reference", "{ref}", "--window-size", "50"],
            "window.size: must be int >= 100 (got 50)",
        ),
        (
            ["--features", "a", "--reference", "{ref}", "--baseline", "0.9", "--metric", "MAE"],
            "performance.metric 'MAE' does not suit model.task 'classification'",
        ),
        (
            ["--features", "a", "--reference", "{ref}", "--metric", "Accurate", "--baseline", "1"],
            "performance.metric: 'Accurate' is not allowed; use one of Accuracy",
        ),
        (
            ["--features", "a", "--reference", "{ref}", "--min-labels", "20"],
            "--max-degradation and --min-labels need --baseline",
        ),
        (
            ["--features", "a", "--reference", "{ref}", "--interval", "soon"],
            "'soon' is not a duration",
        ),
    ],
)
def test_bad_monitor_flags_name_the_flag_and_the_value(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], extra: list[str], needle: str
) -> None:
    from driftward_serving import cli  # noqa: PLC0415

    reference = tmp_path / "ref.csv"
    reference.write_text("a\n1\n2\n")
    args = [part.replace("{ref}", str(reference)) for part in extra]
    assert cli.main(_local_args(tmp_path, *args)) == 2
    assert needle in capsys.readouterr().err
