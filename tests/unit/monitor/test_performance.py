"""Performance from counts agrees with scikit-learn.

CBPE estimates track the truth when calibrated.
"""

from __future__ import annotations

import numpy as np
import pytest
from sklearn import metrics as skm

from driftward_serving.monitor.config import MetricName
from driftward_serving.monitor.counts import (
    AUC_BINS,
    ClassificationCounts,
    EstimatedCounts,
    RegressionSums,
)
from driftward_serving.monitor.performance import (
    compute_classification_metrics,
    compute_estimated_metrics,
    compute_regression_metrics,
)
from driftward_serving.monitor.profile import (
    CONFIDENCE_BINS,
    build_calibration,
    compute_confidence_bins,
)
from driftward_serving.monitor.verdict import Severity, compute_severity


def _classification_counts(
    y_true: np.ndarray, y_pred: np.ndarray, proba: np.ndarray, k: int
) -> ClassificationCounts:
    confusion = np.zeros((k + 1, k + 1), dtype=np.int64)
    np.add.at(confusion, (y_pred, y_true), 1)
    bins = np.clip((proba * AUC_BINS).astype(np.int64), 0, AUC_BINS - 1)
    positive = np.zeros((k, AUC_BINS), dtype=np.int64)
    negative = np.zeros((k, AUC_BINS), dtype=np.int64)
    for c in range(k):
        np.add.at(positive[c], bins[y_true == c, c], 1)
        np.add.at(negative[c], bins[y_true != c, c], 1)
    loss = -np.log(np.clip(proba[np.arange(y_true.size), y_true], 1e-15, None)).sum()
    return ClassificationCounts(confusion, positive, negative, float(loss), int(y_true.size))


@pytest.mark.parametrize("k", [2, 4])
def test_classification_metrics_match_sklearn(k: int) -> None:
    rng = np.random.default_rng(k)
    n = 3_000
    logits = rng.normal(size=(n, k)) * 2
    proba = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    y_true = np.array([rng.choice(k, p=row) for row in proba])
    y_pred = proba.argmax(axis=1)
    classes = tuple(str(c) for c in range(k))
    ours = compute_classification_metrics(_classification_counts(y_true, y_pred, proba, k), classes)
    assert ours.accuracy == pytest.approx(skm.accuracy_score(y_true, y_pred))
    for average in ("macro", "weighted"):
        p, r, f, _ = skm.precision_recall_fscore_support(
            y_true, y_pred, average=average, zero_division=0
        )
        assert getattr(ours, f"precision_{average}") == pytest.approx(p)
        assert getattr(ours, f"recall_{average}") == pytest.approx(r)
        assert getattr(ours, f"f1_{average}") == pytest.approx(f)
    per_class = skm.f1_score(y_true, y_pred, average=None, zero_division=0)
    assert [c.f1 for c in ours.per_class] == pytest.approx(per_class)
    expected_auc = (
        skm.roc_auc_score(y_true, proba[:, 1])
        if k == 2
        else skm.roc_auc_score(y_true, proba, multi_class="ovr", average="macro")
    )
    assert ours.roc_auc == pytest.approx(expected_auc, abs=2e-3)
    assert ours.log_loss == pytest.approx(skm.log_loss(y_true, proba, labels=list(range(k))))


def test_a_class_never_seen_does_not_count_in_macro_averages() -> None:
    y_true = np.array([0, 0, 1, 1])
    y_pred = np.array([0, 1, 1, 1])
    proba = np.eye(3)[y_pred]
    ours = compute_classification_metrics(
        _classification_counts(y_true, y_pred, proba, 3), ("a", "b", "c")
    )
    expected = skm.f1_score(y_true, y_pred, average="macro", zero_division=0)
    assert ours.f1_macro == pytest.approx(expected)


def test_regression_metrics_match_sklearn() -> None:
    rng = np.random.default_rng(7)
    y = rng.normal(10, 3, size=2_000)
    predicted = y + rng.normal(0.5, 1.0, size=y.size)
    error = predicted - y
    sums = RegressionSums(y.size, np.abs(error).sum(), (error**2).sum(), y.sum(), (y**2).sum())
    ours = compute_regression_metrics(sums)
    assert ours.mae == pytest.approx(skm.mean_absolute_error(y, predicted))
    assert ours.rmse == pytest.approx(np.sqrt(skm.mean_squared_error(y, predicted)))
    assert ours.r2 == pytest.approx(skm.r2_score(y, predicted))
    constant = RegressionSums(3, 1.0, 1.0, 6.0, 12.0)  # labels 2, 2, 2
    assert compute_regression_metrics(constant).r2 is None


def _estimate(proba: np.ndarray, calibration: object = None) -> float:
    confidence = proba.max(axis=1)
    bins = compute_confidence_bins(confidence, CONFIDENCE_BINS)
    k = proba.shape[1]
    by_predicted = np.zeros((k, k))
    np.add.at(by_predicted, proba.argmax(axis=1), proba)
    counts = EstimatedCounts(
        n=proba.shape[0],
        confidence_counts=np.bincount(bins, minlength=CONFIDENCE_BINS),
        confidence_sums=np.bincount(bins, weights=confidence, minlength=CONFIDENCE_BINS),
        proba_sum_by_predicted=by_predicted,
    )
    return compute_estimated_metrics(counts, calibration).accuracy  # type: ignore[arg-type]


def test_cbpe_estimates_accuracy_of_a_calibrated_model() -> None:
    rng = np.random.default_rng(11)
    p1 = rng.beta(2, 2, size=20_000)
    proba = np.column_stack([1 - p1, p1])
    y = (rng.uniform(size=p1.size) < p1).astype(int)
    realized = np.mean(proba.argmax(axis=1) == y)
    assert _estimate(proba) == pytest.approx(realized, abs=0.01)


def test_reference_calibration_corrects_an_overconfident_model() -> None:
    rng = np.random.default_rng(12)
    true_p1 = rng.beta(2, 2, size=20_000)
    # The model claims far more confidence than it has.
    claimed = np.clip(0.5 + (true_p1 - 0.5) * 1.9, 0.001, 0.999)
    proba = np.column_stack([1 - claimed, claimed])
    y = (rng.uniform(size=true_p1.size) < true_p1).astype(int)
    realized = np.mean(proba.argmax(axis=1) == y)
    uncalibrated = _estimate(proba)
    calibration = build_calibration(proba[:10_000], y[:10_000])
    calibrated = _estimate(proba[10_000:], calibration)
    realized_live = np.mean(proba[10_000:].argmax(axis=1) == y[10_000:])
    assert abs(uncalibrated - realized) > 0.08
    assert calibrated == pytest.approx(realized_live, abs=0.015)


@pytest.mark.parametrize(
    ("metric", "value", "severity"),
    [
        (MetricName.ACCURACY, 0.92, Severity.NONE),
        (MetricName.ACCURACY, 0.89, Severity.MEDIUM),
        (MetricName.ACCURACY, 0.84, Severity.HIGH),
        (MetricName.RMSE, 1.04, Severity.NONE),
        (MetricName.RMSE, 1.07, Severity.MEDIUM),
        (MetricName.RMSE, 1.2, Severity.HIGH),
    ],
)
def test_severity_is_medium_past_the_limit_and_high_past_twice(
    metric: MetricName, value: float, severity: Severity
) -> None:
    baseline = 0.95 if metric is MetricName.ACCURACY else 1.0
    assert compute_severity(metric, value, baseline, 0.05)[1] is severity
