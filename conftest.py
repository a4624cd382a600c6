"""The repository's conftest: the ``pytester`` plugin and the fixtures shared by ``tests/``.

(The examples carry their own ``pytest.ini``, so running them roots pytest there and this file stays out of them.)
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
import os
from pathlib import Path
from typing import Any

import pytest

# pytester's in-process runs (``pytester.runpytest()``) drop from ``sys.modules`` every module first imported during
# them. The process layer keeps state across runs (psutil's caches, the reaper's adopted processes), so it is
# imported here, once, before any in-process run: re-imported per run, psutil raised ``KeyError: 'psutil'`` and a
# child's ``Popen`` was left unreaped when test files were batched.
import pytest_orchestrator.execution.process
import pytest_orchestrator.execution.reaper  # noqa: F401


pytest_plugins = ["pytester"]

REPO_ROOT = Path(__file__).resolve().parent


@pytest.fixture
def repo_root() -> Path:
    """The checkout's root directory (where ``pytest_orchestrator/`` and ``examples/`` live)."""
    return REPO_ROOT


@pytest.fixture
def subprocess_env() -> dict[str, str]:
    """An environment in which a child ``sys.executable`` imports this checkout's ``pytest_orchestrator``."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(REPO_ROOT), env.get("PYTHONPATH", "")) if p)
    return env


@pytest.fixture
def run_workflow() -> Callable[..., Any]:
    """``run_workflow(wf, limit=30.0)``: ``asyncio.run(wf.run())``, failing the test if the run does not end."""

    def run(wf: Any, limit: float = 30.0) -> Any:
        async def main() -> Any:
            return await asyncio.wait_for(wf.run(), limit)

        return asyncio.run(main())

    return run
