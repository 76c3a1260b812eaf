"""Prediction ids to the sequence number each was last sent with, as NumPy arrays.

The monitor joins a label to its prediction by id. It used to keep a dict of
id strings, which cost about 0.7 µs per record at intake in Python-level work:
an id string made per row, a dict insert per row and a delete per id pushed
out (bench/README.md). Here a chunk of ids is a few array operations:

- each id becomes a 128-bit fingerprint of two 64-bit lanes. An id of 32
  lowercase hex digits (serving's own: uuid4 hex) is its 128 bits exactly,
  one half passed through a seeded bijection, so two such ids never share a
  fingerprint. Any other id is hashed from its UTF-8 bytes and its length;
  two of those share one with a chance of about 2**-128 per pair, which the
  join treats as impossible. Ids arrive as a record batch's NUL-padded bytes
  or as JSON text, and both give the same fingerprint for the same id. The
  seeds are drawn per process, so nobody can choose ids that pile up on one
  slot of the table.
- fingerprints live in two open-addressing tables (linear probing, load at
  most 1/2), filled with vectorized probes. Nothing is ever deleted: when the
  current table has taken ``generation`` ids it becomes the older one, and
  the older one is cleared whole. So the last ``generation`` distinct ids are
  always found, and the caller tells an id still in its join buffer from one
  pushed out by the sequence number it gets back.

Memory is fixed at start-up: 2 tables of the next power of two at or above
``2 * generation`` slots, 24 bytes a slot, and 4 bytes a slot of scratch.
This module knows nothing of the window; it must not hold id strings, and
must not allocate per call beyond the chunk's own arrays.
"""

from __future__ import annotations

import secrets
from collections.abc import Sequence
from typing import Any, Final

import numpy as np
import numpy.typing as npt

Keys = npt.NDArray[np.uint64]  # shape (n, 2): one fingerprint per row
Seqs = npt.NDArray[np.int64]
ABSENT: Final = -1
LANES: Final = 2
_WORD: Final = 8
HEX_DIGITS: Final = 32
HASH_BLOCK_ROWS: Final = 1_024
# splitmix64's finalizer, once per lane with its own multipliers (odd, from
# splitmix64 and MurmurHash3's fmix64): a bijection of 64-bit words that mixes
# every input bit into every output bit.
_MULTIPLIERS: Final = (
    np.array([0xBF58476D1CE4E5B9, 0xFF51AFD7ED558CCD], dtype=np.uint64),
    np.array([0x94D049BB133111EB, 0xC4CEB9FE1A85EC53], dtype=np.uint64),
)
_SHIFTS: Final = (np.uint64(30), np.uint64(27), np.uint64(31))
_LENGTH_STEP: Final = np.uint64(0x9E3779B97F4A7C15)
_LOW_NIBBLES: Final = np.uint64(0x0F0F0F0F0F0F0F0F)
_HIGH_NIBBLES: Final = np.uint64(0xF0F0F0F0F0F0F0F0)
_LOW_BITS: Final = np.uint64(0x0101010101010101)
_ZEROS: Final = np.uint64(0x3030303030303030)  # b"0" in every byte


def _mix(words: npt.NDArray[np.uint64], first: Any, second: Any) -> npt.NDArray[np.uint64]:
    """splitmix64's finalizer, in place (uint64 wraps); the multipliers broadcast over
    the last axis, so each lane can have its own."""
    words ^= words >> _SHIFTS[0]
    words *= first
    words ^= words >> _SHIFTS[1]
    words *= second
    words ^= words >> _SHIFTS[2]
    return words


