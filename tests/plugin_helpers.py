"""Helpers shared by the ``tests/test_plugin_*.py`` and ``tests/test_xdist*.py`` files (pytester projects)."""

from __future__ import annotations

from collections.abc import Iterable
import os
from pathlib import Path
import re
import textwrap
import xml.etree.ElementTree as ET

import pytest


#: run our own timeout path, not pytest-timeout's (installed with the test extra)
NO_TIMEOUT_PLUGIN = ("-p", "no:timeout")


def project(pytester: pytest.Pytester, ini: str = "") -> Path:
    """Make the pytester folder a project root (a pytest.ini), so rootdir-relative globs and paths apply."""
    pytester.makeini("[pytest]\n" + textwrap.dedent(ini))
    return pytester.path


def write(pytester: pytest.Pytester, relpath: str, text: str, *, executable: bool = False) -> Path:
    """Write a file under the pytester folder (folders created as needed)."""
    path = pytester.path / relpath
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text).lstrip("\n"))
    if executable:
        path.chmod(0o755)
    return path


def script(pytester: pytest.Pytester, relpath: str, body: str = "", *, meta: str | None = None) -> Path:
    """A Python script, with an optional ``[tool.orchestrate]`` PEP 723 block (``meta`` is TOML)."""
    head = ""
    if meta is not None:
        lines = ["# /// script", "# [tool.orchestrate]"]
        lines += [f"# {line}" if line else "#" for line in textwrap.dedent(meta).strip().splitlines()]
        lines.append("# ///")
        head = "\n".join(lines) + "\n"
    return write(pytester, relpath, head + textwrap.dedent(body).lstrip("\n"))


def order_of(result: pytest.RunResult, prefix: str = "") -> list[str]:
    """Node ids in the order ``-v`` reported them (first report of each)."""
    seen: list[str] = []
    for line in result.outlines:
        match = re.match(r"^(\S+::\S+) (PASSED|FAILED|SKIPPED|ERROR|RERUN|XFAIL|XPASS)", line)
        if match and match.group(1).startswith(prefix) and match.group(1) not in seen:
            seen.append(match.group(1))
    return seen


def summary_lines(result: pytest.RunResult) -> list[str]:
    """The lines of the workflow summary section."""
    lines = result.outlines
    try:
        start = next(i for i, line in enumerate(lines) if "workflow summary" in line and line.startswith("="))
    except StopIteration:
        return []
    out = []
    for line in lines[start + 1 :]:
        if line.startswith("=") and line.endswith("="):
            break
        out.append(line)
    return out


def assert_clean_error(result: pytest.RunResult, *fragments: str) -> None:
    """A usage error: exit status 4, ``ERROR:`` with each fragment, and no traceback."""
    text = result.stdout.str() + result.stderr.str()
    assert result.ret == pytest.ExitCode.USAGE_ERROR, text
    assert "ERROR:" in text, text
    for fragment in fragments:
        assert fragment in text, f"{fragment!r} not in:\n{text}"
    assert "Traceback" not in text, text


def junit_cases(path: Path) -> dict[str, ET.Element]:
    """``{"classname.name": <testcase>}`` from a JUnit XML file (fails on duplicates)."""
    cases: dict[str, ET.Element] = {}
    for case in ET.parse(path).getroot().iter("testcase"):
        key = f"{case.get('classname')}.{case.get('name')}"
        assert key not in cases, f"duplicate testcase {key}"
        cases[key] = case
    return cases


def properties(case: ET.Element) -> dict[str, str]:
    return {p.get("name", ""): p.get("value", "") for p in case.iter("property")}


def lines_matching(result: pytest.RunResult, needle: str) -> list[str]:
    return [line for line in result.outlines if needle in line]


def any_in(text: str, options: Iterable[str]) -> bool:
    return any(o in text for o in options)


def assert_counts(result: pytest.RunResult, **expected: int) -> None:
    """The final stats line has exactly these counts (``rerun`` included; warnings and deselected ignored)."""
    got = {k: v for k, v in result.parseoutcomes().items() if k not in ("warnings", "deselected")}
    assert got == expected, result.stdout.str()


#: plugins irrelevant to these tests that are slow to load in each inner run (hypothesis imports itself under -v)
LEAN_ADDOPTS = "-p no:hypothesispytest -p no:benchmark"


#: this checkout, put first on PYTHONPATH so subprocess runs import it whatever copy is installed
REPO_ROOT = Path(__file__).resolve().parents[1]


def lean_inner_runs(monkeypatch: pytest.MonkeyPatch) -> None:
    """Keep inner pytest runs fast and on this checkout: call from an autouse fixture that requests ``pytester``."""
    monkeypatch.setenv("PYTEST_ADDOPTS", LEAN_ADDOPTS)
    current = os.environ.get("PYTHONPATH", "")
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(p for p in (str(REPO_ROOT), current) if p))


#: the same for the ``-n`` inner runs of ``tests/test_xdist*.py``, which must not be reordered by pytest-randomly either
XDIST_LEAN_ADDOPTS = "-p no:hypothesispytest -p no:benchmark -p no:randomly"


def lean_xdist_inner_runs(monkeypatch: pytest.MonkeyPatch) -> None:
    """``lean_inner_runs`` for the xdist tests: also drop the worker variables this run may have (under ``-n``)."""
    monkeypatch.setenv("PYTEST_ADDOPTS", XDIST_LEAN_ADDOPTS)
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(p for p in (str(REPO_ROOT), os.environ.get("PYTHONPATH")) if p))
    for name in ("PYTEST_XDIST_WORKER", "PYTEST_XDIST_WORKER_COUNT", "PYTEST_XDIST_TESTRUNUID"):
        monkeypatch.delenv(name, raising=False)


#: the ini line that declares a project's scripts/ folder (running scripts is opt-in)
SCRIPTS_INI = "orchestrate_scripts = scripts/**/*.py scripts/**/*.sh\n"


#: an inner run that reads pytest-dependency's and pytest-order's markers with neither plugin loaded
WITHOUT_PLUGINS = ("-p", "no:dependency", "-p", "no:pytest_order", "-p", "no:cacheprovider")
#: a test run serially and under -n 2
WORKERS = pytest.mark.parametrize("workers", [(), ("-n", "2")], ids=["serial", "n2"])
