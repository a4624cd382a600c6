"""Find scripts under a folder and read their inline ``[tool.orchestrate]`` metadata (PEP 723 blocks).

:func:`discover_scripts` walks a tree with :func:`os.walk`, pruning folders that never hold scripts (hidden
folders, virtualenvs, ``__pycache__``, ``node_modules``, ``build``, ``dist``, ``*.egg-info``) and never following
a symlink out of the root. :func:`parse_script_metadata` reads a script's ``# /// script`` block::

    # /// script
    # [tool.orchestrate]
    # depends = ["extract"]
    # timeout = 30
    # ///

and returns a validated :class:`ScriptMetadata`. The same block works in shell scripts.
"""

from __future__ import annotations

from collections.abc import Iterable
from collections.abc import Mapping
import dataclasses
import difflib
import functools
import math
import os
from pathlib import Path
import re
import tomllib
from typing import Any

from pytest_orchestrator.core.retry import RetryPolicy
from pytest_orchestrator.scripts.errors import ConfigError


__all__ = [
    "glob_match",
    "FIELD_KEYS",
    "ScriptMetadata",
    "clear_metadata_cache",
    "discover_scripts",
    "parse_script_metadata",
]

#: the settings a script may carry, inline or in a config file
FIELD_KEYS: tuple[str, ...] = ("depends", "timeout", "retry", "args", "env", "stage", "allowed_exit_codes")

_SKIP_FILES = frozenset({"__init__.py", "conftest.py"})
_SKIP_DIRS = frozenset({"__pycache__", "node_modules", "build", "dist", "venv", ".venv"})
_READ_LIMIT = 64 * 1024


# --------------------------------------------------------------------------------------------------------------
# glob matching on relative posix paths
# --------------------------------------------------------------------------------------------------------------


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
def _compile_glob(pattern: str) -> re.Pattern[str]:
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
    return _compile_glob(pattern).fullmatch(rel_posix) is not None


def _as_tuple(value: str | os.PathLike[str] | Iterable[str | os.PathLike[str]] | None) -> tuple[str, ...]:
    if value is None:
        return ()
    if isinstance(value, str | os.PathLike):
        return (os.fspath(value),)
    return tuple(os.fspath(v) for v in value)


# --------------------------------------------------------------------------------------------------------------
# discovery
# --------------------------------------------------------------------------------------------------------------


def _is_skipped_dir(name: str, full_path: str) -> bool:
    if name.startswith(".") or name in _SKIP_DIRS or name.endswith(".egg-info"):
        return True
    # any virtualenv (``env``, ``venv-3.11``, ...) has a pyvenv.cfg at its top
    return os.path.isfile(os.path.join(full_path, "pyvenv.cfg"))


def _inside(path: str, root: str) -> bool:
    return path == root or path.startswith(root.rstrip(os.sep) + os.sep)


