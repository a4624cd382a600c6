"""The item graph: which collected item waits for which (the target-resolution rules are :mod:`.targets`).

:func:`~pytest_orchestrator.plugin.targets.build_graph` returns an :class:`ItemGraph` over *all* collected items.
:meth:`ItemGraph.select` then cuts it down to what runs, applying ``--orchestrate-deps`` to dependencies that pytest
deselected, and :meth:`ItemGraph.make_scheduler` hands the outcome rules to
:class:`~pytest_orchestrator.core.scheduler.DagScheduler` (the one place they live), so serial runs and the xdist
controller skip dependents the same way. The graph round-trips through JSON (:meth:`ItemGraph.to_json` /
:meth:`ItemGraph.from_json`) so an xdist worker can hand it to the controller, and :meth:`ItemGraph.to_networkx`
gives it to users who analyse their suite.
"""

from __future__ import annotations

from collections.abc import Iterable
from collections.abc import Iterator
from collections.abc import Mapping
from collections.abc import Sequence
import copy
import dataclasses
import json
from typing import TYPE_CHECKING
from typing import Any
from typing import Literal
from typing import NamedTuple


if TYPE_CHECKING:
    import networkx as nx

    from pytest_orchestrator.core.scheduler import DagScheduler

__all__ = ["DEPS_POLICIES", "Blocker", "ItemGraph", "Kind", "Node"]

Kind = Literal["test", "script"]
DEPS_POLICIES = ("run", "skip", "ignore")
_JSON_VERSION = 1


class Blocker(NamedTuple):
    """Why a node is skipped before anything runs: a dependency that will not run in this session."""

    target: str
    #: ``"deselected"`` or ``"not collected"``
    state: str
    reason: str


