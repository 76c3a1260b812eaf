"""The chart's monitoring objects speak the metrics driftward really exports.

* Every metric name in the PrometheusRule and the Grafana dashboard is one the
  serving, monitor or operator code registers.
* promtool parses every rule and every dashboard query, and its unit tests
  (alerts_test.yaml) show each alert firing, and not firing, on those series.
* The PodMonitor selects the operator's serving pods by their real labels and
  scrapes their real metrics ports.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import pytest
import yaml
from prometheus_client import CollectorRegistry

from driftward_operator import api
from driftward_operator.metrics import OperatorMetrics
from driftward_serving.metrics import build_metrics
from driftward_serving.monitor.config import MetricName
from driftward_serving.monitor.metrics import MonitorMetrics
from tests.unit.chart.render import CHART, Manifest, only, render
from tests.unit.chart.test_render import ALL_ON

HERE = Path(__file__).resolve().parent
DASHBOARD = CHART / "files" / "dashboards" / "driftward.json"
METRIC = re.compile(r"\bdriftward_[a-z0-9_]+\b")
SUFFIXES = {"counter": ("_total",), "histogram": ("_bucket", "_sum", "_count"), "gauge": ("",)}


def _names(registry: CollectorRegistry) -> set[str]:
    names = set()
    for family in registry.collect():
        for suffix in SUFFIXES.get(family.type, ("",)):
            names.add(family.name + suffix)
    return names


@pytest.fixture(scope="module")
def exported() -> set[str]:
    """Every series name the three processes register, from their own metric code."""
    serving, monitor = CollectorRegistry(), CollectorRegistry()
    build_metrics(serving, "m", "v", ["bad_request"])
    MonitorMetrics(monitor, "m", "v", ["f"], [MetricName.ACCURACY])
    return _names(serving) | _names(monitor) | _names(OperatorMetrics().registry)


@pytest.fixture(scope="module")
def promtool() -> str:
    found = shutil.which("promtool")
    if found is None:
        pytest.fail("promtool is missing; run: bash hack/ensure-promtool.sh", pytrace=False)
    return found


@pytest.fixture(scope="module")
def rendered(helm: Path) -> list[Manifest]:
    return render(helm, ALL_ON)


def _rule_groups(docs: list[Manifest]) -> list[dict[str, Any]]:
    groups: list[dict[str, Any]] = only(docs, "PrometheusRule")["spec"]["groups"]
    return groups


def _dashboard_queries() -> list[str]:
    dashboard = json.loads(DASHBOARD.read_text())
    queries = [t["expr"] for p in dashboard["panels"] for t in p.get("targets", [])]
    for variable in dashboard["templating"]["list"]:
        query = variable.get("query")
        if isinstance(query, dict):
            inner = re.fullmatch(r"label_values\((.*), *\w+\)", query["query"])
            assert inner, query
            queries.append(inner.group(1))
    return queries


def _used(expressions: Iterable[str]) -> set[str]:
    return {name for expr in expressions for name in METRIC.findall(expr)}


def test_alerts_cover_drift_degradation_rollback_and_dropped_records(
    rendered: list[Manifest],
) -> None:
    alerts = {r["alert"] for g in _rule_groups(rendered) for r in g["rules"]}
    assert {
        "DriftwardModelDrifted",
        "DriftwardModelDegraded",
        "DriftwardModelRolledBack",
        "DriftwardMonitorDroppingRecords",
    } <= alerts


def test_rules_use_only_exported_metrics(rendered: list[Manifest], exported: set[str]) -> None:
    used = _used(r["expr"] for g in _rule_groups(rendered) for r in g["rules"])
    assert "driftward_operator_rollbacks_total" in used
    assert used <= exported, f"not exported by any driftward process: {sorted(used - exported)}"


def test_dashboard_uses_only_exported_metrics(exported: set[str]) -> None:
    used = _used(_dashboard_queries())
    assert len(used) >= 15
    assert used <= exported, f"not exported by any driftward process: {sorted(used - exported)}"


def test_metric_name_check_can_fail(exported: set[str]) -> None:
    assert not _used(["rate(driftward_serving_requets_total[5m])"]) <= exported


def test_promtool_accepts_the_rules_and_their_unit_tests_pass(
    rendered: list[Manifest], promtool: str, tmp_path: Path
) -> None:
    (tmp_path / "rules.yaml").write_text(yaml.safe_dump({"groups": _rule_groups(rendered)}))
    shutil.copy(HERE / "alerts_test.yaml", tmp_path / "alerts_test.yaml")
    check = subprocess.run(
        [promtool, "check", "rules", "rules.yaml"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        check=False,
    )
    assert check.returncode == 0, check.stdout + check.stderr
    tested = subprocess.run(
        [promtool, "test", "rules", "alerts_test.yaml"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        check=False,
    )
    assert tested.returncode == 0, tested.stdout + tested.stderr
    assert "SUCCESS" in tested.stdout


def test_promtool_parses_every_dashboard_query(promtool: str, tmp_path: Path) -> None:
    # Grafana's variables become what they expand to, then each query becomes a
    # recording rule, so promtool's parser checks it.
    expand = {"$__rate_interval": "5m", "$__range": "6h", "$namespace": ".*", "$model": ".*"}
    rules = []
    for i, query in enumerate(_dashboard_queries()):
        expr = query
        for variable, value in expand.items():
            expr = expr.replace(variable, value)
        assert "$" not in expr, expr
        rules.append({"record": f"driftward:dashboard_query_{i}", "expr": expr})
    (tmp_path / "queries.yaml").write_text(
        yaml.safe_dump({"groups": [{"name": "dashboard", "rules": rules}]})
    )
    check = subprocess.run(
        [promtool, "check", "rules", "queries.yaml"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        check=False,
    )
    assert check.returncode == 0, check.stdout + check.stderr


def test_podmonitor_scrapes_the_serving_pods_real_ports(rendered: list[Manifest]) -> None:
    from driftward_operator.children import build_deployment, build_labels  # noqa: PLC0415
    from driftward_operator.lifecycle import VersionRef  # noqa: PLC0415

    monitor = only(rendered, "PodMonitor")
    mm = {
        "metadata": {"name": "iris", "namespace": "ml", "uid": "u"},
        "spec": {"model": {}, "monitoring": {"features": [], "reference": {}}},
    }
    labels = build_labels(mm, "model-server")
    assert monitor["spec"]["selector"]["matchLabels"].items() <= labels.items()
    version = VersionRef(version="v1", uri="file:///m", sha256="0" * 64)
    ports = set()
    pod = build_deployment(_full(mm), version)["spec"]["template"]["spec"]
    for container in pod["containers"]:
        ports |= {p["name"] for p in container["ports"]}
    scraped = {e["port"] for e in monitor["spec"]["podMetricsEndpoints"]}
    assert scraped == {"metrics", "monitor-metrics"}
    assert scraped <= ports
    assert api.SERVING_METRICS_PORT == 9090
    assert api.MONITOR_METRICS_PORT == 9091


def _full(mm: dict[str, Any]) -> dict[str, Any]:
    spec = {
        "model": {"version": "v1", "uri": "file:///m", "sha256": "0" * 64},
        "monitoring": {
            "features": [{"name": "x", "type": "Numeric"}],
            "reference": {"uri": "file:///r", "sha256": "1" * 64},
        },
    }
    return {**mm, "spec": spec}


def test_podmonitor_watches_only_the_watched_namespaces(helm: Path) -> None:
    docs = render(helm, {**ALL_ON, "operator": {"watchNamespaces": ["ml-prod"]}})
    assert only(docs, "PodMonitor")["spec"]["namespaceSelector"] == {"matchNames": ["ml-prod"]}
    assert only(render(helm, ALL_ON), "PodMonitor")["spec"]["namespaceSelector"] == {"any": True}


def test_servicemonitor_scrapes_the_operator_service(rendered: list[Manifest]) -> None:
    monitor = only(rendered, "ServiceMonitor")
    service = only(rendered, "Service")
    assert (
        monitor["spec"]["selector"]["matchLabels"].items() <= service["metadata"]["labels"].items()
    )
    assert monitor["spec"]["endpoints"][0]["port"] in {p["name"] for p in service["spec"]["ports"]}


def test_dashboard_configmap_carries_the_sidecar_label_and_the_json(
    rendered: list[Manifest],
) -> None:
    config_map = only(rendered, "ConfigMap")
    assert config_map["metadata"]["labels"]["grafana_dashboard"] == "1"
    assert json.loads(config_map["data"]["driftward.json"]) == json.loads(DASHBOARD.read_text())
