"""Fixtures for tests against the real local control plane: API clients and namespaces."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from kubernetes import client, config

from tests.conftest import ROOT, Testbed
from tests.integration.helpers import Cluster, temporary_namespace

CRD = ROOT / "crds" / "driftward.dev_monitoredmodels.yaml"


@pytest.fixture(scope="session")
def api_client(testbed: Testbed) -> Iterator[client.ApiClient]:
    """A Kubernetes API client for the session's cluster."""
    with config.new_client_from_config(config_file=str(testbed.kubeconfig)) as api:
        yield api


@pytest.fixture
def namespace(api_client: client.ApiClient) -> Iterator[str]:
    """A fresh namespace for one test, deleted afterwards."""
    with temporary_namespace(api_client) as name:
        yield name


@pytest.fixture
def kubeconfig_env(testbed: Testbed, monkeypatch: pytest.MonkeyPatch) -> Testbed:
    """Point KUBECONFIG at the session's cluster, for code that reads it (kopf, kubectl)."""
    monkeypatch.setenv("KUBECONFIG", str(testbed.kubeconfig))
    return testbed


@pytest.fixture(scope="session")
def crd_installed(testbed: Testbed) -> None:
    """Install the MonitoredModel CRD with kubectl server-side apply, as a user would."""
    testbed.kubectl("apply", "--server-side", "--force-conflicts", "-f", str(CRD))
    testbed.kubectl(
        "wait", "--for=condition=Established", "crd/monitoredmodels.driftward.dev", "--timeout=60s"
    )


@pytest.fixture
def cluster(crd_installed: None, api_client: client.ApiClient, namespace: str) -> Cluster:
    """Typed API shortcuts bound to this test's namespace, with the CRD installed."""
    return Cluster(api_client, namespace)
