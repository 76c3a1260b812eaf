"""Helpers for tests against the local control plane: polling, typed API shortcuts, manifests."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import yaml
from kubernetes import client

from tests.conftest import ROOT

GROUP, VERSION, PLURAL = "driftward.dev", "v1alpha1", "monitoredmodels"
EXAMPLES = ROOT / "crds" / "examples"


@contextmanager
def temporary_namespace(api: client.ApiClient, prefix: str = "t") -> Iterator[str]:
    """A fresh namespace, deleted on exit."""
    name = f"{prefix}-{uuid.uuid4().hex[:8]}"
    core = client.CoreV1Api(api)
    core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=name)))
    try:
        yield name
    finally:
        core.delete_namespace(name)


def wait_for(predicate: Callable[[], Any], timeout: float, what: str) -> Any:
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        last = predicate()
        if last:
            return last
        time.sleep(0.5)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}; last value: {last!r}")


class Cluster:
    """Typed shortcuts over the API for these tests."""

    def __init__(self, api_client: client.ApiClient, namespace: str) -> None:
        self.ns = namespace
        self.custom = client.CustomObjectsApi(api_client)
        self.apps = client.AppsV1Api(api_client)
        self.core = client.CoreV1Api(api_client)

    def create(self, body: dict[str, Any]) -> dict[str, Any]:
        created: dict[str, Any] = self.custom.create_namespaced_custom_object(
            GROUP, VERSION, self.ns, PLURAL, body
        )
        return created

    def get(self, name: str) -> dict[str, Any]:
        found: dict[str, Any] = self.custom.get_namespaced_custom_object(
            GROUP, VERSION, self.ns, PLURAL, name
        )
        return found

    def patch_spec(self, name: str, patch: dict[str, Any]) -> None:
        self.custom.patch_namespaced_custom_object(
            GROUP, VERSION, self.ns, PLURAL, name, {"spec": patch}
        )

    def condition(self, name: str, type_: str) -> dict[str, Any]:
        for c in self.get(name).get("status", {}).get("conditions", []):
            if c["type"] == type_:
                return dict(c)
        return {}

    def deployment(self, name: str) -> Any:
        return self.apps.read_namespaced_deployment(name, self.ns)

    def events(self, name: str) -> list[Any]:
        items = self.core.list_namespaced_event(
            self.ns, field_selector=f"involvedObject.name={name}"
        ).items
        return [e for e in items if e.involved_object.kind == "MonitoredModel"]


def model(
    name: str, version: str = "v1", digest: str = "1" * 64, window: str = "3s"
) -> dict[str, Any]:
    body: dict[str, Any] = yaml.safe_load((EXAMPLES / "minimal.yaml").read_text())
    body["metadata"]["name"] = name
    body["spec"]["model"].update(
        version=version, sha256=digest, uri=f"file:///models/{version}.skops"
    )
    body["spec"]["policy"] = {"promotionWindow": window}
    return body
