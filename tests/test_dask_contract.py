"""The engine's contract tests (tests/test_engine.py), run again with every workflow on a Dask cluster.

Each ``Workflow`` made in these tests gets ``executor=`` the module's ``DaskExecutor`` (an in-process
``LocalCluster``, so that actions sharing state with the test behave as in threads): sync actions and command tasks
run on Dask workers, and retries, timeouts, conditions, trigger rules and cancellation must behave as with threads.
"""

from __future__ import annotations

from collections.abc import Iterator
import functools
from typing import Any

import pytest


pytest.importorskip("distributed")

import dask
import test_engine

from pytest_orchestrator.core import workflow as workflow_module
from pytest_orchestrator.execution.dask import DaskExecutor


#: tests about the thread and process executors themselves, not about the engine's contract
_NOT_CONTRACT = {
    "test_sync_actions_run_in_threads_by_default",
    "test_process_executor",
    "test_process_executor_failure",
    "test_an_executor_instance_is_used_and_left_open",
}

for _name in dir(test_engine):
    if _name.startswith("test_") and _name not in _NOT_CONTRACT:
        globals()[_name] = getattr(test_engine, _name)


@pytest.fixture(scope="module")
def dask_executor() -> Iterator[DaskExecutor]:
    # distributed's sampling profiler can race with short tasks in an in-process worker (a KeyError in its thread)
    with (
        dask.config.set({"distributed.worker.profile.enabled": False}),
        DaskExecutor(None, processes=False, n_workers=2, threads_per_worker=4) as executor,
    ):
        yield executor


@pytest.fixture(autouse=True)
def _on_dask(dask_executor: DaskExecutor, monkeypatch: pytest.MonkeyPatch) -> None:
    """Every Workflow made without an executor gets the module's Dask executor."""
    init = workflow_module.Workflow.__init__

    @functools.wraps(init)
    def on_dask(self: Any, *args: Any, **kwargs: Any) -> None:
        if kwargs.get("executor") is None:
            kwargs["executor"] = dask_executor
        init(self, *args, **kwargs)

    monkeypatch.setattr(workflow_module.Workflow, "__init__", on_dask)
