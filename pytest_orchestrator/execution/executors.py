"""Where blocking calls run: threads (default), processes, or any ``concurrent.futures.Executor``.

``open_executor`` returns an executor and whether the caller owns it (and so must shut it down). Pools are made
lazily, by the engine, only when a run has a sync action to place.
"""

from __future__ import annotations

import concurrent.futures
import os


__all__ = ["default_workers", "open_executor"]


def default_workers() -> int:
    """Threads for sync actions when no limit is given: enough that sleeping I/O tasks do not queue."""
    return max(32, (os.cpu_count() or 1) + 4)


def open_executor(
    spec: str | concurrent.futures.Executor | None,
    *,
    max_workers: int | None = None,
    name: str = "orchestrate",
) -> tuple[concurrent.futures.Executor, bool]:
    """Resolve an executor spec to ``(executor, owned)``."""
    if isinstance(spec, concurrent.futures.Executor):
        return spec, False
    if spec in (None, "thread"):
        return (
            concurrent.futures.ThreadPoolExecutor(
                max_workers=max_workers or default_workers(), thread_name_prefix=name
            ),
            True,
        )
    if spec == "process":
        return concurrent.futures.ProcessPoolExecutor(max_workers=max_workers), True
    raise ValueError(f"unknown executor {spec!r}")
