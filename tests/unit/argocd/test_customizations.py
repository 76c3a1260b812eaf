"""The Argo CD health check and actions for MonitoredModel, run in Lua 5.1 as Argo CD runs them.

The cases are Argo CD's own test layout (health_test.yaml, actions/action_test.yaml
and their testdata/), so the same files could be dropped into Argo CD's
resource_customizations tree. The scripts run are the ones in the shipped
argocd-cm.yaml.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

from tests.unit.argocd.luavm import ArgoLua, LuaScriptError

ROOT = Path(__file__).resolve().parents[3]
ARGOCD = ROOT / "charts" / "driftward" / "argocd"
SCRIPTS = ARGOCD / "driftward.dev" / "MonitoredModel"
KEY = "driftward.dev_MonitoredModel"
HEALTH_TESTS = yaml.safe_load((SCRIPTS / "health_test.yaml").read_text())["tests"]
ACTION_TESTS = yaml.safe_load((SCRIPTS / "actions" / "action_test.yaml").read_text())


def _generator() -> Any:
    spec = importlib.util.spec_from_file_location(
        "gen_argocd_cm", ROOT / "hack" / "gen-argocd-cm.py"
    )
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _shipped() -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load((ARGOCD / "argocd-cm.yaml").read_text())["data"]
    return data


def health_script() -> str:
    script: str = _shipped()[f"resource.customizations.health.{KEY}"]
    return script


def action_scripts() -> tuple[str, dict[str, str]]:
    actions = yaml.safe_load(_shipped()[f"resource.customizations.actions.{KEY}"])
    return actions["discovery.lua"], {d["name"]: d["action.lua"] for d in actions["definitions"]}


def load(path: Path) -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load(path.read_text())
    return loaded


def test_argocd_cm_is_generated_from_the_scripts() -> None:
    assert (ARGOCD / "argocd-cm.yaml").read_text() == _generator().build(), (
        "charts/driftward/argocd/argocd-cm.yaml is stale; run: python3 hack/gen-argocd-cm.py"
    )
    assert health_script() == (SCRIPTS / "health.lua").read_text()


@pytest.mark.parametrize("case", HEALTH_TESTS, ids=lambda c: Path(c["inputPath"]).stem)
def test_health(case: dict[str, Any]) -> None:
    obj = load(SCRIPTS / case["inputPath"])
    assert ArgoLua().health(obj, health_script()) == case["healthStatus"]


def test_health_cases_cover_every_status_the_script_returns() -> None:
    statuses = {c["healthStatus"]["status"] for c in HEALTH_TESTS}
    assert statuses == {"Healthy", "Progressing", "Degraded"}


@pytest.mark.parametrize(
    "case", ACTION_TESTS["discoveryTests"], ids=lambda c: Path(c["inputPath"]).stem
)
def test_action_discovery(case: dict[str, Any]) -> None:
    discovery, _ = action_scripts()
    obj = load(SCRIPTS / "actions" / case["inputPath"])
    found = ArgoLua().discover(obj, discovery)
    key = lambda a: a["name"]  # noqa: E731
    assert sorted(found, key=key) == sorted(case["result"], key=key)


@pytest.mark.parametrize(
    "case",
    ACTION_TESTS["actionTests"],
    ids=lambda c: f"{c['action']}-{Path(c['inputPath']).stem}",
)
def test_action(case: dict[str, Any]) -> None:
    _, actions = action_scripts()
    obj = load(SCRIPTS / "actions" / case["inputPath"])
    expected = load(SCRIPTS / "actions" / case["expectedOutputPath"])
    assert ArgoLua().action(obj, actions[case["action"]]) == expected


def test_every_action_is_discovered_and_tested() -> None:
    discovery, actions = action_scripts()
    assert set(actions) == {"rollback", "promote", "retry"}
    assert {a["action"] for a in ACTION_TESTS["actionTests"]} == set(actions)
    obj = load(SCRIPTS / "actions" / "testdata" / "candidate.yaml")
    assert {a["name"] for a in ArgoLua().discover(obj, discovery)} == set(actions)


def test_actions_set_the_operators_request_annotations() -> None:
    from driftward_operator import api  # noqa: PLC0415

    _, actions = action_scripts()
    obj = load(SCRIPTS / "actions" / "testdata" / "stable.yaml")
    for name, script in actions.items():
        annotations = ArgoLua().action(obj, script)["metadata"]["annotations"]
        assert annotations == {api.REQUEST_ANNOTATIONS[name]: "2026-11-02T10:30:00Z"}


def test_actions_never_touch_spec_or_status() -> None:
    _, actions = action_scripts()
    obj = load(SCRIPTS / "actions" / "testdata" / "rolled_back.yaml")
    for script in actions.values():
        out = ArgoLua().action(obj, script)
        assert out["spec"] == obj["spec"]
        assert out["status"] == obj["status"]


def _crd_schema() -> dict[str, Any]:
    crd = load(ROOT / "crds" / "driftward.dev_monitoredmodels.yaml")
    schema: dict[str, Any] = crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
    return schema


def _close(schema: Any) -> Any:
    """Make every object schema reject unknown fields, as the API server prunes them."""
    if isinstance(schema, dict):
        closed = {k: _close(v) for k, v in schema.items()}
        open_ = schema.get("x-kubernetes-preserve-unknown-fields")
        if schema.get("type") == "object" and "properties" in schema and not open_:
            closed.setdefault("additionalProperties", False)
        return closed
    if isinstance(schema, list):
        return [_close(v) for v in schema]
    return schema


def _testdata() -> list[Path]:
    return sorted((SCRIPTS / "testdata").glob("*.yaml")) + sorted(
        (SCRIPTS / "actions" / "testdata").glob("*.yaml")
    )


@pytest.mark.parametrize("path", _testdata(), ids=lambda p: f"{p.parent.parent.name}/{p.stem}")
def test_testdata_matches_the_crd_schema(path: Path) -> None:
    # Test objects that drift from the real API would test a health check for nothing.
    obj = load(path)
    schema = _close(_crd_schema())
    schema["properties"]["metadata"] = {"type": "object"}
    # OpenAPI v3 schemas use draft 4 semantics (a boolean exclusiveMinimum).
    jsonschema.Draft4Validator(schema).validate(obj)


@pytest.mark.parametrize(
    "script",
    [
        'return {status = string.format("%s", "Healthy")}',
        'local s = "Healthy"; return {status = s:lower()}',
        'return {status = os.getenv("HOME")}',
        "return {status = tostring(math.floor(1.5))}",
        "while true do end",
    ],
)
def test_sandbox_refuses_what_argo_cd_refuses(script: str) -> None:
    with pytest.raises(LuaScriptError):
        ArgoLua().health({"metadata": {}}, script)


def test_invalid_health_status_becomes_unknown() -> None:
    assert ArgoLua().health({"metadata": {}}, 'return {status = "Fine"}') == {
        "status": "Unknown",
        "message": "Lua returned an invalid health status",
    }
