"""hack/podrunner/spec.py: pods become process plans, and what cannot run is named."""

from __future__ import annotations

import base64
import copy
from pathlib import Path
from typing import Any

import pytest
from hack.podrunner.spec import (
    HttpGet,
    SpecError,
    build_base_env,
    build_pod_plan,
    compute_pod_ip,
    compute_references,
    expand_vars,
    localize,
    remap_path,
)

from driftward_operator.children import build_config_map, build_deployment
from driftward_operator.lifecycle import VersionRef

IP = "127.150.0.7"
SANDBOX = Path("/sandbox/ns/pod")
MM: dict[str, Any] = {
    "metadata": {"name": "iris", "namespace": "ml", "uid": "u-1"},
    "spec": {
        "model": {"version": "v1", "uri": "file:///m/v1.skops", "sha256": "a" * 64},
        "monitoring": {
            "reference": {"uri": "file:///ref.csv", "sha256": "b" * 64},
            "features": [{"name": "x", "type": "Numeric"}],
        },
    },
}


def pod_from_template(template: dict[str, Any], **status: Any) -> dict[str, Any]:
    return {
        "metadata": {"name": "p-1", "namespace": "ml", "uid": "uid-1", "labels": {"app": "a"}},
        "spec": {**copy.deepcopy(template["spec"]), "nodeName": "node-0"},
        "status": {"podIP": IP, "hostIP": "127.150.254.1", **status},
    }


def plan(pod: dict[str, Any], **kwargs: Any) -> Any:
    defaults: dict[str, Any] = {"base_env": {"PATH": "/venv/bin:/usr/bin"}}
    defaults["config_maps"] = kwargs.pop("config_maps", {})
    defaults["secrets"] = kwargs.pop("secrets", {})
    return build_pod_plan(pod, SANDBOX, **defaults, **kwargs)


def simple_pod(container: dict[str, Any], volumes: list[Any] | None = None) -> dict[str, Any]:
    spec: dict[str, Any] = {"containers": [{"name": "c", "image": "i", **container}]}
    if volumes is not None:
        spec["volumes"] = volumes
    return pod_from_template({"spec": spec})


def test_the_operators_pod_template_runs_as_two_processes_sharing_the_pod_ip() -> None:
    active = VersionRef("v1", "file:///m/v1.skops", "a" * 64)
    template = build_deployment(MM, active)["spec"]["template"]
    config_map = build_config_map(MM, active)
    pod = pod_from_template(template)
    result = plan(pod, config_maps={config_map["metadata"]["name"]: config_map["data"]})

    server, monitor = result.containers
    # args with no command are the whole argv (the image has no ENTRYPOINT).
    assert server.argv == ("driftward-serving", "serve")
    assert monitor.argv == ("driftward-serving", "monitor")
    # Both listen on the pod IP; serving reaches its sidecar there, not at 127.0.0.1.
    assert server.env["DRIFTWARD_SERVING_HOST"] == IP
    assert monitor.env["DRIFTWARD_MONITOR_HOST"] == IP
    assert server.env["HOST"] == IP
    assert server.env["DRIFTWARD_SERVING_MONITOR_URL"] == f"http://{IP}:8081"
    # The ConfigMap volume is a sandbox directory, and the env path points into it.
    config_dir = SANDBOX / "volumes" / "monitor-config"
    assert monitor.env["DRIFTWARD_MONITOR_CONFIG_PATH"] == str(config_dir / "monitor.json")
    volume = next(v for v in result.volumes if v.name == "monitor-config")
    assert volume.path == config_dir
    assert set(volume.files) == {"monitor.json"}
    assert server.env["TMPDIR"] == str(SANDBOX / "volumes" / "tmp")
    # Probes: named ports resolved against each container's own ports.
    assert server.readiness is not None
    assert server.readiness.action == HttpGet(host=IP, port=8080, path="/v2/health/ready")
    assert server.startup is not None
    assert server.startup.failure_threshold == 60
    assert monitor.readiness is not None
    assert monitor.readiness.action == HttpGet(host=IP, port=8081, path="/healthz")
    assert result.restart_policy == "Always"


