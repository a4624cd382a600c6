"""Durable state: runs, tasks and attempts in a SQLite file, so that a run survives a crash and ``resume`` reruns
only what did not finish. (The original module's ``state`` submodule.)"""

from __future__ import annotations

from typing import TYPE_CHECKING

from pytest_orchestrator._lazy import lazy_getattr
from pytest_orchestrator.state.store import DEFAULT_PATH
from pytest_orchestrator.state.store import SCHEMA_VERSION
from pytest_orchestrator.state.store import StateStore


if TYPE_CHECKING:
    from pytest_orchestrator.state.records import RunInfo as RunInfo
    from pytest_orchestrator.state.records import StoredTask as StoredTask


__all__ = ["DEFAULT_PATH", "SCHEMA_VERSION", "RunInfo", "StateStore", "StoredTask"]

__getattr__ = lazy_getattr("pytest_orchestrator.state", {"RunInfo": "records", "StoredTask": "records"}, globals())
