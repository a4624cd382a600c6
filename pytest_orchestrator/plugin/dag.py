"""The item graph: which collected item waits for which, built once from the collected items.

:func:`build_graph` resolves every item's dependency targets (see :class:`TargetResolver` for the forms a target
may take) into node ids and returns an :class:`ItemGraph` over *all* collected items. :meth:`ItemGraph.select`
then cuts it down to what runs, applying ``--orchestrate-deps`` to dependencies that pytest deselected, and
:meth:`ItemGraph.make_scheduler` hands the outcome rules to :class:`~pytest_orchestrator.core.scheduler.DagScheduler`
(the one place they live), so serial runs and the xdist controller skip dependents the same way. The graph
round-trips through JSON (:meth:`ItemGraph.to_json` / :meth:`ItemGraph.from_json`) so an xdist worker can hand it
to the controller.
"""

from __future__ import annotations

from collections.abc import Callable
from collections.abc import Iterable
from collections.abc import Iterator
from collections.abc import Mapping
from collections.abc import Sequence
import dataclasses
import json
import os
from typing import Any
from typing import Literal

from pytest_orchestrator.core.graph import close_matches
from pytest_orchestrator.core.graph import critical_path
from pytest_orchestrator.core.graph import dependents_of
from pytest_orchestrator.core.graph import topological_order
from pytest_orchestrator.core.graph import validate_graph
from pytest_orchestrator.core.scheduler import SKIPPED
from pytest_orchestrator.core.scheduler import DagScheduler


__all__ = [
    "DEPS_POLICIES",
    "Blocker",
    "ItemGraph",
    "ItemRef",
    "Node",
    "TargetResolver",
    "UnknownTarget",
]

Kind = Literal["test", "script"]
DEPS_POLICIES = ("run", "skip", "ignore")
_JSON_VERSION = 1


@dataclasses.dataclass(frozen=True)
class Blocker:
    """Why a node is skipped before anything runs: a dependency that will not run in this session."""

    target: str
    #: ``"deselected"`` or ``"not collected"``
    state: str
    reason: str


@dataclasses.dataclass
class Node:
    """One item in the graph."""

    nodeid: str
    #: resolved dependencies (node ids), in declaration order
    deps: list[str] = dataclasses.field(default_factory=list)
    kind: Kind = "test"
    stage: str | None = None
    #: node id of the parent collector (the module, class or script file): xdist keeps fixtures warm by it
    parent: str = ""
    #: ``(path relative to rootdir, 0-based line or None, domain)``, as ``item.location``
    location: tuple[str, int | None, str] = ("", None, "")
    aliases: tuple[str, ...] = ()
    #: seconds, from earlier runs (pytest's cache); ``None`` when unknown
    estimated_duration: float | None = None
    #: targets that name files on disk which were not collected: ``(target, path to add to the command line)``
    missing: list[tuple[str, str]] = dataclasses.field(default_factory=list)
    #: set by :meth:`ItemGraph.select`: dependencies that will not run, so this node is skipped up front
    blocked: list[Blocker] = dataclasses.field(default_factory=list)
    #: set by :meth:`ItemGraph.select`: deselected, but run because a selected item needs it
    brought_back: bool = False

    def to_dict(self) -> dict[str, Any]:
        return {
            "deps": list(self.deps),
            "kind": self.kind,
            "stage": self.stage,
            "parent": self.parent,
            "location": list(self.location),
            "aliases": list(self.aliases),
            "estimated_duration": self.estimated_duration,
            "missing": [list(m) for m in self.missing],
            "blocked": [[b.target, b.state, b.reason] for b in self.blocked],
            "brought_back": self.brought_back,
        }

    @classmethod
    def from_dict(cls, nodeid: str, data: Mapping[str, Any]) -> Node:
        path, lineno, domain = data.get("location") or ("", None, "")
        return cls(
            nodeid=nodeid,
            deps=[str(d) for d in data.get("deps", ())],
            kind=data.get("kind", "test"),
            stage=data.get("stage"),
            parent=data.get("parent", ""),
            location=(str(path), None if lineno is None else int(lineno), str(domain)),
            aliases=tuple(data.get("aliases", ())),
            estimated_duration=data.get("estimated_duration"),
            missing=[(str(t), str(h)) for t, h in data.get("missing", ())],
            blocked=[Blocker(str(t), str(s), str(r)) for t, s, r in data.get("blocked", ())],
            brought_back=bool(data.get("brought_back", False)),
        )