class _Table:
    """One open-addressing table: a fingerprint (two lanes) and a sequence number per slot."""

    __slots__ = ("claim", "count", "first", "mask", "second", "seqs")

    def __init__(self, slots: int, claim: npt.NDArray[np.int32]) -> None:
        self.mask = slots - 1
        self.first = np.zeros(slots, dtype=np.uint64)
        self.second = np.zeros(slots, dtype=np.uint64)
        self.seqs: Seqs = np.full(slots, ABSENT, dtype=np.int64)
        # Scratch for inserts, shared by both tables: which row claimed a free slot.
        self.claim = claim
        self.count = 0

    def clear(self) -> None:
        self.seqs.fill(ABSENT)
        self.count = 0

    def home(self, keys: Keys) -> npt.NDArray[np.intp]:
        # The first lane is mixed with a secret seed (see fingerprint): its low bits are
        # uniform whatever the ids, so they index the table as they are.
        return (keys[:, 0] & np.uint64(self.mask)).astype(np.intp)

    def find(self, keys: Keys) -> npt.NDArray[np.intp]:
        """The slot holding each fingerprint, or ABSENT; one probe step per round."""
        found = np.full(len(keys), ABSENT, dtype=np.intp)
        rows = np.arange(len(keys))
        slots = self.home(keys)
        first, second = keys[:, 0], keys[:, 1]
        while rows.size:
            # A row ends at an empty slot (absent) or at its fingerprint (found). Each
            # read of the table is a cache miss, so only occupied slots have their first
            # lane read, and only a matching first lane has its second read: a new id
            # costs about one read per table instead of three.
            taken = self.seqs[slots] != ABSENT
            rows, slots = rows[taken], slots[taken]
            same = np.flatnonzero(self.first[slots] == first[rows])
            if same.size:
                hit = same[self.second[slots[same]] == second[rows[same]]]
                found[rows[hit]] = slots[hit]
                going = np.ones(rows.size, dtype=bool)
                going[hit] = False
                rows, slots = rows[going], slots[going]
            slots = (slots + 1) & self.mask
        return found

    def insert(self, keys: Keys, seqs: Seqs) -> None:
        """Add fingerprints that are not in the table and are distinct from each other."""
        rows = np.arange(len(keys))
        slots = self.home(keys)
        while rows.size:
            free = np.flatnonzero(self.seqs[slots] == ABSENT)
            # Rows that probe the same free slot: whichever write lands takes it (read
            # back below); the others go on to the next slot, as a taken slot sends them.
            taking, takers = slots[free], rows[free].astype(np.int32)
            self.claim[taking] = takers
            won = self.claim[taking] == takers
            taken, winners = taking[won], takers[won]
            self.first[taken] = keys[winners, 0]
            self.second[taken] = keys[winners, 1]
            self.seqs[taken] = seqs[winners]
            going = np.ones(rows.size, dtype=bool)
            going[free[won]] = False
            rows = rows[going]
            slots = (slots[going] + 1) & self.mask
        self.count += len(keys)


