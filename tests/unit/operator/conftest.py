"""Fixtures for the operator's pure core: example manifests with the CRD's defaults applied."""

from __future__ import annotations

import copy
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[3]
CRD_PATH = ROOT / "crds" / "driftward.dev_monitoredmodels.yaml"
EXAMPLES = ROOT / "crds" / "examples"


def load_schema() -> dict[str, Any]:
    """The CRD's openAPIV3Schema for v1alpha1."""
    crd = yaml.safe_load(CRD_PATH.read_text())
    schema: dict[str, Any] = crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
    return schema


def apply_defaults(schema: dict[str, Any], value: Any) -> Any:
    """Fill in schema defaults the way the API server's structural defaulting does."""
    if schema.get("type") == "object" and isinstance(value, dict):
        for name, prop in schema.get("properties", {}).items():
            if name not in value and "default" in prop:
                value[name] = copy.deepcopy(prop["default"])
            if name in value:
                value[name] = apply_defaults(prop, value[name])
    elif schema.get("type") == "array" and isinstance(value, list):
        return [apply_defaults(schema.get("items", {}), item) for item in value]
    return value


@pytest.fixture(scope="session")
def schema() -> dict[str, Any]:
    return load_schema()


@pytest.fixture
def make_mm(schema: dict[str, Any]) -> Callable[..., dict[str, Any]]:
    """Build a MonitoredModel from an example file, as the API server would return it."""

    def make(example: str = "minimal", **spec_overrides: Any) -> dict[str, Any]:
        mm = yaml.safe_load((EXAMPLES / f"{example}.yaml").read_text())
        mm["metadata"].update(namespace="ml", uid="1f0e-uid", generation=1)
        for path, value in spec_overrides.items():
            node = mm["spec"]
            *parents, leaf = path.split("__")
            for part in parents:
                node = node.setdefault(part, {})
            node[leaf] = value
        return dict(apply_defaults(schema, mm))

    return make