class ItemGraph:
    """Nodes (node ids, in collection order) and their dependencies.

    Usage::

        graph = ItemGraph([Node("t.py::a"), Node("t.py::b", deps=["t.py::a"])])
        graph.validate()                        # unknown node ids, cycles
        graph.order()                           # stable topological order
        sched = graph.make_scheduler()          # DagScheduler with the up-front skips applied
    """

    def __init__(self, nodes: Iterable[Node] = ()) -> None:
        #: node id -> :class:`Node`, in collection order
        self.nodes: dict[str, Node] = {}
        for node in nodes:
            self.nodes[node.nodeid] = node

    # -- container protocol ----------------------------------------------------------------------------------
    def __contains__(self, nodeid: object) -> bool:
        return nodeid in self.nodes

    def __iter__(self) -> Iterator[str]:
        return iter(self.nodes)

    def __len__(self) -> int:
        return len(self.nodes)

    def __repr__(self) -> str:
        edges = sum(len(n.deps) for n in self.nodes.values())
        return f"<ItemGraph {len(self.nodes)} nodes, {edges} edges>"

    # -- queries and edits (the pytest_orchestrate_modify_graph API) ----------------------------------------
    def dependencies(self, nodeid: str) -> list[str]:
        """The node ids ``nodeid`` waits for."""
        return list(self.nodes[nodeid].deps)

    def dependents(self, nodeid: str) -> list[str]:
        """The node ids that wait for ``nodeid``."""
        return [n for n, node in self.nodes.items() if nodeid in node.deps]

    def add_dependency(self, nodeid: str, dependency: str) -> None:
        """Make ``nodeid`` wait for ``dependency`` (both node ids). Raises ``KeyError`` for an unknown ``nodeid``;
        an unknown ``dependency`` is reported by :meth:`validate`."""
        deps = self.nodes[nodeid].deps
        if dependency not in deps:
            deps.append(dependency)

    def remove_dependency(self, nodeid: str, dependency: str) -> None:
        """Drop the edge, if there is one."""
        deps = self.nodes[nodeid].deps
        if dependency in deps:
            deps.remove(dependency)

    def deps_map(self) -> dict[str, list[str]]:
        """``{node id: [dependencies]}`` in collection order (the shape :mod:`core.graph` takes)."""
        return {n: list(node.deps) for n, node in self.nodes.items()}

    def edge_count(self) -> int:
        return sum(len(node.deps) for node in self.nodes.values())

    def validate(self) -> None:
        """Raise ``DependencyResolutionError`` (an unknown node id) or ``CycleError`` (with the cycle's path)."""
        validate_graph(self.deps_map())

    def order(self) -> list[str]:
        """The serial order: stable topological (collection order kept wherever dependencies allow)."""
        return topological_order(self.deps_map())

    def estimates(self) -> dict[str, float | None]:
        return {n: node.estimated_duration for n, node in self.nodes.items()}

    def critical_path(self, durations: Mapping[str, float | None] | None = None) -> list[str]:
        """The longest chain by ``durations`` (default: the estimated durations)."""
        return critical_path(self.deps_map(), self.estimates() if durations is None else durations)

    # -- selection ---------------------------------------------------------------------------------------------
    def select(self, selected: Sequence[str], policy: str = "run") -> ItemGraph:
        """The graph of what runs, given the node ids pytest selected (in their order).

        ``policy`` says what happens to a dependency that was deselected (or that is in another ``--stage``):
        ``"run"`` brings it back (and what it depends on), placed just before its first dependent; ``"skip"`` skips
        its dependents up front; ``"ignore"`` treats it as met. A target that names a file that was not collected
        skips its dependents (``"ignore"``: met).
        """
        if policy not in DEPS_POLICIES:
            raise ValueError(f"unknown dependency policy {policy!r}; expected one of {', '.join(DEPS_POLICIES)}")
        chosen = [n for n in dict.fromkeys(selected) if n in self.nodes]
        keep = set(chosen)
        order = chosen
        if policy == "run":
            order = []
            placed: set[str] = set()

            def place(nodeid: str) -> None:
                # depth-first, so a brought-back dependency lands right before its first dependent
                stack: list[tuple[str, Iterator[str]]] = [(nodeid, iter(self.nodes[nodeid].deps))]
                placed.add(nodeid)
                while stack:
                    current, deps = stack[-1]
                    for dep in deps:
                        if dep in self.nodes and dep not in placed and dep not in keep:
                            placed.add(dep)
                            stack.append((dep, iter(self.nodes[dep].deps)))
                            break
                    else:
                        stack.pop()
                        if current != nodeid:
                            order.append(current)

            for nodeid in chosen:
                place(nodeid)
                order.append(nodeid)
        run = set(order)
        out: list[Node] = []
        for nodeid in order:
            old = self.nodes[nodeid]
            node = dataclasses.replace(old, deps=[d for d in old.deps if d in run], blocked=[], brought_back=False)
            node.brought_back = nodeid not in keep
            if policy == "skip":
                for dep in old.deps:
                    if dep not in run:
                        reason = f"dependency {dep!r} was deselected (--orchestrate-deps=skip)"
                        node.blocked.append(Blocker(dep, "deselected", reason))
            if policy != "ignore":
                for target, hint in old.missing:
                    reason = f"dependency {target!r} was not collected ({hint})"
                    node.blocked.append(Blocker(target, "not collected", reason))
            out.append(node)
        return ItemGraph(out)

    def brought_back(self) -> list[str]:
        return [n for n, node in self.nodes.items() if node.brought_back]

    # -- outcome rules -------------------------------------------------------------------------------------------
    def make_scheduler(self) -> DagScheduler[str]:
        """A :class:`DagScheduler` over this graph, with every blocked node (and its dependents) already skipped.

        A blocked node's dependents read ``dependency 'x' was skipped (root cause: 'y' was deselected)``.
        """
        sched: DagScheduler[str] = DagScheduler(self.deps_map(), weights=self.estimates())
        for nodeid in self.order():
            node = self.nodes[nodeid]
            if node.blocked and not sched.is_finished(nodeid):
                first = node.blocked[0]
                sched.root_cause[nodeid] = (first.target, first.state)
                sched.done(nodeid, SKIPPED, first.reason)
        return sched

    # -- transport ---------------------------------------------------------------------------------------------
    def to_json(self) -> str:
        """``{"version": 1, "nodes": {node id: {deps, kind, stage, parent, location, ...}}}`` as text."""
        data = {"version": _JSON_VERSION, "nodes": {n: node.to_dict() for n, node in self.nodes.items()}}
        return json.dumps(data, separators=(",", ":"))

    @classmethod
    def from_json(cls, text: str | bytes) -> ItemGraph:
        data = json.loads(text)
        if not isinstance(data, dict) or data.get("version") != _JSON_VERSION:
            raise ValueError(f"not an item graph of version {_JSON_VERSION}")
        return cls(Node.from_dict(n, d) for n, d in data["nodes"].items())


