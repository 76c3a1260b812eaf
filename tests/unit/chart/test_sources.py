"""The chart carries exact copies of the single sources, and its values are schema-checked."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

from tests.unit.chart.render import CHART, ROOT

COPIED_CRDS = ("driftward.dev_monitoredmodels.yaml", "kopf.dev_peerings.yaml")


@pytest.mark.parametrize("name", COPIED_CRDS)
def test_chart_crd_is_a_byte_identical_copy_of_the_source(name: str) -> None:
    source, copy = ROOT / "crds" / name, CHART / "crds" / name
    assert copy.read_bytes() == source.read_bytes(), (
        f"{copy.relative_to(ROOT)} differs from {source.relative_to(ROOT)}, the single source. "
        f"Whoever changes the CRD updates the chart's copy in the same commit: "
        f"cp {source.relative_to(ROOT)} {copy.relative_to(ROOT)}"
    )


def test_chart_crds_folder_holds_only_the_copies() -> None:
    assert sorted(p.name for p in (CHART / "crds").iterdir()) == sorted(COPIED_CRDS)


def schema() -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads((CHART / "values.schema.json").read_text())
    return loaded


def values() -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load((CHART / "values.yaml").read_text())
    return loaded


def test_values_yaml_satisfies_its_schema() -> None:
    jsonschema.Draft7Validator.check_schema(schema())
    jsonschema.validate(values(), schema(), cls=jsonschema.Draft7Validator)


def _keys(value: Any, prefix: str = "") -> set[str]:
    if not isinstance(value, dict):
        return set()
    found = set()
    for key, item in value.items():
        path = f"{prefix}.{key}" if prefix else key
        found.add(path)
        found |= _keys(item, path)
    return found


def _schema_keys(node: dict[str, Any], prefix: str = "") -> set[str]:
    found = set()
    for key, item in node.get("properties", {}).items():
        path = f"{prefix}.{key}" if prefix else key
        found.add(path)
        found |= _schema_keys(item, path)
    return found


def test_schema_and_values_declare_the_same_keys() -> None:
    # Free-form maps (labels, resources, ...) have no properties in the schema.
    declared = _schema_keys(schema())
    in_values = {k for k in _keys(values()) if k.rsplit(".", 1)[0] not in _free_form()}
    assert in_values == declared


def _free_form() -> set[str]:
    return {
        "operator.resources.requests",
        "operator.resources.limits",
        "monitoring.grafanaDashboard.labels",
    }


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"operator": {"replicaz": 3}}, "replicaz"),
        ({"operator": {"replicas": 0}}, "replicas"),
        ({"operator": {"watchNamespaces": ["ml-*"]}}, "watchNamespaces"),
        ({"operator": {"watchNamespaces": ["a", "a"]}}, "watchNamespaces"),
        ({"image": {"pullPolicy": "Sometimes"}}, "pullPolicy"),
        ({"monitoring": {"prometheusRule": {"for": "ten minutes"}}}, "for"),
        ({"operator": {"podLabels": {"app.kubernetes.io/name": "x"}}}, "podLabels"),
    ],
)
def test_schema_rejects_bad_values_naming_the_field(change: dict[str, Any], field: str) -> None:
    merged = _merge(values(), change)
    errors = list(jsonschema.Draft7Validator(schema()).iter_errors(merged))
    assert errors, f"{change} was accepted"
    assert any(field in "/".join(map(str, e.absolute_path)) + e.message for e in errors)


def _merge(base: dict[str, Any], change: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, value in change.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = _merge(out[key], value)
        else:
            out[key] = value
    return out


def test_rbac_source_has_exactly_the_two_rule_sets() -> None:
    rules = yaml.safe_load((CHART / "files" / "operator-rbac.yaml").read_text())
    assert set(rules) == {"namespaced", "cluster"}
    assert all(isinstance(rules[k], list) and rules[k] for k in rules)


def test_dashboard_is_valid_json_with_a_stable_uid() -> None:
    path: Path = CHART / "files" / "dashboards" / "driftward.json"
    dashboard = json.loads(path.read_text())
    assert dashboard["uid"] == "driftward-models"
    ids = [p["id"] for p in dashboard["panels"]]
    assert len(ids) == len(set(ids))