def test_command_and_args_join_and_expand_container_env() -> None:
    pod = simple_pod(
        {
            "command": ["python", "-m", "http.server"],
            "args": ["$(PORT)", "--bind", "0.0.0.0", "$$(PORT)", "$(UNKNOWN)"],
            "env": [
                {"name": "PORT", "value": "8000"},
                {"name": "URL", "value": "http://localhost:$(PORT)/x"},
                {"name": "NAME", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}},
                {"name": "IP", "valueFrom": {"fieldRef": {"fieldPath": "status.podIP"}}},
                {
                    "name": "APP",
                    "valueFrom": {"fieldRef": {"fieldPath": "metadata.labels['app']"}},
                },
            ],
        }
    )
    (container,) = plan(pod).containers
    assert container.argv == (
        "python",
        "-m",
        "http.server",
        "8000",
        "--bind",
        IP,
        "$(PORT)",
        "$(UNKNOWN)",
    )
    assert container.env["URL"] == f"http://{IP}:8000/x"
    assert container.env["NAME"] == "p-1"
    assert container.env["IP"] == IP
    assert container.env["APP"] == "a"
    assert container.env["PATH"] == "/venv/bin:/usr/bin"
    assert container.env["HOME"] == str(SANDBOX / "home")


def test_secrets_and_config_maps_feed_env_and_volumes() -> None:
    secret = {
        "token": base64.b64encode(b"s3cret").decode(),
        "blob": base64.b64encode(b"\0\1").decode(),
    }
    pod = simple_pod(
        {
            "args": ["run", "--config=/etc/app/conf/settings.ini"],
            "env": [
                {"name": "TOKEN", "valueFrom": {"secretKeyRef": {"name": "s", "key": "token"}}},
                {
                    "name": "GONE",
                    "valueFrom": {"configMapKeyRef": {"name": "x", "key": "k", "optional": True}},
                },
            ],
            "envFrom": [{"configMapRef": {"name": "cm"}, "prefix": "CM_"}],
            "volumeMounts": [
                {"name": "conf", "mountPath": "/etc/app/conf"},
                {"name": "app", "mountPath": "/etc/app"},
                {"name": "keys", "mountPath": "/keys"},
            ],
        },
        volumes=[
            {
                "name": "conf",
                "configMap": {"name": "cm", "items": [{"key": "a", "path": "settings.ini"}]},
            },
            {"name": "app", "emptyDir": {}},
            {"name": "keys", "secret": {"secretName": "s"}},
        ],
    )
    assert compute_references(pod).config_maps == {"cm", "x"}
    assert compute_references(pod).secrets == {"s"}
    result = plan(pod, config_maps={"cm": {"a": "[x]"}}, secrets={"s": secret})
    (container,) = result.containers
    assert container.env["TOKEN"] == "s3cret"
    assert "GONE" not in container.env
    assert container.env["CM_a"] == "[x]"
    # The longest mountPath wins: /etc/app/conf, not /etc/app.
    settings = SANDBOX / "volumes" / "conf" / "settings.ini"
    assert container.argv == ("run", f"--config={settings}")
    volumes = {v.name: v for v in result.volumes}
    assert volumes["conf"].files == {"settings.ini": b"[x]"}
    assert volumes["keys"].files == {"token": b"s3cret", "blob": b"\0\1"}
    assert volumes["app"].files == {}


def test_projected_service_account_volume_is_materialised() -> None:
    pod = simple_pod(
        {"args": ["x"]},
        volumes=[
            {
                "name": "kube-api-access",
                "projected": {
                    "sources": [
                        {"serviceAccountToken": {"path": "token"}},
                        {
                            "configMap": {
                                "name": "kube-root-ca.crt",
                                "items": [{"key": "ca.crt", "path": "ca.crt"}],
                            }
                        },
                        {
                            "downwardAPI": {
                                "items": [
                                    {
                                        "path": "namespace",
                                        "fieldRef": {"fieldPath": "metadata.namespace"},
                                    }
                                ]
                            }
                        },
                    ]
                },
            }
        ],
    )
    result = plan(pod, config_maps={"kube-root-ca.crt": {"ca.crt": "PEM"}})
    assert result.volumes[0].files == {"token": b"", "ca.crt": b"PEM", "namespace": b"ml"}


