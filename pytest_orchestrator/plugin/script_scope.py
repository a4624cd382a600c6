"""Which script files the plugin may run: the same answer ``orchestrate list`` gives (:class:`ScriptScope`).

pytest walks the rootdir itself and follows every symlink, so alone it would run a script reached through a link
that points out of the rootdir, run a script once per path that reaches it, and descend a link cycle until the
path grows too long. The scope asks :func:`~pytest_orchestrator.scripts.discovery.discover_scripts` (the CLI's
discovery, on the folders the ``orchestrate_scripts`` globs can reach) which real files are scripts, and admits a
path only when it reaches one of them, and only the first path that does. A link that leaves the rootdir is
reported (:class:`OrchestrateWarning`, naming it); a folder link back to one of its own ancestors is not entered
(``pytest_ignore_collect``). Config entries that name no script are reported too
(:func:`~pytest_orchestrator.scripts.entries.missing_entries`).

Scripts with the same stem are looked up with :meth:`ScriptScope.with_stem`: a dependency on an ambiguous stem is
an error listing the candidates, as in the CLI.
"""

from __future__ import annotations

from collections.abc import Callable
from collections.abc import Sequence
import os
from pathlib import Path
from typing import TYPE_CHECKING
import warnings

import pytest


if TYPE_CHECKING:
    from pytest_orchestrator.scripts.config import OrchestrateConfig
    from pytest_orchestrator.scripts.entries import MissingEntry


__all__ = ["OrchestrateWarning", "ScriptScope", "glob_base", "governing_config"]

_WILDCARDS = frozenset("*?[")


class OrchestrateWarning(pytest.PytestWarning):
    """Something the orchestrator skipped or ignored, said out loud."""


def glob_base(pattern: str) -> str:
    """The folder a glob cannot leave (its leading components without wildcards); ``""`` for the root."""
    parts = [p for p in pattern.replace("\\", "/").strip().split("/") if p and p != "."]
    fixed: list[str] = []
    for part in parts[:-1]:
        if _WILDCARDS & set(part):
            break
        fixed.append(part)
    return "/".join(fixed)


Warn = Callable[[str, str, int], None]
"""``warn(message, filename, lineno)``: how the scope says what it skipped (a warning at that location)."""


def _warn(message: str, filename: str, lineno: int) -> None:
    warnings.warn_explicit(OrchestrateWarning(message), OrchestrateWarning, filename, lineno)


def governing_config(folder: Path) -> OrchestrateConfig | None:
    """The configuration governing ``folder``; ``None`` where no config file governs it (the config module is then
    not even loaded) or where it is malformed (reported by the script items it governs). A legacy config's
    deprecation is said where its scripts run, not here."""
    from pytest_orchestrator.scripts.locate import locate_config

    folder = folder.resolve()
    located = locate_config(folder)
    if not located.anything:
        return None
    from pytest_orchestrator.scripts.config import load_located
    from pytest_orchestrator.scripts.errors import ConfigError

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return load_located(located, folder)
    except (ConfigError, OSError):
        return None