class IdIndex:
    """The sequence number each of the last `generation` distinct ids was last sent with."""

    def __init__(self, generation: int, seed: int | None = None) -> None:
        if generation < 1:
            raise ValueError(f"generation: {generation}; expected at least 1")
        self.generation = generation
        slots = 1 << max(1, (2 * generation - 1).bit_length())
        if generation >= 2**31:
            raise ValueError(f"generation: {generation}; expected less than 2**31")
        claim = np.zeros(slots, dtype=np.int32)
        self._current, self._older = _Table(slots, claim), _Table(slots, claim)
        # A secret per process unless a test fixes it (any int gives every draw).
        entropy = secrets.randbits(128) if seed is None else seed
        draws = np.random.default_rng(entropy).integers(0, 2**64, 1 + 2 * LANES, np.uint64)
        self._hex_seed = draws[0]
        # Per lane: the seed mixed into each word position, and into the length.
        self._word_seed = np.array(draws[1 : 1 + LANES], dtype=np.uint64)
        self._length_seed = np.array(draws[1 + LANES : 1 + 2 * LANES], dtype=np.uint64)

    @property
    def capacity(self) -> int:
        """How many fingerprints the two tables can hold together."""
        return 2 * self.generation

    def __len__(self) -> int:
        """Fingerprints held now, in both tables (an id sent in both counts twice)."""
        return self._current.count + self._older.count

    # --- fingerprints ---------------------------------------------------------

    def fingerprint(self, ids: npt.NDArray[np.bytes_] | Sequence[str]) -> Keys:
        """The fingerprint of each id: fixed-width bytes (a record batch's, NUL padded)
        or text; an id gives the same fingerprint either way."""
        if isinstance(ids, np.ndarray) and ids.dtype.kind == "S":
            table = np.ascontiguousarray(ids)
            lengths = _byte_lengths(table)
        else:
            encoded = [ident.encode() for ident in ids]
            lengths = np.fromiter(map(len, encoded), dtype=np.int64, count=len(encoded))
            width = max(1, int(lengths.max(initial=0)))
            table = np.array(encoded, dtype=f"S{width}") if encoded else np.empty(0, "S1")
        keys = np.empty((len(table), LANES), dtype=np.uint64)
        hexed = self._fingerprint_hex(table, lengths, keys)
        other = np.flatnonzero(~hexed)
        # In blocks of rows: a long id makes every row of the block that wide, and the
        # hash's scratch is 16 bytes per word of it (2 MB per block at 512 UTF-8 chars).
        for start in range(0, other.size, HASH_BLOCK_ROWS):
            rows = other[start : start + HASH_BLOCK_ROWS]
            keys[rows] = self._hash(table[rows], lengths[rows])
        return keys

    def _fingerprint_hex(
        self, table: npt.NDArray[np.bytes_], lengths: npt.NDArray[np.int64], keys: Keys
    ) -> npt.NDArray[np.bool_]:
        """Fill `keys` for the ids that are 32 lowercase hex digits (serving's own: uuid4
        hex) from their 128 bits, exactly; returns which rows those are."""
        n, width = len(table), table.dtype.itemsize
        if width < HEX_DIGITS or not n:
            return np.zeros(n, dtype=bool)
        octets = table.view(np.uint8).reshape(n, width)
        if width > HEX_DIGITS:
            octets = octets[:, :HEX_DIGITS]
        # Eight digits per word at once: a letter has bit 6 set, so a byte's value is its
        # low nibble, plus 9 for a letter. A byte is a lowercase digit exactly when that
        # value fits a nibble and writing it back as a digit gives the byte again.
        text = np.ascontiguousarray(octets).view("<u8")
        words = (text & _LOW_NIBBLES) + ((text >> np.uint64(6)) & _LOW_BITS) * np.uint64(9)
        over_nine = ((words + _LOW_BITS * np.uint64(6)) >> np.uint64(4)) & _LOW_BITS
        written = words + _ZEROS + over_nine * np.uint64(ord("a") - ord("9") - 1)
        wrong = (written ^ text) | (words & _HIGH_NIBBLES)
        # Columns OR-ed one by one: a reduction along a 4-wide axis is ~20x slower.
        hexed: npt.NDArray[np.bool_] = (wrong[:, 0] | wrong[:, 1] | wrong[:, 2] | wrong[:, 3]) == 0
        hexed &= lengths == HEX_DIGITS
        high = words[:, 0] | (words[:, 1] << np.uint64(4))
        low = words[:, 2] | (words[:, 3] << np.uint64(4))
        # The first lane is a seeded bijection of one half: it indexes the table, and a
        # sender cannot aim ids at one slot. With the other half as it is, still exact.
        keys[:, 0] = _mix(low ^ self._hex_seed, _MULTIPLIERS[0][0], _MULTIPLIERS[1][0])
        keys[:, 1] = high
        return hexed

    def _hash(self, table: npt.NDArray[np.bytes_], lengths: npt.NDArray[np.int64]) -> Keys:
        """Any other id: its words mixed with a seed per position and summed, then its
        length mixed in. An all-NUL word adds nothing, so the column width does not
        change the sum. Such a fingerprint equals a hex id's only by a 2**-128 chance."""
        n, width = len(table), table.dtype.itemsize
        octets = table.view(np.uint8).reshape(n, width)
        if width % _WORD:
            pad = np.zeros((n, -width % _WORD), dtype=np.uint8)
            octets = np.concatenate([octets, pad], axis=1)
        words = np.ascontiguousarray(octets).view("<u8").astype(np.uint64)
        positions = np.arange(words.shape[1], dtype=np.uint64)[:, None] * _LENGTH_STEP
        seeds = self._word_seed[None, :] + positions  # (words, lanes)
        first, second = _MULTIPLIERS
        mixed = _mix(words[:, :, None] ^ seeds[None, :, :], first, second)
        mixed -= _mix(seeds.copy(), first, second)[None, :, :]
        sums: Keys = mixed.sum(axis=1, dtype=np.uint64)
        stretched = lengths.astype(np.uint64)[:, None] * _LENGTH_STEP + self._length_seed
        sums ^= _mix(stretched, first, second)
        return _mix(sums, first, second)

    # --- lookups and updates --------------------------------------------------

    def lookup(self, keys: Keys) -> Seqs:
        """The sequence number each fingerprint was last assigned, or ABSENT."""
        return self._locate(keys)[0]

    def _locate(self, keys: Keys) -> tuple[Seqs, npt.NDArray[np.intp]]:
        """Each fingerprint's last sequence number (or ABSENT), and its slot in the
        current table (or ABSENT)."""
        found = np.full(len(keys), ABSENT, dtype=np.int64)
        slots = self._current.find(keys)
        hit = slots != ABSENT
        found[hit] = self._current.seqs[slots[hit]]
        missed = np.flatnonzero(~hit)
        if missed.size and self._older.count:
            older = self._older.find(keys[missed])
            known = older != ABSENT
            found[missed[known]] = self._older.seqs[older[known]]
        return found, slots

    def assign(self, keys: Keys, seqs: Seqs) -> Seqs:
        """Record each row's id as last sent with its sequence number (rows in the order
        sent); returns, per row, the sequence number the id had before that row: from an
        earlier chunk, from an earlier row of this one, or ABSENT."""
        previous, slots = self._locate(keys)
        last = self._last_rows(keys, seqs, previous)
        keys, seqs, slots = keys[last], seqs[last], slots[last]
        while len(keys):
            new = np.flatnonzero(slots == ABSENT)
            room = self.generation - self._current.count
            # Rows from the first one that does not fit on go to the next table, held ids
            # too: a table is cleared only after the next has taken `generation` ids that
            # were all sent after everything in it.
            cut = len(keys) if new.size <= room else int(new[room])
            held = np.flatnonzero(slots[:cut] != ABSENT)
            self._current.seqs[slots[held]] = seqs[held]  # sent again: the newer number
            fitting = new[:room]
            self._current.insert(keys[fitting], seqs[fitting])
            if cut == len(keys):
                break
            self._current, self._older = self._older, self._current
            self._current.clear()
            keys, seqs = keys[cut:], seqs[cut:]
            slots = np.full(len(keys), ABSENT, dtype=np.intp)  # the new table is empty
        return previous

    @staticmethod
    def _last_rows(keys: Keys, seqs: Seqs, previous: Seqs) -> npt.NDArray[np.intp]:
        """The last row of each distinct fingerprint; sets `previous` of every later
        repeat within the chunk to the row before it."""
        ordered = np.sort(keys[:, 0])
        if not (ordered[1:] == ordered[:-1]).any():  # the usual case: all distinct
            return np.arange(len(keys))
        order = np.lexsort((np.arange(len(keys)), keys[:, 1], keys[:, 0]))
        ordered_keys = keys[order]
        repeat = np.flatnonzero((ordered_keys[1:] == ordered_keys[:-1]).all(axis=1)) + 1
        previous[order[repeat]] = seqs[order[repeat - 1]]
        later = np.zeros(len(keys), dtype=bool)
        later[order[repeat - 1]] = True  # a row with a repeat after it is not the last
        return np.flatnonzero(~later)


def _byte_lengths(table: npt.NDArray[np.bytes_]) -> npt.NDArray[np.int64]:
    """Each NUL-padded id's length: up to its last byte that is not NUL."""
    n, width = len(table), table.dtype.itemsize
    octets = table.view(np.uint8).reshape(n, width)
    if not n or octets[:, -1].all():  # serving's ids: all as wide as the column
        return np.full(n, width, dtype=np.int64)
    last = np.argmax(octets[:, ::-1] != 0, axis=1)
    return np.where(octets.any(axis=1), width - last, 0).astype(np.int64)
