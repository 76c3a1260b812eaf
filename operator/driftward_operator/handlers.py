"""kopf registration: thin adapters from kopf's callbacks to ``reconcile``.

Nothing here decides anything. ``register`` wires one reconcile to resume,
create, spec and annotation updates, a periodic timer, and a per-model daemon
that evaluates the monitors' verdicts every ``spec.monitoring.interval``. It
also tunes kopf at start-up (status-based bookkeeping so the operator never
writes the spec or annotations, and peering so that only one replica acts).
"""

from __future__ import annotations

import logging
import os
import random
import threading
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import kopf
from kubernetes import client as kube_client
from kubernetes import config as kube_config

from driftward_operator import api
from driftward_operator.kube import KubeClient, KubeError
from driftward_operator.metrics import OperatorMetrics
from driftward_operator.monitors import ProfileCache
from driftward_operator.reconcile import reconcile
from driftward_operator.settings import OperatorSettings
from driftward_operator.timeutil import parse_duration


def build_api_client() -> Any:
    """An API client from the in-cluster account, or else the kubeconfig in $KUBECONFIG."""
    try:
        kube_config.load_incluster_config()
        return kube_client.ApiClient()
    except kube_config.ConfigException:
        # Read $KUBECONFIG now: the client library reads it only once, at import.
        return kube_config.new_client_from_config(config_file=os.environ.get("KUBECONFIG"))


def register(
    registry: kopf.OperatorRegistry,
    settings: OperatorSettings,
    metrics: OperatorMetrics | None = None,
) -> None:
    """Register the operator's handlers on a kopf registry."""
    resource = (api.GROUP, api.VERSION, api.PLURAL)

    @kopf.on.login(registry=registry)
    def login(**kwargs: Any) -> kopf.ConnectionInfo | None:
        """The pod's ServiceAccount in a cluster, else the kubeconfig in $KUBECONFIG."""
        return kopf.login_with_service_account(**kwargs) or kopf.login_with_kubeconfig(**kwargs)

    @kopf.on.startup(registry=registry)
    def configure(settings: kopf.OperatorSettings, memo: kopf.Memo, **_: Any) -> None:
        # Bookkeeping in status, not annotations: Argo CD diffs metadata, never status.
        settings.persistence.progress_storage = kopf.StatusProgressStorage(
            field="status.kopf.progress"
        )
        settings.persistence.diffbase_storage = kopf.StatusDiffBaseStorage(
            field="status.kopf.lastHandledConfiguration"
        )
        settings.persistence.finalizer = f"{api.GROUP}/kopf-finalizer"
        settings.posting.level = 100  # the operator posts its own Events; kopf's are noise
        settings.watching.server_timeout = 270
        settings.watching.client_timeout = 300
        settings.queueing.error_delays = [5, 15, 30, 60, 120]
        memo["kube"] = KubeClient(
            build_api_client(),
            field_manager=op_settings.field_manager,
            on_request=metrics.count_api_request if metrics is not None else None,
        )

    op_settings = settings

    profiles = ProfileCache()
    fault = build_fault(settings)

    def run(
        body: kopf.Body, memo: kopf.Memo, logger: kopf.Logger, *, evaluate: bool = False
    ) -> None:
        # kopf may run the timer, the daemon and an update handler for one object at once.
        lock: threading.Lock = memo.setdefault("lock", threading.Lock())
        cache: dict[str, tuple[str, float]] = memo.setdefault("applied", {})
        kube: KubeClient = memo["kube"]
        metadata = body["metadata"]
        with lock:
            try:
                # The body kopf hands over may predate a status this operator has just
                # written from a concurrent handler; decide on the stored object.
                fresh = kube.read(
                    api.API_VERSION, api.KIND, metadata["namespace"], metadata["name"]
                )
                if fresh is None:
                    return
                result = reconcile(
                    kube,
                    fresh,
                    datetime.now(UTC),
                    cache,
                    op_settings.apply_refresh_seconds,
                    profiles=profiles,
                    evaluate=evaluate,
                    metrics=metrics,
                    fault=fault,
                )
            except KubeError as exc:
                cache.clear()
                raise kopf.TemporaryError(f"Kubernetes API call failed: {exc}", delay=30) from exc
        if result.status_written:
            logger.info(
                f"status: phase={result.status['phase']} active={result.status['activeVersion']} "
                f"stable={result.status['stableVersion'] or '-'}"
            )

    @kopf.on.resume(*resource, registry=registry)
    @kopf.on.create(*resource, registry=registry)
    @kopf.on.update(*resource, field="spec", registry=registry)
    @kopf.on.update(*resource, field="metadata.annotations", registry=registry)
    def on_change(body: kopf.Body, memo: kopf.Memo, logger: kopf.Logger, **_: Any) -> None:
        """Reconcile at once when the spec or a request annotation changes, or on (re)start."""
        run(body, memo, logger)

    @kopf.timer(*resource, interval=settings.resync_seconds, idle=None, registry=registry)
    def on_timer(body: kopf.Body, memo: kopf.Memo, logger: kopf.Logger, **_: Any) -> None:
        """Reconcile periodically: rollouts finish and windows pass without spec changes."""
        run(body, memo, logger)

    if not settings.evaluate_verdicts:
        return

    @kopf.daemon(*resource, cancellation_timeout=5.0, registry=registry)
    def evaluate(
        body: kopf.Body,
        spec: kopf.Spec,
        memo: kopf.Memo,
        logger: kopf.Logger,
        stopped: kopf.DaemonStopped,
        **_: Any,
    ) -> None:
        """Read, merge and judge the monitors' verdicts every spec.monitoring.interval."""
        while not stopped:
            interval = compute_interval_seconds(spec)
            if stopped.wait(interval):
                break
            try:
                run(body, memo, logger, evaluate=True)
            except kopf.TemporaryError as exc:
                logger.warning(f"evaluation failed, retrying next interval: {exc}")


def build_fault(settings: OperatorSettings) -> Callable[[str], None] | None:
    """For crash-safety tests: a hook that kills the process at the configured point."""
    if not settings.fault:
        return None

    def fault(point: str) -> None:
        if settings.fault == point:
            logging.getLogger(__name__).critical("fault injection: exiting at %s", point)
            os._exit(17)

    return fault


def compute_interval_seconds(spec: Any) -> float:
    """The evaluation interval from spec.monitoring.interval (the CRD bounds it to 5s..24h)."""
    text = str(spec.get("monitoring", {}).get("interval", "30s"))
    return max(1.0, parse_duration(text).total_seconds())


def compute_priority(settings: OperatorSettings) -> int:
    """This replica's peering priority: the configured one, or a random one to avoid ties."""
    return settings.priority if settings.priority is not None else random.randint(1, 2**31 - 1)
