"""The one module of the operator that talks to the Kubernetes API.

It applies children with server-side apply under one field manager, reads
Deployments, writes the MonitoredModel's status subresource and posts Events.
It decides nothing: every choice is made by the pure modules before a call
here. It never writes a MonitoredModel's spec or metadata.
"""

from __future__ import annotations

import json
import logging
import uuid
from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any

from kubernetes import client

from driftward_operator import api
from driftward_operator.timeutil import format_time

log = logging.getLogger(__name__)

_COLLECTIONS = {
    ("v1", "ConfigMap"): "/api/v1/namespaces/{ns}/configmaps",
    ("v1", "Service"): "/api/v1/namespaces/{ns}/services",
    ("v1", "ServiceAccount"): "/api/v1/namespaces/{ns}/serviceaccounts",
    ("v1", "Event"): "/api/v1/namespaces/{ns}/events",
    ("v1", "Pod"): "/api/v1/namespaces/{ns}/pods",
    ("apps/v1", "Deployment"): "/apis/apps/v1/namespaces/{ns}/deployments",
    (api.API_VERSION, api.KIND): f"/apis/{api.API_VERSION}/namespaces/{{ns}}/{api.PLURAL}",
}


class KubeError(Exception):
    """A failed API call, with the API server's status code and message."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(f"HTTP {status}: {message}")
        self.status = status
        self.message = message


class KubeClient:
    """A small typed wrapper over the API client for the calls the operator makes."""

    def __init__(
        self,
        api_client: client.ApiClient,
        field_manager: str = api.FIELD_MANAGER,
        on_request: Callable[[str], None] | None = None,
    ) -> None:
        self._api = api_client
        self._field_manager = field_manager
        self._on_request = on_request
        """Called with the HTTP method of every request, to count the operator's API load."""

    def _request(
        self,
        method: str,
        path: str,
        *,
        query: list[tuple[str, str]] | None = None,
        body: Any = None,
        content_type: str = "application/json",
    ) -> dict[str, Any] | None:
        headers = {"Accept": "application/json", "Content-Type": content_type}
        serialized = self._api.param_serialize(
            method=method,
            resource_path=path,
            query_params=query or [],
            header_params=headers,
            body=body,
            auth_settings=["BearerToken"],
        )
        if self._on_request is not None:
            self._on_request(method)
        response = self._api.call_api(*serialized, _request_timeout=30)
        data = response.read()
        if response.status == 404 and method == "GET":
            return None
        if not 200 <= response.status < 300:
            try:
                message = json.loads(data).get("message", data.decode())
            except (ValueError, AttributeError):
                message = data.decode(errors="replace") if data else response.reason
            raise KubeError(response.status, str(message))
        return json.loads(data) if data else None

    @staticmethod
    def _path(api_version: str, kind: str, namespace: str, name: str | None = None) -> str:
        base = _COLLECTIONS[(api_version, kind)].format(ns=namespace)
        return f"{base}/{name}" if name else base

    def apply(self, manifest: Mapping[str, Any]) -> dict[str, Any]:
        """Server-side apply a manifest under the operator's field manager, taking ownership."""
        metadata = manifest["metadata"]
        path = self._path(
            manifest["apiVersion"], manifest["kind"], metadata["namespace"], metadata["name"]
        )
        result = self._request(
            "PATCH",
            path,
            query=[("fieldManager", self._field_manager), ("force", "true")],
            body=dict(manifest),
            content_type="application/apply-patch+yaml",
        )
        assert result is not None  # a successful apply always returns the object
        return result

    def read(self, api_version: str, kind: str, namespace: str, name: str) -> dict[str, Any] | None:
        """Read one object, or None if it does not exist."""
        return self._request("GET", self._path(api_version, kind, namespace, name))

    def list_pods(self, namespace: str, selector: str) -> list[dict[str, Any]]:
        """List the pods matching a label selector."""
        result = self._request(
            "GET", self._path("v1", "Pod", namespace), query=[("labelSelector", selector)]
        )
        return list((result or {}).get("items", []))

    def patch_status(self, namespace: str, name: str, status: Mapping[str, Any]) -> dict[str, Any]:
        """Merge-patch a MonitoredModel's status subresource (never its spec)."""
        path = self._path(api.API_VERSION, api.KIND, namespace, name) + "/status"
        result = self._request(
            "PATCH",
            path,
            body={"status": dict(status)},
            content_type="application/merge-patch+json",
        )
        assert result is not None
        return result

    def create_event(
        self,
        owner: Mapping[str, Any],
        *,
        type_: str,
        reason: str,
        message: str,
        now: datetime,
        name: str | None = None,
    ) -> bool:
        """Post an Event about a MonitoredModel; a fixed name makes it idempotent.

        Returns False when an Event with that name already exists.
        """
        metadata = owner["metadata"]
        stamp = format_time(now)
        event_name = name or f"{metadata['name']}.{uuid.uuid4().hex[:16]}"
        body = {
            "apiVersion": "v1",
            "kind": "Event",
            "metadata": {"name": event_name, "namespace": metadata["namespace"]},
            "involvedObject": {
                "apiVersion": api.API_VERSION,
                "kind": api.KIND,
                "name": metadata["name"],
                "namespace": metadata["namespace"],
                "uid": metadata["uid"],
            },
            "type": type_,
            "reason": reason,
            "message": message[:1024],
            "firstTimestamp": stamp,
            "lastTimestamp": stamp,
            "count": 1,
            "source": {"component": api.FIELD_MANAGER},
            "reportingComponent": f"{api.GROUP}/operator",
        }
        try:
            self._request("POST", self._path("v1", "Event", metadata["namespace"]), body=body)
        except KubeError as exc:
            if exc.status == 409:
                return False
            raise
        return True
