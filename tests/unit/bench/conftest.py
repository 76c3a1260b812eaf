"""The serving benchmark's script, loaded from its path (bench/ is not a package)."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

import pytest

SERVING_BENCH = Path(__file__).resolve().parents[3] / "bench" / "serving"


def _load(name: str, path: Path) -> ModuleType:
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up while building
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def bench() -> ModuleType:
    return _load("bench_serving_run", SERVING_BENCH / "run.py")


@pytest.fixture(scope="module")
def budget() -> ModuleType:
    return _load("bench_serving_budget", SERVING_BENCH / "budget.py")