def discover_scripts(
    root: str | os.PathLike[str],
    patterns: str | Iterable[str] = ("**/*.py", "**/*.sh"),
    *,
    subdirs: str | Iterable[str | os.PathLike[str]] | None = None,
    exclude: str | Iterable[str] = (),
    max_depth: int | None = None,
) -> list[Path]:
    """Return the scripts under ``root`` as a sorted list of resolved absolute paths.

    - ``patterns``: globs on the path relative to ``root`` (and, with ``subdirs``, relative to the subfolder too).
      ``**`` matches zero or more folders, so ``"**/*.py"`` includes the files directly in ``root``.
    - ``subdirs``: search only these folders (relative to ``root``; they must stay inside it). Missing ones are
      ignored. A subfolder named explicitly is searched even if its name would otherwise be skipped.
    - ``exclude``: globs matched against the relative path and against the bare name; a matching file is dropped,
      a matching folder is not searched.
    - ``max_depth``: how many folders below ``root`` to descend (``0``: only the files directly in ``root``).

    Always skipped: ``__init__.py``, ``conftest.py``, hidden files and folders, virtualenvs (``venv``, ``.venv``
    and any folder holding a ``pyvenv.cfg``), ``__pycache__``, ``node_modules``, ``build``, ``dist`` and
    ``*.egg-info``. Symlinks (to files or folders) are followed only when they resolve inside ``root``; a folder
    reached twice (through links) is searched once, so link loops are harmless.

    Raises ``FileNotFoundError`` when ``root`` does not exist, ``NotADirectoryError`` when it is a file and
    ``ValueError`` for a subfolder outside ``root`` or a negative ``max_depth``.
    """
    root_given = Path(root)
    if not root_given.exists():
        raise FileNotFoundError(f"script root {str(root_given)!r} does not exist")
    root_path = root_given.resolve()
    if not root_path.is_dir():
        raise NotADirectoryError(f"script root {str(root_given)!r} is not a folder")
    if max_depth is not None and max_depth < 0:
        raise ValueError(f"max_depth must be >= 0, got {max_depth!r}")
    pattern_list = _as_tuple(patterns)
    exclude_list = _as_tuple(exclude)
    for pattern in (*pattern_list, *exclude_list):
        _compile_glob(pattern)  # fail early on an empty pattern
    root_real = str(root_path)

    def excluded(parts: tuple[str, ...]) -> bool:
        rel = "/".join(parts)
        return any(glob_match(p, rel) or glob_match(p, parts[-1]) for p in exclude_list)

    def real_parts(real: str) -> tuple[str, ...]:
        return () if real == root_real else Path(os.path.relpath(real, root_real)).parts

    # (folder to walk, its relative parts from root, how many of those parts the search base has)
    starts: list[tuple[str, tuple[str, ...], int]] = []
    if subdirs is None:
        starts.append((root_real, (), 0))
    else:
        for sub in _as_tuple(subdirs):
            candidate = os.path.normpath(root_path / sub)  # an absolute ``sub`` replaces root_path here
            real = os.path.realpath(candidate)
            if not _inside(real, root_real):
                raise ValueError(f"subdir {sub!r} is outside the script root {root_real!r}")
            if not os.path.isdir(real):
                continue
            # a symlinked subfolder keeps the name it was given
            parts = real_parts(candidate) if _inside(candidate, root_real) else real_parts(real)
            starts.append((candidate, tuple(parts), len(parts)))

    found: set[Path] = set()
    visited: set[str] = set()

    def add_file(full: str, parts: tuple[str, ...], base_len: int) -> None:
        name = parts[-1]
        if name in _SKIP_FILES or name.startswith(".") or excluded(parts):
            return
        candidates = {"/".join(parts), "/".join(parts[base_len:])}
        if not any(glob_match(p, c) for p in pattern_list for c in candidates):
            return
        real = os.path.realpath(full)
        if not _inside(real, root_real) or not os.path.isfile(real):
            return
        if real != full:
            # a link inside root: its target must not be one we would have dropped
            target = real_parts(real)
            if target[-1] in _SKIP_FILES or excluded(target):
                return
        found.add(Path(real))

    def follow_dir_link(full: str) -> bool:
        real = os.path.realpath(full)
        if not _inside(real, root_real) or real in visited:
            return False
        target = real_parts(real)
        if target and excluded(target):
            return False
        # the target must not sit in (or be) a folder the walk prunes
        current = root_real
        for part in target:
            current = os.path.join(current, part)
            if _is_skipped_dir(part, current):
                return False
        return True

    def walk(top: str, top_parts: tuple[str, ...], base_len: int) -> None:
        for dirpath, dirnames, filenames in os.walk(top, followlinks=False):
            real_dir = os.path.realpath(dirpath)
            if real_dir in visited:
                dirnames[:] = []
                continue
            visited.add(real_dir)
            rel_dir = os.path.relpath(dirpath, top)
            dir_parts = top_parts + (() if rel_dir == "." else Path(rel_dir).parts)
            for filename in filenames:
                add_file(os.path.join(dirpath, filename), (*dir_parts, filename), base_len)
            keep: list[str] = []
            links: list[str] = []
            for dirname in dirnames:
                full = os.path.join(dirpath, dirname)
                parts = (*dir_parts, dirname)
                if max_depth is not None and len(parts) > max_depth:
                    continue
                if _is_skipped_dir(dirname, full) or excluded(parts):
                    continue
                (links if os.path.islink(full) else keep).append(dirname)
            dirnames[:] = keep
            for dirname in links:
                full = os.path.join(dirpath, dirname)
                if follow_dir_link(full):
                    walk(full, (*dir_parts, dirname), base_len)

    for top, top_parts, base_len in starts:
        if max_depth is not None and len(top_parts) > max_depth:
            continue
        walk(top, top_parts, base_len)
    return sorted(found)


