"""Collection routing: which files pytest collects as scripts (:class:`~.items.ScriptFile`), and which it leaves alone.

A file that matches the ``orchestrate_scripts`` globs is a script. A ``.py`` script is claimed in
``pytest_pycollect_makemodule`` when pytest's python plugin would otherwise make it a test module (it is named on
the command line or matches ``python_files``), and in ``pytest_collect_file`` otherwise; a ``.py`` file named on
the command line that is no test module runs as a script too, and so does a ``.sh`` file named there.
:func:`script_finder` looks scripts up on disk by stem, for targets that name a script that was not collected.
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


__all__ = ["ScriptRouting", "script_finder"]

_NOT_SCRIPT_MODULES = ("__init__.py", "conftest.py")


class ScriptRouting:
    """Answers the session plugin's two collection hooks for one session."""

    def __init__(self, rootpath: Path, script_globs: Sequence[str], python_files: Sequence[str]) -> None:
        self.rootpath = rootpath
        self.script_globs = list(script_globs)
        self.python_files = list(python_files)

    def is_script(self, path: Path) -> bool:
        return is_script_path(path, self.rootpath, self.script_globs)

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


def script_finder(rootpath: Path, script_globs: Sequence[str]) -> Callable[[str], str | None]:
    """``find(stem) -> path or None``: scripts on disk under the globs, looked up by stem (the first path wins).

    The disk is walked once, on the first call (most runs never ask).
    """
    found: dict[str, str] | None = None

    def find(target: str) -> str | None:
        nonlocal found
        if found is None:
            from pytest_orchestrator.scripts.discovery import discover_scripts

            found = {}
            try:
                scripts = discover_scripts(rootpath, list(script_globs))
            except (OSError, ValueError):
                scripts = []
            for path in scripts:
                found.setdefault(path.stem, str(path))
        return found.get(target)

    return find
