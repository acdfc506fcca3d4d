"""Layers point one way: backoffice → engine ← connectors; engine never imports Flask."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
FORBIDDEN = {
    "engine": ("backoffice", "connectors", "flask", "scripts", "celery"),
    "connectors": ("backoffice", "flask", "scripts"),
}


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
    return names


@pytest.mark.parametrize("layer", sorted(FORBIDDEN))
def test_lower_layers_do_not_import_upper_layers(layer):
    violations = []
    for path in sorted((ROOT / layer).rglob("*.py")):
        for name in _imports(path):
            if name.split(".")[0] in FORBIDDEN[layer]:
                violations.append(f"{path.relative_to(ROOT)} imports {name}")
    assert violations == []


def test_only_config_reads_the_environment():
    readers = []
    for layer in ("engine", "connectors", "backoffice", "scripts"):
        for path in sorted((ROOT / layer).rglob("*.py")):
            source = path.read_text(encoding="utf-8")
            if ("os.environ" in source or "getenv" in source) and path.name != "config.py":
                readers.append(str(path.relative_to(ROOT)))
    assert readers == []
