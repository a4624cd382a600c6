"""Hooks we call that other plugins implement: an implementation that raises is a plugin error naming it
(:func:`call_guarded`), not a traceback that takes the rest of the session's output with it.
"""

from __future__ import annotations

from types import TracebackType
from typing import Any


__all__ = ["call_guarded", "describe_implementation"]


def describe_implementation(impl: Any) -> str:
    """``'name' in plugin P (file:line)`` for a pluggy hook implementation."""
    function = impl.function
    code = getattr(function, "__code__", None)
    where = f" ({code.co_filename}:{code.co_firstlineno})" if code is not None else ""
    name = getattr(function, "__qualname__", getattr(function, "__name__", repr(function)))
    return f"{name} in plugin {impl.plugin_name!r}{where}"


def _culprit(hook: Any, tb: TracebackType | None) -> Any:
    """The implementation of ``hook`` whose code is the innermost one in the traceback, or ``None``."""
    codes = {getattr(impl.function, "__code__", None): impl for impl in hook.get_hookimpls()}
    found = None
    while tb is not None:
        impl = codes.get(tb.tb_frame.f_code)
        if impl is not None:
            found = impl
        tb = tb.tb_next
    return found


def call_guarded(hook: Any, **kwargs: Any) -> str | None:
    """Call ``hook(**kwargs)`` (a pluggy hook caller); ``None`` if it went well, else a one-line plugin error
    naming the implementation that raised and what it raised."""
    try:
        hook(**kwargs)
    except Exception as exc:
        impl = _culprit(hook, exc.__traceback__)
        who = describe_implementation(impl) if impl is not None else "an implementation"
        what = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
        return f"plugin error: the {hook.name} implementation {who} raised {what}"
    return None
