"""Verdict rules.

Inconclusive below the floors, drift needs significance AND effect, worst state wins.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from driftward_serving.monitor.config import DriftMethod, parse_monitor_config
from driftward_serving.monitor.profile import Profile
from driftward_serving.monitor.verdict import (
    Severity,
    State,
    compute_overall_state,
    compute_verdict,
    verdict_to_json,
)
from driftward_serving.monitor.window import LabelRecord, LiveWindow, PredictionRecord

from .data import config_doc
from .test_window import make_predictions


def _window(profile: Profile, doc: dict[str, Any]) -> tuple[LiveWindow, Any]:
    config = parse_monitor_config(doc)
    return LiveWindow(profile, config, join_buffer_size=2_000), config


def test_too_few_samples_is_inconclusive_even_under_a_huge_shift(
    rng: np.random.Generator, profile: Profile
) -> None:
    window, config = _window(profile, config_doc())
    window.add_predictions(make_predictions(rng, 150, shift=3.0))  # minSamples is 200
    verdict = compute_verdict(profile, config, window.snapshot(), now=5.0)
    assert verdict.drift.state is State.INCONCLUSIVE
    assert verdict.drift.drifted_features == ()
    assert not any(e.drifted for e in verdict.drift.features)
    assert "150 predictions in the window; drift needs at least 200" in verdict.drift.reason


def test_no_drift_is_ok(rng: np.random.Generator, profile: Profile) -> None:
    window, config = _window(profile, config_doc(performance=None))
    window.add_predictions(make_predictions(rng, 1_000))
    verdict = compute_verdict(profile, config, window.snapshot(), now=5.0)
    assert verdict.state is State.OK
    assert verdict.drift.share == 0.0
    # "color" carries ~1% unseen "purple": too few to be significant in 1000 rows.
    color = next(e for e in verdict.drift.features if e.feature == "color")
    assert color.unseen > 0
    assert color.corrected_p is not None
    assert color.corrected_p >= 0.01
    assert not color.drifted


def test_a_shift_in_one_of_three_features_drifts_the_dataset(
    rng: np.random.Generator, profile: Profile
) -> None:
    window, config = _window(profile, config_doc(performance=None))
    window.add_predictions(make_predictions(rng, 1_000, shift=0.5))
    verdict = compute_verdict(profile, config, window.snapshot(), now=5.0)
    assert verdict.drift.drifted_features == ("x",)
    assert verdict.drift.share == pytest.approx(1 / 3)
    assert verdict.state is State.DRIFTED
    x = verdict.drift.features[0]
    assert x.corrected_p is not None
    assert x.corrected_p < 0.01
    assert x.effect >= x.threshold
    assert x.corrected_p >= x.p_value  # Holm never makes a p-value smaller


def test_the_dataset_rule_needs_enough_drifted_features(
    rng: np.random.Generator, profile: Profile
) -> None:
    doc = config_doc(performance=None, drift={"datasetDriftShare": 0.5, "predictionDrift": False})
    window, config = _window(profile, doc)
    window.add_predictions(make_predictions(rng, 1_000, shift=0.5))
    verdict = compute_verdict(profile, config, window.snapshot(), now=5.0)
    assert verdict.drift.drifted_features == ("x",)
    assert verdict.drift.state is State.OK
    assert "1 of 3 features drifted (33% < 50%): x" in verdict.drift.reason


def test_prediction_drift_alone_drifts(rng: np.random.Generator, profile: Profile) -> None:
    doc = config_doc(performance=None, drift={"datasetDriftShare": 1.0})
    window, config = _window(profile, doc)
    records = make_predictions(rng, 1_000)
    flipped = [PredictionRecord(r.id, r.ts, r.features, 1, r.proba) for r in records]
    window.add_predictions(flipped)
    verdict = compute_verdict(profile, config, window.snapshot(), now=5.0)
    assert verdict.drift.prediction is not None
    assert verdict.drift.prediction.drifted
    assert verdict.drift.state is State.DRIFTED
    assert "the model's outputs drifted" in verdict.drift.reason


def test_unseen_categories_count_as_drift(rng: np.random.Generator, profile: Profile) -> None:
    window, config = _window(profile, config_doc(performance=None))
    records = make_predictions(rng, 1_000)
    novel = [
        PredictionRecord(r.id, r.ts, [r.features[0], r.features[1], "violet"], r.output, r.proba)
        if i % 5 == 0
        else r
        for i, r in enumerate(records)
    ]
    window.add_predictions(novel)
    verdict = compute_verdict(profile, config, window.snapshot(), now=5.0)
    color = next(e for e in verdict.drift.features if e.feature == "color")
    assert color.unseen >= 200
    assert color.drifted


def test_significance_without_effect_is_not_drift(
    rng: np.random.Generator, profile: Profile
) -> None:
    doc = config_doc(performance=None, drift={"numeric": {"threshold": 0.5}})
    window, config = _window(profile, doc)
    window.add_predictions(make_predictions(rng, 1_000, shift=0.5))
    x = compute_verdict(profile, config, window.snapshot(), now=5.0).drift.features[0]
    assert x.corrected_p is not None
    assert x.corrected_p < 1e-6
    assert not x.drifted


@pytest.mark.parametrize(
    ("feature", "method", "low", "high"),
    [
        ("x", "Wasserstein", 0.3, 0.7),
        ("x", "PSI", 0.1, 0.6),
        ("color", "JensenShannon", 0.05, 0.5),
        ("color", "PSI", 0.02, 2.0),
    ],
)
def test_other_effect_methods(
    rng: np.random.Generator,
    profile: Profile,
    *,
    feature: str,
    method: str,
    low: float,
    high: float,
) -> None:
    features = [
        {"name": "x", "type": "Numeric"},
        {"name": "z", "type": "Numeric"},
        {"name": "color", "type": "Categorical"},
    ]
    for f in features:
        if f["name"] == feature:
            f["method"] = method
    window, config = _window(profile, config_doc(features=features, performance=None))
    records = make_predictions(rng, 1_000, shift=0.5)
    recoloured = [
        PredictionRecord(r.id, r.ts, [r.features[0], r.features[1], "blue"], r.output, r.proba)
        if i % 4 == 0
        else r
        for i, r in enumerate(records)
    ]
    window.add_predictions(recoloured)
    verdict = compute_verdict(profile, config, window.snapshot(), now=5.0)
    evidence = next(e for e in verdict.drift.features if e.feature == feature)
    assert evidence.method is DriftMethod(method)
    assert low <= evidence.effect <= high
    assert evidence.drifted


def _label_all(window: LiveWindow, records: list[PredictionRecord], wrong_every: int) -> None:
    labels = [
        LabelRecord(r.id, 0.0, 1 - int(r.output) if i % wrong_every == 0 else r.output)  # type: ignore[call-overload]
        for i, r in enumerate(records)
    ]
    window.add_labels(labels)


def test_degradation_is_reported_with_severity(rng: np.random.Generator, profile: Profile) -> None:
    window, config = _window(profile, config_doc())
    records = make_predictions(rng, 1_000)
    window.add_predictions(records)
    _label_all(window, records, wrong_every=3)  # accuracy ~0.67 against a 0.75 baseline
    verdict = compute_verdict(profile, config, window.snapshot(), now=5.0)
    perf = verdict.performance
    assert perf is not None
    assert perf.state is State.DEGRADED
    assert perf.severity is Severity.MEDIUM
    assert perf.value == pytest.approx(2 / 3, abs=0.01)
    assert perf.label_coverage == 1.0
    assert verdict.state is State.DEGRADED
    assert "Accuracy 0.66" in perf.reason


def test_too_few_labels_is_inconclusive(rng: np.random.Generator, profile: Profile) -> None:
    window, config = _window(profile, config_doc())
    records = make_predictions(rng, 1_000)
    window.add_predictions(records)
    _label_all(window, records[:50], wrong_every=1)  # all wrong, but only 50 of 100 needed
    verdict = compute_verdict(profile, config, window.snapshot(), now=5.0)
    assert verdict.performance is not None
    assert verdict.performance.state is State.INCONCLUSIVE
    assert verdict.performance.value == 0.0
    assert verdict.state is State.INCONCLUSIVE
    assert verdict.performance.label_coverage == pytest.approx(0.05)


def test_estimated_performance_is_reported_separately(
    rng: np.random.Generator, profile: Profile
) -> None:
    window, config = _window(profile, config_doc())
    window.add_predictions(make_predictions(rng, 1_000))
    verdict = compute_verdict(profile, config, window.snapshot(), now=5.0)
    est = verdict.estimated
    assert est is not None
    assert est.calibrated
    assert est.accuracy is not None
    # The fixture model is calibrated with accuracy ~0.77 on this distribution.
    assert 0.72 <= est.accuracy <= 0.82
    assert est.state is State.OK
    doc = verdict_to_json(verdict)
    assert doc["estimated"]["metric"] == "Accuracy"
    assert doc["performance"]["state"] == "Inconclusive"  # no labels yet


def test_worst_state_wins() -> None:
    assert compute_overall_state([State.OK, State.INCONCLUSIVE]) is State.INCONCLUSIVE
    assert compute_overall_state([State.DRIFTED, State.INCONCLUSIVE]) is State.DRIFTED
    assert compute_overall_state([State.DRIFTED, State.DEGRADED]) is State.DEGRADED
    assert compute_overall_state([State.OK]) is State.OK


def test_verdict_json_carries_evidence_and_window_bounds(
    rng: np.random.Generator, profile: Profile
) -> None:
    window, config = _window(profile, config_doc())
    records = make_predictions(rng, 500)
    window.add_predictions(records)
    doc = verdict_to_json(compute_verdict(profile, config, window.snapshot(), now=42.0))
    assert doc["model"] == "iris"
    assert doc["version"] == "v2"
    assert doc["evaluatedAt"] == 42.0
    assert doc["window"] == {
        "size": 1000,
        "samples": 500,
        "firstTs": records[0].ts,
        "lastTs": records[-1].ts,
        "labelled": 0,
    }
    first = doc["drift"]["features"][0]
    assert set(first) >= {"test", "statistic", "pValue", "correctedP", "effect", "drifted"}
    assert doc["state"] in {"Ok", "Drifted", "Degraded", "Inconclusive"}
