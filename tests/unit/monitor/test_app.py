"""The monitor app over HTTP (in-process): intake, verdict, window, report, metrics, errors."""

from __future__ import annotations

import json
import logging
import subprocess
import sys
import time
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from prometheus_client import CollectorRegistry
from starlette.exceptions import StarletteDeprecationWarning

from driftward_serving.monitor.app import RefusalLog, create_app
from driftward_serving.monitor.counts import window_counts_from_json
from driftward_serving.monitor.profile import Profile, profile_from_json
from driftward_serving.monitor.settings import MonitorSettings
from driftward_serving.monitor.sources import ReferenceError
from driftward_serving.recordbatch import MEDIA_TYPE, build_record_batch

from .test_window import make_predictions

with warnings.catch_warnings():
    # Starlette 1.x nudges towards httpx2; the httpx-based client works the same here.
    warnings.simplefilter("ignore", StarletteDeprecationWarning)
    from starlette.testclient import TestClient

LABELS = {"model": "iris", "version": "v2"}


def _payload(records: list[Any], labels: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    return {
        "model": "iris",
        "version": "v2",
        "predictions": [
            {"id": r.id, "ts": r.ts, "features": r.features, "output": r.output, "proba": r.proba}
            for r in records
        ],
        "labels": labels or [],
    }


@pytest.fixture
def client_for(
    profile: Profile, registry: CollectorRegistry, write_monitor_files: Callable[..., Path]
) -> Iterator[Callable[..., TestClient]]:
    """Start the app on written files; yields a factory taking settings and config overrides."""
    clients: list[TestClient] = []

    def make(settings: dict[str, Any] | None = None, **overrides: Any) -> TestClient:
        config_path = write_monitor_files(profile, **overrides)
        app = create_app(
            MonitorSettings(config_path=config_path, **(settings or {})),
            registry,
            clock=lambda: 1_700_000_000.0,
        )
        client = TestClient(app)
        client.__enter__()
        clients.append(client)
        return client

    yield make
    for client in clients:
        client.__exit__(None, None, None)


def test_records_verdict_and_metrics(
    client_for: Callable[..., TestClient], registry: CollectorRegistry, rng: np.random.Generator
) -> None:
    client = client_for()
    records = make_predictions(rng, 1_000, shift=0.6)
    labels = [{"id": r.id, "ts": 2.0, "label": r.output} for r in records[:300]]
    labels += [{"id": "p0", "ts": 3.0, "label": 0}, {"id": "who", "ts": 3.0, "label": 1}]
    response = client.post("/v1/records", json=_payload(records, labels))
    assert response.status_code == 200
    assert response.json() == {
        "accepted_predictions": 1_000,
        "accepted_labels": 300,
        "unknown_labels": 1,
        "duplicate_labels": 1,
        "late_labels": 0,
        "rejected_predictions": 0,
        "invalid_labels": 0,
    }
    verdict = client.post("/v1/evaluate").json()
    assert verdict["state"] == "Drifted"
    assert verdict["drift"]["driftedFeatures"] == ["x"]
    assert verdict["performance"]["labels"] == 300
    assert verdict["evaluatedAt"] == 1_700_000_000.0
    assert client.get("/v1/verdict").json() == verdict

    sample = registry.get_sample_value
    assert sample("driftward_monitor_predictions_total", {**LABELS, "outcome": "accepted"}) == 1_000
    assert sample("driftward_monitor_labels_total", {**LABELS, "outcome": "joined"}) == 300
    assert sample("driftward_monitor_labels_total", {**LABELS, "outcome": "duplicate"}) == 1
    assert sample("driftward_monitor_labels_total", {**LABELS, "outcome": "unknown"}) == 1
    assert sample("driftward_monitor_feature_drifted", {**LABELS, "feature": "x"}) == 1
    assert sample("driftward_monitor_feature_drifted", {**LABELS, "feature": "z"}) == 0
    x_p = sample("driftward_monitor_feature_drift_corrected_p_value", {**LABELS, "feature": "x"})
    assert x_p is not None
    assert x_p < 0.01
    score = sample("driftward_monitor_feature_drift_score", {**LABELS, "feature": "x"})
    assert score == pytest.approx(verdict["drift"]["features"][0]["effect"])
    assert sample("driftward_monitor_drift_share_ratio", LABELS) == pytest.approx(1 / 3)
    assert sample("driftward_monitor_window_samples", LABELS) == 1_000
    assert sample("driftward_monitor_label_coverage_ratio", LABELS) == pytest.approx(0.3)
    assert sample("driftward_monitor_verdict_state", {**LABELS, "state": "Drifted"}) == 1
    assert sample("driftward_monitor_verdict_state", {**LABELS, "state": "Ok"}) == 0
    accuracy = sample("driftward_monitor_performance", {**LABELS, "metric": "Accuracy"})
    assert accuracy == pytest.approx(verdict["performance"]["value"])
    estimated = sample("driftward_monitor_estimated_performance", {**LABELS, "metric": "Accuracy"})
    assert estimated == pytest.approx(verdict["estimated"]["accuracy"])
    assert sample("driftward_monitor_evaluations_total", {**LABELS, "outcome": "ok"}) == 1
    assert sample("driftward_monitor_evaluation_duration_seconds_count", LABELS) == 1


def test_window_and_profile_exports_are_mergeable(
    client_for: Callable[..., TestClient], profile: Profile, rng: np.random.Generator
) -> None:
    client = client_for()
    client.post("/v1/records", json=_payload(make_predictions(rng, 400)))
    window_doc = client.get("/v1/window").json()
    assert window_doc["samples"] == 400
    assert window_doc["windowSize"] == 1_000
    counts = window_counts_from_json(window_doc)
    assert sum(counts.features["z"]) == 400
    profile_doc = client.get("/v1/profile").json()
    assert profile_doc["digest"] == window_doc["profileDigest"]
    assert profile_from_json(profile_doc).feature("x").n_bins == profile.feature("x").n_bins


def test_report_page_has_a_plot_per_feature(
    client_for: Callable[..., TestClient], rng: np.random.Generator
) -> None:
    client = client_for()
    client.post("/v1/records", json=_payload(make_predictions(rng, 600, shift=0.6)))
    page = client.get("/report")
    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    assert page.text.count("<svg") == 4  # x, z, color and the model output
    assert "<h3>x" in page.text


def test_intake_refusals(
    client_for: Callable[..., TestClient],
    registry: CollectorRegistry,
    rng: np.random.Generator,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.WARNING, logger="driftward.monitor")
    client = client_for({"max_body_bytes": 2_048, "max_batch_size": 5})
    too_big = client.post("/v1/records", json=_payload(make_predictions(rng, 50)))
    assert too_big.status_code == 413
    assert "send smaller batches" in too_big.json()["error"]
    too_many = client.post("/v1/records", json=_payload(make_predictions(rng, 6)))
    assert too_many.status_code == 413
    invalid = client.post("/v1/records", content=b'{"predictions": [{"id": "a"}]}')
    assert invalid.status_code == 422
    assert invalid.json()["details"] == ["predictions.0.ts: is required"]
    typed = client.post(
        "/v1/records",
        content=b'{"predictions": [{"id": "a", "ts": "noon", "features": []}]}',
    )
    assert typed.status_code == 422
    assert typed.json()["details"] == ["predictions.0.ts: must be float (got 'noon')"]
    garbage = client.post("/v1/records", content=b"{not json")
    assert garbage.status_code == 422
    assert garbage.json()["details"][0].startswith("the body is not JSON")
    wrong = client.post("/v1/records", json={**_payload([]), "version": "v9"})
    assert wrong.status_code == 409
    assert "watches version 'v2', not 'v9'" in wrong.json()["error"]
    sample = registry.get_sample_value
    assert (
        sample("driftward_monitor_record_batches_rejected_total", {**LABELS, "reason": "too_large"})
        == 2
    )
    assert (
        sample("driftward_monitor_record_batches_rejected_total", {**LABELS, "reason": "invalid"})
        == 3
    )
    assert (
        sample(
            "driftward_monitor_record_batches_rejected_total",
            {**LABELS, "reason": "version_mismatch"},
        )
        == 1
    )
    # Each reason is logged once, with what was wrong; the repeats within the minute
    # are only counted (the metric above has them all).
    refusals = [r.getMessage() for r in caplog.records if "refused a records batch" in r.message]
    assert refusals == [
        "refused a records batch (too_large, HTTP 413): body is larger than 2048 bytes; "
        "send smaller batches",
        "refused a records batch (invalid, HTTP 422): the batch does not follow "
        "docs/contracts.md: predictions.0.ts: is required",
        "refused a records batch (version_mismatch, HTTP 409): this monitor watches "
        "version 'v2', not 'v9'",
    ]


def test_refusal_log_says_how_many_were_refused_since_its_last_line(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.WARNING, logger="driftward.monitor")
    now = [1000.0]
    refusals = RefusalLog(clock=lambda: now[0])
    for _ in range(3):
        refusals.note("invalid", 422, "bad ts")
    refusals.note("too_large", 413, "too big")  # another reason is not held back
    now[0] += 59.0
    refusals.note("invalid", 422, "bad ts")
    now[0] += 1.0
    refusals.note("invalid", 422, "bad id")
    refusals.note("invalid", 422, "bad id")
    assert [r.getMessage() for r in caplog.records] == [
        "refused a records batch (invalid, HTTP 422): bad ts",
        "refused a records batch (too_large, HTTP 413): too big",
        "refused a records batch (invalid, HTTP 422): bad id "
        "(3 more refused for this reason since the last line)",
    ]


def _record_batch(records: list[Any], labels: list[dict[str, Any]]) -> bytes:
    """Records as serving sends them, as a binary record batch (numeric features only)."""
    return build_record_batch(
        "iris",
        "v2",
        {
            "id": np.array([r.id for r in records], dtype="S16"),
            "ts": np.array([r.ts for r in records]),
            "features": np.array([r.features for r in records], dtype=np.float64),
            "output": np.array([r.output for r in records]),
            "proba": np.array([r.proba for r in records], dtype=np.float64),
        },
        labels,
    )


def test_binary_record_batches_are_counted_like_json(
    client_for: Callable[..., TestClient], registry: CollectorRegistry, rng: np.random.Generator
) -> None:
    client = client_for()
    records = make_predictions(rng, 500)
    for r in records:
        r.features[2] = 1.0  # type: ignore[index]  # a code the string profile never saw
    labels = [{"id": r.id, "ts": 2.0, "label": r.output} for r in records[:100]]
    labels.append({"id": "who", "ts": 2.0, "label": 1})
    response = client.post(
        "/v1/records",
        content=_record_batch(records, labels),
        headers={"Content-Type": MEDIA_TYPE},
    )
    assert response.status_code == 200
    assert response.json()["accepted_predictions"] == 500
    assert response.json()["accepted_labels"] == 100
    assert response.json()["unknown_labels"] == 1
    window = client.get("/v1/window").json()
    assert window["samples"] == 500
    sample = registry.get_sample_value
    assert sample("driftward_monitor_predictions_total", {**LABELS, "outcome": "accepted"}) == 500


def test_binary_record_batch_refusals_name_the_field(
    client_for: Callable[..., TestClient], registry: CollectorRegistry, rng: np.random.Generator
) -> None:
    client = client_for({"max_batch_size": 5})
    headers = {"Content-Type": MEDIA_TYPE}
    records = make_predictions(rng, 3)
    for r in records:
        r.features[2] = 0.0  # type: ignore[index]
    garbled = client.post("/v1/records", content=b"DWRB\x02\0\0\0{}", headers=headers)
    assert garbled.status_code == 422
    assert garbled.json()["details"] == ["header.format: None; this monitor reads format 1"]
    bad_label = client.post(
        "/v1/records", content=_record_batch(records, [{"id": "", "ts": 1.0}]), headers=headers
    )
    assert bad_label.status_code == 422
    assert any(d.startswith("labels.0.id") for d in bad_label.json()["details"])
    too_many = client.post(
        "/v1/records",
        content=_record_batch(records, [{"id": "a", "ts": 1.0, "label": 1}] * 3),
        headers=headers,
    )
    assert too_many.status_code == 413
    rows = make_predictions(rng, 6)
    for r in rows:
        r.features[2] = 0.0  # type: ignore[index]
    too_many_rows = client.post("/v1/records", content=_record_batch(rows, []), headers=headers)
    assert too_many_rows.status_code == 413
    wrong = client.post(
        "/v1/records", content=build_record_batch("iris", "v9", {}), headers=headers
    )
    assert wrong.status_code == 409
    sample = registry.get_sample_value
    rejected = "driftward_monitor_record_batches_rejected_total"
    assert sample(rejected, {**LABELS, "reason": "invalid"}) == 2
    assert sample(rejected, {**LABELS, "reason": "too_large"}) == 2
    assert client.get("/v1/window").json()["samples"] == 0


def test_the_loop_evaluates_on_its_interval(
    client_for: Callable[..., TestClient], registry: CollectorRegistry
) -> None:
    client_for(interval="50ms")
    deadline = time.monotonic() + 30
    labels = {**LABELS, "outcome": "ok"}
    while (registry.get_sample_value("driftward_monitor_evaluations_total", labels) or 0) < 2:
        assert time.monotonic() < deadline, "the evaluation loop never ran twice"
        time.sleep(0.05)
    assert (
        registry.get_sample_value(
            "driftward_monitor_verdict_state", {**LABELS, "state": "Inconclusive"}
        )
        == 1
    )


def test_a_reference_that_does_not_match_its_pin_is_refused(
    profile: Profile, write_monitor_files: Callable[..., Path]
) -> None:
    config_path = write_monitor_files(profile)
    doc = json.loads(config_path.read_text())
    doc["reference"]["sha256"] = "1" * 64
    config_path.write_text(json.dumps(doc))
    with pytest.raises(ReferenceError, match=r"but 1111.* is pinned; refusing to use it"):
        create_app(MonitorSettings(config_path=config_path), CollectorRegistry())


def test_scipy_special_is_loaded_at_start_up_not_at_the_first_evaluation(
    profile: Profile, write_monitor_files: Callable[..., Path]
) -> None:
    config_path = write_monitor_files(profile)
    code = f"""
import sys, warnings
from prometheus_client import CollectorRegistry
from driftward_serving.monitor.app import RefusalLog, create_app
from driftward_serving.monitor.settings import load_monitor_settings
warnings.simplefilter("ignore")
from starlette.testclient import TestClient
settings = load_monitor_settings({{}}, config_path={str(config_path)!r})
app = create_app(settings, CollectorRegistry())
before = "scipy.special" in sys.modules
with TestClient(app) as client:
    assert client.get("/readyz").status_code == 200
    print(before, "scipy.special" in sys.modules)
"""
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=False, timeout=120
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.split() == ["False", "True"]
