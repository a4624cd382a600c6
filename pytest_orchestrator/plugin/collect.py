"""Collection routing: which files pytest collects as scripts (:class:`~.items.ScriptFile`), and which it leaves alone.

Running a project's scripts is opt-in: a ``.py`` or ``.sh`` file is a script only when something declares it (see
:meth:`ScriptRouting.is_script`): the ini ``orchestrate_scripts`` globs (none by default), an entry in the
``orchestrate.yaml`` (or ``[tool.orchestrate]`` of pyproject.toml) that governs its folder, or its own
``# /// script`` block with a ``[tool.orchestrate]`` table. A ``.py`` script is claimed in
``pytest_pycollect_makemodule`` when pytest's python plugin would otherwise make it a test module (it is named on
the command line or matches ``python_files``), and in ``pytest_collect_file`` otherwise; a ``.py`` file named on
the command line that is no test module runs as a script too, and so does a ``.sh`` file named there.
:func:`script_finder` looks scripts up on disk by stem, for targets that name a script that was not collected.
Which files are scripts at all is :class:`~.script_scope.ScriptScope`'s answer (the CLI's discovery): a path that
reaches a script a second time, or a link out of the rootdir, is not collected (:meth:`ScriptRouting.ignore`).
"""

from __future__ import annotations

from collections.abc import Callable
from collections.abc import Sequence
from pathlib import Path
import re
from typing import Any

import pytest

from pytest_orchestrator.plugin.script_scope import ScriptScope
from pytest_orchestrator.plugin.script_scope import governing_config
from pytest_orchestrator.scripts.globs import glob_match


__all__ = ["DEFAULT_SCRIPT_GLOBS", "OPT_IN_HINT", "ScriptRouting", "script_finder"]

#: Python files that are never scripts
_NOT_SCRIPT_MODULES = frozenset({"__init__.py", "conftest.py"})
_SCRIPT_SUFFIXES = (".py", ".sh")
#: where a script's own ``[tool.orchestrate]`` table opens (inside its ``# /// script`` block)
_OWN_TABLE = re.compile(rb"^#\s*\[tool\.orchestrate\]\s*$", re.MULTILINE)
_HEAD_BYTES = 64 * 1024
#: where scripts usually live: used to find a script a dependency names that nothing declared
DEFAULT_SCRIPT_GLOBS = ("scripts/**/*.py", "scripts/**/*.sh")
#: said once when a ``scripts/`` folder exists and nothing declared any of its files
OPT_IN_HINT = (
    "orchestrate: scripts/ is not run (scripts are opt-in): declare them with the ini "
    "orchestrate_scripts = scripts/**/*.py scripts/**/*.sh, an orchestrate.yaml entry, "
    "or a [tool.orchestrate] block in the script"
)


def _has_own_table(path: Path) -> bool:
    try:
        with open(path, "rb") as handle:
            head = handle.read(_HEAD_BYTES)
    except OSError:
        return False
    return b"# /// script" in head and _OWN_TABLE.search(head) is not None


_TEST_DEF_RE = re.compile(r"^(?:\s*(?:async\s+)?def\s+test|class\s+Test)", re.MULTILINE)


def is_script_path(path: Path, rootdir: Path, globs: Sequence[str]) -> bool:
    """Whether ``path`` matches one of the script globs (relative to ``rootdir``; ``**`` spans folders)."""
    if path.name in _NOT_SCRIPT_MODULES:
        return False
    try:
        rel = path.relative_to(rootdir).as_posix()
    except ValueError:
        return False
    return any(glob_match(pattern, rel) for pattern in globs)


def matches_python_files(path: Path, python_files: Sequence[str]) -> bool:
    """Whether the file's name matches pytest's ``python_files`` patterns."""
    import fnmatch

    return any(fnmatch.fnmatch(path.as_posix() if "/" in p else path.name, p) for p in python_files)


def looks_like_test_module(path: Path, python_files: Sequence[str]) -> bool:
    """Whether a ``.py`` file is a test module: named like one, or defining ``test*`` functions / ``Test*`` classes."""
    if matches_python_files(path, python_files):
        return True
    try:
        head = path.read_text(encoding="utf-8", errors="replace")[:200_000]
    except OSError:
        return False
    return _TEST_DEF_RE.search(head) is not None


