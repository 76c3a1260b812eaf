"""A trivial kopf operator used only to prove kopf can talk to the local cluster."""

from typing import Any

import kopf


@kopf.on.create("", "v1", "configmaps", labels={"driftward.dev/smoke": "kopf"})
def seen(name: str | None, patch: kopf.Patch, logger: kopf.Logger, **_: Any) -> None:
    """Mark each ConfigMap this smoke test creates, and log a recognisable line."""
    patch.metadata.annotations["driftward.dev/seen-by"] = "smoke-operator"
    logger.info(f"smoke-operator saw configmap {name}")


@kopf.on.login()
def login(**kwargs: Any) -> kopf.ConnectionInfo | None:
    """Read KUBECONFIG when the operator starts, not when a client library was imported."""
    return kopf.login_with_kubeconfig(**kwargs)
