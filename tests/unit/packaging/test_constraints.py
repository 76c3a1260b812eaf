"""Every dependency is installed at one exact version, for the tests and for the image.

hack/constraints.txt pins every Python dependency (runtime and dev, with their
own dependencies). `make setup` and the Dockerfile both install with it, so
the suite tests the versions the image ships. These tests fail when a
dependency is added to pyproject.toml without a pin, when a pin falls outside
pyproject's range, or when this environment runs other versions than the pins
(a stale .venv: `make setup` reinstalls when the file changes).
"""

from __future__ import annotations

import tomllib
from importlib.metadata import PackageNotFoundError, version

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from tests.unit.chart.render import ROOT

CONSTRAINTS = ROOT / "hack" / "constraints.txt"


def read_pins() -> dict[str, str]:
    """Name (canonical) to exact version, from hack/constraints.txt."""
    pins: dict[str, str] = {}
    for number, line in enumerate(CONSTRAINTS.read_text().splitlines(), start=1):
        text = line.strip()
        if not text or text.startswith("#"):
            continue
        requirement = Requirement(text)
        specifiers = list(requirement.specifier)
        exact = [s for s in specifiers if s.operator == "=="]
        assert exact == specifiers, f"hack/constraints.txt line {number}: {text!r} is not '=='"
        assert len(exact) == 1, f"hack/constraints.txt line {number}: {text!r} is not one pin"
        name = canonicalize_name(requirement.name)
        assert name not in pins, f"hack/constraints.txt line {number}: {name} is pinned twice"
        pins[name] = specifiers[0].version
    return pins


def read_requirements() -> list[Requirement]:
    """pyproject.toml's runtime dependencies and every optional extra's."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    texts = list(project["dependencies"])
    for extra in project.get("optional-dependencies", {}).values():
        texts.extend(extra)
    return [Requirement(text) for text in texts]


def test_every_dependency_is_pinned_within_pyprojects_range() -> None:
    pins = read_pins()
    assert "driftward" not in pins, "hack/constraints.txt pins driftward itself"
    for requirement in read_requirements():
        name = canonicalize_name(requirement.name)
        assert name in pins, (
            f"{requirement} (pyproject.toml) has no pin in hack/constraints.txt; "
            "run bash hack/update-constraints.sh"
        )
        assert requirement.specifier.contains(pins[name], prereleases=True), (
            f"hack/constraints.txt pins {name}=={pins[name]}, outside pyproject.toml's "
            f"{requirement}; run bash hack/update-constraints.sh"
        )


def test_this_environment_runs_the_pinned_versions() -> None:
    wrong = []
    for name, pinned in read_pins().items():
        try:
            installed = version(name)
        except PackageNotFoundError:
            installed = "not installed"
        if installed != pinned:
            wrong.append(f"{name}: {installed}, pinned {pinned}")
    assert not wrong, "run make setup; these differ from hack/constraints.txt: " + "; ".join(wrong)


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        ("Makefile", "pip install --quiet -c hack/constraints.txt -e"),
        ("Dockerfile", "COPY pyproject.toml README.md hack/constraints.txt ./"),
        ("Dockerfile", "pip install --no-cache-dir -c constraints.txt /wheels/*.whl"),
    ],
)
def test_the_tests_and_the_image_install_with_the_constraints(path: str, expected: str) -> None:
    assert expected in (ROOT / path).read_text(), f"{path} no longer installs with the pins"
