"""The live window: incremental counts equal a recount, memory stays bounded, labels join by id."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pytest

from driftward_serving.monitor import window as window_module
from driftward_serving.monitor.config import MonitorConfig, parse_monitor_config
from driftward_serving.monitor.counts import AUC_BINS
from driftward_serving.monitor.profile import CONFIDENCE_BINS, Profile, build_profile
from driftward_serving.monitor.window import LabelRecord, LiveWindow, PredictionRecord

from .data import COLORS, FEATURES, config_doc


def make_predictions(
    rng: np.random.Generator, n: int, start: int = 0, shift: float = 0.0
) -> list[PredictionRecord]:
    """Predictions from the reference's distribution (x shifted by ``shift``)."""
    x = rng.normal(shift, 1.0, size=n)
    z = rng.normal(5.0, 2.0, size=n)
    color = rng.choice([*COLORS, "purple"], size=n, p=[0.49, 0.3, 0.2, 0.01])
    p1 = 1.0 / (1.0 + np.exp(-2.0 * x))
    return [
        PredictionRecord(
            id=f"p{start + i}",
            ts=1_000.0 + start + i,
            features=[float(x[i]), float(z[i]), str(color[i])],
            output=int(p1[i] > 0.5),
            proba=[float(1 - p1[i]), float(p1[i])],
        )
        for i in range(n)
    ]


def recount(
    window: LiveWindow, profile: Profile, records: list[PredictionRecord]
) -> dict[str, Any]:
    """The window's counts computed from scratch over the records it should hold."""
    kept = records[-window.capacity :]
    counts: dict[str, Any] = {}
    for j, spec in enumerate(FEATURES):
        feature = profile.feature(spec.name)
        column = [r.features[j] for r in kept]
        if spec.type.value == "numeric":
            local = feature.bin_values(np.asarray(column, dtype=float))  # type: ignore[union-attr]
        else:
            local = feature.bucket_values(column)  # type: ignore[union-attr]
        counts[spec.name] = np.bincount(local, minlength=feature.n_bins)
    return counts


def test_counts_match_a_recount_after_many_evictions(
    rng: np.random.Generator, profile: Profile, config: MonitorConfig
) -> None:
    window = LiveWindow(profile, config, join_buffer_size=1500)
    records = make_predictions(rng, 3_700)
    for start in range(0, len(records), 333):  # uneven batches across ring boundaries
        window.add_predictions(records[start : start + 333])
    snapshot = window.snapshot()
    expected = recount(window, profile, records)
    assert snapshot.samples == window.capacity == 1000
    for name, counts in expected.items():
        np.testing.assert_array_equal(snapshot.features[name], counts)
    assert snapshot.first_ts == records[-1000].ts
    assert snapshot.last_ts == records[-1].ts


def test_one_batch_larger_than_the_window_keeps_the_newest(
    rng: np.random.Generator, profile: Profile, config: MonitorConfig
) -> None:
    window = LiveWindow(profile, config, join_buffer_size=100)
    records = make_predictions(rng, 2_500)
    result = window.add_predictions(records)
    assert result.accepted_predictions == 2_500
    expected = recount(window, profile, records)
    for name, counts in expected.items():
        np.testing.assert_array_equal(window.snapshot().features[name], counts)


def test_memory_stays_bounded_under_ten_windows_of_traffic(
    rng: np.random.Generator, profile: Profile, config: MonitorConfig
) -> None:
    window = LiveWindow(profile, config, join_buffer_size=2_000)
    arrays_before = {k: v.nbytes for k, v in vars(window).items() if isinstance(v, np.ndarray)}
    for batch in range(20):  # 10x the window, with labels and unknown ids mixed in
        records = make_predictions(rng, 500, start=batch * 500)
        window.add_predictions(records)
        labels = [LabelRecord(r.id, r.ts, r.output) for r in records[::2]]
        labels += [LabelRecord(f"ghost{batch}-{i}", 0.0, 1) for i in range(300)]
        window.add_labels(labels)
    sizes = window.sizes()
    assert sizes.window == sizes.window_capacity == 1_000
    assert sizes.join_ids <= sizes.join_capacity == 2_000
    assert sizes.remembered_ids <= sizes.remembered_capacity == 6_000
    assert sizes.labels <= sizes.label_capacity
    arrays_after = {k: v.nbytes for k, v in vars(window).items() if isinstance(v, np.ndarray)}
    assert arrays_after == arrays_before
    assert sum(window.snapshot().features["x"]) == 1_000
    assert window.join_evictions == 10_000 - 2_000 - 4_000  # unlabelled ids pushed out


