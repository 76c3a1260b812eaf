"""The hand-off budget: each stage timed alone, and the table that adds them up."""

from __future__ import annotations

import math
from pathlib import Path
from types import ModuleType

import pytest
from sklearn.datasets import load_breast_cancer
from sklearn.linear_model import LogisticRegression

FAST = 10**9  # records a second: no pacing, so the tests do not wait


@pytest.fixture(scope="module")
def model() -> tuple[LogisticRegression, object, object]:
    X, y = load_breast_cancer(return_X_y=True)
    return LogisticRegression(max_iter=10000).fit(X, y), X, y


def _row(table: str, name: str) -> list[str]:
    line = next(line for line in table.splitlines() if line.startswith(name))
    return line[len(name) :].split()


def test_table_adds_serving_stages_to_each_sidecar(budget: ModuleType) -> None:
    stages = [
        budget.Stage("offer alone, tight loop", budget.SERVING, 0.3),
        budget.Stage(budget.REQUEST_PATH, budget.SERVING, 1.0),
        budget.Stage("monitor: window intake (in process)", budget.SIDECAR, 2.5),
        budget.Stage(budget.FLUSH, budget.SERVING, 2.0),
        budget.Stage("stub process (HTTP, parse)", budget.SIDECAR, 1.5),
        budget.Stage("monitor process (HTTP, parse, intake, evaluation)", budget.SIDECAR, 5.0),
    ]
    table = budget.build_table(stages)
    # µs per record, then the share at 3,000 / 10,000 / 13,000 req/s per core. The
    # tight loop's figure is shown but not added: the loop of requests is what a request pays.
    assert _row(table, "serving side: offer + flush") == [
        "serving", "3.00", "0.9%", "/", "3.0%", "/", "3.9%",
    ]  # fmt: skip
    assert _row(table, "serving side + stub process")[:2] == ["pod", "4.50"]
    assert _row(table, "serving side + monitor process")[1:] == [
        "8.00", "2.4%", "/", "8.0%", "/", "10.4%",
    ]  # fmt: skip
    names = [line.split("  ")[0] for line in table.splitlines()]
    # Serving's stages first, then the sidecars' in the order they were measured.
    assert names[1:7] == [
        "offer alone, tight loop",
        "offer in a request loop (request path)",
        "flush: drain, encode, aiohttp POST",
        "monitor: window intake (in process)",
        "stub process (HTTP, parse)",
        "monitor process (HTTP, parse, intake, evaluation)",
    ]


def test_buffer_stages_are_timed_on_real_rows(
    budget: ModuleType, model: tuple[LogisticRegression, object, object]
) -> None:
    fitted, X, _ = model
    batches = list(budget.build_batches(fitted, X, 2))
    assert len(batches) == 2
    assert all(len(batch) == budget.BATCH for batch in batches)
    ids = [row[0][0] for batch in batches for row in batch]
    assert len(set(ids)) == len(ids)  # fresh ids, as serving issues them
    stages = budget.time_buffer(batches, FAST)
    assert [stage.name for stage in stages] == [
        "offer alone, tight loop",
        "drain: join into columns",
        "encode the record batch",
    ]
    assert all(stage.where == budget.SERVING and stage.us_per_record > 0 for stage in stages)


def test_request_path_is_timed_on_real_requests_that_reach_the_hand_off(
    budget: ModuleType,
    model: tuple[LogisticRegression, object, object],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    fitted, X, _ = model
    monkeypatch.setattr(budget, "BATCH", 50)
    monkeypatch.setattr(budget, "REQUEST_ROUNDS", 2)
    # time_request_path exits if a round with the buffer did not offer a record per request.
    stage = budget.time_request_path(fitted, X, tmp_path)
    assert (stage.name, stage.where) == (budget.REQUEST_PATH, budget.SERVING)
    assert math.isfinite(stage.us_per_record)


def test_monitor_intake_is_timed_only_after_the_warm_batches(
    budget: ModuleType, model: tuple[LogisticRegression, object, object], tmp_path: Path
) -> None:
    fitted, X, y = model
    config = budget.serving_bench.build_monitor_config(tmp_path, fitted, X, y)
    service = budget.build_service(config)
    batches = list(budget.build_batches(fitted, X, 3))
    stages = budget.time_monitor_intake(service, batches, 2, FAST)
    assert [stage.where for stage in stages] == [budget.SIDECAR, budget.SIDECAR]
    assert all(stage.us_per_record > 0 for stage in stages)
    # The rows reached the window (time_monitor_intake also checks each batch's
    # accepted count), the warm ones included: it holds the newest it has room for.
    assert service.window.snapshot().samples == min(3 * budget.BATCH, service.window.capacity)
