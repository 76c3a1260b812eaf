"""Pure builders for the objects a MonitoredModel owns.

Each ``build_*`` function turns the MonitoredModel (plain dicts, with the CRD's
defaults already applied by the API server) and the version to serve into one
child manifest. They never talk to the cluster: ``kube`` applies what they
return, and owner references make deletion a matter for the garbage collector.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from typing import Any

from driftward_operator import api
from driftward_operator.lifecycle import VersionRef

Manifest = dict[str, Any]

# The CRD speaks Kubernetes' CamelCase enums; the monitor's config file
# (docs/contracts.md) uses its own lowercase names.
_FEATURE_TYPES = {"Numeric": "numeric", "Categorical": "categorical"}
_METHODS = {
    "KolmogorovSmirnov": "ks",
    "Wasserstein": "wasserstein",
    "PSI": "psi",
    "ChiSquare": "chisquare",
    "JensenShannon": "jensenshannon",
}
_CORRECTIONS = {
    "Bonferroni": "bonferroni",
    "Holm": "holm",
    "BenjaminiHochberg": "benjamini-hochberg",
    "None": "none",
}
_METRICS = {
    "Accuracy": "accuracy",
    "F1Macro": "f1_macro",
    "F1Weighted": "f1_weighted",
    "PrecisionMacro": "precision_macro",
    "RecallMacro": "recall_macro",
    "ROCAUC": "roc_auc",
    "LogLoss": "log_loss",
    "MAE": "mae",
    "RMSE": "rmse",
    "R2": "r2",
}
_FORMATS = {"CSV": "csv", "Parquet": "parquet", "Profile": "profile"}
_MODEL_FORMATS = {"Skops": "skops", "Joblib": "joblib", "Pickle": "pickle"}

_RESTRICTED_CONTAINER = {
    "allowPrivilegeEscalation": False,
    "readOnlyRootFilesystem": True,
    "runAsNonRoot": True,
    "capabilities": {"drop": ["ALL"]},
    "seccompProfile": {"type": "RuntimeDefault"},
}
_RESTRICTED_POD = {
    "runAsNonRoot": True,
    "runAsUser": 10001,
    "runAsGroup": 10001,
    "fsGroup": 10001,
    "seccompProfile": {"type": "RuntimeDefault"},
}


def build_owner_reference(mm: Mapping[str, Any]) -> dict[str, Any]:
    """The controller owner reference that makes a child garbage-collected with its model."""
    return {
        "apiVersion": api.API_VERSION,
        "kind": api.KIND,
        "name": mm["metadata"]["name"],
        "uid": mm["metadata"]["uid"],
        "controller": True,
        "blockOwnerDeletion": True,
    }


def build_labels(mm: Mapping[str, Any], component: str) -> dict[str, str]:
    """The labels every child carries."""
    name = str(mm["metadata"]["name"])
    return {
        api.LABEL_NAME: "driftward-model",
        api.LABEL_INSTANCE: name,
        api.LABEL_COMPONENT: component,
        api.LABEL_MANAGED_BY: api.MANAGED_BY,
        api.LABEL_MODEL: name,
    }


def _metadata(mm: Mapping[str, Any], name: str, component: str) -> dict[str, Any]:
    return {
        "name": name,
        "namespace": mm["metadata"]["namespace"],
        "labels": build_labels(mm, component),
        "ownerReferences": [build_owner_reference(mm)],
    }


def monitor_config_name(mm: Mapping[str, Any]) -> str:
    """The name of the ConfigMap holding the monitor's configuration."""
    return f"{mm['metadata']['name']}-monitor"


def serving_account_name(mm: Mapping[str, Any]) -> str:
    """The ServiceAccount the serving pods run as."""
    chosen = mm["spec"].get("serving", {}).get("serviceAccountName")
    return str(chosen) if chosen else f"{mm['metadata']['name']}-serving"


def build_monitor_config(mm: Mapping[str, Any], active: VersionRef) -> dict[str, Any]:
    """The monitor's configuration file (docs/contracts.md) for the active version."""
    spec = mm["spec"]
    monitoring = spec["monitoring"]
    drift = monitoring.get("drift", {})
    numeric = drift.get("numeric", {})
    categorical = drift.get("categorical", {})
    features = []
    for feature in monitoring["features"]:
        entry: dict[str, Any] = {"name": feature["name"], "type": _FEATURE_TYPES[feature["type"]]}
        if "method" in feature:
            entry["method"] = _METHODS[feature["method"]]
        if "threshold" in feature:
            entry["threshold"] = feature["threshold"]
        features.append(entry)
    reference = monitoring["reference"]
    config: dict[str, Any] = {
        "model": {
            "name": mm["metadata"]["name"],
            "version": active.version,
            "task": str(spec["model"].get("task", "Classification")).lower(),
        },
        "reference": {
            "uri": reference["uri"],
            "sha256": reference["sha256"],
            "format": _FORMATS[reference.get("format", "CSV")],
            **{
                key: reference[key]
                for key in ("targetColumn", "predictionColumn", "probaColumns")
                if key in reference
            },
        },
        "features": features,
        "window": {
            "size": monitoring.get("window", {}).get("size", 5000),
            "minSamples": monitoring.get("window", {}).get("minSamples", 1000),
        },
        "interval": monitoring.get("interval", "30s"),
        "drift": {
            "alpha": drift.get("alpha", 0.01),
            "correction": _CORRECTIONS[drift.get("correction", "Holm")],
            "numeric": {
                "method": _METHODS[numeric.get("method", "KolmogorovSmirnov")],
                "threshold": numeric.get("threshold", 0.05),
            },
            "categorical": {
                "method": _METHODS[categorical.get("method", "ChiSquare")],
                "threshold": categorical.get("threshold", 0.05),
            },
            "prediction": {"enabled": drift.get("predictionDrift", True)},
            "datasetDriftShare": drift.get("datasetDriftShare", 0.3),
        },
    }
    performance = monitoring.get("performance")
    if performance is not None:
        config["performance"] = {
            "metric": _METRICS[performance["metric"]],
            "baseline": performance["baseline"],
            "maxDegradation": performance.get("maxDegradation", 0.05),
            "minLabels": performance.get("minLabels", 200),
        }
    return config