@pytest.mark.parametrize(
    ("container", "volumes", "path", "allowed"),
    [
        (
            {
                "args": ["x"],
                "env": [
                    {"name": "A", "valueFrom": {"resourceFieldRef": {"resource": "limits.cpu"}}}
                ],
            },
            None,
            "spec.containers[0].env[0].valueFrom",
            "fieldRef, configMapKeyRef",
        ),
        (
            {
                "args": ["x"],
                "env": [{"name": "A", "valueFrom": {"fieldRef": {"fieldPath": "spec.hostname"}}}],
            },
            None,
            "spec.containers[0].env[0].valueFrom.fieldRef",
            "status.podIP",
        ),
        (
            {
                "args": ["x"],
                "env": [
                    {"name": "A", "valueFrom": {"configMapKeyRef": {"name": "nope", "key": "k"}}}
                ],
            },
            None,
            "spec.containers[0].env[0].valueFrom.configMapKeyRef",
            "does not exist",
        ),
        ({}, None, "spec.containers[0].command", "give command or args"),
        (
            {"args": ["x"]},
            [{"name": "h", "hostPath": {"path": "/"}}],
            "spec.volumes[0]",
            "emptyDir",
        ),
        (
            {"args": ["x"]},
            [{"name": "c", "configMap": {"name": "nope"}}],
            "spec.volumes[0].configMap",
            "does not exist",
        ),
        (
            {"args": ["x"], "volumeMounts": [{"name": "ghost", "mountPath": "/g"}]},
            [],
            "spec.containers[0].volumeMounts[0].name",
            "name a volume",
        ),
        (
            {"args": ["x"]},
            [{"name": "c", "configMap": {"name": "cm", "items": [{"key": "k", "path": "../up"}]}}],
            "spec.volumes[0].configMap.items[0].path",
            "relative path",
        ),
    ],
)
def test_what_cannot_run_is_named(
    container: dict[str, Any], volumes: list[Any] | None, path: str, allowed: str
) -> None:
    with pytest.raises(SpecError) as caught:
        plan(simple_pod(container, volumes), config_maps={"cm": {"k": "v"}})
    assert caught.value.path == path
    assert path in str(caught.value)
    assert allowed in str(caught.value)


def test_a_probe_on_an_unknown_port_name_can_never_pass() -> None:
    pod = simple_pod(
        {
            "args": ["x"],
            "ports": [{"name": "http", "containerPort": 80}],
            "readinessProbe": {"httpGet": {"path": "/", "port": "htpp"}},
            "livenessProbe": {"grpc": {"port": 80}, "periodSeconds": 2},
        }
    )
    (container,) = plan(pod).containers
    assert container.readiness.action is None
    assert "'htpp'" in container.readiness.error
    assert "http" in container.readiness.error
    assert container.liveness.action is None
    assert "grpc" in container.liveness.error
    assert container.liveness.period == 2


def test_grace_period_is_capped_and_restart_policy_checked() -> None:
    pod = simple_pod({"args": ["x"]})
    pod["spec"]["terminationGracePeriodSeconds"] = 600
    assert plan(pod, max_grace_seconds=10).grace_seconds == 10
    pod["spec"]["restartPolicy"] = "Sometimes"
    with pytest.raises(SpecError, match="Always, OnFailure, Never"):
        plan(pod)


@pytest.mark.parametrize(
    ("status", "spec", "expected"),
    [
        ({"podIP": "127.9.0.3"}, {}, "127.9.0.3"),
        ({"podIP": "10.0.0.3"}, {}, None),
        ({"podIP": "127.9.0.3"}, {"hostNetwork": True}, None),
        ({}, {}, None),
        ({"podIP": "not-an-ip"}, {}, None),
    ],
)
def test_only_loopback_pods_are_run(
    status: dict[str, Any], spec: dict[str, Any], expected: str | None
) -> None:
    assert compute_pod_ip({"status": status, "spec": spec}) == expected


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("127.0.0.1", IP),
        ("localhost", IP),
        ("http://127.0.0.1:8081", f"http://{IP}:8081"),
        ("http://user@localhost/x", f"http://user@{IP}/x"),
        ("0.0.0.0", IP),
        ("--host=0.0.0.0", f"--host={IP}"),
        ("localhost-proxy.example", "localhost-proxy.example"),
        ("127.0.0.10", "127.0.0.10"),
        ("say localhost", "say localhost"),
    ],
)
def test_localize(value: str, expected: str) -> None:
    assert localize(value, IP) == expected


def test_remap_path_and_expand_vars() -> None:
    mounts = [("/etc/app/conf", Path("/s/conf")), ("/etc/app", Path("/s/app"))]
    assert remap_path("/etc/app/conf/x.ini", mounts) == "/s/conf/x.ini"
    assert remap_path("/etc/app", mounts) == "/s/app"
    assert remap_path("/etc/application", mounts) == "/etc/application"
    assert remap_path("--out=/etc/app/o", mounts) == "--out=/s/app/o"
    assert expand_vars("$(A)-$$(A)-$(B)", {"A": "1"}) == "1-$(A)-$(B)"


def test_base_env_puts_the_venv_first() -> None:
    env = build_base_env({"PATH": "/usr/bin", "SECRET": "x", "LANG": "C.UTF-8"}, Path("/venv/bin"))
    assert env == {"PATH": "/venv/bin:/usr/bin", "LANG": "C.UTF-8"}
