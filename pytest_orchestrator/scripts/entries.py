"""Config entries that name no script: :func:`missing_entries`.

An ``orchestrate.yaml`` ``scripts`` entry matches a script by its path relative to the config's folder, or by a
trailing run of whole components of it (``load.py`` matches ``scripts/load.py``). An entry that matches no file
(a typo, ``../../x.py``) would silently configure nothing; this finds such entries, with the line they sit on
and the scripts whose paths look like them.
"""

from __future__ import annotations

import collections
from collections.abc import Iterable
import dataclasses
import os
from pathlib import Path

from pytest_orchestrator.core.graph import close_matches
from pytest_orchestrator.scripts.config import OrchestrateConfig


__all__ = ["MissingEntry", "missing_entries"]


@dataclasses.dataclass(frozen=True)
class MissingEntry:
    """A ``scripts`` entry of a config file that names no script."""

    config: Path
    line: int | None
    entry: str
    suggestions: tuple[str, ...]

    @property
    def message(self) -> str:
        where = f"{self.config}:{self.line}" if self.line else str(self.config)
        text = f"{where}: scripts entry {self.entry!r} names no script"
        if self.suggestions:
            text += "; did you mean " + " or ".join(repr(s) for s in self.suggestions) + "?"
        return text


def _raw_keys(config: OrchestrateConfig) -> dict[str, str]:
    """Normalized entry key -> the key as written (for its line)."""
    raw = config.raw.get("scripts")
    if not isinstance(raw, dict):
        return {}
    out: dict[str, str] = {}
    for key in raw:
        if isinstance(key, str):
            text = key.replace("\\", "/").strip()
            if os.path.isabs(text):
                text = Path(os.path.relpath(text, config.root)).as_posix()
            out.setdefault(os.path.normpath(text).replace(os.sep, "/"), key)
    return out


def _line(config: OrchestrateConfig, raw_key: str) -> int | None:
    path = config.path
    if path is None or config.deprecation is not None:
        return None
    try:
        if path.name == "pyproject.toml":
            from pytest_orchestrator.scripts.lines import toml_key_line

            lines = path.read_text(encoding="utf-8").splitlines()
            return toml_key_line(lines, ("tool", "orchestrate", "scripts", raw_key))
        from pytest_orchestrator.scripts.documents import load_yaml_document
        from pytest_orchestrator.scripts.lines import yaml_key_line

        node, _data = load_yaml_document(path)
        return yaml_key_line(node, ("scripts", raw_key))
    except Exception:  # a line number is a courtesy: never fail for want of one
        return None


def missing_entries(config: OrchestrateConfig, scripts: Iterable[str | os.PathLike[str]]) -> list[MissingEntry]:
    """The ``scripts`` entries of ``config`` that match none of ``scripts`` (paths) and no file on disk.

    ``scripts`` are the scripts known to exist (found by discovery); an entry naming any other existing file is
    not reported (it may be a script outside the globs that is run by name). Suggestions are the relative paths
    of ``scripts`` that look like the entry.
    """
    if config.path is None or not config.scripts:
        return []
    root = config.root.resolve()
    known: list[tuple[str, ...]] = []
    for script in scripts:
        rel = os.path.relpath(os.path.realpath(script), root)
        known.append(tuple(Path(rel).as_posix().split("/")))
    raw_keys = _raw_keys(config)
    names = ["/".join(p) for p in known if p and p[0] != ".."]
    found: list[MissingEntry] = []
    for key in config.scripts:
        if (root / key).is_file():
            continue
        key_parts = tuple(key.split("/"))
        if any(len(key_parts) <= len(p) and p[len(p) - len(key_parts) :] == key_parts for p in known):
            continue
        suggestions = close_matches(key, names) or close_matches(Path(key).name, names) or _by_name(key, names)
        raw = raw_keys.get(key, key)
        found.append(MissingEntry(config.path, _line(config, raw), raw, tuple(suggestions)))
    return found


def _by_name(key: str, names: list[str]) -> list[str]:
    """Entries for the scripts whose file name (or stem) looks like ``key``'s (``loadr`` -> ``loader.py``): the
    file name, an entry of its own when no other script has it, else the script's path."""
    files = collections.Counter(name.rsplit("/", 1)[-1] for name in names)
    by_stem: dict[str, list[str]] = {}
    for name in names:
        file = name.rsplit("/", 1)[-1]
        by_stem.setdefault(Path(file).stem, []).append(file if files[file] == 1 else name)
    stems = close_matches(Path(key).stem, by_stem)
    return list(dict.fromkeys(entry for stem in stems for entry in by_stem[stem]))[:3]
