"""The README's main command, `make demo`, runs from start to the rollback it promises."""

from __future__ import annotations

import os
import subprocess
import uuid

from tests.conftest import ROOT


def test_demo_ends_with_the_automatic_rollback() -> None:
    name = f"driftward-demo-{uuid.uuid4().hex[:6]}"
    result = subprocess.run(
        ["bash", "hack/demo.sh"],
        cwd=ROOT,
        env={**os.environ, "DRIFTWARD_DEMO_EXIT": "1", "DRIFTWARD_DEMO_NAME": name},
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )
    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-4000:]
    assert "==> kubectl get mm: the automatic rollback to v1, and why" in output
    assert "RolledBack=True reason=DriftDetected" in output, output[-4000:]
    assert "drift report (v1 pod):   http://127." in output
    assert "STATUS: deployed" in output  # the Helm chart was installed
