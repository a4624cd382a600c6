"""Find the scripts under a folder: :func:`discover_scripts`.

It walks a tree with :func:`os.walk`, pruning folders that never hold scripts (hidden folders, virtualenvs,
``__pycache__``, ``node_modules``, ``build``, ``dist``, ``*.egg-info``) and never following a symlink out of the
root. Reading what a script declares is :mod:`.pep723`'s job; matching globs is :mod:`.globs`'s.
"""

from __future__ import annotations

from collections.abc import Callable
from collections.abc import Iterable
import os
from pathlib import Path

from pytest_orchestrator.scripts.fields import FIELD_KEYS as FIELD_KEYS
from pytest_orchestrator.scripts.globs import compile_glob
from pytest_orchestrator.scripts.globs import glob_match
from pytest_orchestrator.scripts.pep723 import ScriptMetadata as ScriptMetadata
from pytest_orchestrator.scripts.pep723 import clear_metadata_cache as clear_metadata_cache
from pytest_orchestrator.scripts.pep723 import parse_script_metadata as parse_script_metadata


# ``glob_match``, ``FIELD_KEYS`` and the metadata names (imported ``as`` themselves above) lived here before the
# module was split by job; they stay importable from here. Their homes: .globs, .fields, .pep723.
__all__ = ["discover_scripts", "glob_match", "skipped_link_message"]

_SKIP_FILES = frozenset({"__init__.py", "conftest.py"})
_SKIP_DIRS = frozenset({"__pycache__", "node_modules", "build", "dist", "venv", ".venv"})


def _as_tuple(value: str | os.PathLike[str] | Iterable[str | os.PathLike[str]] | None) -> tuple[str, ...]:
    if value is None:
        return ()
    if isinstance(value, str | os.PathLike):
        return (os.fspath(value),)
    return tuple(os.fspath(v) for v in value)


def _is_skipped_dir(name: str, full_path: str) -> bool:
    if name.startswith(".") or name in _SKIP_DIRS or name.endswith(".egg-info"):
        return True
    # any virtualenv (``env``, ``venv-3.11``, ...) has a pyvenv.cfg at its top
    return os.path.isfile(os.path.join(full_path, "pyvenv.cfg"))


def _inside(path: str, root: str) -> bool:
    return path == root or path.startswith(root.rstrip(os.sep) + os.sep)


def skipped_link_message(link: str, target: str | os.PathLike[str], outside: str) -> str:
    """The one wording of a link skipped because its target leaves the root (``outside``: what that root is)."""
    return f"skipped {link}: a link to {os.fspath(target)}, outside {outside}"


def discover_scripts(
    root: str | os.PathLike[str],
    patterns: str | Iterable[str] = ("**/*.py", "**/*.sh"),
    *,
    subdirs: str | Iterable[str | os.PathLike[str]] | None = None,
    exclude: str | Iterable[str] = (),
    max_depth: int | None = None,
    on_skip: Callable[[Path, Path], None] | None = None,
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
    ``on_skip(link, target)`` hears of every link (to a file the patterns match, or to a folder) whose target
    leaves ``root``: ``link`` as found under ``root``, ``target`` resolved.

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
        compile_glob(pattern)  # fail early on an empty pattern
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
        if not _inside(real, root_real):
            if on_skip is not None and os.path.isfile(real):
                on_skip(Path(full), Path(real))
            return
        if not os.path.isfile(real):
            return
        if real != full:
            # a link inside root: its target must not be one we would have dropped
            target = real_parts(real)
            if target[-1] in _SKIP_FILES or excluded(target):
                return
        found.add(Path(real))

    def follow_dir_link(full: str) -> bool:
        real = os.path.realpath(full)
        if not _inside(real, root_real):
            if on_skip is not None and os.path.isdir(real):
                on_skip(Path(full), Path(real))
            return False
        if real in visited:
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
