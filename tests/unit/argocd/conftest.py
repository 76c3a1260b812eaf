"""Fixtures for the Argo CD tests: the pinned helm binary renders the chart."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.unit.chart.render import build_helm


@pytest.fixture(scope="session")
def helm() -> Path:
    """The pinned helm binary (hack/testbed/versions.env)."""
    return build_helm()
