"""Merge the monitors' windows across serving pods into one verdict, and summarise it.

Pure: the windows and the reference profile come in as parsed documents; the
merged verdict, what the policy needs from it and the status fields describing
it come out. Replicas are combined by adding their window counts (bin counts,
confusion counts, sums) and running the monitor's own tests once on the sum,
which is exactly the test on the pooled sample. P-values are never averaged and
pods never vote. Nothing here performs I/O.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from driftward_operator import policy
from driftward_operator.timeutil import format_time
from driftward_serving.monitor.config import MonitorConfig
from driftward_serving.monitor.counts import (
    WindowCounts,
    merge_window_counts,
    window_counts_from_json,
)
from driftward_serving.monitor.profile import Profile
from driftward_serving.monitor.verdict import FeatureEvidence, compute_verdict
from driftward_serving.monitor.verdict import State as MonitorState
from driftward_serving.monitor.verdict import Verdict as MonitorVerdict

_POLICY_STATE = {
    MonitorState.OK: policy.State.OK,
    MonitorState.DRIFTED: policy.State.BREACH,
    MonitorState.DEGRADED: policy.State.BREACH,
    MonitorState.INCONCLUSIVE: policy.State.INCONCLUSIVE,
}
_MAX_NAMED = 5


@dataclass(frozen=True)
class PodWindow:
    """One serving pod's answer to GET /v1/window, or why it gave none."""

    pod: str
    document: Mapping[str, Any] | None = None
    error: str = ""


@dataclass(frozen=True)
class Selection:
    """The windows that can be merged: one reference profile, and what was left out."""

    profile_digest: str | None
    windows: tuple[WindowCounts, ...]
    pods: tuple[str, ...]
    problems: tuple[str, ...]


@dataclass(frozen=True)
class Aggregate:
    """The verdict over all answering pods of one version, and where it came from."""

    verdict: MonitorVerdict
    pods: tuple[str, ...]
    problems: tuple[str, ...]


def compute_selection(answers: Sequence[PodWindow]) -> Selection:
    """Parse the pods' windows and keep those sharing the reference profile with most samples.

    Pods that did not answer, answered garbage or were built on another
    reference (mid-rollout of a new reference) are listed in ``problems``.
    """
    problems: list[str] = []
    by_digest: dict[str, list[tuple[str, WindowCounts]]] = {}
    for answer in answers:
        if answer.document is None:
            problems.append(f"pod {answer.pod}: {answer.error or 'no answer'}")
            continue
        try:
            counts = window_counts_from_json(answer.document)
        except (ValueError, KeyError, TypeError) as exc:
            problems.append(f"pod {answer.pod}: unreadable window ({exc})")
            continue
        by_digest.setdefault(counts.profile_digest, []).append((answer.pod, counts))
    if not by_digest:
        return Selection(None, (), (), tuple(problems))
    digest = max(by_digest, key=lambda d: (sum(c.samples for _, c in by_digest[d]), d))
    for other, members in by_digest.items():
        if other != digest:
            names = ", ".join(pod for pod, _ in members)
            problems.append(f"pods {names}: another reference profile ({other[:12]}), left out")
    chosen = by_digest[digest]
    return Selection(
        digest,
        tuple(c for _, c in chosen),
        tuple(pod for pod, _ in chosen),
        tuple(problems),
    )


def compute_aggregate(
    selection: Selection,
    profile: Profile,
    config: MonitorConfig,
    now: datetime,
) -> Aggregate | None:
    """The verdict on the merged windows of the selected pods, or None if none answered."""
    if not selection.windows:
        return None
    merged = merge_window_counts(selection.windows)
    verdict = compute_verdict(profile, config, merged, now.timestamp())
    return Aggregate(verdict=verdict, pods=selection.pods, problems=selection.problems)


def _p_value(evidence: FeatureEvidence) -> float:
    """The p-value after the correction across features, where one was applied."""
    return evidence.corrected_p if evidence.corrected_p is not None else evidence.p_value


