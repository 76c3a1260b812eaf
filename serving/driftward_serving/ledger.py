"""Which prediction ids this server issued recently, and which already got a label.

``POST /feedback`` must say, for each label, whether its prediction id is
known, late, unknown or a duplicate, with bounded memory, at any request rate,
and across ``--workers N`` processes (a label may reach a different worker
than the one that issued its id). Exact maps cannot do all three, so each
worker writes its ids into a ring of Bloom filters ("generations"):

* Every id goes into the current generation; when it holds
  ``generation_capacity`` ids the ring advances and the oldest generation is
  wiped. The newest ``LIVE_GENERATIONS`` generations are *live*; the rest of
  the ring only remembers that an id was issued.
* An id found in a live generation is ``accepted`` (a label for it joins a
  prediction the monitor still holds). One found only in an older generation
  is ``late``: it was issued, but has left the live window ("expired"). One
  found nowhere is ``unknown``: never issued here, or older than the whole
  ring. The live window always covers at least the last
  ``retention`` ids per worker; the late tier about 2.5x that again.
* Labels are remembered the same way in a second ledger, so a repeated label
  is ``duplicate``.
* Evictions are counted (ids leaving the live window, and ids forgotten) so
  operators can tell a too-small retention from clients sending bad ids.

Bloom filters never miss an id they hold. Their false-positive rate is below
1e-4 per full generation (20 bits per id, 7 hashes), so a truly unknown id is
misreported as known or late at most ~0.1 % of the time; the monitor does the
authoritative join. Prediction ids are uuid4, whose bits are already uniform,
so hash positions come straight from the id (no hashing cost).

Memory is one buffer per worker (its *partition*) with a small int64 header
then the filters. Only the owning worker writes its partition, so bit updates
need no locks; other workers only read it. ``open_shared_partitions`` maps
the partitions as files so that workers share them; a single process uses
anonymous memory. This module does no network I/O; only the ``open_*``/
``read_*`` functions touch files.
"""

from __future__ import annotations

import fcntl
import mmap
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Final

GENERATIONS: Final = 8
LIVE_GENERATIONS: Final = 3  # the filling generation plus two full ones
HASHES: Final = 7
BITS_PER_ID: Final = 20
HEADER_BYTES: Final = 128
_MAGIC: Final = 0x44524654574C4452  # "DRFTWLDR"
# Header slots (int64): magic, generation capacity, filter bytes, current sequence,
# count in the current generation, then the sequence number held by each slot.
_H_MAGIC, _H_CAPACITY, _H_FILTER_BYTES, _H_SEQ, _H_COUNT, _H_SLOTS = 0, 1, 2, 3, 4, 5
_LOW48: Final = (1 << 48) - 1

ACCEPTED: Final = "accepted"
LATE: Final = "late"
UNKNOWN: Final = "unknown"
DUPLICATE: Final = "duplicate"
LABEL_OUTCOMES: Final = (ACCEPTED, LATE, UNKNOWN, DUPLICATE)


@dataclass(frozen=True)
class LedgerLayout:
    """Sizes of one partition, derived from the retention setting."""

    generation_capacity: int
    filter_bytes: int

    @property
    def partition_bytes(self) -> int:
        """Return the bytes one worker's partition needs."""
        return HEADER_BYTES + GENERATIONS * self.filter_bytes


@dataclass(frozen=True)
class Evictions:
    """Ids that left the live window, and ids forgotten entirely, by one insert."""

    expired: int = 0
    forgotten: int = 0


NO_EVICTIONS: Final = Evictions()


