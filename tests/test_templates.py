"""Workflow templates: what they build, what they return, and their parameter errors."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from pytest_orchestrator import OrchestratorTimeoutError
from pytest_orchestrator import TaskFailedError
from pytest_orchestrator import Workflow
from pytest_orchestrator.templates import ci_pipeline
from pytest_orchestrator.templates import etl
from pytest_orchestrator.templates import fan_out
from pytest_orchestrator.templates import retry_until
import pytest_orchestrator.workflows


def test_fan_out_reduces_in_item_order() -> None:
    async def square(x: int) -> int:
        await asyncio.sleep(0.001 * (5 - x))  # finish in reverse order
        return x * x

    wf = fan_out(range(5), square, reduce=list, max_concurrency=2)
    assert wf.max_concurrency == 2
    assert asyncio.run(wf.run())["reduce"] == [0, 1, 4, 9, 16]
    assert asyncio.run(fan_out([1, 2, 3], lambda x: x, reduce=sum).run())["reduce"] == 6
    assert asyncio.run(fan_out([], lambda x: x, reduce=sum).run())["reduce"] == 0


def test_etl_passes_values_along() -> None:
    wf = etl(lambda: [1, 2, 3], [lambda d: [x * 2 for x in d], lambda d: [x + 1 for x in d]], sum)
    assert list(wf.tasks) == ["extract", "transform_1", "transform_2", "load"]
    assert asyncio.run(wf.run())["load"] == 15


def test_retry_until_polls_until_true_or_times_out() -> None:
    answers = iter([False, None, "up"])
    wf = retry_until(lambda: next(answers), every=0.01, timeout=2)
    assert asyncio.run(wf.run())["check"] == "up"
    with pytest.raises((TaskFailedError, OrchestratorTimeoutError)):
        asyncio.run(retry_until(lambda: False, every=0.01, timeout=0.05).run())


def test_ci_pipeline_commands_and_functions() -> None:
    wf = ci_pipeline(lint="true", test=["echo ok"], build="true", deploy="true")
    assert isinstance(wf, Workflow)
    assert wf.tasks["build"].dependencies == ("lint", "test")
    assert wf.tasks["deploy"].dependencies == ("build",)
    results = asyncio.run(wf.run())
    assert set(results) == {"lint", "test", "build", "deploy"}
    ran: list[str] = []

    def test_stage() -> str:
        ran.append("test")
        return "tested"

    mixed = ci_pipeline(lint="true", test=test_stage)
    assert asyncio.run(mixed.run())["test"] == "tested"
    assert ran == ["test"]
    with pytest.raises(TaskFailedError):
        asyncio.run(ci_pipeline(test="false", deploy="true").run())


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: ci_pipeline(tset="pytest"), "unknown parameter 'tset'.*did you mean 'test'"),
        (lambda: ci_pipeline(lint="ruff check ."), "missing the 'test' stage"),
        (lambda: ci_pipeline(test=42), "stage 'test' must be"),
        (lambda: etl(lambda: 1, []), "missing the 'load' step"),
        (lambda: etl(lambda: 1, [1], print), r"transforms\[0\] must be callable"),  # type: ignore[list-item]
        (lambda: fan_out("abc", print), "items must be an iterable"),
        (lambda: fan_out([1], 3), "worker must be callable"),  # type: ignore[arg-type]
        (lambda: retry_until(bool, every=1), "missing 'timeout'"),
        (lambda: retry_until(bool, every=-1, timeout=1), "every must be a positive"),
    ],
)
def test_parameter_errors(call: Any, message: str) -> None:
    with pytest.raises((TypeError, ValueError), match=message):
        call()


def test_alias_module_has_the_original_name() -> None:
    assert pytest_orchestrator.workflows.fan_out is fan_out
