"""The mergeable window state: bin counts and sufficient statistics, nothing per record.

A ``WindowCounts`` is what ``GET /v1/window`` returns. Every field is a count or
a sum, so the windows of several pods of one model version add up to the
window of the whole Deployment (``merge_window_counts``), and
``compute_verdict`` judges the sum exactly as it judges one pod. Bins follow
the reference profile; windows merge only when their profile digests agree.

Pure: no I/O, no clocks, no state. It must not hold per-record data.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, fields, replace
from typing import Any, TypeVar

import numpy as np
import numpy.typing as npt

WINDOW_SCHEMA_VERSION = 1
# Probability histogram resolution for ROC AUC; ties inside a bin count as
# half, so the AUC is within ~1/AUC_BINS of the exact value.
AUC_BINS = 1000

Ints = npt.NDArray[np.int64]
Floats = npt.NDArray[np.float64]


@dataclass(frozen=True, eq=False)
class ClassificationCounts:
    """Joined labels of a classifier: confusion counts and probability summaries.

    Index ``k`` (one past the last class) stands for any prediction or label
    outside the profile's classes.
    """

    confusion: Ints  # (k + 1, k + 1): rows are predicted, columns are true labels
    auc_positive: Ints  # (k, AUC_BINS): class-c probability where the label is c
    auc_negative: Ints  # (k, AUC_BINS): class-c probability where the label is not c
    log_loss_sum: float
    proba_labels: int  # joined labels that came with probabilities (and a known class)


@dataclass(frozen=True, eq=False)
class RegressionSums:
    """Joined labels of a regressor: sums from which MAE, RMSE and R2 follow."""

    n: int
    sum_abs_error: float
    sum_sq_error: float
    sum_label: float
    sum_sq_label: float


@dataclass(frozen=True, eq=False)
class EstimatedCounts:
    """Confidence summaries of window predictions that came with probabilities."""

    n: int
    confidence_counts: Ints  # (C,) predictions per top-probability bin
    confidence_sums: Floats  # (C,) summed top probability per bin
    proba_sum_by_predicted: Floats  # (k, k): row j sums the probability rows predicted j


@dataclass(frozen=True, eq=False)
class WindowCounts:
    """One window (of one pod, or merged): everything a verdict needs."""

    profile_digest: str
    samples: int
    first_ts: float | None
    last_ts: float | None
    features: Mapping[str, Ints]
    output: Ints | None = None
    labelled_in_window: int = 0
    classification: ClassificationCounts | None = None
    regression: RegressionSums | None = None
    estimated: EstimatedCounts | None = None


def _add(a: Any, b: Any, what: str) -> Any:
    if a is None or b is None:
        if a is not None or b is not None:
            raise ValueError(f"cannot merge windows: {what} is present in only some of them")
        return None
    if isinstance(a, np.ndarray) and a.shape != b.shape:
        raise ValueError(f"cannot merge windows: {what} has shapes {a.shape} and {b.shape}")
    return a + b


_Section = TypeVar("_Section", ClassificationCounts, RegressionSums, EstimatedCounts)


def _add_sections(a: _Section | None, b: _Section | None, what: str) -> _Section | None:
    """Add two sections field by field: every field of a section is a count or a sum."""
    if a is None or b is None:
        if a is not None or b is not None:
            raise ValueError(f"cannot merge windows: {what} is present in only some of them")
        return None
    return type(a)(
        **{
            f.name: _add(getattr(a, f.name), getattr(b, f.name), f"{what}.{f.name}")
            for f in fields(a)
        }
    )


def _merge_two(a: WindowCounts, b: WindowCounts) -> WindowCounts:
    if a.profile_digest != b.profile_digest:
        raise ValueError(
            "cannot merge windows built on different reference profiles "
            f"({a.profile_digest[:12]} and {b.profile_digest[:12]})"
        )
    if set(a.features) != set(b.features):
        raise ValueError("cannot merge windows with different features")
    firsts = [t for t in (a.first_ts, b.first_ts) if t is not None]
    lasts = [t for t in (a.last_ts, b.last_ts) if t is not None]
    return WindowCounts(
        profile_digest=a.profile_digest,
        samples=a.samples + b.samples,
        first_ts=min(firsts) if firsts else None,
        last_ts=max(lasts) if lasts else None,
        features={
            name: _add(a.features[name], b.features[name], f"feature {name!r}")
            for name in a.features
        },
        output=_add(a.output, b.output, "output"),
        labelled_in_window=a.labelled_in_window + b.labelled_in_window,
        classification=_add_sections(a.classification, b.classification, "classification"),
        regression=_add_sections(a.regression, b.regression, "regression"),
        estimated=_add_sections(a.estimated, b.estimated, "estimated"),
    )


def merge_window_counts(windows: Sequence[WindowCounts]) -> WindowCounts:
    """Add up the windows of several pods of one model version (same profile digest)."""
    if not windows:
        raise ValueError("merge_window_counts needs at least one window")
    merged = replace(windows[0])
    for window in windows[1:]:
        merged = _merge_two(merged, window)
    return merged


# --- JSON -----------------------------------------------------------------


def window_counts_to_json(counts: WindowCounts) -> dict[str, Any]:
    """The window as ``GET /v1/window`` returns it."""
    doc: dict[str, Any] = {
        "schemaVersion": WINDOW_SCHEMA_VERSION,
        "profileDigest": counts.profile_digest,
        "samples": counts.samples,
        "firstTs": counts.first_ts,
        "lastTs": counts.last_ts,
        "labelledInWindow": counts.labelled_in_window,
        "features": {name: c.tolist() for name, c in counts.features.items()},
        "output": counts.output.tolist() if counts.output is not None else None,
        "classification": None,
        "regression": None,
        "estimated": None,
    }
    if counts.classification is not None:
        c = counts.classification
        doc["classification"] = {
            "confusion": c.confusion.tolist(),
            "aucPositive": c.auc_positive.tolist(),
            "aucNegative": c.auc_negative.tolist(),
            "logLossSum": c.log_loss_sum,
            "probaLabels": c.proba_labels,
        }
    if counts.regression is not None:
        r = counts.regression
        doc["regression"] = {
            "n": r.n,
            "sumAbsError": r.sum_abs_error,
            "sumSqError": r.sum_sq_error,
            "sumLabel": r.sum_label,
            "sumSqLabel": r.sum_sq_label,
        }
    if counts.estimated is not None:
        e = counts.estimated
        doc["estimated"] = {
            "n": e.n,
            "confidenceCounts": e.confidence_counts.tolist(),
            "confidenceSums": e.confidence_sums.tolist(),
            "probaSumByPredicted": e.proba_sum_by_predicted.tolist(),
        }
    return doc


def _ints(value: Any, where: str) -> Ints:
    array = np.asarray(value, dtype=np.int64)
    if np.any(array < 0):
        raise ValueError(f"{where} has negative counts")
    return array


def window_counts_from_json(doc: Mapping[str, Any]) -> WindowCounts:
    """Parse what ``GET /v1/window`` returned; ValueError names the bad field."""
    if doc.get("schemaVersion") != WINDOW_SCHEMA_VERSION:
        raise ValueError(
            f"window schemaVersion is {doc.get('schemaVersion')!r}; "
            f"this code reads version {WINDOW_SCHEMA_VERSION}"
        )
    try:
        classification = None
        if doc.get("classification"):
            c = doc["classification"]
            classification = ClassificationCounts(
                confusion=_ints(c["confusion"], "classification.confusion"),
                auc_positive=_ints(c["aucPositive"], "classification.aucPositive"),
                auc_negative=_ints(c["aucNegative"], "classification.aucNegative"),
                log_loss_sum=float(c["logLossSum"]),
                proba_labels=int(c["probaLabels"]),
            )
        regression = None
        if doc.get("regression"):
            r = doc["regression"]
            regression = RegressionSums(
                n=int(r["n"]),
                sum_abs_error=float(r["sumAbsError"]),
                sum_sq_error=float(r["sumSqError"]),
                sum_label=float(r["sumLabel"]),
                sum_sq_label=float(r["sumSqLabel"]),
            )
        estimated = None
        if doc.get("estimated"):
            e = doc["estimated"]
            estimated = EstimatedCounts(
                n=int(e["n"]),
                confidence_counts=_ints(e["confidenceCounts"], "estimated.confidenceCounts"),
                confidence_sums=np.asarray(e["confidenceSums"], dtype=np.float64),
                proba_sum_by_predicted=np.asarray(e["probaSumByPredicted"], dtype=np.float64),
            )
        output = doc.get("output")
        return WindowCounts(
            profile_digest=str(doc["profileDigest"]),
            samples=int(doc["samples"]),
            first_ts=None if doc.get("firstTs") is None else float(doc["firstTs"]),
            last_ts=None if doc.get("lastTs") is None else float(doc["lastTs"]),
            features={
                str(name): _ints(c, f"features.{name}") for name, c in doc["features"].items()
            },
            output=None if output is None else _ints(output, "output"),
            labelled_in_window=int(doc.get("labelledInWindow", 0)),
            classification=classification,
            regression=regression,
            estimated=estimated,
        )
    except KeyError as missing:
        raise ValueError(f"window document is missing {missing}") from None