@dataclasses.dataclass(slots=True)
class Node:
    """One item in the graph.

    Its sequences are tuples until edited (most items have no edges; a suite of many items keeps fewer objects
    alive for the garbage collector to walk): edits replace them with new lists.
    """

    nodeid: str
    #: resolved dependencies (node ids), in declaration order
    deps: Sequence[str] = ()
    kind: Kind = "test"
    stage: str | None = None
    #: node id of the parent collector (the module, class or script file): xdist keeps fixtures warm by it
    parent: str = ""
    #: ``(path relative to rootdir, 0-based line or None, domain)``, as ``item.location``: set where it is needed,
    #: in the graph an xdist worker hands over (the controller reports skips with it), not when the graph is built
    location: tuple[str, int | None, str] = ("", None, "")
    aliases: tuple[str, ...] = ()
    #: seconds, from earlier runs (pytest's cache); ``None`` when unknown
    estimated_duration: float | None = None
    #: targets that name files on disk which were not collected: ``(target, path to add to the command line)``
    missing: Sequence[tuple[str, str]] = ()
    #: the dependencies (of ``deps``) that order only: this node runs whatever they ended in
    soft: Sequence[str] = ()
    #: groups of dependencies (of ``deps``) of which one that passed is enough
    any_of: Sequence[Sequence[str]] = ()
    #: dependencies that name nothing under pytest-dependency's rules: ``(target, reason)``; skipped up front
    unknown: Sequence[tuple[str, str]] = ()
    #: set by :meth:`ItemGraph.select`: dependencies that will not run, so this node is skipped up front
    blocked: Sequence[Blocker] = ()
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
            "soft": list(self.soft),
            "any_of": [list(g) for g in self.any_of],
            "unknown": [list(u) for u in self.unknown],
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
            soft=[str(d) for d in data.get("soft", ())],
            any_of=[[str(d) for d in g] for g in data.get("any_of", ())],
            unknown=[(str(t), str(r)) for t, r in data.get("unknown", ())],
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

    def add_dependency(self, nodeid: str, dependency: str, *, soft: bool = False) -> None:
        """Make ``nodeid`` wait for ``dependency`` (both node ids); ``soft``: for ordering only (it runs whatever
        the dependency ended in). Raises ``KeyError`` for an unknown ``nodeid``; an unknown ``dependency`` is
        reported by :meth:`validate`. A hard edge wins over a soft one between the same two nodes."""
        node = self.nodes[nodeid]
        if dependency not in node.deps:
            node.deps = [*node.deps, dependency]
            if soft:
                node.soft = [*node.soft, dependency]
        elif not soft and dependency in node.soft:
            node.soft = [d for d in node.soft if d != dependency]

    def remove_dependency(self, nodeid: str, dependency: str) -> None:
        """Drop the edge, if there is one."""
        node = self.nodes[nodeid]
        if dependency in node.deps:
            node.deps = [d for d in node.deps if d != dependency]
        if dependency in node.soft:
            node.soft = [d for d in node.soft if d != dependency]
        node.any_of = [[d for d in g if d != dependency] for g in node.any_of]
        node.any_of = [g for g in node.any_of if g]

    def deps_map(self) -> dict[str, list[str]]:
        """``{node id: [dependencies]}`` in collection order (the shape :mod:`core.graph` takes)."""
        return {n: list(node.deps) for n, node in self.nodes.items()}

    def edge_count(self) -> int:
        return sum(len(node.deps) for node in self.nodes.values())

    def has_edges(self) -> bool:
        """Whether any node has a dependency (stops at the first: :meth:`edge_count` counts them all)."""
        return any(node.deps for node in self.nodes.values())

    def validate(self) -> None:
        """Raise ``DependencyResolutionError`` (an unknown node id) or ``CycleError`` (with the cycle's path)."""
        if self.has_edges():  # else there is nothing to check (and core.graph need not load: most suites)
            from pytest_orchestrator.core.graph import validate_graph

            validate_graph(self.deps_map())

    def order(self) -> list[str]:
        """The serial order: stable topological (collection order kept wherever dependencies allow)."""
        if not self.has_edges():
            return list(self.nodes)
        from pytest_orchestrator.core.graph import topological_order

        return topological_order(self.deps_map())

    def estimates(self) -> dict[str, float | None]:
        return {n: node.estimated_duration for n, node in self.nodes.items()}

    def critical_path(self, durations: Mapping[str, float | None] | None = None) -> list[str]:
        """The longest chain of dependencies by ``durations`` (default: the estimated durations), over the nodes
        that have an edge: empty when the graph has none (a lone slow item is not a chain)."""
        deps = self.deps_map()
        linked = {d for ds in deps.values() for d in ds} | {n for n, ds in deps.items() if ds}
        if not linked:
            return []
        from pytest_orchestrator.core.graph import critical_path

        return critical_path(
            {n: [d for d in ds if d in linked] for n, ds in deps.items() if n in linked},
            self.estimates() if durations is None else durations,
        )

    # -- selection ---------------------------------------------------------------------------------------------
    def select(self, selected: Sequence[str], policy: str = "run") -> ItemGraph:
        """The graph of what runs, given the node ids pytest selected (in their order).

        ``policy`` says what happens to a dependency that was deselected (or that is in another
        ``--orchestrate-stage``): ``"run"`` brings it back (and what it depends on), placed just before its first
        dependent; ``"skip"`` skips its dependents up front; ``"ignore"`` treats it as met. A target that names a
        file that was not collected skips its dependents (``"ignore"``: met).
        """
        if policy not in DEPS_POLICIES:
            raise ValueError(f"unknown dependency policy {policy!r}; expected one of {', '.join(DEPS_POLICIES)}")
        chosen = [n for n in dict.fromkeys(selected) if n in self.nodes]
        if chosen == list(self.nodes) and not any(
            node.missing or node.unknown or node.blocked or node.brought_back for node in self.nodes.values()
        ):
            return self  # everything runs, nothing is blocked: the graph of what runs is this one
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
                    soft = self.nodes[current].soft
                    for dep in deps:
                        if dep in self.nodes and dep not in placed and dep not in keep and dep not in soft:
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
            node = copy.copy(old)  # the fields below are new; the rest is read only
            if old.deps:
                node.deps = [d for d in old.deps if d in run]
            if old.soft:
                node.soft = [d for d in old.soft if d in run]
            if old.any_of:
                node.any_of = [kept for g in old.any_of if (kept := [d for d in g if d in run])]
            node.brought_back = nodeid not in keep
            blocked = [Blocker(target, "unknown", reason) for target, reason in old.unknown]
            if policy == "skip":
                for dep in old.deps:
                    if dep not in run and dep not in old.soft:
                        reason = f"dependency {dep!r} was deselected (--orchestrate-deps=skip)"
                        blocked.append(Blocker(dep, "deselected", reason))
            if policy != "ignore":
                for target, hint in old.missing:
                    reason = f"dependency {target!r} was not collected ({hint})"
                    blocked.append(Blocker(target, "not collected", reason))
            node.blocked = blocked or ()
            out.append(node)
        return ItemGraph(out)

    def brought_back(self) -> list[str]:
        return [n for n, node in self.nodes.items() if node.brought_back]

    # -- outcome rules -------------------------------------------------------------------------------------------
    def make_scheduler(self) -> DagScheduler[str]:
        """A :class:`DagScheduler` over this graph, with every blocked node (and its dependents) already skipped.

        A blocked node's dependents read ``dependency 'x' was skipped (root cause: 'y' was deselected)``.
        """
        # loaded where something is scheduled: a graph without edges or blocked nodes needs no scheduler
        from pytest_orchestrator.core.scheduler import SKIPPED
        from pytest_orchestrator.core.scheduler import DagScheduler

        sched: DagScheduler[str] = DagScheduler(
            self.deps_map(),
            weights=self.estimates(),
            soft={n: node.soft for n, node in self.nodes.items() if node.soft},
            any_of={n: node.any_of for n, node in self.nodes.items() if node.any_of},
        )
        for nodeid in self.order():
            node = self.nodes[nodeid]
            if node.blocked and not sched.is_finished(nodeid):
                first = node.blocked[0]
                sched.root_cause[nodeid] = (first.target, first.state)
                sched.done(nodeid, SKIPPED, first.reason)
        return sched

    # -- analysis --------------------------------------------------------------------------------------------
    def to_networkx(self) -> nx.DiGraph:
        """The graph as a ``networkx.DiGraph``, for users who analyse their suite (networkx is imported here).

        Node ids are the nodes, in collection order; edges go from a dependency to its dependent. Each node carries
        ``kind`` (``"test"`` or ``"script"``), ``stage``, ``parent``, ``aliases`` and ``estimated_duration``. The
        plugin itself never calls it: ordering and skipping run on the hand-written core (``core/graph.py``).
        """
        import networkx as nx

        g = nx.DiGraph()
        for nodeid, node in self.nodes.items():
            g.add_node(
                nodeid,
                kind=node.kind,
                stage=node.stage,
                parent=node.parent,
                aliases=node.aliases,
                estimated_duration=node.estimated_duration,
            )
        for nodeid, node in self.nodes.items():
            g.add_edges_from((dep, nodeid) for dep in node.deps)
        return g

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
