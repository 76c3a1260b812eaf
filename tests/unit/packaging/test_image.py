"""The one image serves every process through console scripts of the installed package.

There is no Docker engine here, so the image is never built in tests. Instead:
the Dockerfile is checked for the properties that matter (multi-stage, slim
base, non-root numeric user, no compilers, no ENTRYPOINT that would swallow a
pod's args), and every command the chart and the operator's pod template run
is shown to be an installed console script whose --help works.
"""

from __future__ import annotations

import re
import subprocess
import sys
from importlib.metadata import entry_points
from pathlib import Path

import pytest

from driftward_operator.children import build_deployment
from driftward_operator.lifecycle import VersionRef
from tests.unit.chart.render import ROOT, only, render
from tests.unit.chart.test_render import VALUE_SETS

DOCKERFILE = ROOT / "Dockerfile"
BIN = Path(sys.executable).parent
# The documented entrypoints (the Dockerfile's header and docs/operations.md).
ENTRYPOINTS = {
    ("driftward-operator",),
    ("driftward-serving", "serve"),
    ("driftward-serving", "monitor"),
    ("driftward-serving", "local"),
    ("driftward-serving", "profile"),
}
SCRIPTS = {
    "driftward-operator": "driftward_operator.cli:main",
    "driftward-serving": "driftward_serving.cli:main",
}


def _model() -> dict[str, object]:
    return {
        "metadata": {"name": "iris", "namespace": "ml", "uid": "u"},
        "spec": {
            "model": {"version": "v1", "uri": "file:///m", "sha256": "0" * 64},
            "monitoring": {
                "features": [{"name": "x", "type": "Numeric"}],
                "reference": {"uri": "file:///r", "sha256": "1" * 64},
            },
        },
    }


def _commands_used(helm: Path) -> set[tuple[str, ...]]:
    """Every container command line the chart and the operator's pod template run."""
    containers = []
    for values in VALUE_SETS.values():
        deployment = only(render(helm, values), "Deployment")
        containers += deployment["spec"]["template"]["spec"]["containers"]
    version = VersionRef(version="v1", uri="file:///m", sha256="0" * 64)
    containers += build_deployment(_model(), version)["spec"]["template"]["spec"]["containers"]
    used = set()
    for container in containers:
        assert "command" not in container, f"{container['name']} overrides the image's command"
        used.add(tuple(container["args"]))
    return used


def test_chart_and_operator_run_only_documented_entrypoints(helm: Path) -> None:
    used = _commands_used(helm)
    assert used <= ENTRYPOINTS, f"undocumented entrypoints: {sorted(used - ENTRYPOINTS)}"
    assert ("driftward-serving", "serve") in used
    assert ("driftward-serving", "monitor") in used
    assert ("driftward-operator",) in used


def test_console_scripts_are_declared_by_the_package() -> None:
    declared = {e.name: e.value for e in entry_points(group="console_scripts")}
    for name, target in SCRIPTS.items():
        assert declared.get(name) == target


@pytest.mark.parametrize("command", sorted(ENTRYPOINTS))
def test_every_entrypoint_is_installed_and_its_help_works(command: tuple[str, ...]) -> None:
    script = BIN / command[0]
    assert script.is_file(), f"{command[0]} is not installed in {BIN}"
    proc = subprocess.run(
        [str(script), *command[1:], "--help"],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith("usage:"), proc.stdout[:200]


def _stages() -> list[list[str]]:
    """The Dockerfile's instructions (continuation lines joined), split by FROM."""
    text = re.sub(r"\\\n", " ", DOCKERFILE.read_text())
    lines = [line.strip() for line in text.splitlines()]
    instructions = [line for line in lines if line and not line.startswith("#")]
    stages: list[list[str]] = []
    for line in instructions:
        if line.upper().startswith("FROM "):
            stages.append([])
        if stages:
            stages[-1].append(line)
    return stages


def test_dockerfile_is_multi_stage_on_a_slim_python_base() -> None:
    stages = _stages()
    assert len(stages) >= 2
    assert re.search(r"^ARG PYTHON_IMAGE=python:3\.1[12]-slim", DOCKERFILE.read_text(), re.M)
    assert all(stage[0].startswith("FROM ${PYTHON_IMAGE}") for stage in stages)


def test_final_stage_copies_only_the_virtualenv_and_runs_as_non_root() -> None:
    final = _stages()[-1]
    copies = [i for i in final if i.upper().startswith(("COPY", "ADD"))]
    assert copies == ["COPY --from=builder /opt/driftward /opt/driftward"]
    assert not any(i.upper().startswith("RUN") for i in final), "no build steps in the final stage"
    users = [i.split()[1] for i in final if i.upper().startswith("USER ")]
    assert users, "the final stage sets no USER"
    uid, _, gid = users[-1].partition(":")
    assert uid.isdigit(), f"USER {users[-1]} is not a numeric UID"
    assert gid.isdigit(), f"USER {users[-1]} is not a numeric GID"
    assert int(uid) != 0
    assert int(gid) != 0
    # Kubernetes' runAsNonRoot can only verify a numeric UID; the pods set the same one.
    pod = build_deployment(_model(), VersionRef(version="v1", uri="file:///m", sha256="0" * 64))
    assert pod["spec"]["template"]["spec"]["securityContext"]["runAsUser"] == int(uid)


def test_no_entrypoint_so_pod_args_are_the_whole_command() -> None:
    instructions = [i for stage in _stages() for i in stage]
    assert not any(i.upper().startswith("ENTRYPOINT") for i in instructions)
    assert _stages()[-1][-1] == 'CMD ["driftward-operator"]'


def test_no_compiler_or_package_manager_step_anywhere() -> None:
    steps = " ".join(i for stage in _stages() for i in stage if i.upper().startswith("RUN"))
    assert steps, "the builder stage has RUN steps"
    for tool in ("apt-get", "apk ", "gcc", "build-essential", "g++", "make "):
        assert tool not in steps, f"the Dockerfile runs {tool!r}"
