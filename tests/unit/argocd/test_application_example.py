"""docs/examples/argocd-application.yaml is a real, working Argo CD setup for the chart."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import jsonschema
import yaml

from tests.unit.chart.render import CHART, ROOT, find, render

EXAMPLE = ROOT / "docs" / "examples" / "argocd-application.yaml"


def applications() -> dict[str, dict[str, Any]]:
    docs = [d for d in yaml.safe_load_all(EXAMPLE.read_text()) if d]
    assert all(d["apiVersion"] == "argoproj.io/v1alpha1" for d in docs)
    assert all(d["kind"] == "Application" for d in docs)
    return {d["metadata"]["name"]: d for d in docs}


def test_chart_application_points_at_the_chart_with_valid_values(helm: Path) -> None:
    app = applications()["driftward"]
    source = app["spec"]["source"]
    assert (ROOT / source["path"]) == CHART
    values = source["helm"]["valuesObject"]
    schema = json.loads((CHART / "values.schema.json").read_text())
    # Helm validates the user's values merged over the chart's values.yaml.
    merged = _merge(yaml.safe_load((CHART / "values.yaml").read_text()), values)
    jsonschema.validate(merged, schema, cls=jsonschema.Draft7Validator)
    docs = render(helm, values, release=source["helm"]["releaseName"])
    roles = find(docs, "Role")
    namespaces = sorted(r["metadata"]["namespace"] for r in roles)
    assert namespaces == sorted(values["operator"]["watchNamespaces"])
    assert "ServerSideApply=true" in app["spec"]["syncPolicy"]["syncOptions"]


def test_model_application_needs_no_ignore_differences() -> None:
    # The operator never writes spec, so the models' Application diffs cleanly.
    app = applications()["fraud-models"]
    assert "ignoreDifferences" not in app["spec"]
    assert app["spec"]["syncPolicy"]["automated"]["selfHeal"] is True


def _merge(base: dict[str, Any], override: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = _merge(out[key], value)
        else:
            out[key] = value
    return out