def build_config_map(mm: Mapping[str, Any], active: VersionRef) -> Manifest:
    """The ConfigMap that carries the monitor's configuration."""
    config = build_monitor_config(mm, active)
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": _metadata(mm, monitor_config_name(mm), "monitor-config"),
        "data": {api.MONITOR_CONFIG_KEY: json.dumps(config, indent=2, sort_keys=True)},
    }


def build_service_account(mm: Mapping[str, Any]) -> Manifest | None:
    """A ServiceAccount with no API access for the serving pods, unless the spec names one."""
    if mm["spec"].get("serving", {}).get("serviceAccountName"):
        return None
    return {
        "apiVersion": "v1",
        "kind": "ServiceAccount",
        "metadata": _metadata(mm, serving_account_name(mm), "model-server"),
        "automountServiceAccountToken": False,
    }


def build_service(mm: Mapping[str, Any]) -> Manifest:
    """The Service in front of the serving pods: inference, metrics and the monitor."""
    serving = mm["spec"].get("serving", {})
    port = int(serving.get("port", 8080))
    ports = [
        ("http", port),
        ("metrics", api.SERVING_METRICS_PORT),
        ("monitor", api.MONITOR_PORT),
        ("monitor-metrics", api.MONITOR_METRICS_PORT),
    ]
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": _metadata(mm, mm["metadata"]["name"], "model-server"),
        "spec": {
            "type": "ClusterIP",
            "selector": {api.LABEL_MODEL: mm["metadata"]["name"]},
            "ports": [
                {"name": name, "port": number, "targetPort": name, "protocol": "TCP"}
                for name, number in ports
            ],
        },
    }


def compute_config_hash(*parts: Any) -> str:
    """A stable hash of configuration that, when it changes, must roll the pods."""
    encoded = json.dumps(parts, sort_keys=True, separators=(",", ":")).encode()
    return hashlib.sha256(encoded).hexdigest()[:16]


def _http_probe(path: str, port: str, period: int, failures: int) -> dict[str, Any]:
    return {
        "httpGet": {"path": path, "port": port},
        "periodSeconds": period,
        "timeoutSeconds": 2,
        "failureThreshold": failures,
    }


