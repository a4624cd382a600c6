"""How a task's value appears in a JSON-ready dict: itself when it serialises to JSON, else its ``repr``."""

from __future__ import annotations

import json
from typing import Any


__all__ = ["jsonable"]


def jsonable(value: Any) -> Any:
    """``value`` itself if it serialises to JSON, else its ``repr`` (for ``to_dict()`` of results)."""
    try:
        json.dumps(value)
    except (TypeError, ValueError, RecursionError):
        return repr(value)
    return value
