"""Discover -> configure -> resolve dependencies -> check: the ``Plan`` of a folder of scripts.

``build_plan(path)`` discovers the scripts under ``path`` (``**/*.py``, ``**/*.sh``), reads each one's settings
(PEP 723 ``[tool.orchestrate]`` metadata merged with ``orchestrate.yaml``, see :mod:`pytest_orchestrator.scripts`)
and resolves its ``depends`` entries to other scripts. A dependency names a script by stem (``extract``), file
name (``extract.py``), or path relative to ``path`` (or to the config file's folder). Everything wrong (bad
metadata or config, unknown or ambiguous dependencies, cycles) is collected in ``Plan.problems``, one line each.
``select_scripts(plan, pattern=..., subdirs=...)`` narrows a plan to some scripts and what they depend on
(``orchestrate run -f`` / ``-s``).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
import dataclasses
import fnmatch
import os
from pathlib import Path
import posixpath
from typing import Any

from pytest_orchestrator.core.graph import close_matches
from pytest_orchestrator.core.graph import validate_graph
from pytest_orchestrator.errors import CycleError
from pytest_orchestrator.scripts import ConfigError
from pytest_orchestrator.scripts import OrchestrateConfig
from pytest_orchestrator.scripts import discover_scripts
from pytest_orchestrator.scripts import get_script_config
from pytest_orchestrator.scripts import load_config
from pytest_orchestrator.scripts.config import package_defaults as _package_defaults
from pytest_orchestrator.scripts.discovery import skipped_link_message
from pytest_orchestrator.scripts.entries import missing_entries


__all__ = ["DEFAULT_SCRIPTS_DIR", "Plan", "ScriptSpec", "build_plan", "display_path", "select_scripts"]

DEFAULT_SCRIPTS_DIR = "scripts"
#: at most this many cycles are reported (each one found is broken to look for the next)
MAX_CYCLES = 10


@dataclasses.dataclass
class ScriptSpec:
    """One discovered script: its node name in the DAG, where it is and its effective settings."""

    #: the node name: the stem, or the relative path when two scripts share a stem
    name: str
    path: Path
    #: posix path relative to the scripts folder
    rel: str
    #: ``get_script_config`` output (depends, timeout, retry, args, env, stage, allowed_exit_codes, skip)
    settings: dict[str, Any]
    #: resolved dependencies (node names)
    depends: list[str] = dataclasses.field(default_factory=list)


@dataclasses.dataclass
class Plan:
    """The scripts under one folder and their DAG, with every problem found on the way."""

    root: Path
    config: OrchestrateConfig | None
    scripts: dict[str, ScriptSpec] = dataclasses.field(default_factory=dict)
    problems: list[str] = dataclasses.field(default_factory=list)
    #: what the user should hear that does not stop the run: links skipped because they leave the folder, config
    #: entries that name no script
    notes: list[str] = dataclasses.field(default_factory=list)

    @property
    def graph(self) -> dict[str, list[str]]:
        """``{script: dependencies}`` in discovery order (known dependencies only)."""
        return {name: list(spec.depends) for name, spec in self.scripts.items()}

    @property
    def ok(self) -> bool:
        return not self.problems


def display_path(path: Path) -> str:
    """A path as the user would type it: relative to the current folder when it is inside it."""
    try:
        return os.path.relpath(path) if path.is_relative_to(Path.cwd()) else str(path)
    except (OSError, ValueError):
        return str(path)


def build_plan(path: str | os.PathLike[str] = DEFAULT_SCRIPTS_DIR, *, max_depth: int | None = None) -> Plan:
    """Discover and configure the scripts under ``path`` and resolve their dependencies.

    ``max_depth`` limits how many folders below ``path`` scripts are looked for (``0``: ``path`` itself).

    Raises ``FileNotFoundError`` / ``NotADirectoryError`` when ``path`` is not a folder; every other problem is
    collected in ``Plan.problems`` (a bad config file stops there, a script with bad metadata gets the defaults).
    """
    given = Path(path)
    if not given.exists():
        raise FileNotFoundError(f"{str(given)!r} does not exist")
    if not given.is_dir():
        raise NotADirectoryError(f"{str(given)!r} is not a folder")
    root = given.resolve()
    try:
        config = load_config(root)
    except ConfigError as exc:
        return Plan(root, None, problems=[exc.message])
    plan = Plan(root, config)

    def skipped(link: Path, target: Path) -> None:
        plan.notes.append(skipped_link_message(display_path(link), target, display_path(root)))

    files = discover_scripts(root, max_depth=max_depth, on_skip=skipped)
    if max_depth is None:  # (with a depth limit, a deeper script would look missing)
        plan.notes += [entry.message for entry in missing_entries(config, files)]
    if not files:
        depth = f" at most {max_depth} folder{'s' if max_depth != 1 else ''} deep" if max_depth is not None else ""
        plan.problems.append(f"{display_path(root)}: no scripts found (looked for **/*.py and **/*.sh{depth})")
        return plan
    stems = Counter(f.stem for f in files)
    for file in files:
        rel = file.relative_to(root).as_posix()
        name = file.stem if stems[file.stem] == 1 else rel
        try:
            settings = get_script_config(file, config=config)
        except ConfigError as exc:
            plan.problems.append(exc.message)
            settings = _package_defaults()
        plan.scripts[name] = ScriptSpec(name, file, rel, settings)
    _resolve_dependencies(plan)
    _check_cycles(plan)
    return plan


def _normalize(ref: str) -> str:
    ref = posixpath.normpath(ref.strip().replace(os.sep, "/"))
    return ref[2:] if ref.startswith("./") else ref


def _reference_index(plan: Plan) -> dict[str, set[str]]:
    """Every way a dependency may name a script -> the scripts it names (more than one: ambiguous)."""
    index: dict[str, set[str]] = {}
    config_root = plan.config.root.resolve() if plan.config is not None and plan.config.path is not None else None
    for name, spec in plan.scripts.items():
        keys = {name, spec.path.stem, spec.path.name, spec.rel, posixpath.splitext(spec.rel)[0]}
        if config_root is not None and spec.path.is_relative_to(config_root):
            keys.add(spec.path.relative_to(config_root).as_posix())
        for key in keys:
            index.setdefault(key, set()).add(name)
    return index


def _resolve_dependencies(plan: Plan) -> None:
    index = _reference_index(plan)
    # "did you mean" looks at names and file names, and suggests the script's name
    by_candidate = {spec.path.name: name for name, spec in plan.scripts.items()}
    by_candidate.update({name: name for name in plan.scripts})
    for name, spec in plan.scripts.items():
        resolved: list[str] = []
        for ref in spec.settings.get("depends") or ():
            key = _normalize(str(ref))
            if os.path.isabs(key):
                target = Path(key).resolve()
                key = target.relative_to(plan.root).as_posix() if target.is_relative_to(plan.root) else key
            found = index.get(key, set())
            if len(found) == 1:
                resolved.append(next(iter(found)))
            elif found:
                plan.problems.append(
                    f"{display_path(spec.path)}: dependency {ref!r} is ambiguous: it matches "
                    f"{', '.join(sorted(found))}; name the file or its path"
                )
            else:
                hints = dict.fromkeys(
                    by_candidate[h] for h in close_matches(key, [c for c, n in by_candidate.items() if n != name])
                )
                hint = f" (did you mean {' or '.join(repr(h) for h in hints)}?)" if hints else ""
                plan.problems.append(f"{display_path(spec.path)}: unknown dependency {ref!r}{hint}")
        spec.depends = list(dict.fromkeys(resolved))


def _check_cycles(plan: Plan) -> None:
    """One problem per cycle (``dependency cycle: a -> b -> a``), up to ``MAX_CYCLES``."""
    graph = plan.graph
    for _ in range(MAX_CYCLES):
        try:
            validate_graph(graph)
        except CycleError as exc:
            plan.problems.append(exc.message)
            graph[exc.cycle[-2]].remove(exc.cycle[-1])  # break it to look for the next one
        else:
            return


def _matches(pattern: str, spec: ScriptSpec) -> bool:
    """``-f PATTERN``: the name or relative path contains it, or one of them matches it as a glob."""
    return any(pattern in text or fnmatch.fnmatchcase(text, pattern) for text in (spec.name, spec.path.name, spec.rel))


def _under(subdir: str, spec: ScriptSpec) -> bool:
    prefix = _normalize(subdir).rstrip("/")
    return prefix in ("", ".") or spec.rel.startswith(prefix + "/")


def select_scripts(plan: Plan, *, pattern: str | None = None, subdirs: Sequence[str] | None = None) -> Plan:
    """The plan narrowed to the scripts ``pattern`` and ``subdirs`` select, plus every script they depend on.

    A script is selected when it lies under one of ``subdirs`` (folders relative to the plan's root; ``None``: all)
    and its name, file name or relative path contains ``pattern`` or matches it as a glob (``None``: all).
    Dependencies are kept whatever their folder or name, so the selection runs as it would in the whole plan.
    Selecting nothing is a problem of the returned plan.
    """
    if pattern is None and not subdirs:
        return plan
    chosen = [
        name
        for name, spec in plan.scripts.items()
        if (not subdirs or any(_under(d, spec) for d in subdirs)) and (pattern is None or _matches(pattern, spec))
    ]
    keep: set[str] = set()
    todo = list(chosen)
    while todo:
        name = todo.pop()
        if name not in keep:
            keep.add(name)
            todo.extend(plan.scripts[name].depends)
    narrowed = Plan(plan.root, plan.config, problems=list(plan.problems), notes=list(plan.notes))
    narrowed.scripts = {name: spec for name, spec in plan.scripts.items() if name in keep}
    if not chosen:
        what = [f"matching {pattern!r}"] if pattern is not None else []
        what += [f"under {', '.join(subdirs)}"] if subdirs else []
        narrowed.problems.append(f"{display_path(plan.root)}: no scripts {' and '.join(what)}")
    return narrowed
