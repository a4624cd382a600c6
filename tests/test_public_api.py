"""The public surface: names importable from ``pytest_orchestrator``, a sorted ``__all__``, a cheap import, and the
quickstart example."""

from __future__ import annotations

import ast
import importlib
import importlib.util
from pathlib import Path
import subprocess
import sys
import textwrap

import pytest

import pytest_orchestrator
from pytest_orchestrator import errors


WORKFLOW_API = [
    "Workflow",
    "Task",
    "TaskStatus",
    "TaskResult",
    "RetryPolicy",
    "chain",
    "parallel",
    "fan_out_fan_in",
    "analyze_workflow_dependencies",
]
ERRORS = [
    "WorkflowError",
    "CycleError",
    "TaskFailedError",
    "StepError",
    "OrchestratorTimeoutError",
    "StateError",
    "DependencyResolutionError",
    "ConcurrencyError",
]


def run_python(code: str, env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        env=env,
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


@pytest.mark.parametrize("name", WORKFLOW_API + ERRORS)
def test_name_is_importable_from_the_package(name: str) -> None:
    value = getattr(pytest_orchestrator, name)
    assert value is not None
    assert name in pytest_orchestrator.__all__
    namespace: dict[str, object] = {}
    exec(f"from pytest_orchestrator import {name}", namespace)
    assert namespace[name] is value


@pytest.mark.parametrize("name", ERRORS)
def test_errors_are_workflow_errors_and_the_same_objects(name: str) -> None:
    cls = getattr(pytest_orchestrator, name)
    assert issubclass(cls, pytest_orchestrator.WorkflowError)
    assert cls is getattr(errors, name)


def test_all_is_sorted_unique_and_resolves() -> None:
    names = pytest_orchestrator.__all__
    assert names == sorted(names)
    assert len(names) == len(set(names))
    for name in names:
        assert getattr(pytest_orchestrator, name) is not None, name
    assert set(WORKFLOW_API + ERRORS) <= set(names)


def test_dir_lists_the_public_names() -> None:
    assert set(WORKFLOW_API + ERRORS) <= set(dir(pytest_orchestrator))


def test_unknown_attribute_is_an_attribute_error() -> None:
    with pytest.raises(AttributeError, match="no_such_thing"):
        _ = pytest_orchestrator.no_such_thing
    assert not hasattr(pytest_orchestrator, "definitely_missing")


def test_version() -> None:
    assert isinstance(pytest_orchestrator.__version__, str)
    assert pytest_orchestrator.__version__.count(".") >= 1


def test_the_objects_are_the_core_ones() -> None:
    from pytest_orchestrator.core import graph
    from pytest_orchestrator.core import retry
    from pytest_orchestrator.core import workflow

    assert pytest_orchestrator.Workflow is workflow.Workflow
    assert pytest_orchestrator.RetryPolicy is retry.RetryPolicy
    assert pytest_orchestrator.analyze_workflow_dependencies is graph.analyze_workflow_dependencies


def test_import_is_cheap(subprocess_env: dict[str, str], repo_root: Path) -> None:
    """Importing the package (and the plugin, which pytest loads at start-up) loads neither yaml nor networkx,
    and the package alone does not load the engine."""
    modules = ["pytest_orchestrator"]
    if importlib.util.find_spec("pytest_orchestrator.plugin") is not None:
        modules.append("pytest_orchestrator.plugin")
    proc = run_python(
        f"""
        import sys
        import pytest_orchestrator
        alone = sorted(m for m in sys.modules if m.startswith("pytest_orchestrator"))
        for name in {modules!r}:
            __import__(name)
        heavy = sorted(m for m in ("yaml", "networkx") if m in sys.modules)
        print(repr((alone, heavy)))
        """,
        subprocess_env,
        repo_root,
    )
    assert proc.returncode == 0, proc.stderr
    alone, heavy = ast.literal_eval(proc.stdout.strip().splitlines()[-1])
    assert heavy == []
    assert "pytest_orchestrator.core.engine" not in alone


def test_quickstart_example_runs(subprocess_env: dict[str, str], repo_root: Path) -> None:
    """``examples/quickstart.py`` prints the report and a successful summary."""
    proc = subprocess.run(
        [sys.executable, "examples/quickstart.py"],
        env=subprocess_env,
        cwd=repo_root,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert "Report: {'users': 300}" in lines
    summary_line = next(line for line in lines if line.startswith("{") and "'success'" in line)
    summary = ast.literal_eval(summary_line)
    assert summary["success"] is True
    assert summary["name"] == "etl-pipeline"
    assert summary["completed"] == summary["total_tasks"] == 3
    assert summary["critical_path"] == ["fetch", "transform", "report"]


def test_type_checking_block_agrees_with_the_lazy_exports(repo_root: Path) -> None:
    """The ``TYPE_CHECKING`` imports (for type checkers) name exactly the lazily loaded names, from their modules."""
    tree = ast.parse((repo_root / "pytest_orchestrator" / "__init__.py").read_text())
    block = next(
        node
        for node in tree.body
        if isinstance(node, ast.If) and isinstance(node.test, ast.Name) and node.test.id == "TYPE_CHECKING"
    )
    static: dict[str, str] = {}
    for node in block.body:
        assert isinstance(node, ast.ImportFrom) and node.module is not None
        for alias in node.names:
            assert alias.asname == alias.name, "a re-export is written 'import X as X'"
            static[alias.name] = node.module.removeprefix("pytest_orchestrator.")
    lazy = pytest_orchestrator._LAZY
    assert set(static) == set(lazy)
    for name, module in lazy.items():
        # the block may import from the defining module or from the package that re-exports it
        assert module == static[name] or module.startswith(static[name] + ".") or static[name].startswith(module)
        assert getattr(importlib.import_module(f"pytest_orchestrator.{static[name]}"), name) is getattr(
            pytest_orchestrator, name
        )


def test_version_comes_from_the_installed_metadata() -> None:
    from importlib.metadata import version

    assert pytest_orchestrator.__version__ == version("pytest-orchestrator")