class ScriptScope:
    """The scripts under ``rootpath`` that the ``globs`` select, as discovery finds them (walked once, lazily)."""

    def __init__(
        self, rootpath: Path, globs: Sequence[str], *, warn: Warn | None = _warn, configs: bool = True
    ) -> None:
        self.rootpath = rootpath
        self.globs = list(globs)
        self._warn = warn
        self._check_configs = configs
        self._scripts: dict[str, Path] | None = None  # real path -> real path
        self._first: dict[str, str] = {}  # real path -> the first link path admitted for it
        self._said: set[str] = set()
        #: the config entries that name no script (filled when the scripts are first looked for)
        self.missing: list[MissingEntry] = []

    def _say(self, message: str, where: Path | str, line: int | None = None) -> None:
        if self._warn is not None and message not in self._said:
            self._said.add(message)
            self._warn(message, str(where), line or 0)

    def _rel(self, path: Path | str) -> str:
        try:
            return Path(path).relative_to(self.rootpath).as_posix()
        except ValueError:
            return str(path)

    def scripts(self) -> dict[str, Path]:
        """Real path (as a string) -> path of every script the globs select."""
        if self._scripts is None:
            self._scripts = self._discover()
        return self._scripts

    def _discover(self) -> dict[str, Path]:
        if self._check_configs:
            self._report_config_entries()
        if not self.globs:
            return {}
        from pytest_orchestrator.scripts.discovery import discover_scripts
        from pytest_orchestrator.scripts.discovery import skipped_link_message

        root = self.rootpath
        outside = f"the rootdir {root}"
        bases = sorted({glob_base(g) for g in self.globs})
        if "" in bases:
            bases = [""]
        subdirs: list[str] = []
        for base in bases:
            if not base:
                continue
            full = root / base
            if full.is_symlink() and not os.path.realpath(full).startswith(os.path.realpath(root) + os.sep):
                self._say(f"orchestrate: {skipped_link_message(base, os.path.realpath(full), outside)}", full)
                continue
            subdirs.append(base)

        def skipped(link: Path, target: Path) -> None:
            self._say(f"orchestrate: {skipped_link_message(self._rel(link), target, outside)}", link)

        try:
            if bases == [""]:
                found = discover_scripts(root, self.globs, on_skip=skipped)
            elif subdirs:
                found = discover_scripts(root, self.globs, subdirs=subdirs, on_skip=skipped)
            else:
                found = []
        except (OSError, ValueError) as exc:
            self._say(f"orchestrate: could not look for scripts under {root}: {exc}", root)
            found = []
        return {str(path): path for path in found}

    def _report_config_entries(self) -> None:
        """Say which ``scripts`` entries of the config governing the rootdir name no script (``orchestrate list``'s
        discovery: every ``.py`` and ``.sh`` under the config's folder), with close matches."""
        config = governing_config(self.rootpath)
        if config is None:
            return
        from pytest_orchestrator.scripts.discovery import discover_scripts
        from pytest_orchestrator.scripts.entries import missing_entries

        if config.path is None or all((config.root / key).is_file() for key in config.scripts):
            return  # nothing to look for: no walk
        try:
            found = discover_scripts(config.root)
        except (OSError, ValueError):
            return
        self.missing = missing_entries(config, found)
        for entry in self.missing:
            self._say(f"orchestrate: {entry.message}", entry.config, entry.line)

    def verdict(self, path: Path, declared: Callable[[Path], bool] | None = None) -> str:
        """What ``path`` (a file declared a script) is: ``"script"`` (the path it is collected under),
        ``"duplicate"`` (another path to a script collected under its own path) or ``"outside"`` (a link whose
        target leaves the rootdir: skipped, with a warning naming it).

        A script is collected under its real path when that is a script too (the globs select it, or
        ``declared`` says so); otherwise (a link into a folder nothing declares) under the first path to it.
        """
        real = os.path.realpath(path)
        root = os.path.realpath(self.rootpath)
        if real != root and not real.startswith(root.rstrip(os.sep) + os.sep):
            from pytest_orchestrator.scripts.discovery import skipped_link_message

            self._say(f"orchestrate: {skipped_link_message(self._rel(path), real, f'the rootdir {root}')}", path)
            return "outside"
        real_rel = Path(os.path.relpath(real, root)).as_posix()
        if self._rel(path) == real_rel:
            return "script"
        if real in self.scripts() or (declared is not None and declared(Path(real))):
            return "duplicate"  # collected under its real path
        return "script" if self._first.setdefault(real, str(path)) == str(path) else "duplicate"

    def with_stem(self, stem: str) -> list[str]:
        """The scripts named ``stem`` (real paths, sorted)."""
        return sorted(real for real, path in self.scripts().items() if path.stem == stem)

    def ignores_dir(self, path: Path) -> bool:
        """Whether ``path`` is a folder link back to one of its own ancestors (a cycle: never entered)."""
        if not path.is_symlink() or not path.is_dir():
            return False
        real = os.path.realpath(path)
        for ancestor in path.parents:
            if os.path.realpath(ancestor) == real:
                return True
        return False
