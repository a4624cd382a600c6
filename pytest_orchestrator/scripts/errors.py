"""``ConfigError``: an ``orchestrate.yaml``, a ``[tool.orchestrate]`` table or a script's inline metadata is wrong.

It lives in its own module so that every module of the package (and the pipeline loader) can raise it without
importing each other in a cycle.
"""

from __future__ import annotations

from os import PathLike
from typing import Any

from pytest_orchestrator.errors import WorkflowError


__all__ = ["ConfigError"]


class ConfigError(WorkflowError):
    """A configuration file or a script's inline metadata is malformed or fails validation.

    The message starts with ``<file>:<line>: `` when both are known (``<file>: `` when only the file is), and the
    context carries ``path`` (a string, or ``None``) and ``line`` (1-based, or ``None``), plus ``key`` when one
    setting is at fault and ``suggestions`` when an unknown key has close matches.

    Usage::

        raise ConfigError("unknown key 'timout'", path="orchestrate.yaml", line=7, key="timout")
        # str(err) == "orchestrate.yaml:7: unknown key 'timout'"
    """

    def __init__(
        self,
        message: str = "",
        *,
        path: str | PathLike[str] | None = None,
        line: int | None = None,
        **context: Any,
    ) -> None:
        path_text = None if path is None else str(path)
        if path_text is not None:
            prefix = f"{path_text}:{line}: " if line is not None else f"{path_text}: "
            if not message.startswith(prefix):
                message = prefix + message
        super().__init__(message, path=path_text, line=line, **context)
