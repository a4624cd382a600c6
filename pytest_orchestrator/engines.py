"""The engine and the executors, under the original module's name ``engines``: the one place to pick where work runs.

Exists because the original had an ``engines`` submodule (sequential and parallel engines). Here there is one
event-driven engine (:class:`~pytest_orchestrator.core.engine.Engine`, run by ``Workflow.run()``); what varies is
where a sync action runs, chosen with ``Workflow(executor=...)``:

- ``"thread"`` (default): a thread pool (:func:`default_workers` threads, or ``max_concurrency``);
- ``"process"``: a process pool (the action and its arguments must be picklable);
- any ``concurrent.futures.Executor`` (yours; the workflow does not shut it down).

Async actions run on the event loop and command strings as killable subprocesses, whatever the executor. A
"sequential engine" is ``Workflow(max_concurrency=1)``.
"""

from __future__ import annotations

from pytest_orchestrator.core.engine import Engine
from pytest_orchestrator.execution.executors import default_workers
from pytest_orchestrator.execution.executors import open_executor


__all__ = ["Engine", "default_workers", "open_executor"]