class ScriptRouting:
    """Answers the session plugin's two collection hooks for one session."""

    def __init__(self, rootpath: Path, script_globs: Sequence[str], python_files: Sequence[str]) -> None:
        self.rootpath = rootpath
        self.script_globs = list(script_globs)
        self.python_files = list(python_files)
        self._configs: dict[Path, Any] = {}
        self.scope = ScriptScope(rootpath, self.script_globs)
        self._declared: dict[Path, bool] = {}
        #: whether any collected file was declared a script (for the opt-in hint)
        self.claimed = False

    def _in_project_config(self, path: Path) -> bool:
        folder = path.parent
        config = self._configs.get(folder, False)
        if config is False:
            config = self._configs[folder] = governing_config(folder)
        return config is not None and config.path is not None and config.find_entry(path) is not None

    def is_script(self, path: Path) -> bool:
        """Whether ``path`` is collected as a script: something declared it (:meth:`declared`), and it is the one
        path under which the script is collected (not a link out of the rootdir, not a second path to it)."""
        return self.declared(path) and self.scope.verdict(path, self.declared) == "script"

    def ignore(self, path: Path) -> bool | None:
        """``pytest_ignore_collect``: ``True`` for a folder link into its own ancestors, and for a declared script
        reached through a link out of the rootdir or a second time; else ``None`` (pytest decides)."""
        self.scope.scripts()  # the first call looks: links out of the rootdir and config entries are said now
        if path.is_dir():
            return True if self.scope.ignores_dir(path) else None
        if not self.declared(path):
            return None
        return True if self.scope.verdict(path, self.declared) in ("duplicate", "outside") else None

    def declared(self, path: Path) -> bool:
        """Whether something declared ``path`` a script: the ini globs, the project config, or its own block.
        Asked several times per file (ignore, collect, make module): answered once."""
        known = self._declared.get(path)
        if known is None:
            known = self._declared[path] = self._is_declared(path)
        return known

    def _is_declared(self, path: Path) -> bool:
        if is_script_path(path, self.rootpath, self.script_globs):
            self.claimed = True
            return True
        if path.suffix not in _SCRIPT_SUFFIXES or path.name in _NOT_SCRIPT_MODULES:
            return False
        if _has_own_table(path) or self._in_project_config(path):
            self.claimed = True
            return True
        return False

    def opt_in_hint(self) -> str | None:
        """:data:`OPT_IN_HINT` when the rootdir has a ``scripts/`` folder and nothing declared any script."""
        if self.claimed or self.script_globs or not (self.rootpath / "scripts").is_dir():
            return None
        return OPT_IN_HINT

    def collect_file(self, file_path: Path, parent: pytest.Collector) -> pytest.Collector | None:
        """``pytest_collect_file``: a script collector, or ``None`` to leave the file to pytest."""
        if file_path.suffix == ".py":
            if not self.is_script(file_path):
                return None
            # pytest's python plugin asks pytest_pycollect_makemodule for these two: it decides there
            if parent.session.isinitpath(file_path) or matches_python_files(file_path, self.python_files):
                return None
            return _script_file(parent, path=file_path)
        if self.is_script(file_path) or (file_path.suffix == ".sh" and parent.session.isinitpath(file_path)):
            return _script_file(parent, path=file_path)
        return None

    def make_module(self, module_path: Path, parent: pytest.Collector) -> pytest.Collector | None:
        """``pytest_pycollect_makemodule``: a script collector instead of a test module, or ``None``."""
        if self.is_script(module_path):
            return _script_file(parent, path=module_path)
        if (
            parent.session.isinitpath(module_path)
            and module_path.name not in _NOT_SCRIPT_MODULES
            and not looks_like_test_module(module_path, self.python_files)
        ):
            # a .py named on the command line that is no test module: run it as a script
            return _script_file(parent, path=module_path)
        return None


def _script_file(parent: pytest.Collector, *, path: Path) -> pytest.Collector:
    from pytest_orchestrator.plugin.items import ScriptFile  # here: most sessions collect no script

    collector: pytest.Collector = ScriptFile.from_parent(parent, path=path)
    return collector


def script_finder(rootpath: Path, script_globs: Sequence[str]) -> Callable[[str], list[str]]:
    """``find(stem) -> paths``: the scripts on disk under the globs (:data:`DEFAULT_SCRIPT_GLOBS` when none are
    declared) named ``stem``; one: a dependency on it says how to include it, more than one: it is ambiguous.

    The disk is walked once, on the first call (most runs never ask); it says nothing (collection already did).
    """
    globs = list(script_globs) or list(DEFAULT_SCRIPT_GLOBS)
    return ScriptScope(rootpath, globs, warn=None, configs=False).with_stem