def test_resent_prediction_ids_leave_the_join_buffer_once(
    rng: np.random.Generator, profile: Profile, config: MonitorConfig
) -> None:
    window = LiveWindow(profile, config, join_buffer_size=1_000)
    sent: list[str] = []

    def send(records: list[PredictionRecord]) -> int:
        sent.extend(r.id for r in records)
        return window.add_predictions(records).duplicate_predictions

    base = make_predictions(rng, 3_000)
    assert send(base[:500]) == 0
    assert send(base[100:200]) == 100  # sent again: the newer slot is the one that counts
    assert send([base[600], *base[500:700]]) == 1  # p600 twice in one batch
    assert window.add_labels([LabelRecord("p150", 0.0, 1)]).accepted_labels == 1
    for start in range(700, 3_000, 450):
        send(base[start : start + 450])
        # Reference: an id is joinable while its latest sending is among the last 1,000.
        latest = {ident: seq for seq, ident in enumerate(sent)}
        joinable = {i for i, seq in latest.items() if seq >= len(sent) - 1_000}
        assert window.sizes().join_ids == len(joinable)
    pushed_out = len(set(sent)) - len(joinable)
    assert window.join_evictions == pushed_out - 1  # p150 left labelled
    assert window.add_labels([LabelRecord("p150", 0.0, 1)]).accepted_labels == 0


def test_labels_join_and_are_classified(
    rng: np.random.Generator, profile: Profile, config: MonitorConfig
) -> None:
    window = LiveWindow(profile, config, join_buffer_size=1_000)
    first = make_predictions(rng, 1_000)
    window.add_predictions(first)
    result = window.add_labels(
        [LabelRecord("p10", 0.0, 1), LabelRecord("p10", 0.0, 0), LabelRecord("nobody", 0.0, 1)]
    )
    assert (result.accepted_labels, result.duplicate_labels, result.unknown_labels) == (1, 1, 1)
    window.add_predictions(make_predictions(rng, 1_000, start=1_000))  # pushes p0..p999 out
    late = window.add_labels([LabelRecord("p20", 0.0, 1)])
    assert late.late_labels == 1
    assert late.unknown_labels == 0


def test_label_coverage_counts_only_window_predictions(
    rng: np.random.Generator, profile: Profile, config: MonitorConfig
) -> None:
    window = LiveWindow(profile, config, join_buffer_size=5_000)
    records = make_predictions(rng, 1_500)
    window.add_predictions(records)
    # 100 labels for predictions already out of the window, 250 for ones in it.
    window.add_labels([LabelRecord(r.id, 0.0, r.output) for r in records[:100]])
    window.add_labels([LabelRecord(r.id, 0.0, r.output) for r in records[-250:]])
    snapshot = window.snapshot()
    assert snapshot.labelled_in_window == 250
    assert snapshot.classification is not None
    assert snapshot.classification.confusion.sum() == 350
    window.add_predictions(make_predictions(rng, 900, start=1_500))
    assert window.snapshot().labelled_in_window == 100  # p1400..p1499 remain


