"""A script's inline metadata: the ``[tool.orchestrate]`` table of its PEP 723 ``# /// script`` block.

:func:`parse_script_metadata` reads the block::

    # /// script
    # [tool.orchestrate]
    # depends = ["extract"]
    # timeout = 30
    # ///

and returns a validated :class:`ScriptMetadata`. The same block works in shell scripts. Only the head of a file
is read (the whole file when a block opens there and does not close), and results are cached on path, mtime and
size.
"""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path
import tomllib
from typing import Any

from pytest_orchestrator.core.retry import RetryPolicy
from pytest_orchestrator.scripts.errors import ConfigError
from pytest_orchestrator.scripts.fields import FIELD_KEYS
from pytest_orchestrator.scripts.fields import normalize_field
from pytest_orchestrator.scripts.fields import unknown_key_message
from pytest_orchestrator.scripts.lines import toml_error
from pytest_orchestrator.scripts.lines import toml_key_line


__all__ = ["ScriptMetadata", "clear_metadata_cache", "parse_script_metadata"]

_READ_LIMIT = 64 * 1024


@dataclasses.dataclass(frozen=True)
class ScriptMetadata:
    """The ``[tool.orchestrate]`` settings of one script's ``# /// script`` block, validated.

    ``raw`` is the table as written: a key present there was set by the script (the config merge relies on it).
    """

    depends: tuple[str, ...] = ()
    timeout: float | None = None
    retry: RetryPolicy | None = None
    args: tuple[str, ...] = ()
    env: dict[str, str] = dataclasses.field(default_factory=dict, hash=False)
    stage: str | None = None
    allowed_exit_codes: tuple[int, ...] = (0,)
    raw: dict[str, Any] = dataclasses.field(default_factory=dict, hash=False)

    def to_dict(self) -> dict[str, Any]:
        """A plain, JSON-friendly dict (``retry`` as :meth:`RetryPolicy.to_dict`)."""
        return {
            "depends": list(self.depends),
            "timeout": self.timeout,
            "retry": None if self.retry is None else self.retry.to_dict(),
            "args": list(self.args),
            "env": dict(self.env),
            "stage": self.stage,
            "allowed_exit_codes": list(self.allowed_exit_codes),
            "raw": dict(self.raw),
        }


_BLOCK_OPEN = "# /// script"
_BLOCK_CLOSE = "# ///"
_DUPLICATE = "duplicate block: more than one '# /// script' metadata block (PEP 723 allows one)"

_CACHE: dict[str, tuple[int, int, ScriptMetadata]] = {}


def clear_metadata_cache() -> None:
    """Forget every parsed script (the cache is keyed on path, mtime and size, so this is rarely needed)."""
    _CACHE.clear()


def _is_comment_line(line: str) -> bool:
    return line == "#" or line.startswith("# ")


def _find_block(lines: list[str], path: Path) -> tuple[int, int] | None:
    """(opening index, closing index) of the ``script`` block, 0-based; ``None`` if there is none."""
    found: tuple[int, int] | None = None
    index = 0
    while index < len(lines):
        if lines[index].rstrip() != _BLOCK_OPEN:
            index += 1
            continue
        if found is not None:
            raise ConfigError(_DUPLICATE, path=path, line=index + 1)
        close: int | None = None
        cursor = index + 1
        # PEP 723: the block is the run of comment lines after the opening; it ends at the last '# ///' in it
        while cursor < len(lines) and _is_comment_line(lines[cursor].rstrip("\r")):
            if lines[cursor].rstrip() == _BLOCK_OPEN:  # a second block right after the first: not TOML
                raise ConfigError(_DUPLICATE, path=path, line=cursor + 1)
            if lines[cursor].rstrip() == _BLOCK_CLOSE:
                close = cursor
            cursor += 1
        if close is None:
            raise ConfigError("unclosed '# /// script' metadata block: no '# ///' line", path=path, line=index + 1)
        found = (index, close)
        index = close + 1
    return found


def _read_head(path: Path) -> tuple[str, bool]:
    with open(path, "rb") as handle:
        data = handle.read(_READ_LIMIT + 1)
    truncated = len(data) > _READ_LIMIT
    return data[:_READ_LIMIT].decode("utf-8", errors="replace"), truncated


def _read_lines(path: Path) -> list[str]:
    text, truncated = _read_head(path)
    lines = text.splitlines()
    if truncated:
        # cut at the last complete line; read everything if a block opens but does not close in the head
        lines = lines[:-1]
        opens = sum(1 for line in lines if line.rstrip() == _BLOCK_OPEN)
        closes = sum(1 for line in lines if line.rstrip() == _BLOCK_CLOSE)
        if opens and closes < opens:
            lines = path.read_bytes().decode("utf-8", errors="replace").splitlines()
    return lines


def _metadata_from_lines(lines: list[str], path: Path) -> ScriptMetadata:
    block = _find_block(lines, path)
    if block is None:
        return ScriptMetadata()
    start, close = block
    content = [line.rstrip("\r")[2:] if len(line.rstrip("\r")) > 1 else "" for line in lines[start + 1 : close]]
    try:
        document = tomllib.loads("\n".join(content))
    except tomllib.TOMLDecodeError as exc:
        problem, at = toml_error(exc)
        line = close + 1 if at is None else start + 1 + at
        raise ConfigError(f"invalid TOML in the '# /// script' block: {problem}", path=path, line=line) from None

    def line_of(key: str | None) -> int:
        at = toml_key_line(content, ("tool", "orchestrate") if key is None else ("tool", "orchestrate", key))
        return start + 1 if at is None else start + 1 + at

    tool = document.get("tool", {})
    if not isinstance(tool, dict):
        raise ConfigError("'tool' in the '# /// script' block must be a table", path=path, line=start + 1, key="tool")
    table = tool.get("orchestrate")
    if table is None:
        return ScriptMetadata()
    if not isinstance(table, dict):
        raise ConfigError(
            "[tool.orchestrate] in the '# /// script' block must be a table",
            path=path,
            line=line_of(None),
            key="orchestrate",
        )
    values: dict[str, Any] = {}
    for key, value in table.items():
        if key not in FIELD_KEYS:
            message, suggestions = unknown_key_message(key, FIELD_KEYS, "[tool.orchestrate]")
            raise ConfigError(message, path=path, line=line_of(key), key=key, suggestions=suggestions)
        try:
            values[key] = normalize_field(key, value)
        except ValueError as exc:
            raise ConfigError(f"[tool.orchestrate] {key}: {exc}", path=path, line=line_of(key), key=key) from None
    return ScriptMetadata(**values, raw=dict(table))


def parse_script_metadata(path: str | os.PathLike[str]) -> ScriptMetadata:
    """Read and validate the ``[tool.orchestrate]`` table of a script's PEP 723 ``# /// script`` block.

    A script without a block (or without the table) gets the defaults. Malformed TOML, unknown keys (with close
    matches suggested) and values of the wrong type raise :class:`ConfigError` naming the script and the line.
    Results are cached on (path, mtime, size). The returned object is shared: do not mutate ``env`` or ``raw``.
    """
    script = Path(path)
    stat = script.stat()
    key = os.path.realpath(script)
    cached = _CACHE.get(key)
    if cached is not None and cached[0] == stat.st_mtime_ns and cached[1] == stat.st_size:
        return cached[2]
    metadata = _metadata_from_lines(_read_lines(script), script)
    _CACHE[key] = (stat.st_mtime_ns, stat.st_size, metadata)
    return metadata
