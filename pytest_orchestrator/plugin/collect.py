"""Collection routing: which files pytest collects as scripts (:class:`~.items.ScriptFile`), and which it leaves alone.

A file that matches the ``orchestrate_scripts`` globs is a script. A ``.py`` script is claimed in
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

import pytest

from pytest_orchestrator.plugin.items import ScriptFile
from pytest_orchestrator.plugin.items import is_script_path
from pytest_orchestrator.plugin.items import looks_like_test_module
from pytest_orchestrator.plugin.items import matches_python_files
from pytest_orchestrator.plugin.script_scope import ScriptScope


__all__ = ["ScriptRouting", "script_finder"]

_NOT_SCRIPT_MODULES = ("__init__.py", "conftest.py")


class ScriptRouting:
    """Answers the session plugin's two collection hooks for one session."""

    def __init__(self, rootpath: Path, script_globs: Sequence[str], python_files: Sequence[str]) -> None:
        self.rootpath = rootpath
        self.script_globs = list(script_globs)
        self.python_files = list(python_files)
        self.scope = ScriptScope(rootpath, self.script_globs)

    def is_script(self, path: Path) -> bool:
        return is_script_path(path, self.rootpath, self.script_globs) and self.scope.admits(path)

    def ignore(self, path: Path) -> bool | None:
        """``pytest_ignore_collect``: ``True`` for a folder link into its own ancestors, and for a file the globs
        match that reaches a script already collected or leaves the rootdir; else ``None`` (pytest decides)."""
        if path.is_dir():
            return True if self.scope.ignores_dir(path) else None
        if not is_script_path(path, self.rootpath, self.script_globs):
            return None
        return True if self.scope.verdict(path) in ("duplicate", "outside") else None

    def collect_file(self, file_path: Path, parent: pytest.Collector) -> pytest.Collector | None:
        """``pytest_collect_file``: a script collector, or ``None`` to leave the file to pytest."""
        if file_path.suffix == ".py":
            if not self.is_script(file_path):
                return None
            # pytest's python plugin asks pytest_pycollect_makemodule for these two: it decides there
            if parent.session.isinitpath(file_path) or matches_python_files(file_path, self.python_files):
                return None
            return ScriptFile.from_parent(parent, path=file_path)
        if self.is_script(file_path) or (file_path.suffix == ".sh" and parent.session.isinitpath(file_path)):
            return ScriptFile.from_parent(parent, path=file_path)
        return None

    def make_module(self, module_path: Path, parent: pytest.Collector) -> pytest.Collector | None:
        """``pytest_pycollect_makemodule``: a script collector instead of a test module, or ``None``."""
        if self.is_script(module_path):
            return ScriptFile.from_parent(parent, path=module_path)
        if (
            parent.session.isinitpath(module_path)
            and module_path.name not in _NOT_SCRIPT_MODULES
            and not looks_like_test_module(module_path, self.python_files)
        ):
            # a .py named on the command line that is no test module: run it as a script
            return ScriptFile.from_parent(parent, path=module_path)
        return None


def script_finder(rootpath: Path, script_globs: Sequence[str]) -> Callable[[str], list[str]]:
    """``find(stem) -> paths``: the scripts on disk under the globs named ``stem`` (more than one: ambiguous).

    The disk is walked once, on the first call (most runs never ask); it says nothing (collection already did).
    """
    scope = ScriptScope(rootpath, script_globs, warn=None, configs=False)
    return scope.with_stem