def test_confusion_and_estimates_follow_evictions(
    rng: np.random.Generator, profile: Profile, config: MonitorConfig
) -> None:
    window = LiveWindow(profile, config, join_buffer_size=1_000)
    records = make_predictions(rng, 3_000)
    for start in range(0, 3_000, 250):
        batch = records[start : start + 250]
        window.add_predictions(batch)
        window.add_labels([LabelRecord(r.id, 0.0, 1 - int(r.output)) for r in batch])
    snapshot = window.snapshot()
    assert snapshot.classification is not None
    confusion = snapshot.classification.confusion
    assert confusion.sum() == 1_000  # the performance window holds the last 1000 labels
    assert np.trace(confusion[:2, :2]) == 0  # every label disagreed with its prediction
    assert snapshot.classification.proba_labels == 1_000
    kept = records[-1_000:]
    expected_loss = sum(
        -math.log(max(r.proba[1 - int(r.output)], 1e-15))
        for r in kept  # type: ignore[index]
    )
    assert snapshot.classification.log_loss_sum == pytest.approx(expected_loss, rel=1e-5)
    assert snapshot.estimated is not None
    assert snapshot.estimated.n == 1_000
    expected_confidence = sum(max(r.proba) for r in kept)  # type: ignore[arg-type]
    assert snapshot.estimated.confidence_sums.sum() == pytest.approx(expected_confidence, rel=1e-5)


def test_label_batches_count_exactly_as_single_labels(
    rng: np.random.Generator, profile: Profile, config: MonitorConfig
) -> None:
    """Labels are counted per batch with array operations; batches of any size, with
    duplicates, unknown ids and labels outside the classes inside them, must leave the
    same counts as labels sent one at a time, and those counts must equal a recount."""
    records = make_predictions(rng, 6_000)
    labels = [
        LabelRecord(r.id, 0.0, int(rng.integers(0, 2)) if i % 17 else "neither")
        for i, r in enumerate(records)
        if i % 5
    ]
    labels += [LabelRecord(labels[i].id, 0.0, 1) for i in range(0, 4_000, 7)]  # duplicates
    labels += [LabelRecord(f"nobody{i}", 0.0, 1) for i in range(50)]
    order = rng.permutation(len(labels))
    labels = [labels[i] for i in order]

    batched = LiveWindow(profile, config, join_buffer_size=10_000)
    single = LiveWindow(profile, config, join_buffer_size=10_000)
    batched.add_predictions(records)
    single.add_predictions(records)
    totals = {"accepted": 0, "duplicate": 0, "unknown": 0}
    start = 0
    for size in [1, 2_500, 3, 999, 1_000, *([400] * 20)]:
        chunk = labels[start : start + size]
        start += size
        got = batched.add_labels(chunk)
        for label in chunk:
            want = single.add_labels([label])
            totals["accepted"] += want.accepted_labels
            totals["duplicate"] += want.duplicate_labels
            totals["unknown"] += want.unknown_labels
        assert got.accepted_labels + got.duplicate_labels + got.unknown_labels == len(chunk)
    assert start >= len(labels)
    assert totals == {"accepted": 4_800, "duplicate": 572, "unknown": 50}

    a, b = batched.snapshot(), single.snapshot()
    assert a.classification is not None
    assert b.classification is not None
    assert a.labelled_in_window == b.labelled_in_window
    np.testing.assert_array_equal(a.classification.confusion, b.classification.confusion)
    np.testing.assert_array_equal(a.classification.auc_positive, b.classification.auc_positive)
    np.testing.assert_array_equal(a.classification.auc_negative, b.classification.auc_negative)
    assert a.classification.proba_labels == b.classification.proba_labels
    assert a.classification.log_loss_sum == pytest.approx(b.classification.log_loss_sum)

    confusion, positive, negative = recount_labels(records, labels, batched.capacity, AUC_BINS)
    np.testing.assert_array_equal(a.classification.confusion, confusion)
    np.testing.assert_array_equal(a.classification.auc_positive, positive)
    np.testing.assert_array_equal(a.classification.auc_negative, negative)


