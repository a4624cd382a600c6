"""GitHub Actions output for ``pytest --orchestrate``: an ``::error`` annotation per failed item (at the file and
line where it failed) and the workflow summary appended to ``$GITHUB_STEP_SUMMARY`` as Markdown.

Registered by the session plugin only when ``GITHUB_ACTIONS=true``, and never on an xdist worker (the controller
sees every report and prints once).
"""

from __future__ import annotations

from typing import Any

import pytest

from pytest_orchestrator.integration.github import github_error
from pytest_orchestrator.integration.github import markdown_table
from pytest_orchestrator.integration.github import relative_path
from pytest_orchestrator.integration.github import write_step_summary
from pytest_orchestrator.plugin.outcomes import RERUN


__all__ = ["PLUGIN_NAME", "GitHubPlugin", "failure_location", "register", "step_summary"]

PLUGIN_NAME = "orchestrate-github"


def failure_location(report: pytest.TestReport) -> tuple[str, int | None, str]:
    """``(file, 1-based line, message)`` of a failed report: where the test failed, else where it is defined."""
    path, lineno, _ = report.location
    line: int | None = lineno + 1 if lineno is not None else None
    message = ""
    crash = getattr(report.longrepr, "reprcrash", None)
    if crash is not None:
        path, line, message = str(crash.path), int(crash.lineno), str(crash.message)
    if not message:
        text = report.longreprtext.strip().splitlines()
        message = text[-1] if text else f"{report.when} failed"
    return relative_path(path), line, message


class GitHubPlugin:
    """Collects failed items as their reports arrive and writes the annotations and the step summary."""

    def __init__(self) -> None:
        #: node id -> (file, line, message, phase) of its failure (the last attempt's, for retried items)
        self.failures: dict[str, tuple[str, int | None, str, str]] = {}

    @pytest.hookimpl(trylast=True)
    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        if report.outcome == RERUN:  # an attempt that will be retried is not the item's failure
            return
        if report.failed:
            file, line, message = failure_location(report)
            self.failures.setdefault(report.nodeid, (file, line, message, report.when))
        elif report.when == "call" and report.passed:
            self.failures.pop(report.nodeid, None)

    def pytest_orchestrate_summary(self, config: pytest.Config, summary: dict[str, Any], lines: list[str]) -> None:
        reporter = config.pluginmanager.get_plugin("terminalreporter")
        for nodeid, (file, line, message, when) in self.failures.items():
            what = "failed" if when == "call" else f"errored in {when}"
            annotation = github_error(message, file=file, line=line, title=f"{nodeid} {what}")
            if reporter is not None:
                reporter.write_line(annotation)
        write_step_summary(step_summary(summary, self.failures))


def step_summary(summary: dict[str, Any], failures: dict[str, tuple[str, int | None, str, str]]) -> str:
    """The workflow summary as GitHub-flavoured Markdown."""
    counts = summary.get("counts", {})
    out = ["## pytest --orchestrate: workflow summary", ""]
    out.append(markdown_table(["outcome", "items"], [(k, v) for k, v in counts.items() if v]))
    wall, total = summary.get("wall_time"), summary.get("total_duration")
    if isinstance(wall, int | float) and isinstance(total, int | float):
        out.append(f"Wall time {wall:.2f} s, summed item durations {total:.2f} s.\n")
    if failures:
        out.append("### Failures\n")
        rows = [
            (f"`{nodeid}`", f"{file}:{line}" if line else file, message)
            for nodeid, (file, line, message, _) in failures.items()
        ]
        out.append(markdown_table(["item", "where", "message"], rows))
    skips = summary.get("dependency_skips") or []
    if skips:
        out.append("### Dependency skips\n")
        out.append(markdown_table(["item", "reason"], [(f"`{s['nodeid']}`", s["reason"]) for s in skips]))
    return "\n".join(out)


def register(config: pytest.Config) -> None:
    """Register the GitHub output (the caller checked ``GITHUB_ACTIONS``); not on an xdist worker."""
    if hasattr(config, "workerinput"):
        return
    if not config.pluginmanager.has_plugin(PLUGIN_NAME):
        config.pluginmanager.register(GitHubPlugin(), PLUGIN_NAME)