# --------------------------------------------------------------------------------------------------------------
# target resolution
# --------------------------------------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class ItemRef:
    """What resolution needs to know about one collected item (see ``session.item_ref``)."""

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
    location: tuple[str, int | None, str] = ("", None, "")


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


class TargetResolver:
    """Turns dependency targets into node ids.

    A target, for an item I, is tried as (first match wins):

    1. a node id (``tests/test_a.py::test_x``, ``scripts/load.py::load``);
    2. an alias set with ``depends(name=...)`` (every item that carries it);
    3. a name in I's class, then in I's module (``test_a``, ``TestX::test_b``);
    4. a node id without its ``[...]`` (every case of a parametrised test);
    5. a path, relative to the rootdir or to I's folder, optionally followed by ``::name``: a file or folder means
       every item under it;
    6. a script's stem (``load`` for ``scripts/load.py``).

    Group targets (a file, a folder, an alias, a parametrised name) never include I itself. A target that names a
    file on disk that was not collected is *missing* (its dependents are skipped, saying how to include it);
    anything else is *unknown* (a usage error with close matches).
    """

    def __init__(
        self,
        refs: Sequence[ItemRef],
        rootdir: str | os.PathLike[str],
        *,
        find_script: Callable[[str], str | None] | None = None,
        lf_active: bool = False,
    ) -> None:
        self.rootdir = os.path.normpath(os.fspath(rootdir))
        self.refs = list(refs)
        self._find_script = find_script
        self._lf_active = lf_active
        self.by_id: dict[str, ItemRef] = {}
        self.by_base: dict[str, list[str]] = {}
        self.by_path: dict[str, list[str]] = {}
        self.by_alias: dict[str, list[str]] = {}
        self.by_stem: dict[str, list[str]] = {}
        for ref in self.refs:
            self.by_id.setdefault(ref.nodeid, ref)
            self.by_base.setdefault(ref.base, []).append(ref.nodeid)
            self.by_path.setdefault(ref.path, []).append(ref.nodeid)
            for alias in ref.aliases:
                self.by_alias.setdefault(alias, []).append(ref.nodeid)
            if ref.kind == "script":
                stem = os.path.splitext(os.path.basename(ref.path))[0]
                self.by_stem.setdefault(stem, []).append(ref.nodeid)
        self._dir_cache: dict[str, list[str]] = {}

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

    def resolve(self, ref: ItemRef, target: str) -> list[str] | tuple[str, str] | UnknownTarget:
        """Node ids, or ``(target, hint)`` for a missing one, or :class:`UnknownTarget`."""
        others: Callable[[Iterable[str]], list[str]] = lambda ids: [n for n in ids if n != ref.nodeid]  # noqa: E731
        if target in self.by_id:
            return [target]
        if target in self.by_alias:
            return others(self.by_alias[target])
        for scope in dict.fromkeys((ref.parent, ref.module)):
            candidate = f"{scope}::{target}"
            if candidate in self.by_id:
                return [candidate]
            if candidate in self.by_base:
                return others(self.by_base[candidate])
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
                    file_suggestions.extend(in_file)
                    continue
                if not sep and os.path.isdir(full):
                    under = self._under(full)
                    if under:
                        return others(under)
                if os.path.exists(full) and not file_suggestions:
                    return (target, self._hint(full))
        if target in self.by_stem:
            return others(self.by_stem[target])
        if not file_suggestions and self._find_script is not None and not sep:
            script = self._find_script(target)
            if script is not None:
                return (target, self._hint(script))
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


