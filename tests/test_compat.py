"""``plugin/compat.py``, the one module that uses private pytest and pytest-xdist APIs, and the xdist layers' imports.

The private APIs themselves are exercised end to end by ``tests/test_xdist*.py`` (flush items, crashes, ``-x``,
``--dist loadgroup``) and the retry tests; run them under the oldest supported pins too (pytest 8.0, xdist 3.5).
"""

from __future__ import annotations

import ast
from pathlib import Path
import types
from typing import Any

import pytest

from pytest_orchestrator.plugin import compat


PACKAGE = Path(compat.__file__).resolve().parents[1]
PLUGIN = PACKAGE / "plugin"
#: the controller's half of the xdist scheduler, which must not import the worker's half
CONTROLLER_SIDE = ("xdist_controller", "xdist_dispatch", "xdist_handoff", "xdist_reports", "xdist_scheduling")
XDIST_MODULES = (*CONTROLLER_SIDE, "xdist", "xdist_worker")


def imported_modules(path: Path, *, type_checking: bool = False, top_level: bool = False) -> set[str]:
    """The modules ``path`` imports: anywhere (functions included) or at ``top_level`` only, and without the
    ``if TYPE_CHECKING:`` blocks unless ``type_checking``."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    if not type_checking:
        for node in ast.walk(tree):
            if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
                node.body = []
    out: set[str] = set()
    for node in tree.body if top_level else ast.walk(tree):
        if isinstance(node, ast.Import):
            out.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            out.add(node.module)
            out.update(f"{node.module}.{alias.name}" for alias in node.names)
    return out


def test_private_apis_are_used_only_in_compat() -> None:
    offenders = {}
    for path in PACKAGE.rglob("*.py"):
        if path == PLUGIN / "compat.py":
            continue
        private = sorted(
            m
            for m in imported_modules(path, type_checking=True)
            if m == "_pytest"
            or m.startswith(
                ("_pytest.", "xdist.remote", "xdist.workermanage", "xdist.report", "xdist.dsession", "xdist.scheduler")
            )
        )
        if private:
            offenders[str(path.relative_to(PACKAGE))] = private
    assert not offenders


@pytest.mark.parametrize("module", CONTROLLER_SIDE)
def test_controller_side_does_not_import_the_worker_side(module: str) -> None:
    imports = imported_modules(PLUGIN / f"{module}.py", type_checking=True)
    assert "pytest_orchestrator.plugin.xdist_worker" not in imports
    assert not any(m.startswith("pytest_orchestrator.plugin.xdist_worker.") for m in imports)


@pytest.mark.parametrize("module", XDIST_MODULES)
def test_xdist_modules_do_not_import_the_plugin_package(module: str) -> None:
    # ``from pytest_orchestrator.plugin import X`` names the package itself; its leaf modules are fine
    assert "pytest_orchestrator.plugin" not in imported_modules(PLUGIN / f"{module}.py")


def test_compat_imports_only_pytest_and_pluggy_at_import_time() -> None:
    # it is on the plugin's import path: no xdist module (imported where used), none of ours (a leaf)
    imports = imported_modules(PLUGIN / "compat.py", top_level=True)
    assert {m.split(".")[0] for m in imports} <= {
        "__future__",
        "collections",
        "os",
        "typing",
        "_pytest",
        "pluggy",
        "pytest",
    }


def test_failed_is_pytest_fail_exception() -> None:
    assert compat.Failed is pytest.fail.Exception
    with pytest.raises(compat.Failed):
        pytest.fail("boom")


def fake_config(**options: Any) -> Any:
    plugins: dict[str, object] = options.pop("plugins", {})
    return types.SimpleNamespace(
        getvalue=lambda name: options[name],
        getoption=lambda name, default=None: options.get(name, default),
        pluginmanager=types.SimpleNamespace(get_plugin=plugins.get),
        option=types.SimpleNamespace(**options),
    )


def test_worker_count_counts_n_and_tx_specs() -> None:
    assert compat.worker_count(fake_config(tx=["2*popen", "popen"])) == 3


def test_should_stop_reads_the_controller_session() -> None:
    assert compat.should_stop(fake_config()) is False
    session = types.SimpleNamespace(shouldstop="stopping after 1 failures")
    assert compat.should_stop(fake_config(plugins={"dsession": session})) == "stopping after 1 failures"


def test_is_crash_report() -> None:
    crash = pytest.TestReport("t.py::a", ("t.py", None, "t.py"), {}, "failed", "crashed", "???")  # type: ignore[arg-type]
    call = pytest.TestReport("t.py::a", ("t.py", 0, "a"), {}, "failed", "boom", "call")
    assert compat.is_crash_report(crash)
    assert not compat.is_crash_report(call)


def test_report_worker() -> None:
    report = pytest.TestReport("t.py::a", ("t.py", 0, "a"), {}, "passed", None, "call")
    assert compat.report_worker(report) is None
    node = object()
    report.node = node  # type: ignore[attr-defined]  # as xdist's controller sets it
    assert compat.report_worker(report) is node


def test_collection_diff_names_both_workers() -> None:
    text = compat.collection_diff(["t.py::a", "t.py::b"], ["t.py::a"], "gw0", "gw1")
    assert text is not None
    assert "gw0" in text and "gw1" in text
    assert compat.collection_diff(["t.py::a"], ["t.py::a"], "gw0", "gw1") is None


def test_quiet_log_says_nothing(capsys: pytest.CaptureFixture[str]) -> None:
    log = compat.quiet_log()
    log("hello")
    log.dagsched("hello", 1)
    assert capsys.readouterr() == ("", "")


def test_disable_group_suffix() -> None:
    config = fake_config(loadgroup=True)
    assert compat.disable_group_suffix(config) is True
    assert config.option.loadgroup is False
    assert compat.disable_group_suffix(fake_config(loadgroup=False)) is False
