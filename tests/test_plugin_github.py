"""On GitHub Actions, ``pytest --orchestrate`` annotates failed items and appends a step summary."""

from __future__ import annotations

from pathlib import Path

import pytest


SUITE = """
import pytest

def test_ok():
    pass

def test_broken():
    value = 41
    assert value == 42, "the answer is wrong"

@pytest.mark.depends("test_broken")
def test_after():
    pass
"""


@pytest.fixture
def github(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    summary = tmp_path / "step-summary.md"
    monkeypatch.setenv("GITHUB_ACTIONS", "true")
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(summary))
    return summary


@pytest.mark.parametrize("extra", [[], ["-n", "2"]], ids=["serial", "xdist"])
def test_failed_items_are_annotated_and_summarised(pytester: pytest.Pytester, github: Path, extra: list[str]) -> None:
    pytester.makeini("[pytest]")
    pytester.makepyfile(test_gh=SUITE)
    monkeypatch = pytest.MonkeyPatch()
    monkeypatch.setenv("GITHUB_WORKSPACE", str(pytester.path))
    try:
        result = pytester.runpytest_subprocess("--orchestrate", "-p", "no:cacheprovider", *extra, timeout=120)
    finally:
        monkeypatch.undo()
    result.assert_outcomes(passed=1, failed=1, skipped=1)
    out = result.stdout.str()
    # exactly one annotation, at the line that failed, titled with the node id
    annotations = [line for line in out.splitlines() if line.startswith("::error")]
    assert len(annotations) == 1, out
    assert annotations[0].startswith("::error file=test_gh.py,line=8,title=test_gh.py%3A%3Atest_broken failed::")
    assert "the answer is wrong" in annotations[0]
    markdown = github.read_text()
    assert "## pytest --orchestrate: workflow summary" in markdown
    assert "| failed | 1 |" in markdown and "| passed | 1 |" in markdown
    assert "`test_gh.py::test_broken` | test_gh.py:8 |" in markdown
    assert "`test_gh.py::test_after` | dependency 'test_gh.py::test_broken' failed |" in markdown


def test_nothing_is_written_outside_github_actions(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.delenv("GITHUB_ACTIONS", raising=False)
    summary = tmp_path / "step-summary.md"
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(summary))
    pytester.makepyfile(test_gh=SUITE)
    result = pytester.runpytest_subprocess("--orchestrate", "-p", "no:cacheprovider")
    assert "::error" not in result.stdout.str()
    assert not summary.exists()
