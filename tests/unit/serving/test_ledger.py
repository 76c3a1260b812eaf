"""The prediction-id ledger: accepted, late, unknown and duplicate labels, bounded memory."""

from __future__ import annotations

import os
import uuid
from pathlib import Path

import numpy as np
import pytest

from driftward_serving import ledger
from driftward_serving.ledger import (
    ACCEPTED,
    DUPLICATE,
    LATE,
    LIVE_GENERATIONS,
    UNKNOWN,
    build_memory_ledger,
    build_prediction_ids,
    compute_label_outcome,
    compute_layout,
)


def ids(n: int, seed: int) -> list[tuple[str, int]]:
    """n deterministic uuid4 ids."""
    rng = np.random.default_rng(seed)
    return build_prediction_ids(rng.bytes(16 * n))


def test_ids_are_uuid4_hex() -> None:
    for text, value in build_prediction_ids(os.urandom(16 * 50)):
        parsed = uuid.UUID(hex=text)
        assert parsed.version == 4
        assert parsed.variant == uuid.RFC_4122
        assert parsed.int == value
        assert len(text) == 32


def test_id_parsing_accepts_hex_and_dashed_forms_only() -> None:
    text, value = build_prediction_ids(os.urandom(16))[0]
    assert ledger.compute_id_int(text) == value
    assert ledger.compute_id_int(str(uuid.UUID(hex=text))) == value
    assert ledger.compute_id_int("not-an-id") is None
    assert ledger.compute_id_int("z" * 32) is None


def test_layout_keeps_at_least_the_retention_live() -> None:
    layout = compute_layout(1000)
    assert layout.generation_capacity * (LIVE_GENERATIONS - 1) >= 1000
    assert layout.filter_bytes * 8 >= layout.generation_capacity * ledger.BITS_PER_ID


def test_label_outcomes_move_from_accepted_to_late_to_unknown() -> None:
    retention = 10
    layout = compute_layout(retention)
    issued, labelled = build_memory_ledger(layout), build_memory_ledger(layout)
    first = ids(3, seed=1)
    for _, value in first:
        issued.add(value)
    assert compute_label_outcome(issued, labelled, first[0][0]) == ACCEPTED
    assert compute_label_outcome(issued, labelled, first[0][0]) == DUPLICATE
    assert compute_label_outcome(issued, labelled, ids(1, seed=99)[0][0]) == UNKNOWN
    assert compute_label_outcome(issued, labelled, "garbage") == UNKNOWN

    # Push `first` past the live window but not out of the ring.
    expired = 0
    for _, value in ids(retention * 2, seed=2):
        expired += issued.add(value).expired
    assert compute_label_outcome(issued, labelled, first[1][0]) == LATE
    assert compute_label_outcome(issued, labelled, first[1][0]) == DUPLICATE
    assert expired > 0

    # Push them out of the whole ring: now nothing remembers them.
    forgotten = 0
    for _, value in ids(retention * 10, seed=3):
        forgotten += issued.add(value).forgotten
    assert compute_label_outcome(issued, labelled, first[2][0]) == UNKNOWN
    assert forgotten > 0


def test_the_most_recent_retention_ids_are_always_live() -> None:
    retention = 50
    layout = compute_layout(retention)
    issued, labelled = build_memory_ledger(layout), build_memory_ledger(layout)
    stream = ids(retention * 7, seed=4)
    for _, value in stream:
        issued.add(value)
    recent = stream[-retention:]
    outcomes = {compute_label_outcome(issued, labelled, text) for text, _ in recent}
    assert outcomes == {ACCEPTED}


@pytest.mark.parametrize("seed", range(5))
def test_false_positive_rate_is_small(seed: int) -> None:
    """Unknown ids must almost never look known, even with the whole ring full."""
    retention = 2000
    layout = compute_layout(retention)
    issued = build_memory_ledger(layout)
    for _, value in ids(retention * 5, seed=seed):
        issued.add(value)
    probes = ids(20_000, seed=1000 + seed)
    false_positives = sum(issued.find(value) != UNKNOWN for _, value in probes)
    assert false_positives / len(probes) < 0.005


def test_workers_see_each_others_ids_through_shared_files(tmp_path: Path) -> None:
    layout = compute_layout(100)
    ledger.create_shared_files(tmp_path, "issued", 2, layout)
    keep_a, keep_b = ledger.SharedLedgerFiles([]), ledger.SharedLedgerFiles([])
    worker_a = ledger.open_shared_ledger(tmp_path, "issued", 2, layout, keep_a)
    worker_b = ledger.open_shared_ledger(tmp_path, "issued", 2, layout, keep_b)
    (_, value_a), (_, value_b) = ids(2, seed=5)
    worker_a.add(value_a)
    worker_b.add(value_b)
    assert worker_b.find(value_a) == ACCEPTED
    assert worker_a.find(value_b) == ACCEPTED
    assert worker_a.find(ids(1, seed=6)[0][1]) == UNKNOWN
    keep_c = ledger.SharedLedgerFiles([])
    with pytest.raises(RuntimeError, match="taken"):
        ledger.open_shared_ledger(tmp_path, "issued", 2, layout, keep_c)