def build_graph(
    resolver: TargetResolver, durations: Mapping[str, float] | None = None
) -> tuple[ItemGraph, list[UnknownTarget]]:
    """The graph over every item the resolver knows, and the targets that named nothing."""
    nodes: list[Node] = []
    unknown: list[UnknownTarget] = []
    durations = durations or {}
    seen: set[str] = set()
    for ref in resolver.refs:
        if ref.nodeid in seen:  # --keep-duplicates: one node per id
            continue
        seen.add(ref.nodeid)
        deps: list[str] = []
        missing: list[tuple[str, str]] = []
        for target in ref.targets:
            found = resolver.resolve(ref, target)
            if isinstance(found, UnknownTarget):
                unknown.append(found)
            elif isinstance(found, tuple):
                missing.append(found)
            else:
                deps.extend(found)
        nodes.append(
            Node(
                nodeid=ref.nodeid,
                deps=list(dict.fromkeys(deps)),
                kind=ref.kind,
                stage=ref.stage,
                parent=ref.parent,
                location=ref.location,
                aliases=ref.aliases,
                estimated_duration=durations.get(ref.nodeid),
                missing=missing,
            )
        )
    return ItemGraph(nodes), unknown


def dependents_map(graph: ItemGraph) -> dict[str, list[str]]:
    """``{node id: [nodes that wait for it]}``."""
    return dependents_of(graph.deps_map())
