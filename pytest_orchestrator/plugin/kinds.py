"""Whether an object is one of the script items' own kinds, asked without importing them: the script-items module
(:mod:`.items`) loads when a script is collected, and where it never loaded there is none of its objects."""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING
from typing import Any
from typing import TypeGuard


if TYPE_CHECKING:
    from pytest_orchestrator.plugin.items import ScriptFailure
    from pytest_orchestrator.plugin.items import ScriptItem
    from pytest_orchestrator.plugin.items import ScriptTimeout


__all__ = ["is_script_failure", "is_script_item", "is_script_timeout", "scripts_collected"]

_ITEMS = "pytest_orchestrator.plugin.items"


def _kind(name: str) -> Any:
    module = sys.modules.get(_ITEMS)
    return None if module is None else getattr(module, name)


def scripts_collected() -> bool:
    """Whether any script item can exist (the script-items module loaded): else none of a session's items is one."""
    return _ITEMS in sys.modules


def is_script_item(obj: object) -> TypeGuard[ScriptItem]:
    """Whether ``obj`` is a script's test item (``items.ScriptItem``)."""
    kind = _kind("ScriptItem")
    return kind is not None and isinstance(obj, kind)


def is_script_timeout(obj: object) -> TypeGuard[ScriptTimeout]:
    """Whether ``obj`` is a script's timeout error (``items.ScriptTimeout``)."""
    kind = _kind("ScriptTimeout")
    return kind is not None and isinstance(obj, kind)


def is_script_failure(obj: object) -> TypeGuard[ScriptFailure]:
    """Whether ``obj`` is a script's failure (``items.ScriptFailure``)."""
    kind = _kind("ScriptFailure")
    return kind is not None and isinstance(obj, kind)
