"""Target resolution: the rules that turn an item's dependency targets into node ids, and the graph built from them.

:class:`TargetResolver` holds the rules (node id, alias, name in the class or module, parametrised name, path,
script stem; see its docstring) and :func:`build_graph` applies them to every collected item, returning the
:class:`~pytest_orchestrator.plugin.dag.ItemGraph` over all of them and the targets that named nothing. Plain data
in, plain data out: :func:`pytest_orchestrator.plugin.arrange.item_ref` turns a pytest item into an
:class:`ItemRef`.
"""

from __future__ import annotations

from collections.abc import Callable
from collections.abc import Iterable
from collections.abc import Mapping
from collections.abc import Sequence
import dataclasses
import functools
import os

from pytest_orchestrator.core.graph import close_matches
from pytest_orchestrator.plugin.dag import ItemGraph
from pytest_orchestrator.plugin.dag import Kind
from pytest_orchestrator.plugin.dag import Node


__all__ = ["AmbiguousTarget", "ItemRef", "TargetResolver", "UnknownTarget", "build_graph"]


@dataclasses.dataclass(slots=True)
class ItemRef:
    """What resolution needs to know about one collected item (see ``arrange.item_ref``)."""

    nodeid: str
    #: absolute, normalised path of the item's file
    path: str
    #: node id of the item's file collector (module or script file)
    module: str
    #: node id of the closest parent collector (class or module)
    parent: str
    #: the node id without parametrisation (``t.py::test_x`` for ``t.py::test_x[1]``)
    base: str
    kind: Kind = "test"
    targets: tuple[str, ...] = ()
    aliases: tuple[str, ...] = ()
    stage: str | None = None
    soft_targets: tuple[str, ...] = ()
    before: tuple[str, ...] = ()
    soft_before: tuple[str, ...] = ()
    any_of: tuple[tuple[str, ...], ...] = ()


@dataclasses.dataclass(frozen=True)
class UnknownTarget:
    """A target that names nothing collected and nothing on disk."""

    nodeid: str
    target: str
    suggestions: tuple[str, ...]

    @property
    def message(self) -> str:
        text = f"{self.nodeid}: dependency {self.target!r} matches no collected test, script, file or alias"
        if self.suggestions:
            text += "; did you mean " + " or ".join(repr(s) for s in self.suggestions) + "?"
        return text


@dataclasses.dataclass(frozen=True)
class AmbiguousTarget:
    """A target that is the stem of more than one script (the CLI's rule: name the file or its path)."""

    nodeid: str
    target: str
    candidates: tuple[str, ...]

    @property
    def message(self) -> str:
        return (
            f"{self.nodeid}: dependency {self.target!r} is ambiguous: it matches "
            f"{', '.join(self.candidates)}; name the file or its path"
        )


