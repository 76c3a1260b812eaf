"""The podrunner's only door to the API server: watch pods, patch their status and finalizer.

Everything crosses this module as the API's own camelCase dicts (raw JSON), so
the pure modules never see client objects. It reads ConfigMaps and Secrets
that pods reference and writes only what a kubelet writes (pods/status) plus
the runner's own finalizer. It decides nothing.
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Callable, Mapping
from typing import Any

from hack.podrunner.spec import FINALIZER
from kubernetes import client, config, watch
from kubernetes.client.exceptions import ApiException

log = logging.getLogger("podrunner")

Pod = dict[str, Any]
EventHandler = Callable[[str, Pod], None]
SnapshotHandler = Callable[[str | None, list[Pod]], None]


def _json(response: Any) -> dict[str, Any]:
    """The body of a call made with _preload_content=False (the client's types do not say so)."""
    body: dict[str, Any] = json.loads(response.data)
    return body


class Kube:
    """Typed calls to the API server for one kubeconfig."""

    def __init__(self, kubeconfig: str | None) -> None:
        configuration = client.Configuration()
        config.load_kube_config(config_file=kubeconfig, client_configuration=configuration)
        # One connection per pod supervisor and watch at most; the default 4 would queue them.
        configuration.connection_pool_maxsize = 64
        self.api_client = client.ApiClient(configuration)
        self.core = client.CoreV1Api(self.api_client)

    def close(self) -> None:
        """Close the connection pool."""
        self.api_client.close()

    # -- pods --------------------------------------------------------------------

    def list_pods(self, namespace: str | None) -> tuple[list[Pod], str]:
        """Every pod in a namespace (or all), and the list's resourceVersion."""
        if namespace is None:
            response = self.core.list_pod_for_all_namespaces(_preload_content=False)
        else:
            response = self.core.list_namespaced_pod(namespace, _preload_content=False)
        body = _json(response)
        return list(body.get("items") or []), str(body["metadata"]["resourceVersion"])

    def watch_pods(
        self,
        namespace: str | None,
        on_snapshot: SnapshotHandler,
        on_event: EventHandler,
        stop: threading.Event,
    ) -> None:
        """List, then watch, re-listing when the watch expires; returns when stop is set."""
        while not stop.is_set():
            try:
                pods, listed = self.list_pods(namespace)
                on_snapshot(namespace, pods)
                version: str | None = listed
                while version is not None and not stop.is_set():
                    version = self._watch_once(namespace, version, on_event, stop)
            except ApiException as exc:
                if exc.status != 410:
                    log.warning("watch pods (%s): %s; retrying", namespace or "all", exc.reason)
                    stop.wait(1.0)
            except Exception as exc:
                log.warning("watch pods (%s): %r; retrying", namespace or "all", exc)
                stop.wait(1.0)

    def _watch_once(
        self, namespace: str | None, version: str, on_event: EventHandler, stop: threading.Event
    ) -> str | None:
        """One watch request; the last resourceVersion seen, or None when a re-list is needed."""
        w = watch.Watch()
        kwargs: dict[str, Any] = {
            "resource_version": version,
            "timeout_seconds": 30,
            "deserialize": False,
        }
        if namespace is None:
            stream = w.stream(self.core.list_pod_for_all_namespaces, **kwargs)
        else:
            stream = w.stream(self.core.list_namespaced_pod, namespace, **kwargs)
        for event in stream:
            if stop.is_set():
                w.stop()
                return version
            kind = event["type"]
            raw = event.get("raw_object") or event["object"]
            if kind == "ERROR":
                if raw.get("code") == 410:
                    return None  # expired: re-list
                raise ApiException(status=raw.get("code"), reason=raw.get("message"))
            if kind in ("ADDED", "MODIFIED", "DELETED"):
                on_event(kind, raw)
            version = raw.get("metadata", {}).get("resourceVersion", version)
        # A watch that times out cleanly resumes from the last version seen.
        return version

    def add_finalizer(self, pod: Mapping[str, Any]) -> None:
        """Hold the pod until the runner has stopped its processes."""
        meta = pod["metadata"]
        finalizers = meta.get("finalizers") or []
        if FINALIZER in finalizers:
            return
        ops: list[dict[str, Any]] = [{"op": "test", "path": "/metadata/uid", "value": meta["uid"]}]
        if finalizers:
            ops.append({"op": "add", "path": "/metadata/finalizers/-", "value": FINALIZER})
        else:
            ops.append({"op": "add", "path": "/metadata/finalizers", "value": [FINALIZER]})
        try:
            self.core.patch_namespaced_pod(meta["name"], meta["namespace"], ops)
        except ApiException as exc:
            # Gone, or being deleted (no new finalizers then): nothing to hold.
            if exc.status not in (404, 409, 422):
                raise
            log.info("%s/%s: finalizer not added: %s", meta["namespace"], meta["name"], exc.reason)

    def remove_finalizer(self, namespace: str, name: str, uid: str) -> None:
        """Release the pod, so kwok's pod-delete stage can remove it."""
        for _ in range(5):
            try:
                pod = self.core.read_namespaced_pod(name, namespace, _preload_content=False)
            except ApiException as exc:
                if exc.status == 404:
                    return
                raise
            meta = _json(pod)["metadata"]
            finalizers = meta.get("finalizers") or []
            if meta.get("uid") != uid or FINALIZER not in finalizers:
                return
            index = finalizers.index(FINALIZER)
            ops = [
                {"op": "test", "path": f"/metadata/finalizers/{index}", "value": FINALIZER},
                {"op": "remove", "path": f"/metadata/finalizers/{index}"},
            ]
            try:
                self.core.patch_namespaced_pod(name, namespace, ops)
                return
            except ApiException as exc:
                if exc.status == 404:
                    return
                if exc.status not in (409, 422):
                    raise
        log.warning("%s/%s: could not remove finalizer %s", namespace, name, FINALIZER)

    def patch_status(
        self, namespace: str, name: str, status: Mapping[str, Any]
    ) -> dict[str, Any] | None:
        """Strategic-merge the status (conditions merge by type); the pod after, or None if gone."""
        try:
            response = self.core.patch_namespaced_pod_status(
                name, namespace, {"status": dict(status)}, _preload_content=False
            )
        except ApiException as exc:
            if exc.status == 404:
                return None
            raise
        return _json(response)

    # -- what pods reference -----------------------------------------------------

    def read_config_maps(
        self, namespace: str, names: frozenset[str]
    ) -> tuple[dict[str, dict[str, str]], dict[str, dict[str, str]]]:
        """data and binaryData of each named ConfigMap that exists."""
        data: dict[str, dict[str, str]] = {}
        binary: dict[str, dict[str, str]] = {}
        for name in sorted(names):
            body = self._read("configmaps", namespace, name)
            if body is not None:
                data[name] = dict(body.get("data") or {})
                binary[name] = dict(body.get("binaryData") or {})
        return data, binary

    def read_secrets(self, namespace: str, names: frozenset[str]) -> dict[str, dict[str, str]]:
        """data (base64, as the API returns it) of each named Secret that exists."""
        found: dict[str, dict[str, str]] = {}
        for name in sorted(names):
            body = self._read("secrets", namespace, name)
            if body is not None:
                found[name] = dict(body.get("data") or {})
        return found

    def _read(self, kind: str, namespace: str, name: str) -> dict[str, Any] | None:
        read = (
            self.core.read_namespaced_config_map
            if kind == "configmaps"
            else self.core.read_namespaced_secret
        )
        try:
            response = read(name, namespace, _preload_content=False)
        except ApiException as exc:
            if exc.status == 404:
                return None
            raise
        return _json(response)
