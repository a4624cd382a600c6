"""The lazy module ``__getattr__`` of the package ``__init__`` files (standard library only: imported at start-up)."""

from __future__ import annotations

from collections.abc import Callable
import importlib
from typing import Any


def lazy_getattr(package: str, mapping: dict[str, str], namespace: dict[str, Any]) -> Callable[[str], Any]:
    """A module ``__getattr__`` for ``package``: ``name`` is loaded from ``package.<mapping[name]>`` on first use.

    The value is then stored in ``namespace`` (the package's ``globals()``), so later look-ups do not come back here.
    """

    def __getattr__(name: str) -> Any:
        module = mapping.get(name)
        if module is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(f"{package}.{module}"), name)
        namespace[name] = value
        return value

    return __getattr__
