"""The window as Prometheus series: exported by the monitor, read back exactly."""

from __future__ import annotations

import numpy as np
import pytest
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from driftward_serving.monitor.config import parse_monitor_config
from driftward_serving.monitor.counts import (
    merge_window_counts,
    window_counts_from_json,
    window_counts_to_json,
)
from driftward_serving.monitor.metrics import WindowCountsCollector
from driftward_serving.monitor.profile import build_profile
from driftward_serving.monitor.series import (
    METRIC_NAME,
    Series,
    SeriesError,
    window_counts_to_series,
    window_document_from_series,
)
from driftward_serving.monitor.window import LabelRecord, LiveWindow
from tests.unit.monitor.data import FEATURES, config_doc, make_reference
from tests.unit.monitor.test_window import make_predictions


def labelled_window(seed: int, n: int = 400, start: int = 0) -> LiveWindow:
    """A classifier's window with predictions and labels for half of them."""
    profile = build_profile(
        make_reference(np.random.default_rng(7)), FEATURES, target="y", proba_columns=["p0", "p1"]
    )
    window = LiveWindow(profile, parse_monitor_config(config_doc()), join_buffer_size=10_000)
    rng = np.random.default_rng(seed)
    window.add_predictions(make_predictions(rng, n, start, shift=0.2))
    labels = [
        LabelRecord(id=f"p{start + i}", ts=2_000.0 + i, label=int(rng.integers(0, 2)))
        for i in range(0, n, 2)
    ]
    window.add_labels(labels)
    return window


def scrape(registry: CollectorRegistry) -> list[Series]:
    """What Prometheus stores from one scrape: empty-valued labels are dropped."""
    text = generate_latest(registry).decode()
    out = []
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == METRIC_NAME:
                labels = {k: v for k, v in sample.labels.items() if v != ""}
                out.append(Series(labels, sample.value))
    return out


def test_a_scraped_window_reads_back_as_the_same_document() -> None:
    counts = labelled_window(seed=1).snapshot()
    assert counts.classification is not None
    assert counts.estimated is not None
    registry = CollectorRegistry()
    registry.register(WindowCountsCollector("iris", "v2", lambda: counts))
    series = scrape(registry)
    assert all(s.labels["model"] == "iris" and s.labels["version"] == "v2" for s in series)
    document = window_document_from_series(series)
    assert document == window_counts_to_json(counts)
    # And it parses into the same counts the Pods source would merge.
    parsed = window_counts_from_json(document)
    assert parsed.samples == counts.samples == 400
    assert parsed.classification is not None
    assert np.array_equal(parsed.classification.confusion, counts.classification.confusion)


def test_only_non_zero_cells_are_exported() -> None:
    counts = labelled_window(seed=2).snapshot()
    cells = sum(np.asarray(v).size for v in window_counts_to_json(counts)["features"].values())
    feature_series = [s for s in window_counts_to_series(counts) if s.labels["part"] == "features"]
    assert 0 < len(feature_series) < cells
    assert all(s.value != 0 for s in feature_series)


def test_merging_read_back_windows_equals_merging_the_originals() -> None:
    a, b = labelled_window(seed=3).snapshot(), labelled_window(seed=4, start=400).snapshot()
    read = [
        window_counts_from_json(window_document_from_series(window_counts_to_series(c)))
        for c in (a, b)
    ]
    assert window_counts_to_json(merge_window_counts(read)) == window_counts_to_json(
        merge_window_counts([a, b])
    )


def test_nothing_is_exported_before_the_first_evaluation() -> None:
    registry = CollectorRegistry()
    registry.register(WindowCountsCollector("iris", "v2", lambda: None))
    assert scrape(registry) == []


BASE = {"profile_digest": "a" * 64, "part": "features", "key": "x", "shape": "4"}


@pytest.mark.parametrize(
    ("series", "needle"),
    [
        ([Series({"part": "samples"}, 1.0)], "no label 'profile_digest'"),
        ([Series({**BASE, "index": "1"}, 2.0), Series({**BASE, "shape": "5"}, 0.0)], "disagree"),
        ([Series({**BASE, "index": "9"}, 2.0)], "index 9 is outside shape (4,)"),
        ([Series({**BASE, "index": "one"}, 2.0)], "index 'one' is not a number"),
        ([Series({**BASE, "shape": "4y"}, 0.0)], "shape '4y' is not like '3x3'"),
        ([Series({**BASE, "part": "nonsense.field"}, 0.0)], "unknown window part"),
        (
            [Series({**BASE, "index": "1"}, 2.0), Series({**BASE, "profile_digest": "b"}, 0.0)],
            "got 2 profile digests",
        ),
    ],
)
def test_series_that_make_no_window_are_refused_by_name(series: list[Series], needle: str) -> None:
    with pytest.raises(SeriesError) as caught:
        window_document_from_series(series)
    assert needle in str(caught.value)
