"""Durable state: runs, tasks and attempts in a SQLite file, so that a run survives a crash and ``resume`` reruns
only what did not finish. (The original module's ``state`` submodule.)"""

from __future__ import annotations

from pytest_orchestrator.state.store import DEFAULT_PATH
from pytest_orchestrator.state.store import SCHEMA_VERSION
from pytest_orchestrator.state.store import RunInfo
from pytest_orchestrator.state.store import StateStore
from pytest_orchestrator.state.store import StoredTask


__all__ = ["DEFAULT_PATH", "SCHEMA_VERSION", "RunInfo", "StateStore", "StoredTask"]