# --------------------------------------------------------------------------------------------------------------
# field validation (shared with the config files)
# --------------------------------------------------------------------------------------------------------------


def _type_name(value: Any) -> str:
    return "null" if value is None else type(value).__name__


def _string_list(key: str, value: Any, *, allow_single: bool, coerce_numbers: bool) -> tuple[str, ...]:
    if value is None:
        return ()
    if isinstance(value, str) and allow_single:
        value = [value]
    if not isinstance(value, list | tuple):
        expected = "a string or a list of strings" if allow_single else "a list of strings"
        raise ValueError(f"{key} must be {expected}, got {_type_name(value)} {value!r}")
    items: list[str] = []
    for item in value:
        if coerce_numbers and isinstance(item, int | float) and not isinstance(item, bool):
            items.append(str(item))
        elif isinstance(item, str):
            items.append(item)
        else:
            raise ValueError(f"{key} must be a list of strings, got an item {_type_name(item)} {item!r}")
    return tuple(items)


def _normalize_field(key: str, value: Any) -> Any:
    """Validate one script setting and return its normalized value; raise ``ValueError`` naming the problem.

    ``depends`` and ``args`` become tuples of strings, ``allowed_exit_codes`` a tuple of ints, ``timeout`` a float
    (or ``None``), ``retry`` a :class:`RetryPolicy` (or ``None``), ``env`` a ``dict[str, str]``.
    """
    if key == "depends":
        depends = _string_list(key, value, allow_single=True, coerce_numbers=False)
        if any(not d.strip() for d in depends):
            raise ValueError("depends must not contain empty names")
        return depends
    if key == "args":
        return _string_list(key, value, allow_single=False, coerce_numbers=True)
    if key == "timeout":
        if value is None:
            return None
        if isinstance(value, bool) or not isinstance(value, int | float) or math.isnan(value) or value <= 0:
            raise ValueError(f"timeout must be a positive number of seconds, got {value!r}")
        return float(value)
    if key == "retry":
        if isinstance(value, Mapping):
            value = dict(value)
        try:
            return RetryPolicy.from_value(value)
        except (TypeError, ValueError) as exc:
            raise ValueError(f"invalid retry: {exc}") from None
    if key == "env":
        if value is None:
            return {}
        if not isinstance(value, Mapping):
            raise ValueError(f"env must be a mapping of names to strings, got {_type_name(value)} {value!r}")
        env: dict[str, str] = {}
        for name, item in value.items():
            if not isinstance(name, str) or not name or "=" in name:
                raise ValueError(f"env names must be non-empty strings without '=', got {name!r}")
            if isinstance(item, bool) or not isinstance(item, str | int | float):
                hint = " (quote it)" if isinstance(item, bool) else ""
                raise ValueError(f"env value of {name!r} must be a string{hint}, got {_type_name(item)} {item!r}")
            env[name] = str(item)
        return env
    if key == "stage":
        if value is not None and not isinstance(value, str):
            raise ValueError(f"stage must be a string, got {_type_name(value)} {value!r}")
        return value
    if key == "allowed_exit_codes":
        codes = [value] if isinstance(value, int) and not isinstance(value, bool) else value
        if (
            not isinstance(codes, list | tuple)
            or not codes
            or any(isinstance(c, bool) or not isinstance(c, int) for c in codes)
        ):
            raise ValueError(f"allowed_exit_codes must be an integer or a non-empty list of integers, got {value!r}")
        return tuple(codes)
    raise ValueError(f"unknown setting {key!r}")


