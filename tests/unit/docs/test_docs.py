"""The docs stay true: the CRD reference is generated from the CRD, and links resolve."""

from __future__ import annotations

import importlib.util
import re
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[3]
DOCS = ROOT / "docs"
LINK = re.compile(r"\]\(([^)#\s]+)(#[^)\s]*)?\)")


def _generator() -> Any:
    path = ROOT / "hack" / "gen-crd-reference.py"
    spec = importlib.util.spec_from_file_location("gen_crd_reference", path)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_crd_reference_is_generated_from_the_current_crd() -> None:
    assert (DOCS / "crd-reference.md").read_text() == _generator().build(), (
        "docs/crd-reference.md is stale: whoever changes the CRD regenerates it in the same "
        "commit: python3 hack/gen-crd-reference.py"
    )


def _leaf_paths(schema: dict[str, Any], path: str) -> list[str]:
    found = []
    props = schema.get("items", schema).get("properties", {})
    for name, prop in props.items():
        found.append(f"{path}|{name}")
        found += _leaf_paths(prop, f"{path}.{name}{'[]' if prop.get('type') == 'array' else ''}")
    return found


def test_crd_reference_documents_every_field() -> None:
    crd = yaml.safe_load((ROOT / "crds" / "driftward.dev_monitoredmodels.yaml").read_text())
    schema = crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
    text = (DOCS / "crd-reference.md").read_text()
    sections = dict(re.findall(r"### `([^`]+)`\n(.*?)(?=\n### |\n## |\Z)", text, re.S))
    for part in ("spec", "status"):
        for entry in _leaf_paths(schema["properties"][part], part):
            parent, name = entry.split("|")
            assert parent in sections, f"no section for {parent}"
            assert f"| `{name}` |" in sections[parent], f"{parent}.{name} is not documented"


def _markdown() -> list[Path]:
    return [ROOT / "README.md", *sorted(DOCS.glob("*.md"))]


@pytest.mark.parametrize("page", _markdown(), ids=lambda p: p.name)
def test_relative_links_resolve(page: Path) -> None:
    # Code spans and fenced blocks hold regular expressions, not links.
    text = re.sub(r"```.*?```", "", page.read_text(), flags=re.S)
    for target, _ in LINK.findall(re.sub(r"`[^`\n]*`", "", text)):
        if "://" in target or target.startswith("mailto:"):
            continue
        assert (page.parent / target).exists(), f"{page.name} links to missing {target}"


def test_readme_links_every_guide() -> None:
    readme = (ROOT / "README.md").read_text()
    for guide in ("operations.md", "gitops.md", "architecture.md", "crd-reference.md"):
        assert f"docs/{guide}" in readme, f"README.md does not link docs/{guide}"