def _drift_evidence(verdict: MonitorVerdict) -> str:
    drift = verdict.drift
    drifted = [e for e in drift.features if e.drifted]
    drifted.sort(key=lambda e: e.effect, reverse=True)
    named = ", ".join(
        f"{e.feature} ({e.method.value} {e.effect:.3g}, p={_p_value(e):.2g})"
        for e in drifted[:_MAX_NAMED]
    )
    more = f" and {len(drifted) - _MAX_NAMED} more" if len(drifted) > _MAX_NAMED else ""
    if drift.state is MonitorState.DRIFTED and not named and drift.prediction is not None:
        output = drift.prediction
        named = f"the model's output ({output.method.value} {output.effect:.3g})"
    return (
        f"drift in {named or 'no single feature'}{more}; {drift.share:.0%} of features drifted "
        f"(limit {drift.dataset_drift_share:.0%}) over {drift.samples} predictions"
    )


def _performance_evidence(verdict: MonitorVerdict) -> str:
    perf = verdict.performance
    if perf is None or perf.value is None:
        return "no realized performance"
    severity = f", severity {perf.severity.value}" if perf.severity else ""
    return (
        f"{perf.metric.value} {perf.value:.4g} against baseline {perf.baseline:.4g} "
        f"(allowed degradation {perf.max_degradation:.4g}{severity}) over {perf.labels} labels"
    )


def _estimated_evidence(verdict: MonitorVerdict) -> str:
    est = verdict.estimated
    if est is None or est.value is None or est.metric is None:
        return "no estimated performance"
    return (
        f"estimated {est.metric.value} {est.value:.4g} against baseline {est.baseline} "
        f"from the confidence of {est.samples} unlabelled predictions"
    )


def compute_policy_verdict(aggregate: Aggregate) -> policy.Verdict:
    """What the rollback policy needs from a merged verdict: a state and evidence per kind."""
    verdict = aggregate.verdict
    findings: dict[policy.Kind, policy.Finding] = {
        policy.Kind.DRIFT: policy.Finding(
            _POLICY_STATE[verdict.drift.state], _drift_evidence(verdict)
        )
    }
    if verdict.performance is not None:
        findings[policy.Kind.DEGRADATION] = policy.Finding(
            _POLICY_STATE[verdict.performance.state], _performance_evidence(verdict)
        )
    if verdict.estimated is not None:
        findings[policy.Kind.ESTIMATED_DEGRADATION] = policy.Finding(
            _POLICY_STATE[verdict.estimated.state], _estimated_evidence(verdict)
        )
    return policy.Verdict(version=verdict.version, findings=findings)


def compute_drift_summary(verdict: MonitorVerdict) -> str:
    """One line on the drift verdict: the evidence when drifted, else the monitor's reason."""
    if verdict.drift.state is MonitorState.DRIFTED:
        return _drift_evidence(verdict)
    return verdict.drift.reason


def compute_drift_status(aggregate: Aggregate, now: datetime) -> dict[str, Any]:
    """status.drift: the merged drift verdict, short enough for kubectl."""
    drift = aggregate.verdict.drift
    return {
        "state": drift.state.value,
        "share": round(float(drift.share), 6),
        "driftedFeatures": list(drift.drifted_features),
        "samples": int(drift.samples),
        "pods": len(aggregate.pods),
        "version": aggregate.verdict.version,
        "reason": compute_drift_summary(aggregate.verdict),
        "evaluatedAt": format_time(now),
    }


def compute_performance_status(aggregate: Aggregate) -> dict[str, Any] | None:
    """status.performance: the merged realized performance, or None when none is configured."""
    perf = aggregate.verdict.performance
    if perf is None:
        return None
    value = None if perf.value is None else round(float(perf.value), 6)
    summary = (
        f"{perf.metric.value}={value:.4g} (baseline {perf.baseline:.4g})"
        if value is not None
        else f"{perf.metric.value}: {perf.labels}/{perf.min_labels} labels"
    )
    status: dict[str, Any] = {
        "state": perf.state.value,
        "metric": perf.metric.value,
        "baseline": float(perf.baseline),
        "labels": int(perf.labels),
        "labelCoverage": round(float(perf.label_coverage), 6),
        "summary": summary,
    }
    if value is not None:
        status["value"] = value
    estimated = aggregate.verdict.estimated
    if estimated is not None and estimated.value is not None:
        status["estimatedValue"] = round(float(estimated.value), 6)
    return status