class TargetResolver:
    """Turns dependency targets into node ids.

    A target, for an item I, is tried as (first match wins):

    1. a node id (``tests/test_a.py::test_x``, ``scripts/load.py::load``), or a class's (all its tests);
    2. an alias set with ``depends(name=...)`` (every item that carries it);
    3. a name in I's class, then in I's module (``test_a``, ``TestX::test_b``, ``TestX``: all its tests);
    4. a node id without its ``[...]`` (every case of a parametrised test);
    5. a path, relative to the rootdir or to I's folder, optionally followed by ``::name``: a file or folder means
       every item under it;
    6. a script's stem (``load`` for ``scripts/load.py``); a stem that more than one script has is ambiguous
       (:class:`AmbiguousTarget`, an error listing them, as ``orchestrate list`` says).

    Group targets (a file, a folder, an alias, a parametrised name) never include I itself. A target that names a
    file on disk that was not collected is *missing* (its dependents are skipped, saying how to include it);
    anything else is *unknown* (a usage error with close matches).
    """

    def __init__(
        self,
        refs: Sequence[ItemRef],
        rootdir: str | os.PathLike[str],
        *,
        find_script: Callable[[str], list[str]] | None = None,
        lf_active: bool = False,
    ) -> None:
        self.rootdir = os.path.normpath(os.fspath(rootdir))
        self.refs = list(refs)
        self._find_script = find_script
        self._lf_active = lf_active
        self._dir_cache: dict[str, list[str]] = {}
        self._indexed = False

    def _index(self) -> None:
        """The name tables, made on the first question (a suite where nothing names anything never asks)."""
        self._indexed = True
        self.by_id: dict[str, ItemRef] = {}
        self.by_base: dict[str, list[str]] = {}
        self.by_path: dict[str, list[str]] = {}
        self.by_alias: dict[str, list[str]] = {}
        self.by_stem: dict[str, list[str]] = {}
        #: class node id -> the tests in it (nested classes included)
        self.by_class: dict[str, list[str]] = {}
        for ref in self.refs:
            parent = ref.parent
            while parent != ref.module and "::" in parent:
                self.by_class.setdefault(parent, []).append(ref.nodeid)
                parent = parent.rpartition("::")[0]
            self.by_id.setdefault(ref.nodeid, ref)
            self.by_base.setdefault(ref.base, []).append(ref.nodeid)
            self.by_path.setdefault(ref.path, []).append(ref.nodeid)
            for alias in ref.aliases:
                self.by_alias.setdefault(alias, []).append(ref.nodeid)
            if ref.kind == "script":
                stem = os.path.splitext(os.path.basename(ref.path))[0]
                self.by_stem.setdefault(stem, []).append(ref.nodeid)

    def alias_clashes(self) -> list[str]:
        """One message per alias that is also the name of another item (a test's name, a node id or a script's
        stem): a dependency on that name would mean the alias, silently (aliases are tried first)."""
        if not any(ref.aliases for ref in self.refs):  # the common case: nothing to clash, no table to build
            return []
        if not self._indexed:
            self._index()
        if not self.by_alias:
            return []
        names: dict[str, list[str]] = {}
        for ref in self.refs:
            names.setdefault(ref.base.rpartition("::")[2], []).append(ref.nodeid)
            names.setdefault(ref.nodeid, []).append(ref.nodeid)
        for stem, ids in self.by_stem.items():
            names.setdefault(stem, []).extend(ids)
        problems: list[str] = []
        for ref in self.refs:
            for alias in ref.aliases:
                others = [n for n in dict.fromkeys(names.get(alias, ())) if n != ref.nodeid]
                if others:
                    problems.append(
                        f"{ref.nodeid}: alias {alias!r} shadows the name of {', '.join(others[:3])}"
                        f"{' and more' if len(others) > 3 else ''}; choose another name= for depends"
                    )
        return problems

    def _under(self, folder: str) -> list[str]:
        found = self._dir_cache.get(folder)
        if found is None:
            prefix = folder.rstrip(os.sep) + os.sep
            found = [r.nodeid for r in self.refs if r.path.startswith(prefix)]
            self._dir_cache[folder] = found
        return found

    def _hint(self, path: str) -> str:
        rel = os.path.relpath(path, self.rootdir).replace(os.sep, "/")
        if self._lf_active:
            return f"--lf collects only files with failures; add {rel} to the command line or run without --lf"
        return f"add {rel} to the command line"

    def _rel(self, path: str) -> str:
        """Rootdir-relative posix path of a file, links resolved (so two names of one script compare equal)."""
        return os.path.relpath(os.path.realpath(path), os.path.realpath(self.rootdir)).replace(os.sep, "/")

    def resolve(self, ref: ItemRef, target: str) -> list[str] | tuple[str, str] | UnknownTarget | AmbiguousTarget:
        """Node ids, or ``(target, hint)`` for a missing one, or :class:`UnknownTarget` / :class:`AmbiguousTarget`."""
        if not self._indexed:
            self._index()
        others: Callable[[Iterable[str]], list[str]] = lambda ids: [n for n in ids if n != ref.nodeid]  # noqa: E731
        if target in self.by_id:
            return [target]
        if target in self.by_class:
            return others(self.by_class[target])
        if target in self.by_alias:
            return others(self.by_alias[target])
        for scope in dict.fromkeys((ref.parent, ref.module)):
            candidate = f"{scope}::{target}"
            if candidate in self.by_id:
                return [candidate]
            if candidate in self.by_base:
                return others(self.by_base[candidate])
            if candidate in self.by_class:
                return others(self.by_class[candidate])
        if target in self.by_base:
            return others(self.by_base[target])
        path_part, sep, rest = target.partition("::")
        file_suggestions: list[str] = []
        if path_part:
            for base in dict.fromkeys((self.rootdir, os.path.dirname(ref.path))):
                full = os.path.normpath(os.path.join(base, path_part))
                in_file = self.by_path.get(full)
                if in_file is not None:
                    if not sep:
                        return others(in_file)
                    module = self.by_id[in_file[0]].module
                    candidate = f"{module}::{rest}"
                    if candidate in self.by_id:
                        return [candidate]
                    if candidate in self.by_base:
                        return others(self.by_base[candidate])
                    if candidate in self.by_class:
                        return others(self.by_class[candidate])
                    file_suggestions.extend(in_file)
                    continue
                if not sep and os.path.isdir(full):
                    under = self._under(full)
                    if under:
                        return others(under)
                if os.path.exists(full) and not file_suggestions:
                    return (target, self._hint(full))
        on_disk = self._find_script(target) if self._find_script is not None and not sep else []
        if target in self.by_stem:
            collected = self.by_stem[target]
            paths = dict.fromkeys([*(self._rel(self.by_id[n].path) for n in collected), *map(self._rel, on_disk)])
            if len(paths) > 1:
                return AmbiguousTarget(ref.nodeid, target, tuple(sorted(paths)))
            return others(collected)
        if not file_suggestions and on_disk:
            if len(on_disk) > 1:
                return AmbiguousTarget(ref.nodeid, target, tuple(sorted(map(self._rel, on_disk))))
            return (target, self._hint(on_disk[0]))
        return UnknownTarget(ref.nodeid, target, tuple(self._suggest(ref, target, file_suggestions)))

    def _suggest(self, ref: ItemRef, target: str, in_file: list[str]) -> list[str]:
        if in_file:
            return close_matches(target, in_file) or close_matches(target.rpartition("::")[2], in_file)
        local = [r.nodeid[len(ref.module) + 2 :] for r in self.refs if r.module == ref.module and r is not ref]
        found = close_matches(target, local)
        if found:
            return found
        names = [*self.by_alias, *self.by_stem, *(n for n in self.by_id if n != ref.nodeid)]
        return close_matches(target, names)


