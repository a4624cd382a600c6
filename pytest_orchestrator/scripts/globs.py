"""Glob matching on relative posix paths: ``*``, ``?`` and ``[...]`` stay inside one folder, ``**`` spans folders.

Used by the script discovery, the config's ``skip`` globs and the pytest plugin's script collection; standard
library only, so the plugin can match globs without loading anything else.
"""

from __future__ import annotations

import functools
import re


__all__ = ["compile_glob", "glob_match"]


def _translate_component(component: str) -> str:
    """One path component of a glob (no ``/``) as a regular expression."""
    out: list[str] = []
    i, n = 0, len(component)
    while i < n:
        char = component[i]
        i += 1
        if char == "*":
            out.append("[^/]*")
        elif char == "?":
            out.append("[^/]")
        elif char == "[":
            end = i
            if end < n and component[end] in "!^":
                end += 1
            if end < n and component[end] == "]":
                end += 1
            while end < n and component[end] != "]":
                end += 1
            if end >= n:
                out.append(re.escape(char))
            else:
                body = component[i:end]
                i = end + 1
                negate = body[:1] in ("!", "^")
                if negate:
                    body = body[1:]
                body = body.replace("\\", "\\\\")
                out.append(f"[{'^/' if negate else ''}{body}]")
        else:
            out.append(re.escape(char))
    return "".join(out)


@functools.lru_cache(maxsize=512)
def compile_glob(pattern: str) -> re.Pattern[str]:
    """Compile a glob for relative posix paths: ``*``, ``?`` and ``[...]`` stay inside one component, a ``**``
    component matches zero or more folders (a trailing ``**`` also matches everything below)."""
    text = pattern.replace("\\", "/").strip()
    while text.startswith("./"):
        text = text[2:]
    text = text.lstrip("/")
    if not text:
        raise ValueError(f"empty glob pattern: {pattern!r}")
    parts = [p for p in text.split("/") if p]
    regex = ""
    for index, part in enumerate(parts):
        last = index == len(parts) - 1
        if part == "**":
            if not last:
                regex += "(?:[^/]+/)*"
            elif regex:
                regex = regex[: -len("/")] + "(?:/.*)?"
            else:
                regex += ".*"
        else:
            regex += _translate_component(part) + ("" if last else "/")
    return re.compile(regex, re.DOTALL)


def glob_match(pattern: str, rel_posix: str) -> bool:
    """Whether a relative posix path matches a glob (``*``/``?`` stay in one folder, ``**`` spans folders)."""
    return compile_glob(pattern).fullmatch(rel_posix) is not None
