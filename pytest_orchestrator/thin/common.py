"""Names shared by the thin API modules: type aliases, the step-options attribute and a few limits."""

from __future__ import annotations

from collections.abc import Callable
import re
from typing import Any
from typing import TypeVar

from pytest_orchestrator.core.workflow import TaskResult


__all__ = [
    "PREV_RESULT_LIMIT",
    "SCRIPT_LIKE",
    "STEP_ATTR",
    "STEP_RETRY_DELAY",
    "Action",
    "Condition",
    "F",
]

F = TypeVar("F", bound=Callable[..., Any])
Action = Callable[..., Any] | str
Condition = Callable[[dict[str, TaskResult]], Any]

#: the attribute on which ``step`` and ``condition`` store a function's step options
STEP_ATTR = "__orchestrate_step__"

#: delay before the second attempt of a thin-API step with ``retry=N`` (then doubling)
STEP_RETRY_DELAY = 0.1

#: PREV_RESULT is kept under this many bytes (Linux refuses a single environment string over 128 KiB)
PREV_RESULT_LIMIT = 64 * 1024

#: a string that names a script rather than a command: no blanks or shell syntax, ending in .py or .sh
SCRIPT_LIKE = re.compile(r"[^\s;|&<>()$`'\"*?]+\.(?:py|sh)")