def compute_layout(retention: int) -> LedgerLayout:
    """Size generations so the live window always covers at least `retention` ids."""
    capacity = max(1, -(-retention // (LIVE_GENERATIONS - 1)))
    bits = 1 << max(12, (capacity * BITS_PER_ID - 1).bit_length())
    return LedgerLayout(generation_capacity=capacity, filter_bytes=bits // 8)


def compute_id_int(prediction_id: str) -> int | None:
    """Parse a uuid hex id (with or without dashes) to an int, or None if it is not one."""
    text = prediction_id.replace("-", "") if len(prediction_id) == 36 else prediction_id
    if len(text) != 32:
        return None
    try:
        return int(text, 16)
    except ValueError:
        return None


def build_prediction_ids(raw: bytes) -> list[tuple[str, int]]:
    """Turn 16 random bytes per id into uuid4 ids, as (hex, int) pairs."""
    ids = []
    for start in range(0, len(raw), 16):
        value = int.from_bytes(raw[start : start + 16], "big")
        # Set the version (4) and RFC 4122 variant bits, exactly as uuid.uuid4() does.
        value = (value & ~(0xF << 76)) | (4 << 76)
        value = (value & ~(0x3 << 62)) | (0x2 << 62)
        ids.append((f"{value:032x}", value))
    return ids


def _positions(value: int, mask: int) -> list[int]:
    # Double hashing (Kirsch-Mitzenmacher) over the id's random bits; uuid4's fixed
    # version and variant bits lie outside both 48-bit halves used here.
    first = value & _LOW48
    step = (value >> 80) | 1
    return [(first + i * step) & mask for i in range(HASHES)]


class Partition:
    """One worker's ring of Bloom-filter generations over a writable or read-only buffer."""

    def __init__(self, buffer: memoryview, layout: LedgerLayout) -> None:
        self._buffer = buffer
        self._layout = layout
        # A memoryview cast reads and writes plain ints; numpy scalars cost ~10x more here.
        self._header = buffer[:HEADER_BYTES].cast("q")
        self._bits = buffer[HEADER_BYTES:]
        self._mask = layout.filter_bytes * 8 - 1

    def initialise(self) -> None:
        """Write an empty header unless the buffer already holds this layout's ledger."""
        header = self._header
        same = (
            header[_H_MAGIC] == _MAGIC
            and header[_H_CAPACITY] == self._layout.generation_capacity
            and header[_H_FILTER_BYTES] == self._layout.filter_bytes
        )
        if same:
            return
        self._bits[:] = bytes(len(self._bits))
        for index in range(HEADER_BYTES // 8):
            header[index] = -1 if _H_SLOTS < index < _H_SLOTS + GENERATIONS else 0
        header[_H_CAPACITY] = self._layout.generation_capacity
        header[_H_FILTER_BYTES] = self._layout.filter_bytes
        header[_H_MAGIC] = _MAGIC

    def add(self, value: int) -> Evictions:
        """Record an id in the current generation, advancing the ring when it is full."""
        header = self._header
        evictions = NO_EVICTIONS
        if header[_H_COUNT] >= self._layout.generation_capacity:
            evictions = self._advance()
        base = (header[_H_SEQ] % GENERATIONS) * self._layout.filter_bytes
        bits = self._bits
        for position in _positions(value, self._mask):
            bits[base + (position >> 3)] |= 1 << (position & 7)
        header[_H_COUNT] += 1
        return evictions

    def _advance(self) -> Evictions:
        header = self._header
        capacity = self._layout.generation_capacity
        seq = header[_H_SEQ] + 1
        slot = seq % GENERATIONS
        forgotten = capacity if header[_H_SLOTS + slot] >= 0 else 0
        start = slot * self._layout.filter_bytes
        self._bits[start : start + self._layout.filter_bytes] = bytes(self._layout.filter_bytes)
        header[_H_SLOTS + slot] = seq
        header[_H_SEQ] = seq
        header[_H_COUNT] = 0
        expired = capacity if seq >= LIVE_GENERATIONS else 0
        return Evictions(expired=expired, forgotten=forgotten)

    def find(self, value: int) -> str:
        """Return ACCEPTED if the id is in a live generation, LATE if only older, else UNKNOWN."""
        header = self._header
        current = header[_H_SEQ]
        positions = _positions(value, self._mask)
        bits = self._bits
        found = UNKNOWN
        for slot in range(GENERATIONS):
            seq = header[_H_SLOTS + slot]
            if seq < 0:
                continue
            base = slot * self._layout.filter_bytes
            if all(bits[base + (p >> 3)] & (1 << (p & 7)) for p in positions):
                if current - seq < LIVE_GENERATIONS:
                    return ACCEPTED
                found = LATE
        return found


class Ledger:
    """All workers' partitions of one kind (issued ids or labelled ids), writing to our own."""

    def __init__(self, own: Partition, others: list[Partition]) -> None:
        self._own = own
        self._all = [own, *others]

    def add(self, value: int) -> Evictions:
        """Record an id in this worker's partition."""
        return self._own.add(value)

    def find(self, value: int) -> str:
        """Return the best tier any worker's partition knows the id in."""
        found = UNKNOWN
        for partition in self._all:
            tier = partition.find(value)
            if tier == ACCEPTED:
                return ACCEPTED
            if tier == LATE:
                found = LATE
        return found


def build_memory_ledger(layout: LedgerLayout) -> Ledger:
    """A ledger for a single process, in anonymous memory."""
    partition = Partition(memoryview(bytearray(layout.partition_bytes)), layout)
    partition.initialise()
    return Ledger(partition, [])


def compute_label_outcome(issued: Ledger, labelled: Ledger, prediction_id: str) -> str:
    """Classify one label and remember it, so a second label for the id is a duplicate."""
    value = compute_id_int(prediction_id)
    if value is None:
        return UNKNOWN
    tier = issued.find(value)
    if tier == UNKNOWN:
        return UNKNOWN
    if labelled.find(value) != UNKNOWN:
        return DUPLICATE
    labelled.add(value)
    return tier


@dataclass
class SharedLedgerFiles:
    """Open file handles that keep this worker's partitions mapped and locked."""

    handles: list[object]


def create_shared_files(directory: Path, kind: str, workers: int, layout: LedgerLayout) -> None:
    """Create (or resize) the partition files a multi-worker run will map."""
    directory.mkdir(parents=True, exist_ok=True)
    for index in range(workers):
        path = directory / f"{kind}-{index}.ledger"
        with path.open("ab") as handle:
            handle.truncate(layout.partition_bytes)


def open_shared_ledger(
    directory: Path, kind: str, workers: int, layout: LedgerLayout, keep: SharedLedgerFiles
) -> Ledger:
    """Claim a free partition (by file lock) for writing and map all others for reading."""
    own: Partition | None = None
    others: list[Partition] = []
    for index in range(workers):
        path = directory / f"{kind}-{index}.ledger"
        fd = os.open(path, os.O_RDWR)
        mapped = mmap.mmap(fd, layout.partition_bytes)
        keep.handles.append(mapped)
        partition = Partition(memoryview(mapped), layout)
        if own is None and _try_lock(fd):
            # The lock lives as long as the process; a restarted worker takes the slot
            # back with its ids intact.
            keep.handles.append(fd)
            partition.initialise()
            own = partition
            continue
        os.close(fd)
        others.append(partition)
    if own is None:
        raise RuntimeError(
            f"all {workers} {kind} ledger partitions in {directory} are taken; "
            "is another server using the same shared state directory?"
        )
    return Ledger(own, others)


def _try_lock(fd: int) -> bool:
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    return True


@dataclass
class Ledgers:
    """The issued-id and labelled-id ledgers of this worker, plus what keeps them mapped."""

    issued: Ledger
    labelled: Ledger
    keep: SharedLedgerFiles


def open_ledgers(shared_dir: Path | None, workers: int, retention: int) -> Ledgers:
    """Open shared ledgers when workers share a directory, else in-memory ones."""
    layout = compute_layout(retention)
    keep = SharedLedgerFiles(handles=[])
    if shared_dir is None:
        return Ledgers(build_memory_ledger(layout), build_memory_ledger(layout), keep)
    issued = open_shared_ledger(shared_dir, "issued", workers, layout, keep)
    labelled = open_shared_ledger(shared_dir, "labelled", workers, layout, keep)
    return Ledgers(issued, labelled, keep)


def create_ledger_files(shared_dir: Path, workers: int, retention: int) -> None:
    """Create the partition files for both ledgers before the workers start."""
    layout = compute_layout(retention)
    for kind in ("issued", "labelled"):
        create_shared_files(shared_dir, kind, workers, layout)
