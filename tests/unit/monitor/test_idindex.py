"""The id index: fingerprints that agree across forms, and lookups checked against a dict."""

from __future__ import annotations

import uuid

import numpy as np
import pytest

from driftward_serving.monitor.idindex import ABSENT, IdIndex


def as_column(ids: list[str], width: int | None = None) -> np.ndarray:
    """Ids as a record batch carries them: NUL-padded ASCII of one width."""
    width = width or max(len(i) for i in ids)
    return np.array([i.encode() for i in ids], dtype=f"S{width}")


def test_an_id_has_one_fingerprint_as_bytes_or_text_at_any_width() -> None:
    index = IdIndex(100, seed=1)
    ids = [uuid.uuid4().hex, "order-17", "x" * 40, "0123456789ABCDEF0123456789abcdef", "a"]
    text = index.fingerprint(ids)
    np.testing.assert_array_equal(index.fingerprint(as_column(ids)), text)
    np.testing.assert_array_equal(index.fingerprint(as_column(ids, width=64)), text)
    # Text may end in NUL; a NUL-padded column cannot say so, and the id is another one.
    assert not (index.fingerprint(["order-17\0"]) == index.fingerprint(["order-17"])).all()


def test_distinct_ids_get_distinct_fingerprints() -> None:
    index = IdIndex(100, seed=2)
    ids = [uuid.uuid4().hex for _ in range(50_000)]
    ids += [f"{i:032x}" for i in range(20_000)]  # hex, but nothing like random
    ids += [f"req-{i}" for i in range(20_000)] + [f"{i:031x}g" for i in range(5_000)]
    keys = index.fingerprint(ids)
    assert len(np.unique(keys, axis=0)) == len(ids)


def test_the_seed_moves_every_id_to_another_slot() -> None:
    """The first lane picks the table slot: with another seed no sender can know it."""
    ids = [uuid.uuid4().hex, "order-17"]
    first, again = IdIndex(10, seed=3).fingerprint(ids), IdIndex(10, seed=3).fingerprint(ids)
    np.testing.assert_array_equal(first, again)
    assert not (IdIndex(10, seed=4).fingerprint(ids)[:, 0] == first[:, 0]).any()
    assert not (IdIndex(10).fingerprint(ids)[:, 0] == first[:, 0]).any()  # drawn per process


@pytest.mark.parametrize("generation", [7, 64, 300])
def test_assign_and_lookup_agree_with_a_dict(generation: int) -> None:
    """Chunks with repeats, inside one chunk and across chunks, some larger than a
    generation. Every one of the last `generation` distinct ids must be found with the
    number it was last sent with; nothing is ever found with a wrong number."""
    rng = np.random.default_rng(generation)
    index = IdIndex(generation, seed=generation)
    last: dict[str, int] = {}
    sent: list[str] = []
    seq = 0
    for step in range(300):
        n = int(rng.integers(1, 2 * generation))
        ids = [f"p{int(x)}" for x in rng.integers(0, 6 * generation, n)]
        if step % 3 == 0:
            ids = [uuid.UUID(int=int(x)).hex for x in rng.integers(0, 6 * generation, n)]
        keys = index.fingerprint(as_column(ids) if step % 2 else ids)
        previous = index.assign(keys, np.arange(seq, seq + n, dtype=np.int64))
        for row, ident in enumerate(ids):
            assert previous[row] in (last.get(ident, ABSENT), ABSENT)
            last[ident] = seq + row
            sent.append(ident)
        seq += n
        recent = list(dict.fromkeys(reversed(sent)))[:generation]
        found = index.lookup(index.fingerprint(recent))
        np.testing.assert_array_equal(found, [last[i] for i in recent])
        everything = index.lookup(index.fingerprint(list(last)))
        pairs = zip(last, everything.tolist(), strict=True)
        assert not [i for i, got in pairs if got not in (last[i], ABSENT)]
        assert len(index) <= index.capacity


def test_repeats_in_one_chunk_point_at_the_row_before() -> None:
    index = IdIndex(100, seed=5)
    index.assign(index.fingerprint(["a", "b"]), np.array([0, 1]))
    previous = index.assign(index.fingerprint(["c", "a", "c", "c"]), np.array([2, 3, 4, 5]))
    assert previous.tolist() == [ABSENT, 0, 2, 4]
    assert index.lookup(index.fingerprint(["a", "b", "c", "d"])).tolist() == [3, 1, 5, ABSENT]


def test_fingerprints_that_share_a_slot_are_probed_past() -> None:
    """Rows whose first lane is the same modulo the table size all start at one slot."""
    index = IdIndex(64, seed=6)  # 128 slots
    keys = np.zeros((40, 2), dtype=np.uint64)
    keys[:, 0] = np.arange(40, dtype=np.uint64) * np.uint64(128) + np.uint64(127)  # slot 127
    keys[:, 1] = np.arange(40, dtype=np.uint64)
    index.assign(keys[:25], np.arange(25, dtype=np.int64))
    index.assign(keys[25:], np.arange(100, 115, dtype=np.int64))
    assert index.lookup(keys).tolist() == [*range(25), *range(100, 115)]
    other = keys.copy()
    other[:, 1] += np.uint64(1000)  # same slot, same first lane, another id
    assert index.lookup(other).tolist() == [ABSENT] * 40


def test_a_generation_must_hold_an_id() -> None:
    with pytest.raises(ValueError, match="generation: 0; expected at least 1"):
        IdIndex(0)


def test_ids_hashed_in_blocks_match_ids_hashed_alone() -> None:
    index = IdIndex(10, seed=7)
    ids = [f"é-{i}" * (i % 50 + 1) for i in range(2_500)]  # non-ASCII, up to ~300 bytes
    together = index.fingerprint(ids)
    alone = np.concatenate([index.fingerprint([i]) for i in ids[::97]])
    np.testing.assert_array_equal(together[::97], alone)
    assert len(np.unique(together, axis=0)) == len(set(ids))
