"""The live window: fixed-size rings of recent predictions and joined labels, counted as they go.

Memory is fixed at start-up, whatever the traffic and however long the
process runs:

- the drift window keeps the bin index of each feature of the last
  ``window.size`` predictions in one NumPy ring; the counts per bin are
  updated on every insert and eviction, so an evaluation never rescans records;
- the join buffer remembers the last ``join_buffer_size`` prediction ids (with
  their output and probabilities) so that labels arriving later can be joined;
  ids pushed out are remembered a while longer so that their labels are
  counted as late rather than unknown. Ids are kept as fingerprints in an
  ``IdIndex`` (idindex.py), not as strings: a chunk of ids is a few array
  operations, with no Python object per row;
- the performance window keeps the last ``window.size`` joined labels, with
  confusion counts, probability histograms and sums kept incrementally.

Floating-point sums are recomputed from their ring each time it turns over,
so add-and-subtract rounding cannot accumulate.

No I/O and no clock here; the caller passes records in and takes
``snapshot()`` out. Not thread-safe: one event loop owns it.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np
import numpy.typing as npt

from driftward_serving.monitor.config import MonitorConfig
from driftward_serving.monitor.counts import (
    AUC_BINS,
    ClassificationCounts,
    EstimatedCounts,
    RegressionSums,
    WindowCounts,
)
from driftward_serving.monitor.idindex import ABSENT, IdIndex, Keys
from driftward_serving.monitor.profile import (
    CONFIDENCE_BINS,
    CategoricalProfile,
    FeatureProfile,
    FeatureType,
    NumericBinner,
    NumericProfile,
    Profile,
    Task,
    canonical_key,
    compute_confidence_bins,
    compute_profile_digest,
    to_float,
)

LOG_LOSS_EPSILON = 1e-15


class PredictionLike(Protocol):
    """Anything shaped like a prediction record (the HTTP layer's msgspec struct is)."""

    @property
    def id(self) -> str: ...
    @property
    def ts(self) -> float: ...
    @property
    def features(self) -> Sequence[object]: ...
    @property
    def output(self) -> object: ...
    @property
    def proba(self) -> Sequence[float] | None: ...


class LabelLike(Protocol):
    """Anything shaped like a label record."""

    @property
    def id(self) -> str: ...
    @property
    def ts(self) -> float: ...
    @property
    def label(self) -> object: ...


@dataclass(frozen=True)
class PredictionRecord:
    """One prediction as serving hands it over (features in schema order)."""

    id: str
    ts: float
    features: Sequence[object]
    output: object
    proba: Sequence[float] | None = None


@dataclass(frozen=True)
class LabelRecord:
    """One ground-truth label, joined to its prediction by id."""

    id: str
    ts: float
    label: object


@dataclass(frozen=True)
class IntakeResult:
    """What happened to one batch of records."""

    accepted_predictions: int = 0
    rejected_predictions: int = 0
    duplicate_predictions: int = 0
    accepted_labels: int = 0
    unknown_labels: int = 0
    duplicate_labels: int = 0
    late_labels: int = 0
    invalid_labels: int = 0


@dataclass(frozen=True)
class WindowSizes:
    """How full each bounded structure is (for tests and gauges)."""

    window: int
    window_capacity: int
    join_ids: int
    join_capacity: int
    remembered_ids: int  # fingerprints held for the join and for late labels
    remembered_capacity: int
    labels: int
    label_capacity: int


def _object_table(rows: list[Sequence[object]], width: int) -> npt.NDArray[np.object_] | None:
    """The batch's features as one (n, width) object array, or None if a value is not a scalar."""
    # One C-level pass builds every column; slicing it is far cheaper than a
    # Python comprehension per feature (50 features x 100k rows: ~10x).
    try:
        table = np.array(rows, dtype=object)
    except ValueError:
        return None
    return table if table.shape == (len(rows), width) else None


def _numeric_column(values: Sequence[object] | npt.NDArray[Any]) -> npt.NDArray[np.float64]:
    try:
        return np.asarray(values, dtype=np.float64)
    except (TypeError, ValueError):
        # A stray string or object in the batch: convert one by one, NaN for junk.
        return np.fromiter((to_float(v) for v in values), dtype=np.float64, count=len(values))


def _check_feature(profile: FeatureProfile, expected: FeatureType) -> None:
    actual = FeatureType.NUMERIC if isinstance(profile, NumericProfile) else FeatureType.CATEGORICAL
    if actual is not expected:
        raise ValueError(
            f"feature {profile.name!r} is {expected.value} in monitor.json but "
            f"{actual.value} in the reference profile; rebuild the profile or fix the config"
        )


def _bucket_array(profile: CategoricalProfile, values: npt.NDArray[Any]) -> npt.NDArray[np.int64]:
    """``bucket_values`` for an array: one key per distinct value, not one per row."""
    if not len(values):
        return np.empty(0, dtype=np.int64)
    distinct, inverse = np.unique(values, return_inverse=True)
    return profile.bucket_values(distinct.tolist())[inverse.reshape(-1)]


@dataclass(frozen=True)
class _Outputs:
    """A chunk's model outputs as the join buffer stores them."""

    classes: npt.NDArray[np.int32]  # class index (k = not a known class), -1 for regression
    values: npt.NDArray[np.float64]  # regression output, NaN for classification
    proba: npt.NDArray[np.float32]  # (n, k), zeros where has_proba is False
    has_proba: npt.NDArray[np.bool_]

    @classmethod
    def classification(
        cls, classes: npt.NDArray[np.int32], proba: npt.NDArray[np.float64] | None, k: int
    ) -> _Outputs:
        """Outputs of a classifier; a probability row with NaN or infinity counts as none."""
        n = len(classes)
        if proba is None:
            return cls(classes, np.full(n, np.nan), np.zeros((n, k), np.float32), np.zeros(n, bool))
        finite = np.isfinite(proba)
        if finite.all():  # the usual case: one reduction, no per-row mask
            return cls(classes, np.full(n, np.nan), proba.astype(np.float32), np.ones(n, bool))
        has_proba = np.asarray(finite.all(axis=1), dtype=bool)
        kept = np.where(has_proba[:, None], proba, 0.0).astype(np.float32)
        return cls(classes, np.full(n, np.nan), kept, has_proba)

    @classmethod
    def regression(cls, values: npt.NDArray[np.float64], k: int) -> _Outputs:
        """Outputs of a regressor: values only."""
        n = len(values)
        return cls(
            np.full(n, -1, np.int32), values, np.zeros((n, k), np.float32), np.zeros(n, bool)
        )


def _regression_sums(
    predicted: npt.NDArray[np.float64], truth: npt.NDArray[np.float64]
) -> npt.NDArray[np.float64]:
    """The performance window's running sums: sum |e|, sum e^2, sum y, sum y^2."""
    error = predicted - truth
    return np.array(
        [np.abs(error).sum(), (error * error).sum(), truth.sum(), (truth * truth).sum()]
    )


# Up to this many classes, a row's largest probability is found column by column.
ROW_MAX_COLUMNS = 16


def _row_max(rows: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
    """Each row's largest value. NumPy reduces along a short last axis slowly (~190 µs
    for 5,000 rows of 2, against ~9 for a maximum of the two columns); from about 32
    columns on, its reduction is the faster one."""
    width = rows.shape[1]
    if not 0 < width <= ROW_MAX_COLUMNS:
        reduced: npt.NDArray[np.float64] = rows.max(axis=1)
        return reduced
    best = rows[:, 0].copy()
    for column in range(1, width):
        np.maximum(best, rows[:, column], out=best)
    return best


def _ring_spans(start: int, n: int, size: int) -> tuple[tuple[slice, slice], ...]:
    """Where `n` rows (at most `size`) written from position `start` of a ring go: one
    span, or two when they wrap, each a (ring, rows) pair of slices. A slice copies
    like memcpy; an index array per row (seqs % size) costs a scatter or a gather."""
    first = min(n, size - start)
    if first == n:
        return ((slice(start, start + n), slice(0, n)),)
    return ((slice(start, size), slice(0, first)), (slice(0, n - first), slice(first, n)))


# The most waiting numeric values before intake bins them (~80 ms of binning): the
# default window (5,000 rows) never gets there, a 1,000,000-row one does.
SETTLE_LIMIT_VALUES = 2_000_000


class LiveWindow:
    """Bounded live state of one monitor: drift window, join buffer, performance window."""

    def __init__(self, profile: Profile, config: MonitorConfig, join_buffer_size: int) -> None:
        self.profile = profile
        self.config = config
        self.profile_digest = compute_profile_digest(profile)
        self._task = config.model.task
        if profile.task is not None and profile.task is not self._task:
            raise ValueError(
                f"model.task is {self._task.value} in monitor.json but the reference profile "
                f"was built for {profile.task.value}"
            )
        self._features = [profile.feature(f.name) for f in config.features]
        for feature, found in zip(config.features, self._features, strict=True):
            _check_feature(found, feature.type)
        self._output = self._usable_output(profile)
        columns: list[FeatureProfile] = [*self._features]
        if self._output is not None:
            columns.append(self._output)
        sizes = [c.n_bins for c in columns]
        self._offsets = np.concatenate([[0], np.cumsum(sizes)]).astype(np.int64)
        self._columns = columns
        numeric = [(j, f) for j, f in enumerate(self._features) if isinstance(f, NumericProfile)]
        self._numeric_features = np.array([j for j, _ in numeric], dtype=np.intp)
        # The same columns as a slice when they are the first ones (every feature numeric,
        # the usual case): a view and a strided fill instead of an index array's copies.
        m = self._numeric_features.size
        contiguous = bool((self._numeric_features == np.arange(m)).all())
        self._numeric_columns: slice | npt.NDArray[np.intp] = (
            slice(0, m) if contiguous else self._numeric_features
        )
        # The columns a binary batch bins on arrival (categorical features and the output).
        self._eager_columns = np.setdiff1d(np.arange(len(columns)), self._numeric_features)
        self._numeric_binner = NumericBinner([f for _, f in numeric])

        self.capacity = config.window.size
        self.join_capacity = max(join_buffer_size, self.capacity)
        w, j = self.capacity, self.join_capacity
        self._init_drift_window(w, len(columns))
        self._next = 0  # sequence number of the next prediction

        self._classes = profile.classes if self._task is Task.CLASSIFICATION else None
        self._k = len(self._classes) if self._classes else 0
        self._class_index = {key: i for i, key in enumerate(self._classes or ())}

        # Ids pushed out of the join buffer stay in the index until at least half a join
        # buffer of newer ids has come, so that their labels count as late, not unknown.
        self._ids = IdIndex(j + j // 2)
        # Whether a slot holds its id's latest prediction (False once the id is sent again).
        self._join_current = np.zeros(j, dtype=bool)
        self._join_class = np.full(j, -1, dtype=np.int32)
        self._join_value = np.full(j, np.nan, dtype=np.float64)
        self._join_proba = np.zeros((j, self._k), dtype=np.float32)
        self._join_has_proba = np.zeros(j, dtype=bool)
        self._join_labelled = np.zeros(j, dtype=bool)
        self._labelled_in_window = 0
        self.join_evictions = 0  # ids pushed out of the join buffer before their label came

        k, c = self._k, CONFIDENCE_BINS
        self._confidence_counts = np.zeros(c, dtype=np.int64)
        self._confidence_sums = np.zeros(c, dtype=np.float64)
        self._proba_sum = np.zeros((k, k), dtype=np.float64)
        self._n_proba = 0
        self._window_inserts_since_exact = 0
        self._init_performance()

    def _init_drift_window(self, w: int, width: int) -> None:
        self._bins = np.zeros((w, width), dtype=np.int32)
        # The numeric features of binary batches are binned lazily. Their raw values wait
        # in `_raw`, and their cells in `_bins` point at a scratch count (the last one;
        # never read, nor kept right), until `_settle` bins the rows still in the window
        # when the counts are read. A row that enters and leaves between two reads is
        # never binned: at 4,000 records/s, a 5,000-row window and a 30 s interval, that
        # is most of them.
        self._scratch = int(self._offsets[-1])
        self._counts = np.zeros(self._scratch + 1, dtype=np.int64)
        self._raw = np.zeros((w, self._numeric_features.size), dtype=np.float64)
        self._pending = np.zeros(w, dtype=bool)
        self._ts = np.zeros(w, dtype=np.float64)

    def _init_performance(self) -> None:
        w, k = self.capacity, self._k
        self._perf_next = 0
        self._perf_cell = np.zeros(w, dtype=np.int64)
        self._perf_auc_bin = np.zeros((w, k), dtype=np.int16)
        self._perf_label = np.zeros(w, dtype=np.int64)
        self._perf_has_proba = np.zeros(w, dtype=bool)
        self._perf_loss = np.zeros(w, dtype=np.float64)
        self._perf_pred = np.zeros(w, dtype=np.float64)
        self._perf_truth = np.zeros(w, dtype=np.float64)
        self._confusion = np.zeros((k + 1) * (k + 1), dtype=np.int64)
        self._auc_positive = np.zeros((k, AUC_BINS), dtype=np.int64)
        self._auc_negative = np.zeros((k, AUC_BINS), dtype=np.int64)
        self._loss_sum = 0.0
        self._proba_labels = 0
        self._regression = np.zeros(4, dtype=np.float64)  # sum |e|, sum e^2, sum y, sum y^2
        self._perf_inserts_since_exact = 0

    def _usable_output(self, profile: Profile) -> FeatureProfile | None:
        output = profile.output
        if self._task is Task.CLASSIFICATION:
            if isinstance(output, CategoricalProfile) and profile.classes is not None:
                return output
            return None
        return output if isinstance(output, NumericProfile) else None

    # --- predictions ----------------------------------------------------------

    @property
    def samples(self) -> int:
        """Predictions in the drift window now."""
        return min(self._next, self.capacity)

    def add_predictions(self, records: Sequence[PredictionLike]) -> IntakeResult:
        """Count a batch of predictions into the window and the join buffer."""
        width = len(self._features)
        valid = [r for r in records if len(r.features) == width]
        duplicates = 0
        for start in range(0, len(valid), self.capacity):
            chunk = valid[start : start + self.capacity]
            duplicates += self._insert(
                self._ids.fingerprint([r.id for r in chunk]),
                np.array([r.ts for r in chunk], dtype=np.float64),
                self._bin_chunk(chunk),
                self._outputs(chunk),
            )
        return IntakeResult(
            accepted_predictions=len(valid),
            rejected_predictions=len(records) - len(valid),
            duplicate_predictions=duplicates,
        )

    def add_prediction_columns(
        self,
        ids: npt.NDArray[np.bytes_] | Sequence[str],
        ts: npt.NDArray[np.float64],
        features: npt.NDArray[np.float64],
        outputs: npt.NDArray[Any],
        proba: npt.NDArray[np.float64] | None,
    ) -> IntakeResult:
        """Count a batch given as columns (the binary record batch): no object per row.
        `ids` are the batch's NUL-padded ASCII column, or text."""
        n = len(ids)
        if features.ndim != 2 or features.shape[1] != len(self._features):
            return IntakeResult(rejected_predictions=n)
        keys = self._ids.fingerprint(ids)
        duplicates = 0
        for start in range(0, n, self.capacity):
            stop = min(n, start + self.capacity)
            rows = slice(start, stop)
            duplicates += self._insert(
                keys[rows],
                ts[rows],
                self._bin_columns(features[rows], outputs[rows]),
                self._output_columns(outputs[rows], None if proba is None else proba[rows]),
                features[rows][:, self._numeric_columns] if self._numeric_features.size else None,
            )
        return IntakeResult(accepted_predictions=n, duplicate_predictions=duplicates)

    def _bin_chunk(self, chunk: Sequence[PredictionLike]) -> npt.NDArray[np.int32]:
        n = len(chunk)
        bins = np.empty((n, len(self._columns)), dtype=np.int32)
        table = _object_table([r.features for r in chunk], len(self._features))
        for j, profile in enumerate(self._features):
            column = table[:, j] if table is not None else [r.features[j] for r in chunk]
            if isinstance(profile, NumericProfile):
                local = profile.bin_values(_numeric_column(column))
            else:
                local = profile.bucket_values(column)
            bins[:, j] = local + self._offsets[j]
        if self._output is not None:
            j = len(self._features)
            if isinstance(self._output, NumericProfile):
                local = self._output.bin_values(_numeric_column([r.output for r in chunk]))
            else:
                local = self._output.bucket_values(r.output for r in chunk)
            bins[:, j] = local + self._offsets[j]
        return bins

    def _bin_columns(
        self, features: npt.NDArray[np.float64], outputs: npt.NDArray[Any]
    ) -> npt.NDArray[np.int32]:
        """Bins of a column batch; numeric features get the scratch cell, binned by `_settle`."""
        bins = np.empty((len(features), len(self._columns)), dtype=np.int32)
        bins[:, self._numeric_columns] = self._scratch
        for j, profile in enumerate(self._columns):
            if j < len(self._features) and isinstance(profile, NumericProfile):
                continue
            column = features[:, j] if j < len(self._features) else outputs
            if isinstance(profile, NumericProfile):
                local = profile.bin_values(_numeric_column(column))
            else:
                local = _bucket_array(profile, column)
            bins[:, j] = local + self._offsets[j]
        return bins

    def _settle(self) -> None:
        """Bin the numeric features of the window rows that still wait (`_init_drift_window`)."""
        slots = np.flatnonzero(self._pending)
        if not slots.size:
            return
        numeric = self._numeric_features
        bins = self._numeric_binner.bin_values(self._raw[slots]) + self._offsets[numeric]
        self._bins[np.ix_(slots, numeric)] = bins
        self._counts += np.bincount(bins.ravel(), minlength=self._counts.size)
        self._pending[slots] = False

    def _outputs(self, chunk: Sequence[PredictionLike]) -> _Outputs:
        n, k = len(chunk), self._k
        if self._task is Task.REGRESSION:
            return _Outputs.regression(_numeric_column([r.output for r in chunk]), k)
        index = self._class_index
        classes = np.array([index.get(canonical_key(r.output), k) for r in chunk], dtype=np.int32)
        rows = [r.proba for r in chunk]
        usable = [i for i, row in enumerate(rows) if row is not None and len(row) == k]
        if not k or not usable:
            return _Outputs.classification(classes, None, k)
        # One conversion for the whole chunk; only a chunk with junk in it goes row by row.
        picked = [list(rows[i]) for i in usable]  # type: ignore[arg-type]
        try:
            parsed = np.asarray(picked, dtype=np.float64)
        except (TypeError, ValueError):
            parsed = np.array([_numeric_column(row) for row in picked], dtype=np.float64)
        table = np.full((n, k), np.nan)
        table[usable] = parsed
        return _Outputs.classification(classes, table, k)

    def _output_columns(
        self, outputs: npt.NDArray[Any], proba: npt.NDArray[np.float64] | None
    ) -> _Outputs:
        n, k = len(outputs), self._k
        if self._task is Task.REGRESSION:
            return _Outputs.regression(_numeric_column(outputs), k)
        distinct, inverse = np.unique(outputs, return_inverse=True)
        index = self._class_index
        codes = np.array([index.get(canonical_key(v), k) for v in distinct.tolist()], np.int32)
        classes = codes[inverse.reshape(-1)] if n else np.empty(0, dtype=np.int32)
        fits = k and proba is not None and proba.ndim == 2 and proba.shape[1] == k
        return _Outputs.classification(classes, proba if fits else None, k)

    def _estimated_update(self, join_slots: npt.NDArray[np.int64], sign: int) -> None:
        self._count_estimated(
            self._join_class[join_slots],
            self._join_proba[join_slots],
            self._join_has_proba[join_slots],
            sign,
        )

    def _count_estimated(
        self,
        predicted: npt.NDArray[np.int32],
        proba: npt.NDArray[np.float32],
        has_proba: npt.NDArray[np.bool_],
        sign: int,
    ) -> None:
        """Add (sign +1) or take off (-1) the rows that have probabilities."""
        if not has_proba.all():
            if not has_proba.any():
                return
            predicted, proba = predicted[has_proba], proba[has_proba]
        k = self._k
        rows = proba.astype(np.float64)
        confidence = _row_max(rows)
        bins = compute_confidence_bins(confidence, CONFIDENCE_BINS)
        self._confidence_counts += sign * np.bincount(bins, minlength=CONFIDENCE_BINS)
        self._confidence_sums += sign * np.bincount(
            bins, weights=confidence, minlength=CONFIDENCE_BINS
        )
        self._n_proba += sign * len(rows)
        # Each row's probabilities summed into its predicted class's row of the k x k
        # table: one bincount per column, by predicted class. (np.add.at was the slowest
        # step of the intake; one bincount over k x k cells spent most of its time
        # building the cells, ~250 µs for 5,000 rows of 2 classes against ~20.)
        known = predicted < k
        if not known.all():
            predicted, rows = predicted[known], rows[known]
        sums = np.empty((k, k), dtype=np.float64)
        for column in range(k):
            sums[:, column] = np.bincount(predicted, weights=rows[:, column], minlength=k)
        self._proba_sum += sign * sums

    def _insert(
        self,
        keys: Keys,
        ts: npt.NDArray[np.float64],
        bins: npt.NDArray[np.int32],
        outputs: _Outputs,
        raw: npt.NDArray[np.float64] | None = None,
    ) -> int:
        n, w = len(keys), self.capacity
        seqs = np.arange(self._next, self._next + n, dtype=np.int64)
        # Evict from the drift window first: it reads join-buffer rows that the
        # join eviction below may overwrite when both have the same size.
        turnover = self._evict_window(seqs)
        spans = _ring_spans(self._next % w, n, w)
        for ring, part in spans:
            self._bins[ring] = bins[part]
            self._pending[ring] = raw is not None
            self._ts[ring] = ts[part]
            if raw is not None:
                self._raw[ring] = raw[part]
        # Lazily binned cells all point at the scratch count: only the others need counting.
        counted = bins if raw is None else bins[:, self._eager_columns]
        self._counts += np.bincount(counted.ravel(), minlength=self._counts.size)
        if raw is not None and np.count_nonzero(self._pending) * raw.shape[1] > SETTLE_LIMIT_VALUES:
            self._settle()  # a large window: no read should have to bin all of it
        duplicates = self._join(keys, seqs, outputs)
        self._next += n

        if turnover:
            self._window_inserts_since_exact = 0
        else:
            self._window_inserts_since_exact += n
            if self._window_inserts_since_exact >= w:
                self._recompute_estimated()
        return duplicates

    def _evict_window(self, seqs: npt.NDArray[np.int64]) -> bool:
        """Take the rows that `seqs` push out of the drift window off its counts;
        True when that is the whole window (the counts are then exact zeros)."""
        w, j = self.capacity, self.join_capacity
        evicted = seqs[seqs >= w] - w
        if not evicted.size:
            return False
        if evicted.size == self.samples:
            # A chunk of window.size rows (one default-sized POST at high traffic):
            # start from zero instead of subtracting every row.
            self._counts[:] = 0
            self._clear_estimated()
            self._labelled_in_window = 0
            return True
        old = self._bins[evicted % w]
        self._counts -= np.bincount(old.ravel(), minlength=self._counts.size)
        self._estimated_update(evicted % j, -1)
        self._labelled_in_window -= int(self._join_labelled[evicted % j].sum())
        return False

    def _join(self, keys: Keys, seqs: npt.NDArray[np.int64], outputs: _Outputs) -> int:
        """Put the chunk in the join buffer; returns how many ids were in it already."""
        n, j = len(keys), self.join_capacity
        spans = _ring_spans(self._next % j, n, j)
        # An id leaves the join buffer when its slot is reused, unless it was sent again
        # since (then it points at its newer slot). The index needs no delete: a label
        # tells a pushed-out id by its sequence number (add_labels).
        for ring, _ in spans:
            unlabelled = self._join_current[ring] & ~self._join_labelled[ring]
            self.join_evictions += int(np.count_nonzero(unlabelled))
        previous = self._ids.assign(keys, seqs)
        # Sent before (in an earlier chunk or this one) and still in the buffer once this
        # chunk is in: that older slot stops being current.
        repeated = previous[previous >= max(0, self._next + n - j)]
        for ring, part in spans:
            self._join_current[ring] = True
            self._join_class[ring] = outputs.classes[part]
            self._join_value[ring] = outputs.values[part]
            self._join_proba[ring] = outputs.proba[part]
            self._join_has_proba[ring] = outputs.has_proba[part]
            self._join_labelled[ring] = False
        self._join_current[repeated % j] = False
        # Counted from the chunk itself, not gathered back from the join buffer.
        self._count_estimated(outputs.classes, outputs.proba, outputs.has_proba, +1)
        return int(repeated.size)

    def _window_join_slots(self) -> npt.NDArray[np.int64]:
        return np.arange(self._next - self.samples, self._next, dtype=np.int64) % self.join_capacity

    def _clear_estimated(self) -> None:
        self._confidence_counts[:] = 0
        self._confidence_sums[:] = 0.0
        self._proba_sum[:] = 0.0
        self._n_proba = 0

    def _recompute_estimated(self) -> None:
        self._clear_estimated()
        self._estimated_update(self._window_join_slots(), +1)
        self._window_inserts_since_exact = 0

    # --- labels ---------------------------------------------------------------

    def add_labels(self, records: Sequence[LabelLike]) -> IntakeResult:
        """Join labels to their predictions by id and count them into the performance window.

        Ids are resolved one at a time (a dict lookup each); the counting is done per
        chunk with array operations. Counting label by label cost ~60 µs per label, so a
        backfill of 50,000 late labels held the event loop for seconds.
        """
        if not records:
            return IntakeResult()
        unknown = duplicate = late = invalid = 0
        regression = self._task is Task.REGRESSION
        slots: list[int] = []
        seqs: list[int] = []
        truths: list[float] = []
        taken: set[int] = set()
        found = self._ids.lookup(self._ids.fingerprint([record.id for record in records]))
        # The oldest sequence number still in the join buffer; older ones were pushed out.
        oldest = self._next - self.join_capacity
        for record, seq in zip(records, found.tolist(), strict=True):
            if seq == ABSENT:
                unknown += 1
                continue
            if seq < oldest:
                late += 1
                continue
            slot = seq % self.join_capacity
            if slot in taken or self._join_labelled[slot]:
                duplicate += 1
                continue
            if regression:
                truth = to_float(record.label)
                if math.isnan(truth) or math.isnan(self._join_value[slot]):
                    invalid += 1
                    continue
            else:
                truth = self._class_index.get(canonical_key(record.label), self._k)
            taken.add(slot)
            slots.append(slot)
            seqs.append(seq)
            truths.append(truth)
        if slots:
            slot_array = np.asarray(slots, dtype=np.int64)
            # No class list: the label is joined and counted, but cannot be scored.
            if regression or self._k:
                self._push_labels(slot_array, np.asarray(truths))
            self._join_labelled[slot_array] = True
            in_window = np.asarray(seqs, dtype=np.int64) >= self._next - self.samples
            self._labelled_in_window += int(np.count_nonzero(in_window))
        return IntakeResult(
            accepted_labels=len(slots),
            unknown_labels=unknown,
            duplicate_labels=duplicate,
            late_labels=late,
            invalid_labels=invalid,
        )

    def _push_labels(self, join_slots: npt.NDArray[np.int64], truths: npt.NDArray[Any]) -> None:
        """Count joined labels into the performance ring, evicting the oldest when full."""
        w = self.capacity
        for start in range(0, len(join_slots), w):
            slots, truth = join_slots[start : start + w], truths[start : start + w]
            sequence = np.arange(self._perf_next, self._perf_next + len(slots), dtype=np.int64)
            positions = sequence % w
            # At most w labels per chunk, so every position reused here holds an older label.
            self._evict_labels(positions[sequence >= w])
            if self._task is Task.REGRESSION:
                self._add_regression_labels(positions, slots, truth.astype(np.float64))
            else:
                self._add_class_labels(positions, slots, truth.astype(np.int64))
            self._perf_next += len(slots)
            self._perf_inserts_since_exact += len(slots)
            if self._perf_inserts_since_exact >= w:
                self._recompute_performance()

    def _add_regression_labels(
        self,
        positions: npt.NDArray[np.int64],
        join_slots: npt.NDArray[np.int64],
        truth: npt.NDArray[np.float64],
    ) -> None:
        predicted = self._join_value[join_slots]
        self._perf_pred[positions], self._perf_truth[positions] = predicted, truth
        self._regression += _regression_sums(predicted, truth)

    def _add_class_labels(
        self,
        positions: npt.NDArray[np.int64],
        join_slots: npt.NDArray[np.int64],
        truth: npt.NDArray[np.int64],
    ) -> None:
        k = self._k
        cells = self._join_class[join_slots].astype(np.int64) * (k + 1) + truth
        self._confusion += np.bincount(cells, minlength=self._confusion.size)
        self._perf_cell[positions] = cells
        self._perf_label[positions] = truth
        has_proba = self._join_has_proba[join_slots] & (truth < k)
        self._perf_has_proba[positions] = has_proba
        if not has_proba.any():
            return
        truth, positions = truth[has_proba], positions[has_proba]
        rows = self._join_proba[join_slots[has_proba]].astype(np.float64)
        bins = np.clip((rows * AUC_BINS).astype(np.int64), 0, AUC_BINS - 1)
        self._perf_auc_bin[positions] = bins
        picked = rows[np.arange(len(rows)), truth]
        loss = -np.log(np.maximum(picked, LOG_LOSS_EPSILON))
        self._perf_loss[positions] = loss
        self._count_auc(truth, bins, +1)
        self._loss_sum += float(loss.sum())
        self._proba_labels += len(truth)

    def _count_auc(
        self, truth: npt.NDArray[np.int64], bins: npt.NDArray[np.integer[Any]], sign: int
    ) -> None:
        """Each label's probability bin for its own class counts as a positive for that
        class; its bins for the other classes count as negatives for them."""
        k = self._k
        classes = np.arange(k, dtype=np.int64)
        cells = classes * AUC_BINS + bins.astype(np.int64)  # [labels, k]
        positive = classes == truth[:, None]
        size = k * AUC_BINS
        self._auc_positive += sign * np.bincount(cells[positive], minlength=size).reshape(
            k, AUC_BINS
        )
        self._auc_negative += sign * np.bincount(cells[~positive], minlength=size).reshape(
            k, AUC_BINS
        )

    def _evict_labels(self, positions: npt.NDArray[np.int64]) -> None:
        if not positions.size:
            return
        if self._task is Task.REGRESSION:
            self._regression -= _regression_sums(
                self._perf_pred[positions], self._perf_truth[positions]
            )
            return
        self._confusion -= np.bincount(self._perf_cell[positions], minlength=self._confusion.size)
        scored = positions[self._perf_has_proba[positions]]
        if scored.size:
            self._count_auc(self._perf_label[scored], self._perf_auc_bin[scored], -1)
            self._loss_sum -= float(self._perf_loss[scored].sum())
            self._proba_labels -= scored.size

    def _recompute_performance(self) -> None:
        filled = min(self._perf_next, self.capacity)
        if self._task is Task.REGRESSION:
            self._regression[:] = _regression_sums(
                self._perf_pred[:filled], self._perf_truth[:filled]
            )
        else:
            mask = self._perf_has_proba[:filled]
            self._loss_sum = float(self._perf_loss[:filled][mask].sum())
        self._perf_inserts_since_exact = 0

    # --- export ---------------------------------------------------------------

    @property
    def labels(self) -> int:
        """Joined labels in the performance window now."""
        return min(self._perf_next, self.capacity)

    def sizes(self) -> WindowSizes:
        """How full each bounded structure is."""
        return WindowSizes(
            window=self.samples,
            window_capacity=self.capacity,
            join_ids=int(np.count_nonzero(self._join_current)),
            join_capacity=self.join_capacity,
            remembered_ids=len(self._ids),
            remembered_capacity=self._ids.capacity,
            labels=self.labels,
            label_capacity=self.capacity,
        )

    def snapshot(self) -> WindowCounts:
        """The mergeable counts of the window as it is now (copies; safe to hand off)."""
        self._settle()
        filled = self.samples
        features = {
            profile.name: self._counts[self._offsets[i] : self._offsets[i + 1]].copy()
            for i, profile in enumerate(self._features)
        }
        output = None
        if self._output is not None:
            i = len(self._features)
            output = self._counts[self._offsets[i] : self._offsets[i + 1]].copy()
        ts = self._ts[:filled]
        classification = regression = estimated = None
        if self._task is Task.REGRESSION:
            sae, sse, sy, syy = (float(v) for v in self._regression)
            regression = RegressionSums(self.labels, sae, sse, sy, syy)
        elif self._k:
            k = self._k
            classification = ClassificationCounts(
                confusion=self._confusion.reshape(k + 1, k + 1).copy(),
                auc_positive=self._auc_positive.copy(),
                auc_negative=self._auc_negative.copy(),
                log_loss_sum=self._loss_sum,
                proba_labels=self._proba_labels,
            )
            estimated = EstimatedCounts(
                n=self._n_proba,
                confidence_counts=self._confidence_counts.copy(),
                confidence_sums=self._confidence_sums.copy(),
                proba_sum_by_predicted=self._proba_sum.copy(),
            )
        return WindowCounts(
            profile_digest=self.profile_digest,
            samples=filled,
            first_ts=float(ts.min()) if filled else None,
            last_ts=float(ts.max()) if filled else None,
            features=features,
            output=output,
            labelled_in_window=self._labelled_in_window,
            classification=classification,
            regression=regression,
            estimated=estimated,
        )
