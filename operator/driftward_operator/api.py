"""Names of the MonitoredModel API and of the objects driftward owns.

Constants only: no logic and no I/O. Condition reasons are CamelCase, following
the Kubernetes API conventions.
"""

from typing import Final

GROUP: Final = "driftward.dev"
VERSION: Final = "v1alpha1"
KIND: Final = "MonitoredModel"
PLURAL: Final = "monitoredmodels"
API_VERSION: Final = f"{GROUP}/{VERSION}"

FIELD_MANAGER: Final = "driftward-operator"

# Labels on every child object and pod. The selector uses only LABEL_MODEL,
# because a Deployment's selector is immutable.
LABEL_MODEL: Final = "driftward.dev/model"
LABEL_VERSION: Final = "driftward.dev/version"
LABEL_NAME: Final = "app.kubernetes.io/name"
LABEL_INSTANCE: Final = "app.kubernetes.io/instance"
LABEL_COMPONENT: Final = "app.kubernetes.io/component"
LABEL_MANAGED_BY: Final = "app.kubernetes.io/managed-by"
MANAGED_BY: Final = "driftward"

ANNOTATION_CONFIG_HASH: Final = "driftward.dev/config-hash"
ANNOTATION_DIGEST: Final = "driftward.dev/artifact-sha256"

# User requests on a MonitoredModel, made by setting the annotation to a new
# value (any string, such as a timestamp). The operator acts once per value and
# records the value it handled in status.requests; it never edits annotations.
ANNOTATION_RETRY: Final = "driftward.dev/retry"
ANNOTATION_ROLLBACK: Final = "driftward.dev/rollback"
ANNOTATION_PROMOTE: Final = "driftward.dev/promote"
REQUEST_ANNOTATIONS: Final = {
    "retry": ANNOTATION_RETRY,
    "rollback": ANNOTATION_ROLLBACK,
    "promote": ANNOTATION_PROMOTE,
}

# Ports inside the serving pod (docs/contracts.md).
SERVING_METRICS_PORT: Final = 9090
MONITOR_PORT: Final = 8081
MONITOR_METRICS_PORT: Final = 9091
MONITOR_CONFIG_KEY: Final = "monitor.json"
MONITOR_CONFIG_DIR: Final = "/etc/driftward"

# Condition types.
READY: Final = "Ready"
PROGRESSING: Final = "Progressing"
DEGRADED: Final = "Degraded"
DRIFTED: Final = "Drifted"
ROLLED_BACK: Final = "RolledBack"
CONDITION_TYPES: Final = (READY, PROGRESSING, DEGRADED, DRIFTED, ROLLED_BACK)

# Phases, a one-word summary for kubectl.
PHASE_PENDING: Final = "Pending"
PHASE_PROGRESSING: Final = "Progressing"
PHASE_HEALTHY: Final = "Healthy"
PHASE_DEGRADED: Final = "Degraded"
PHASE_ROLLED_BACK: Final = "RolledBack"
PHASE_FAILED: Final = "Failed"

# History outcomes.
OUTCOME_CANDIDATE: Final = "Candidate"
OUTCOME_STABLE: Final = "Stable"
OUTCOME_SUPERSEDED: Final = "Superseded"
OUTCOME_ROLLED_BACK: Final = "RolledBack"
OUTCOME_FAILED: Final = "Failed"


class Reason:
    """CamelCase reasons for conditions, history entries and Events."""

    DEPLOYMENT_AVAILABLE: Final = "DeploymentAvailable"
    DEPLOYMENT_PROGRESSING: Final = "DeploymentProgressing"
    DEPLOYMENT_MISSING: Final = "DeploymentMissing"
    PROGRESS_DEADLINE_EXCEEDED: Final = "ProgressDeadlineExceeded"
    MODEL_NOT_READY: Final = "ModelNotReady"
    CANDIDATE_DEPLOYED: Final = "CandidateDeployed"
    IN_PROMOTION_WINDOW: Final = "InPromotionWindow"
    PROMOTED: Final = "Promoted"
    STABLE: Final = "Stable"
    SUPERSEDED: Final = "Superseded"
    NO_DRIFT: Final = "NoDriftDetected"
    DRIFT_DETECTED: Final = "DriftDetected"
    NOT_EVALUATED: Final = "NotEvaluated"
    INCONCLUSIVE: Final = "Inconclusive"
    PERFORMANCE_OK: Final = "PerformanceWithinBaseline"
    PERFORMANCE_DEGRADED: Final = "PerformanceDegraded"
    NOT_ROLLED_BACK: Final = "NotRolledBack"
    VERSION_ROLLED_BACK: Final = "VersionRolledBack"
    RECONCILE_FAILED: Final = "ReconcileFailed"
    CHILD_REJECTED: Final = "ChildRejected"
    MANUAL_ROLLBACK: Final = "ManualRollback"
    MANUAL_PROMOTE: Final = "ManualPromote"
    RETRY: Final = "RetryRequested"
    REQUEST_IGNORED: Final = "RequestIgnored"
    WOULD_ROLL_BACK: Final = "WouldRollBack"
    ROLLBACK_SUPPRESSED: Final = "RollbackSuppressed"
    ESTIMATED_DEGRADED: Final = "EstimatedPerformanceDegraded"
    MONITORS_UNREACHABLE: Final = "MonitorsUnreachable"