def _unknown_key_message(key: Any, allowed: Iterable[str], where: str) -> tuple[str, list[str]]:
    suggestions = difflib.get_close_matches(str(key), list(allowed), n=3, cutoff=0.6)
    message = f"unknown key {key!r} in {where}"
    if suggestions:
        message += "; did you mean " + " or ".join(repr(s) for s in suggestions) + "?"
    else:
        message += f" (known keys: {', '.join(allowed)})"
    return message, suggestions


# --------------------------------------------------------------------------------------------------------------
# best-effort line numbers in TOML text (tomllib reports none for valid documents)
# --------------------------------------------------------------------------------------------------------------

_TOML_KEY_PART = r"""(?:[A-Za-z0-9_-]+|"(?:[^"\\]|\\.)*"|'[^']*')"""
_TOML_DOTTED = rf"{_TOML_KEY_PART}(?:\s*\.\s*{_TOML_KEY_PART})*"
_TOML_HEADER_RE = re.compile(rf"^\s*\[\[?\s*({_TOML_DOTTED})\s*\]\]?\s*(?:#.*)?$")
_TOML_ASSIGN_RE = re.compile(rf"^\s*({_TOML_DOTTED})\s*=")
_TOML_PART_RE = re.compile(_TOML_KEY_PART)


def _split_toml_key(dotted: str) -> tuple[str, ...]:
    parts = []
    for token in _TOML_PART_RE.findall(dotted):
        parts.append(token[1:-1] if token[:1] in ("'", '"') else token)
    return tuple(parts)


def _toml_key_line(lines: list[str], table: tuple[str, ...], key: str | None) -> int | None:
    """0-based index of the line defining ``key`` in ``table`` (or of the table itself), or ``None``."""
    current: tuple[str, ...] = ()
    fallback: int | None = None
    fallback_depth = -1
    for index, line in enumerate(lines):
        header = _TOML_HEADER_RE.match(line)
        if header:
            current = _split_toml_key(header.group(1))
            if key is not None and current[: len(table) + 1] == (*table, key):
                return index
            depth = len(current) if current == table[: len(current)] else -1
            if depth > fallback_depth:
                fallback, fallback_depth = index, depth
            continue
        assign = _TOML_ASSIGN_RE.match(line)
        if not assign:
            continue
        parts = current + _split_toml_key(assign.group(1))
        if key is not None and parts[: len(table) + 1] == (*table, key):
            return index
        if parts == table[: len(parts)]:
            # an inline table holding the table we look for: look for the key on the same line
            rest = line[assign.end() :]
            if key is not None and re.search(rf"""(?<![\w-])["']?{re.escape(key)}["']?\s*=""", rest):
                return index
            if len(parts) > fallback_depth:
                fallback, fallback_depth = index, len(parts)
    return fallback if fallback_depth > 0 else None


# --------------------------------------------------------------------------------------------------------------
# inline metadata
# --------------------------------------------------------------------------------------------------------------


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
_TOML_ERROR_LINE_RE = re.compile(r"\(at line (\d+), column (\d+)\)")

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
            raise ConfigError(
                "more than one '# /// script' metadata block (PEP 723 allows one)", path=path, line=index + 1
            )
        close: int | None = None
        cursor = index + 1
        # PEP 723: the block is the run of comment lines after the opening; it ends at the last '# ///' in it
        while cursor < len(lines) and _is_comment_line(lines[cursor].rstrip("\r")):
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
        text = str(exc)
        match = _TOML_ERROR_LINE_RE.search(text)
        line = start + 1 + int(match.group(1)) if match else close + 1
        problem = _TOML_ERROR_LINE_RE.sub("", text).strip()
        raise ConfigError(f"invalid TOML in the '# /// script' block: {problem}", path=path, line=line) from None

    def line_of(key: str | None) -> int:
        index = _toml_key_line(content, ("tool", "orchestrate"), key)
        return start + 1 if index is None else start + 2 + index

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
            message, suggestions = _unknown_key_message(key, FIELD_KEYS, "[tool.orchestrate]")
            raise ConfigError(message, path=path, line=line_of(key), key=key, suggestions=suggestions)
        try:
            values[key] = _normalize_field(key, value)
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
