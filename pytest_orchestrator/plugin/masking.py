"""Secrets never reach the terminal, JUnit or the run report through a test report.

Under ``--orchestrate``, :class:`SecretMasking` (an outermost ``pytest_runtest_makereport`` wrapper, on the process
that runs the item, so an xdist worker masks before its reports travel) replaces the values of secret environment
variables (:mod:`pytest_orchestrator.reporting.secrets`: names with ``TOKEN``, ``SECRET``, ``PASSWORD``, ending in
``_KEY``, plus the ini ``orchestrate_secrets`` names) in what a report carries: the failure text (a failing
script's stdout and stderr tails included), the captured output sections, a skip reason, the plugin's one-line
attempt error and the item's user properties. pytest's failure representation is masked in place (it keeps its
layout and colours); one that cannot be walked is replaced by its masked text.
"""

from __future__ import annotations

from collections.abc import Generator
from typing import Any

import pytest

from pytest_orchestrator.plugin.outcomes import ERROR_ATTR
from pytest_orchestrator.plugin.outcomes import TIMEOUT_ATTR
from pytest_orchestrator.reporting.secrets import SecretMasker


__all__ = ["SecretMasking", "mask_report"]


def _mask_repr(obj: Any, masker: SecretMasker, depth: int = 0) -> Any:
    """``obj`` (a failure representation: pytest's repr objects, their lists, tuples and strings) with its strings
    masked; objects are changed in place, so the representation keeps its layout and colours."""
    if isinstance(obj, str):
        return masker.text(obj)
    if depth > 12:
        return obj
    if isinstance(obj, list):
        obj[:] = [_mask_repr(v, masker, depth + 1) for v in obj]
        return obj
    if isinstance(obj, tuple):
        return tuple(_mask_repr(v, masker, depth + 1) for v in obj)
    if type(obj).__module__.startswith("_pytest.") and hasattr(obj, "__dict__"):
        for name, value in list(vars(obj).items()):
            object.__setattr__(obj, name, _mask_repr(value, masker, depth + 1))
    return obj


def mask_report(report: pytest.TestReport, masker: SecretMasker) -> None:
    """Mask the secrets in ``report`` in place."""
    longrepr = report.longrepr
    if isinstance(longrepr, tuple) and len(longrepr) == 3:  # a skip: (path, line, reason)
        report.longrepr = (longrepr[0], longrepr[1], masker.text(str(longrepr[2])))
    elif longrepr is not None:
        text = report.longreprtext
        if masker.text(text) != text:
            report.longrepr = _mask_repr(longrepr, masker)
            text = report.longreprtext
            if masker.text(text) != text:  # a representation we could not walk: shown as plain text
                report.longrepr = masker.text(text)
    report.sections = [(title, masker.text(content)) for title, content in report.sections]
    report.user_properties = [(name, masker(value)) for name, value in report.user_properties]
    for attr in (ERROR_ATTR, TIMEOUT_ATTR):
        value = getattr(report, attr, None)
        if isinstance(value, str):
            setattr(report, attr, masker.text(value))
    if isinstance(getattr(report, "wasxfail", None), str):
        report.wasxfail = masker.text(report.wasxfail)


class SecretMasking:
    """Masks the secrets of every test report as it is made (see the module docstring)."""

    def __init__(self, config: pytest.Config) -> None:
        self.masker = SecretMasker(extra=list(config.getini("orchestrate_secrets")))

    @pytest.hookimpl(wrapper=True, tryfirst=True)
    def pytest_runtest_makereport(
        self, item: pytest.Item, call: pytest.CallInfo[None]
    ) -> Generator[None, pytest.TestReport, pytest.TestReport]:
        report: pytest.TestReport = yield
        if self.masker:
            mask_report(report, self.masker)
            item.user_properties[:] = [(name, self.masker(value)) for name, value in item.user_properties]
        return report
