"""What a script says about itself in prose: :func:`script_description`, read without running the script.

A Python script's description is its module docstring (read with :mod:`ast`, so nothing is imported); any other
script's is the comment block at its top (after the ``#!`` line), without the ``# /// script`` metadata block.
``orchestrate run --generate-docs`` builds its reference from this and the script's metadata.
"""

from __future__ import annotations

import ast
import os
from pathlib import Path


__all__ = ["script_description"]

_READ_LIMIT = 256 * 1024


def _python_docstring(text: str) -> str | None:
    try:
        tree = ast.parse(text)
    except (SyntaxError, ValueError):
        return None
    return ast.get_docstring(tree)


def _comment_block(text: str) -> str | None:
    lines: list[str] = []
    in_metadata = False
    for number, line in enumerate(text.splitlines()):
        stripped = line.strip()
        if number == 0 and stripped.startswith("#!"):
            continue
        if not stripped.startswith("#"):
            if lines or stripped:
                break
            continue
        body = stripped[1:].strip()
        if body == "/// script":
            in_metadata = True
        elif in_metadata:
            in_metadata = body != "///"
        elif body.startswith(("-*-", "shellcheck ")):
            continue
        else:
            lines.append(body)
    return "\n".join(lines).strip() or None


def script_description(path: str | os.PathLike[str]) -> str | None:
    """The script's description (module docstring, or leading comments), or ``None`` when it has none or cannot be
    read. Only the first 256 KiB are read."""
    file = Path(path)
    try:
        with file.open("rb") as handle:
            text = handle.read(_READ_LIMIT).decode("utf-8", errors="replace")
    except OSError:
        return None
    if file.suffix == ".py":
        return _python_docstring(text)
    return _comment_block(text)
