"""The operator's Prometheus metrics, on a registry it owns.

Declarations and small recording helpers only; the operator's CLI serves the
registry on its own port. Labels are bounded: namespace, model name, and
closed sets of reasons, states and kinds.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from prometheus_client import CollectorRegistry, Counter, Gauge

from driftward_operator import policy

if TYPE_CHECKING:
    from driftward_operator.status import Evaluation

_STATES = ("Ok", "Drifted", "Degraded", "Inconclusive", "Unreachable")


class OperatorMetrics:
    """Counters and gauges about rollbacks and evaluations, per MonitoredModel."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry()
        self.rollbacks = Counter(
            "driftward_operator_rollbacks",
            "Rollbacks the operator carried out, by reason "
            "(DriftDetected, PerformanceDegraded, EstimatedPerformanceDegraded, ManualRollback).",
            ["namespace", "name", "reason"],
            registry=self.registry,
        )
        self.evaluations = Counter(
            "driftward_operator_evaluations",
            "Evaluations of the merged monitor verdict, by the verdict's overall state.",
            ["namespace", "name", "state"],
            registry=self.registry,
        )
        self.decisions = Counter(
            "driftward_operator_policy_decisions",
            "Policy decisions other than None (Alert, Rollback, WouldRollback), by kind.",
            ["namespace", "name", "action", "kind"],
            registry=self.registry,
        )
        self.breaches = Gauge(
            "driftward_operator_consecutive_breaches",
            "Consecutive breaching evaluations, by kind (the policy's hysteresis counter).",
            ["namespace", "name", "kind"],
            registry=self.registry,
        )
        self.api_requests = Counter(
            "driftward_operator_api_requests",
            "Requests the reconcile loop sent to the Kubernetes API server, by HTTP method "
            "(kopf's own watch streams are not counted).",
            ["method"],
            registry=self.registry,
        )
        self.monitor_pods = Gauge(
            "driftward_operator_monitor_pods",
            "Serving pods whose monitor windows were merged in the last evaluation.",
            ["namespace", "name"],
            registry=self.registry,
        )

    def count_api_request(self, method: str) -> None:
        """Count one request to the Kubernetes API server."""
        self.api_requests.labels(method).inc()

    def record_evaluation(self, namespace: str, name: str, evaluation: Evaluation) -> None:
        """Count one evaluation and expose its hysteresis counters."""
        aggregate = evaluation.aggregate
        state = aggregate.verdict.state.value if aggregate is not None else "Unreachable"
        self.evaluations.labels(namespace, name, state if state in _STATES else "Ok").inc()
        self.monitor_pods.labels(namespace, name).set(
            len(aggregate.pods) if aggregate is not None else 0
        )
        for kind in policy.Kind:
            self.breaches.labels(namespace, name, kind.value).set(
                evaluation.decision.breaches.get(kind.value, 0)
            )
        decision = evaluation.decision
        if decision.action is not policy.Action.NONE:
            kind_label = decision.kind.value if decision.kind is not None else "manual"
            self.decisions.labels(namespace, name, decision.action.value, kind_label).inc()