def recount_labels(
    records: list[PredictionRecord], labels: list[LabelRecord], capacity: int, bins: int
) -> tuple[np.ndarray[Any, Any], np.ndarray[Any, Any], np.ndarray[Any, Any]]:
    """Confusion and AUC histograms of the last ``capacity`` accepted labels (two classes),
    recounted from scratch in arrival order: the first label for a known id is accepted."""
    by_id = {r.id: r for r in records}
    seen: set[str] = set()
    accepted = []
    for label in labels:
        if label.id in by_id and label.id not in seen:
            seen.add(label.id)
            accepted.append(label)
    confusion = np.zeros((3, 3), dtype=np.int64)
    positive = np.zeros((2, bins), dtype=np.int64)
    negative = np.zeros((2, bins), dtype=np.int64)
    for label in accepted[-capacity:]:
        record = by_id[label.id]
        truth = label.label if label.label in (0, 1) else 2
        confusion[int(record.output), truth] += 1  # type: ignore[call-overload]
        if truth == 2:
            continue
        for c, p in enumerate(record.proba):  # type: ignore[arg-type]
            cell = min(int(float(np.float32(p)) * bins), bins - 1)  # stored as float32
            (positive if c == truth else negative)[c, cell] += 1
    return confusion, positive, negative


def test_malformed_records_are_rejected_not_fatal(profile: Profile, config: MonitorConfig) -> None:
    window = LiveWindow(profile, config, join_buffer_size=1_000)
    result = window.add_predictions(
        [
            PredictionRecord("a", 1.0, [1.0, 2.0], 1),  # one feature short
            PredictionRecord("b", 2.0, ["oops", None, 7], "unknown-class", [0.5]),
        ]
    )
    assert result.accepted_predictions == 1
    assert result.rejected_predictions == 1
    snapshot = window.snapshot()
    assert snapshot.features["x"][-1] == 1  # "oops" is counted as missing
    assert snapshot.features["color"][-1] == 1  # 7 was never a color: unseen
    assert snapshot.output is not None
    assert snapshot.output[-1] == 1  # an output outside the classes is unseen too
    assert snapshot.estimated is not None
    assert snapshot.estimated.n == 0  # a probability row of the wrong length is ignored


def test_regression_sums(rng: np.random.Generator) -> None:
    columns = {"x": rng.normal(size=800), "y": rng.normal(size=800) * 2.5}
    profile = build_profile(columns, FEATURES[:1], target="y")
    doc = config_doc(
        model={"name": "r", "version": "1", "task": "Regression"},
        features=[{"name": "x", "type": "Numeric"}],
        performance={"metric": "RMSE", "baseline": 1.0, "minLabels": 10},
    )
    window = LiveWindow(profile, parse_monitor_config(doc), join_buffer_size=100)
    preds = [PredictionRecord(f"r{i}", float(i), [float(i)], float(i) * 0.5) for i in range(2_500)]
    window.add_predictions(preds)
    window.add_labels([LabelRecord(f"r{i}", 0.0, float(i)) for i in range(1_000, 2_500)])
    window.add_labels([LabelRecord("r2499", 0.0, "not a number")])
    sums = window.snapshot().regression
    assert sums is not None
    kept = np.arange(1_500, 2_500, dtype=float)
    assert sums.n == 1_000
    assert sums.sum_abs_error == pytest.approx(np.sum(kept * 0.5))
    assert sums.sum_sq_error == pytest.approx(np.sum((kept * 0.5) ** 2))
    assert sums.sum_label == pytest.approx(kept.sum())


def test_config_and_profile_must_agree(profile: Profile) -> None:
    doc = config_doc(features=[{"name": "x", "type": "Categorical"}])
    with pytest.raises(ValueError, match=r"'x' is categorical in monitor.json but numeric"):
        LiveWindow(profile, parse_monitor_config(doc), 100)
    regression = config_doc(
        model={"name": "m", "version": "1", "task": "Regression"}, performance=None
    )
    with pytest.raises(ValueError, match="built for classification"):
        LiveWindow(profile, parse_monitor_config(regression), 100)


