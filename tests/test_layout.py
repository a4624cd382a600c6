"""The package's shape: no module reaches into another's private names. (Import direction and cycles are
checked by import-linter, configured in ``pyproject.toml`` and run in ``.ci/run``.)"""

from __future__ import annotations

import ast
from pathlib import Path


PACKAGE = Path(__file__).resolve().parents[1] / "pytest_orchestrator"


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def test_no_module_imports_another_modules_private_names() -> None:
    offences = []
    for path in sorted(PACKAGE.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if not isinstance(node, ast.ImportFrom) or not node.module:
                continue
            if not node.module.startswith("pytest_orchestrator"):
                continue
            for alias in node.names:
                if alias.name.startswith("_") and not alias.name.startswith("__"):
                    offences.append(f"{path.relative_to(PACKAGE.parent)}:{node.lineno}: {node.module}.{alias.name}")
    assert offences == []


def test_private_pytest_and_xdist_apis_are_used_in_one_compatibility_module() -> None:
    """``_pytest.*`` and xdist's internal modules are imported only by ``plugin/compat.py``."""
    internal = ("_pytest", "xdist.remote", "xdist.workermanage", "xdist.dsession", "xdist.scheduler")
    compat = PACKAGE / "plugin" / "compat.py"
    offences = []
    for path in sorted(PACKAGE.rglob("*.py")):
        if path == compat:
            continue
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            names = (
                [node.module or ""]
                if isinstance(node, ast.ImportFrom)
                else [a.name for a in node.names]
                if isinstance(node, ast.Import)
                else []
            )
            for name in names:
                if name.startswith(internal) or name == "_pytest":
                    offences.append(f"{path.relative_to(PACKAGE.parent)}:{node.lineno}: {name}")
    assert offences == []