def build_deployment(mm: Mapping[str, Any], active: VersionRef) -> Manifest:
    """The serving Deployment: the model server and the monitor sidecar, restricted Pod Security."""
    name = str(mm["metadata"]["name"])
    spec = mm["spec"]
    serving = spec.get("serving", {})
    port = int(serving.get("port", 8080))
    serving_env = [
        {"name": "DRIFTWARD_SERVING_MODEL_NAME", "value": name},
        {"name": "DRIFTWARD_SERVING_MODEL_VERSION", "value": active.version},
        {"name": "DRIFTWARD_SERVING_ARTIFACT_URI", "value": active.uri},
        {"name": "DRIFTWARD_SERVING_ARTIFACT_SHA256", "value": active.sha256},
        {"name": "DRIFTWARD_SERVING_MODEL_FORMAT", "value": _MODEL_FORMATS[active.format]},
        {
            "name": "DRIFTWARD_SERVING_ALLOW_UNSAFE_FORMATS",
            "value": "true" if active.allow_unsafe_format else "false",
        },
        {
            "name": "DRIFTWARD_SERVING_SKLEARN_VERSION_MISMATCH",
            "value": str(serving.get("sklearnVersionMismatch", "Warn")).lower(),
        },
        {
            "name": "DRIFTWARD_SERVING_FEATURE_NAMES",
            "value": json.dumps([f["name"] for f in spec["monitoring"]["features"]]),
        },
        {"name": "DRIFTWARD_SERVING_PORT", "value": str(port)},
        {"name": "DRIFTWARD_SERVING_METRICS_PORT", "value": str(api.SERVING_METRICS_PORT)},
        {"name": "DRIFTWARD_SERVING_MONITOR_URL", "value": f"http://127.0.0.1:{api.MONITOR_PORT}"},
        *[dict(e) for e in serving.get("env", [])],
    ]
    monitor_env = [
        {
            "name": "DRIFTWARD_MONITOR_CONFIG_PATH",
            "value": f"{api.MONITOR_CONFIG_DIR}/{api.MONITOR_CONFIG_KEY}",
        },
        {"name": "DRIFTWARD_MONITOR_PORT", "value": str(api.MONITOR_PORT)},
        {"name": "DRIFTWARD_MONITOR_METRICS_PORT", "value": str(api.MONITOR_METRICS_PORT)},
        {"name": "DRIFTWARD_MONITOR_MODEL_NAME", "value": name},
        {"name": "DRIFTWARD_MONITOR_MODEL_VERSION", "value": active.version},
        # The reference may live in object storage behind the same credentials.
        *[dict(e) for e in serving.get("env", []) if str(e["name"]).startswith("AWS_")],
    ]
    image = str(serving.get("image", "ghcr.io/driftward/driftward:0.1.0"))
    pull_policy = str(serving.get("imagePullPolicy", "IfNotPresent"))
    tmp_mount = {"name": "tmp", "mountPath": "/tmp"}
    server = {
        "name": "model-server",
        "image": image,
        "imagePullPolicy": pull_policy,
        "args": ["driftward-serving", "serve"],
        "env": serving_env,
        "ports": [
            {"name": "http", "containerPort": port, "protocol": "TCP"},
            {"name": "metrics", "containerPort": api.SERVING_METRICS_PORT, "protocol": "TCP"},
        ],
        "readinessProbe": _http_probe("/v2/health/ready", "http", 5, 3),
        "livenessProbe": _http_probe("/v2/health/live", "http", 10, 6),
        "startupProbe": _http_probe("/v2/health/live", "http", 2, 60),
        "resources": dict(serving.get("resources", {})),
        "securityContext": dict(_RESTRICTED_CONTAINER),
        "volumeMounts": [tmp_mount],
    }
    monitor = {
        "name": "monitor",
        "image": image,
        "imagePullPolicy": pull_policy,
        "args": ["driftward-serving", "monitor"],
        "env": monitor_env,
        "ports": [
            {"name": "monitor", "containerPort": api.MONITOR_PORT, "protocol": "TCP"},
            {
                "name": "monitor-metrics",
                "containerPort": api.MONITOR_METRICS_PORT,
                "protocol": "TCP",
            },
        ],
        "readinessProbe": _http_probe("/healthz", "monitor", 10, 3),
        "livenessProbe": _http_probe("/healthz", "monitor", 15, 4),
        "resources": {"requests": {"cpu": "50m", "memory": "128Mi"}, "limits": {"memory": "256Mi"}},
        "securityContext": dict(_RESTRICTED_CONTAINER),
        "volumeMounts": [
            tmp_mount,
            {"name": "monitor-config", "mountPath": api.MONITOR_CONFIG_DIR, "readOnly": True},
        ],
    }
    config_hash = compute_config_hash(build_monitor_config(mm, active), serving_env)
    pod_labels = {
        **{str(k): str(v) for k, v in serving.get("podLabels", {}).items()},
        **build_labels(mm, "model-server"),
        api.LABEL_VERSION: active.version,
    }
    pod_annotations = {
        **{str(k): str(v) for k, v in serving.get("podAnnotations", {}).items()},
        api.ANNOTATION_CONFIG_HASH: config_hash,
        api.ANNOTATION_DIGEST: active.sha256,
    }
    pod_spec: dict[str, Any] = {
        "serviceAccountName": serving_account_name(mm),
        "automountServiceAccountToken": False,
        "securityContext": dict(_RESTRICTED_POD),
        "containers": [server, monitor],
        "volumes": [
            {"name": "tmp", "emptyDir": {"sizeLimit": "2Gi"}},
            {"name": "monitor-config", "configMap": {"name": monitor_config_name(mm)}},
        ],
    }
    for key in ("nodeSelector", "tolerations", "affinity"):
        if serving.get(key):
            pod_spec[key] = serving[key]
    metadata = _metadata(mm, name, "model-server")
    metadata["annotations"] = {api.ANNOTATION_DIGEST: active.sha256}
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": metadata,
        "spec": {
            "replicas": int(serving.get("replicas", 1)),
            "selector": {"matchLabels": {api.LABEL_MODEL: name}},
            "strategy": {
                "type": "RollingUpdate",
                "rollingUpdate": {"maxUnavailable": 0, "maxSurge": 1},
            },
            "template": {
                "metadata": {"labels": pod_labels, "annotations": pod_annotations},
                "spec": pod_spec,
            },
        },
    }


def build_children(mm: Mapping[str, Any], active: VersionRef) -> list[Manifest]:
    """Every child of a MonitoredModel, in the order they should be applied."""
    account = build_service_account(mm)
    children = [build_config_map(mm, active), build_service(mm), build_deployment(mm, active)]
    return ([account] if account is not None else []) + children