def _coded(records: list[PredictionRecord]) -> list[PredictionRecord]:
    """The records with color as the numeric code a model would see (purple is unseen: 3)."""
    codes = {name: float(i) for i, name in enumerate([*COLORS, "purple"])}
    return [
        PredictionRecord(
            r.id, r.ts, [*r.features[:2], codes[str(r.features[2])]], r.output, r.proba
        )
        for r in records
    ]


def _coded_profile(reference: dict[str, Any]) -> Profile:
    """The reference profile with color as the numeric code a model would see."""
    codes = {name: float(i) for i, name in enumerate(COLORS)}
    coded = {**reference, "color": [codes[c] for c in reference["color"]]}
    return build_profile(coded, FEATURES, target="y", proba_columns=["p0", "p1"])


def _add_as_columns(window: LiveWindow, records: list[PredictionRecord], text_output: bool) -> Any:
    outputs = np.array([r.output for r in records])
    return window.add_prediction_columns(
        [r.id for r in records],
        np.array([r.ts for r in records]),
        np.array([r.features for r in records], dtype=np.float64),
        outputs.astype(str) if text_output else outputs,
        np.array([r.proba for r in records], dtype=np.float64),
    )


@pytest.mark.parametrize("text_output", [False, True])
def test_columns_count_exactly_as_records_do(
    rng: np.random.Generator, reference: dict[str, Any], text_output: bool
) -> None:
    profile, config = _coded_profile(reference), parse_monitor_config(config_doc())
    by_records = LiveWindow(profile, config, join_buffer_size=1_500)
    by_columns = LiveWindow(profile, config, join_buffer_size=1_500)
    records = _coded(make_predictions(rng, 2_700, shift=0.3))
    for start in range(0, len(records), 400):  # uneven batches across ring boundaries
        batch = records[start : start + 400]
        labels = [LabelRecord(r.id, 0.0, r.output) for r in batch[::3]]
        expected = by_records.add_predictions(batch)
        assert _add_as_columns(by_columns, batch, text_output) == expected
        assert by_columns.add_labels(labels) == by_records.add_labels(labels)
    got, want = by_columns.snapshot(), by_records.snapshot()
    assert got.samples == want.samples == 1_000
    assert got.features["color"][-2] > 0  # purple reached the unseen bucket
    for name in want.features:
        np.testing.assert_array_equal(got.features[name], want.features[name])
    np.testing.assert_array_equal(got.output, want.output)  # type: ignore[arg-type]
    assert got.classification is not None
    assert want.classification is not None
    np.testing.assert_array_equal(got.classification.confusion, want.classification.confusion)
    assert got.classification.log_loss_sum == pytest.approx(want.classification.log_loss_sum)
    assert got.estimated is not None
    assert want.estimated is not None
    np.testing.assert_array_equal(got.estimated.confidence_counts, want.estimated.confidence_counts)
    assert (got.first_ts, got.last_ts) == (want.first_ts, want.last_ts)


