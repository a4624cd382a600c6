"""Small helpers shared by the thin API modules."""

from __future__ import annotations

from collections.abc import Callable
import json
import math
import re
from typing import Any
from typing import TypeVar

from pytest_orchestrator.core.workflow import TaskResult
from pytest_orchestrator.execution.process import ProcessResult


F = TypeVar("F", bound=Callable[..., Any])
Action = Callable[..., Any] | str
Condition = Callable[[dict[str, TaskResult]], Any]

#: the attribute on which ``step`` and ``condition`` store a function's step options
STEP_ATTR = "__orchestrate_step__"

#: delay before the second attempt of a thin-API step with ``retry=N`` (then doubling)
STEP_RETRY_DELAY = 0.1

#: PREV_RESULT is kept under this many bytes (Linux refuses a single environment string over 128 KiB)
_PREV_RESULT_LIMIT = 64 * 1024

# a string that names a script rather than a command: no blanks or shell syntax, ending in .py or .sh
_SCRIPT_LIKE = re.compile(r"[^\s;|&<>()$`'\"*?]+\.(?:py|sh)")


def _jsonable(value: Any) -> Any:
    try:
        json.dumps(value)
    except (TypeError, ValueError):
        return repr(value)
    return value


def _check_seconds(value: Any, what: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or math.isnan(value) or value <= 0:
        raise ValueError(f"{what} must be a positive number of seconds, got {value!r}")
    return float(value)


def _check_attempts(value: Any, what: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{what} must be an integer >= 1 (attempts in total), got {value!r}")
    return value


def _exit_error(proc: ProcessResult) -> str | None:
    if proc.error is not None:
        return proc.error
    rc = proc.returncode
    if rc is None or rc == 0:
        return None
    return f"killed by signal {-rc}" if rc < 0 else f"exited with status {rc}"
