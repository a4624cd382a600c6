"""Colour on a terminal: whether to use it (``NO_COLOR``, ``FORCE_COLOR``, a TTY) and how (ANSI SGR codes).

:func:`use_colour` decides for one stream: ``NO_COLOR`` (any non-empty value, https://no-color.org) turns colour
off, ``FORCE_COLOR`` (a non-empty value other than ``0``) turns it on, and otherwise a stream that is a TTY gets
colour unless ``TERM`` is ``dumb``. :func:`paint` wraps a text in the codes of named styles. Standard library only.
"""

from __future__ import annotations

from collections.abc import Mapping
import os
from typing import Any


__all__ = ["STYLES", "paint", "use_colour"]

#: style name -> ANSI SGR parameter
STYLES: Mapping[str, str] = {
    "bold": "1",
    "dim": "2",
    "red": "31",
    "green": "32",
    "yellow": "33",
    "blue": "34",
    "magenta": "35",
    "cyan": "36",
}


def use_colour(stream: Any, env: Mapping[str, str] | None = None) -> bool:
    """Whether to colour what is written to ``stream`` (see the module docstring for the rule)."""
    env = os.environ if env is None else env
    if env.get("NO_COLOR"):
        return False
    force = env.get("FORCE_COLOR")
    if force is not None and force != "":
        return force.strip() != "0"
    if env.get("TERM") == "dumb":
        return False
    isatty = getattr(stream, "isatty", None)
    try:
        return bool(isatty()) if callable(isatty) else False
    except (OSError, ValueError):  # a closed stream
        return False


def paint(text: str, *styles: str) -> str:
    """``text`` in the given styles (names of :data:`STYLES`), reset after it; ``text`` itself without styles."""
    codes = ";".join(STYLES[s] for s in styles)
    return f"\x1b[{codes}m{text}\x1b[0m" if codes else text