def _resolve(
    resolver: TargetResolver,
    ref: ItemRef,
    unknown: list[UnknownTarget | AmbiguousTarget],
    missing: list[tuple[str, str]],
    target: str,
) -> list[str]:
    found = resolver.resolve(ref, target)
    if isinstance(found, UnknownTarget | AmbiguousTarget):
        unknown.append(found)
    elif isinstance(found, tuple):
        missing.append(found)
    else:
        return found
    return []


def build_graph(
    resolver: TargetResolver, durations: Mapping[str, float] | None = None
) -> tuple[ItemGraph, list[UnknownTarget | AmbiguousTarget]]:
    """The graph over every item the resolver knows, and the targets that named nothing or more than one script."""
    nodes: list[Node] = []
    unknown: list[UnknownTarget | AmbiguousTarget] = []
    durations = durations or {}
    seen: set[str] = set()
    #: (dependent, dependency, soft) from ``before=`` targets, added once every node exists
    reverse: list[tuple[str, str, bool]] = []
    for ref in resolver.refs:
        if ref.nodeid in seen:  # --keep-duplicates: one node per id
            continue
        seen.add(ref.nodeid)
        if not (ref.targets or ref.soft_targets or ref.any_of or ref.before or ref.soft_before):
            # names nothing (most items): a node of its own
            nodes.append(
                Node(
                    nodeid=ref.nodeid,
                    kind=ref.kind,
                    stage=ref.stage,
                    parent=ref.parent,
                    aliases=ref.aliases,
                    estimated_duration=durations.get(ref.nodeid),
                )
            )
            continue
        deps: list[str] = []
        soft: list[str] = []
        any_of: list[list[str]] = []
        missing: list[tuple[str, str]] = []
        resolve = functools.partial(_resolve, resolver, ref, unknown, missing)

        for target in ref.targets:
            deps.extend(resolve(target))
        for target in ref.soft_targets:
            soft.extend(d for d in resolve(target) if d not in deps)
        for group in ref.any_of:
            members = [d for target in group for d in resolve(target)]
            if members:
                any_of.append(list(dict.fromkeys(members)))
        for targets, is_soft in ((ref.before, False), (ref.soft_before, True)):
            for target in targets:
                reverse.extend((d, ref.nodeid, is_soft) for d in resolve(target))
        grouped = [d for g in any_of for d in g if d not in deps]
        soft = list(dict.fromkeys(soft))
        nodes.append(
            Node(
                nodeid=ref.nodeid,
                deps=list(dict.fromkeys([*deps, *soft, *grouped])) if deps or soft or grouped else (),
                soft=soft or (),
                any_of=any_of or (),
                kind=ref.kind,
                stage=ref.stage,
                parent=ref.parent,
                aliases=ref.aliases,
                estimated_duration=durations.get(ref.nodeid),
                missing=missing or (),
            )
        )
    graph = ItemGraph(nodes)
    for dependent, dependency, is_soft in reverse:
        graph.add_dependency(dependent, dependency, soft=is_soft)
    return graph, unknown