@pytest.mark.parametrize("settle_limit", [10**9, 300])
def test_lazily_binned_columns_count_exactly_whenever_the_window_is_read(
    rng: np.random.Generator,
    reference: dict[str, Any],
    settle_limit: int,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(window_module, "SETTLE_LIMIT_VALUES", settle_limit)
    profile, config = _coded_profile(reference), parse_monitor_config(config_doc())
    by_records = LiveWindow(profile, config, join_buffer_size=1_500)
    mixed = LiveWindow(profile, config, join_buffer_size=1_500)
    records = _coded(make_predictions(rng, 6_000, shift=0.2))
    for number, start in enumerate(range(0, len(records), 350)):
        batch = records[start : start + 350]
        by_records.add_predictions(batch)
        if number % 3 == 2:
            mixed.add_predictions(batch)  # JSON rows among lazily binned column rows
        else:
            _add_as_columns(mixed, batch, text_output=False)
        waiting = int(mixed._pending.sum())
        assert waiting * 3 <= settle_limit + 350 * 3  # intake bins a backlog past the limit
        if number % 4 in (1, 2):  # read sometimes: rows in the window get binned then
            got, want = mixed.snapshot(), by_records.snapshot()
            for name in want.features:
                np.testing.assert_array_equal(got.features[name], want.features[name])
    got, want = mixed.snapshot(), by_records.snapshot()
    for name in want.features:
        np.testing.assert_array_equal(got.features[name], want.features[name])
    assert sum(got.features["x"]) == got.samples == 1_000


@pytest.mark.parametrize("as_columns", [False, True])
def test_a_whole_window_at_once_counts_as_a_fresh_window_would(
    rng: np.random.Generator, reference: dict[str, Any], as_columns: bool
) -> None:
    """A chunk of window.size rows replaces the window: its counts start from zero
    rather than subtracting every row (the default POST at high traffic). They must
    still equal a window that only ever saw those rows, through partial turnovers too."""
    profile, config = _coded_profile(reference), parse_monitor_config(config_doc())
    window = LiveWindow(profile, config, join_buffer_size=2_500)
    records = _coded(make_predictions(rng, 7_400, shift=0.2))

    def add(target: LiveWindow, batch: list[PredictionRecord]) -> None:
        if as_columns:
            _add_as_columns(target, batch, text_output=False)
        else:
            target.add_predictions(batch)

    start = 0
    for size in [1_000, 1_000, 400, 1_000, 1_000, 1_000, 1_000]:
        batch = records[start : start + size]
        start += size
        add(window, batch)
        window.add_labels([LabelRecord(r.id, 0.0, r.output) for r in batch[::3]])
    last = records[start - 1_000 : start]
    fresh = LiveWindow(profile, config, join_buffer_size=2_500)
    add(fresh, last)
    fresh.add_labels([LabelRecord(r.id, 0.0, r.output) for r in last[::3]])
    got, want = window.snapshot(), fresh.snapshot()
    assert got.samples == want.samples == 1_000
    for name in want.features:
        np.testing.assert_array_equal(got.features[name], want.features[name])
    np.testing.assert_array_equal(got.output, want.output)  # type: ignore[arg-type]
    assert got.labelled_in_window == want.labelled_in_window == 334
    assert got.estimated is not None
    assert want.estimated is not None
    assert got.estimated.n == want.estimated.n == 1_000
    np.testing.assert_array_equal(got.estimated.confidence_counts, want.estimated.confidence_counts)
    np.testing.assert_allclose(got.estimated.confidence_sums, want.estimated.confidence_sums)
    np.testing.assert_allclose(
        got.estimated.proba_sum_by_predicted, want.estimated.proba_sum_by_predicted
    )

    add(window, records[start : start + 1_000])  # unlabelled: nothing in the window is
    assert window.snapshot().labelled_in_window == 0


def test_columns_of_the_wrong_width_are_rejected_and_bad_probabilities_ignored(
    profile: Profile, config: MonitorConfig
) -> None:
    window = LiveWindow(profile, config, join_buffer_size=100)
    narrow = window.add_prediction_columns(
        ["a", "b"], np.ones(2), np.ones((2, 2)), np.array([1, 0]), None
    )
    assert (narrow.accepted_predictions, narrow.rejected_predictions) == (0, 2)
    assert window.samples == 0
    proba = np.array([[0.2, 0.8], [np.nan, 1.0]])
    taken = window.add_prediction_columns(
        ["a", "b"], np.ones(2), np.ones((2, 3)), np.array([1, 7]), proba
    )
    assert taken.accepted_predictions == 2
    snapshot = window.snapshot()
    assert snapshot.estimated is not None
    assert snapshot.estimated.n == 1  # the NaN row carries no probabilities
    assert snapshot.output is not None
    assert snapshot.output[-1] == 1  # class 7 is not one of the model's classes


@pytest.mark.parametrize("size", [1, 7])
def test_ring_spans_put_rows_where_their_sequence_numbers_point(size: int) -> None:
    for start in range(size):
        for n in range(size + 1):
            by_spans, by_index = np.full(size, -1), np.full(size, -1)
            rows = np.arange(n) + 100
            for ring, part in window_module._ring_spans(start, n, size):
                by_spans[ring] = rows[part]
            by_index[(start + np.arange(n)) % size] = rows
            np.testing.assert_array_equal(by_spans, by_index, err_msg=f"start={start} n={n}")


def test_row_max_is_each_rows_largest_value(rng: np.random.Generator) -> None:
    for width in range(1, 41):
        rows = rng.normal(size=(50, width))
        np.testing.assert_array_equal(window_module._row_max(rows), rows.max(axis=1))


@pytest.mark.parametrize("numeric_first", [True, False])
def test_estimates_and_counts_equal_a_recount_of_the_window(
    rng: np.random.Generator, reference: dict[str, Any], numeric_first: bool
) -> None:
    """Column batches across both rings' ends (window 1,000, join buffer 1,500), with
    rows without usable probabilities and outputs that are not a known class: the
    incremental estimates equal a recount of the last 1,000 rows, and the drift counts
    equal the record path's, whether the numeric features come first or not."""
    order = [0, 1, 2] if numeric_first else [2, 0, 1]
    specs = [FEATURES[i] for i in order]
    codes = {name: float(i) for i, name in enumerate(COLORS)}
    coded = {**reference, "color": [codes[c] for c in reference["color"]]}
    profile = build_profile(coded, specs, target="y", proba_columns=["p0", "p1"])
    config = parse_monitor_config(
        config_doc(features=[{"name": f.name, "type": f.type.value} for f in specs])
    )
    by_columns = LiveWindow(profile, config, join_buffer_size=1_500)
    by_records = LiveWindow(profile, config, join_buffer_size=1_500)
    records = _coded(make_predictions(rng, 5_300, shift=0.2))
    outputs = np.array([r.output for r in records])
    outputs[::97] = 7  # not a class of the model
    proba = np.array([r.proba for r in records], dtype=np.float64)
    proba[::89] = np.nan  # no usable probabilities
    features = np.array([[r.features[i] for i in order] for r in records], dtype=np.float64)
    start = 0
    for size in [400, 650, 1_000, 333, 1_000, 917, 1_000]:
        rows = slice(start, start + size)
        by_columns.add_prediction_columns(
            [r.id for r in records[rows]],
            np.array([r.ts for r in records[rows]]),
            features[rows],
            outputs[rows],
            proba[rows],
        )
        by_records.add_predictions(
            [
                PredictionRecord(r.id, r.ts, [r.features[i] for i in order], int(o), list(p))
                for r, o, p in zip(records[rows], outputs[rows], proba[rows], strict=True)
            ]
        )
        start += size
    got, want = by_columns.snapshot(), by_records.snapshot()
    for name in want.features:
        np.testing.assert_array_equal(got.features[name], want.features[name])
    kept_proba, kept_outputs = proba[start - 1_000 : start], outputs[start - 1_000 : start]
    usable = np.isfinite(kept_proba).all(axis=1)
    top = kept_proba[usable].max(axis=1)
    bins = np.clip((top * CONFIDENCE_BINS).astype(int), 0, CONFIDENCE_BINS - 1)
    by_predicted = np.zeros((2, 2))
    for output, row in zip(kept_outputs[usable], kept_proba[usable], strict=True):
        if output in (0, 1):
            by_predicted[output] += row
    for snapshot in (got, want):
        estimated = snapshot.estimated
        assert estimated is not None
        assert estimated.n == int(usable.sum())
        np.testing.assert_array_equal(
            estimated.confidence_counts, np.bincount(bins, minlength=CONFIDENCE_BINS)
        )
        np.testing.assert_allclose(
            estimated.confidence_sums,
            np.bincount(bins, weights=top, minlength=CONFIDENCE_BINS),
            rtol=1e-6,
        )
        np.testing.assert_allclose(estimated.proba_sum_by_predicted, by_predicted, rtol=1e-6)
