"""What a :class:`~pytest_orchestrator.state.store.StateStore` reads back: a run (:class:`RunInfo`) and a task of a
run (:class:`StoredTask`). Loaded when something is read back (a session that only records never is)."""

from __future__ import annotations

import dataclasses
from typing import Any


__all__ = ["RunInfo", "StoredTask"]


@dataclasses.dataclass(frozen=True)
class StoredTask:
    """A task as the store recorded it in one run."""

    task: str
    status: str
    fingerprint: str | None
    attempts: int
    started_at: float | None
    finished_at: float | None
    error: str | None
    value: Any
    value_stored: bool
    carried_over: bool

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


@dataclasses.dataclass(frozen=True)
class RunInfo:
    """One recorded run: what ``orchestrate runs`` lists and ``orchestrate show`` prints."""

    run_id: str
    name: str
    kind: str
    status: str
    started_at: float
    finished_at: float | None
    resumed_from: str | None
    recording_failed: str | None
    counts: dict[str, int]
    summary: dict[str, Any] | None = None

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)
