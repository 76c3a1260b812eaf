"""`helm lint --strict` passes for every supported mode, and bad values fail naming the field."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

import pytest

from tests.unit.chart.render import CHART, kube_version, render, run_helm, write_values
from tests.unit.chart.test_render import VALUE_SETS


def lint(helm: Path, values: dict[str, Any]) -> tuple[int, str]:
    with tempfile.TemporaryDirectory() as tmp:
        values_file = write_values(values, Path(tmp))
        proc = run_helm(
            helm,
            "lint",
            str(CHART),
            "--strict",
            "--kube-version",
            kube_version(),
            "-f",
            str(values_file),
        )
    return proc.returncode, proc.stdout + proc.stderr


@pytest.mark.parametrize("case", sorted(VALUE_SETS))
def test_helm_lint_strict_passes(helm: Path, case: str) -> None:
    code, output = lint(helm, VALUE_SETS[case])
    assert code == 0, output
    assert "0 chart(s) failed" in output


@pytest.mark.parametrize(
    ("values", "expected"),
    [
        ({"operator": {"replicaz": 3}}, "additional properties 'replicaz' not allowed"),
        ({"operator": {"watchNamespaces": ["ml-*"]}}, "/operator/watchNamespaces/0"),
        ({"image": {"pullPolicy": "Sometimes"}}, "/image/pullPolicy"),
    ],
)
def test_values_outside_the_schema_fail_lint_naming_the_field(
    helm: Path, values: dict[str, Any], expected: str
) -> None:
    code, output = lint(helm, values)
    assert code != 0
    assert expected in output, output


# Cross-field rules are `fail` calls in the templates. helm lint only reports
# those as INFO, so they are checked where they bite: template and install.
@pytest.mark.parametrize(
    ("values", "expected"),
    [
        (
            {"operator": {"replicas": 2, "peering": {"enabled": False}}},
            "operator.replicas is 2 but operator.peering.enabled is false",
        ),
        (
            {"operator": {"livenessPort": 8000, "httpPort": 8000}},
            "operator.livenessPort and operator.httpPort are both 8000",
        ),
        (
            {"serviceAccount": {"create": False}},
            "serviceAccount.name must name an existing ServiceAccount",
        ),
    ],
)
def test_contradictory_values_fail_rendering_with_the_fields_named(
    helm: Path, values: dict[str, Any], expected: str
) -> None:
    with pytest.raises(AssertionError, match=expected.replace(".", r"\.")):
        render(helm, values)
