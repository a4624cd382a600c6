"""Graph arrangement: from the collected items to the item graph of what runs, and the items in its order.

Two steps, run by the session plugin's ``pytest_collection_modifyitems`` wrapper:

1. :func:`build_item_graph`, over the snapshot taken *before* ``-k``, ``-m``, ``--deselect`` and ``--lf`` acted:
   every item's markers (:mod:`.markers`) become an :class:`~.markers.ItemSpec`, its targets are resolved
   (:mod:`.targets`), ``pytest_orchestrate_modify_graph`` may edit the graph, and the graph is checked. Malformed
   markers are a usage error. An unknown target or a cycle makes the items that carry it (every item on the
   cycle) errors at setup (:data:`~.markers.broken_key`) and the rest runs; with ``--orchestrate-strict`` they are
   a usage error too.
2. :func:`select_items`, over what pytest kept: applies ``--orchestrate-stage``, brings back needed dependencies or
   blocks their dependents (``--orchestrate-deps``), and puts ``items`` in the graph's order. Deselected items are
   reported through ``pytest_deselected``; brought-back ones are taken out of the terminal's "deselected" count.
"""

from __future__ import annotations

from collections.abc import Callable
from collections.abc import Mapping
from collections.abc import Sequence
import os
from typing import TYPE_CHECKING

import pytest

from pytest_orchestrator.errors import CycleError
from pytest_orchestrator.errors import DependencyResolutionError
from pytest_orchestrator.plugin.dag import ItemGraph
from pytest_orchestrator.plugin.dag import Node
from pytest_orchestrator.plugin.kinds import is_script_item
from pytest_orchestrator.plugin.markers import NO_SPEC
from pytest_orchestrator.plugin.markers import ItemSpec
from pytest_orchestrator.plugin.markers import MarkerError
from pytest_orchestrator.plugin.markers import broken_key
from pytest_orchestrator.plugin.markers import evaluate_marks
from pytest_orchestrator.plugin.markers import spec_key
from pytest_orchestrator.plugin.markers import spec_marked
from pytest_orchestrator.plugin.names import notes_key
from pytest_orchestrator.plugin.names import stashed


if TYPE_CHECKING:
    from pytest_orchestrator.plugin.targets import AmbiguousTarget
    from pytest_orchestrator.plugin.targets import ItemRef
    from pytest_orchestrator.plugin.targets import UnknownTarget


__all__ = ["build_item_graph", "item_ref", "item_spec", "marker_names", "notes_key", "select_items"]


def item_spec(item: pytest.Item, *, own_timeout: bool, marked: bool = True) -> ItemSpec:
    """The item's :class:`ItemSpec`, parsed once (a script item's comes from its settings). ``marked=False``: no
    item of the session carries a marker of ours, so there is nothing to parse."""
    spec = stashed(item.stash, spec_key, None)
    if spec is None:
        if not marked:
            return NO_SPEC  # (not kept: what every reader takes for an item without one)
        spec = item.stash[spec_key] = evaluate_marks(item, own_timeout=own_timeout)
    return spec


def item_ref(item: pytest.Item, spec: ItemSpec, files: dict[int, tuple[str, str]] | None = None) -> ItemRef:
    """What target resolution needs to know about ``item`` (``files`` keeps each parent's file for the next item
    that has that parent)."""
    from pytest_orchestrator.plugin.targets import ItemRef

    key = id(item.parent)
    known = files.get(key) if files is not None else None
    if known is None:
        file = item.getparent(pytest.File)  # type: ignore[type-abstract]
        known = (
            file.nodeid if file is not None else item.nodeid.partition("::")[0],
            os.path.normpath(str(item.path)),
        )
        if files is not None and item.parent is not None:
            files[key] = known
    module, path = known
    parent = _parent_id(item, module)
    base = item.nodeid
    original = getattr(item, "originalname", None)
    if isinstance(item, pytest.Function) and original and original != item.name:
        base = f"{parent}::{original}"
    return ItemRef(
        nodeid=item.nodeid,
        path=path,
        module=module,
        parent=parent,
        base=base,
        kind="script" if is_script_item(item) else "test",
        targets=spec.targets,
        aliases=spec.aliases,
        stage=spec.stage,
        soft_targets=spec.soft_targets,
        before=spec.before,
        soft_before=spec.soft_before,
        any_of=spec.any_of,
    )


def marker_names(items: Sequence[pytest.Item]) -> set[str]:
    """The names of every marker on ``items`` and their collectors (each collector looked at once)."""
    names: set[str] = set()
    seen: set[int] = set()
    for item in items:
        if item.own_markers:
            names.update(mark.name for mark in item.own_markers)
        node = item.parent
        while node is not None and id(node) not in seen:
            seen.add(id(node))
            names.update(mark.name for mark in node.own_markers)
            node = node.parent
    return names


def build_item_graph(
    config: pytest.Config,
    snapshot: Sequence[pytest.Item],
    *,
    used: set[str],
    own_timeout: bool,
    find_script: Callable[[str], list[str]] | None,
    lf_active: bool,
    durations: Mapping[str, float],
    strict: bool = False,
) -> ItemGraph:
    """The checked graph over every item of ``snapshot``; raises ``pytest.UsageError`` for malformed markers (and,
    ``strict``, for unknown targets and cycles; otherwise the items concerned are marked broken)."""
    problems: list[str] = []
    specs: dict[str, ItemSpec] = {}
    marked = spec_marked(used)
    for item in snapshot:
        try:
            specs[item.nodeid] = item_spec(item, own_timeout=own_timeout, marked=marked)
        except MarkerError as exc:
            problems.append(str(exc))
    if problems:
        raise pytest.UsageError("orchestrate: malformed markers:\n" + "\n".join(problems))
    if "dependency" in used or "order" in used or any(map(_names_anything, specs.values())):
        full, unknown = _resolved_graph(config, snapshot, specs, used, find_script, lf_active, durations)
    else:  # nothing names anything (a suite without dependencies): no target to resolve
        full, unknown = _lone_graph(snapshot, specs, durations), []
    if unknown and strict:
        from pytest_orchestrator.plugin.targets import AmbiguousTarget

        kind = "unknown or ambiguous" if any(isinstance(u, AmbiguousTarget) for u in unknown) else "unknown"
        raise pytest.UsageError(f"orchestrate: {kind} dependencies:\n" + "\n".join(u.message for u in unknown))
    broken: dict[str, list[str]] = {}
    for problem in unknown:
        broken.setdefault(problem.nodeid, []).append(f"orchestrate: {problem.message}")
    config.hook.pytest_orchestrate_modify_graph(config=config, graph=full)
    _check(full, broken, strict=strict)
    if broken:
        for item in snapshot:
            if item.nodeid in broken:
                item.stash[broken_key] = "\n".join(broken[item.nodeid])
    return full


def _resolved_graph(
    config: pytest.Config,
    snapshot: Sequence[pytest.Item],
    specs: Mapping[str, ItemSpec],
    used: set[str],
    find_script: Callable[[str], list[str]] | None,
    lf_active: bool,
    durations: Mapping[str, float],
) -> tuple[ItemGraph, list[UnknownTarget | AmbiguousTarget]]:
    """The graph with every target resolved, and the targets that named nothing (or more than one script)."""
    # loaded where something names something: a suite without dependencies never resolves a target
    from pytest_orchestrator.plugin.targets import TargetResolver
    from pytest_orchestrator.plugin.targets import build_graph

    files: dict[int, tuple[str, str]] = {}
    refs = [item_ref(item, specs[item.nodeid], files) for item in snapshot]
    resolver = TargetResolver(refs, config.rootpath, find_script=find_script, lf_active=lf_active)
    clashes = resolver.alias_clashes()
    if clashes:
        raise pytest.UsageError("orchestrate: aliases that shadow a name:\n" + "\n".join(clashes))
    full, unknown = build_graph(resolver, durations)
    # pytest-dependency's and pytest-order's markers, by their own rules (their modules load when a marker is there)
    if "dependency" in used:
        from pytest_orchestrator.plugin.compat_dependency import apply_dependency_marks

        apply_dependency_marks(config, snapshot, full)
    if "order" in used:
        from pytest_orchestrator.plugin.order import apply_order_marks

        order_notes = apply_order_marks(snapshot, {r.nodeid: r for r in refs}, resolver, full)
        config.stash.setdefault(notes_key, []).extend(f"orchestrate: {note}" for note in order_notes)
    return full, unknown


def _names_anything(spec: ItemSpec) -> bool:
    """Whether ``spec`` names another item (or a name others may use), so targets must be resolved."""
    return bool(spec.targets or spec.soft_targets or spec.any_of or spec.before or spec.soft_before or spec.aliases)


def _lone_graph(
    snapshot: Sequence[pytest.Item], specs: Mapping[str, ItemSpec], durations: Mapping[str, float]
) -> ItemGraph:
    """The graph of a session in which nothing names anything: a node of its own per item, built from the items
    (what :func:`build_graph` makes of such items, without the refs a resolver needs)."""
    nodes: dict[str, Node] = {}
    for item in snapshot:
        nodeid = item.nodeid
        if nodeid not in nodes:  # --keep-duplicates: one node per id
            nodes[nodeid] = Node(
                nodeid=nodeid,
                kind="script" if is_script_item(item) else "test",
                stage=specs[nodeid].stage,
                parent=_parent_id(item, nodeid.partition("::")[0]),
                estimated_duration=durations.get(nodeid),
            )
    return ItemGraph(nodes.values())


def _parent_id(item: pytest.Item, module: str) -> str:
    """The node id of ``item``'s closest collector (``module``, its file's, for a parentless item)."""
    return item.parent.nodeid if item.parent is not None else module


def _check(full: ItemGraph, broken: dict[str, list[str]], *, strict: bool) -> None:
    """Validate ``full``: a cycle is a usage error (``strict``), else its edges go and its items are ``broken``."""
    while True:
        try:
            full.validate()
        except CycleError as exc:
            if strict:
                raise pytest.UsageError(f"orchestrate: {exc.message}") from None
            _break_cycle(full, exc, broken)
            continue
        except DependencyResolutionError as exc:
            raise pytest.UsageError(f"orchestrate: {exc.message} (edge added by pytest_orchestrate_modify_graph?)")
        break


def _break_cycle(graph: ItemGraph, exc: CycleError, broken: dict[str, list[str]]) -> None:
    """Drop the edges of a cycle and mark every item on it broken with the cycle's path."""
    on_cycle = list(dict.fromkeys(exc.cycle))
    members = set(on_cycle)
    for nodeid in on_cycle:
        for dep in graph.dependencies(nodeid):
            if dep in members:
                graph.remove_dependency(nodeid, dep)
        broken.setdefault(nodeid, []).append(f"orchestrate: {exc.message}")


def select_items(
    config: pytest.Config,
    items: list[pytest.Item],
    snapshot: Sequence[pytest.Item],
    full: ItemGraph,
    *,
    stages: Sequence[str],
    deps_policy: str,
) -> ItemGraph:
    """Cut ``full`` down to what runs, put ``items`` (in place) in its order, and return the graph of what runs."""
    selected = list(dict.fromkeys(item.nodeid for item in items))
    if stages:
        wanted = set(stages)
        known = sorted({node.stage for node in full.nodes.values() if node.stage is not None})
        unknown = [s for s in dict.fromkeys(stages) if s not in known]
        if unknown:
            asked = ", ".join(repr(s) for s in unknown)
            there = f"the stages are: {', '.join(known)}" if known else "no item has a stage"
            raise pytest.UsageError(f"orchestrate: no stage named {asked}; {there}")
        selected = [n for n in selected if full.nodes[n].stage in wanted]
    run = full.select(selected, deps_policy)
    if run is full and len(selected) == len(items) and not full.has_edges():
        return run  # everything collected runs, once each, without an edge: the items are in the graph's order

    by_id: dict[str, list[pytest.Item]] = {}
    for item in items:
        by_id.setdefault(item.nodeid, []).append(item)
    for item in snapshot:
        if item.nodeid not in by_id and item.nodeid in run:
            by_id[item.nodeid] = [item]
    dropped = [item for item in items if item.nodeid not in run]
    if dropped:
        config.hook.pytest_deselected(items=dropped)
    brought = set(run.brought_back())
    if brought:
        names = sorted(brought)
        shown = ", ".join(names[:5]) + (f" and {len(names) - 5} more" if len(names) > 5 else "")
        config.stash.setdefault(notes_key, []).append(
            f"orchestrate: {len(names)} deselected dependenc{'ies' if len(names) != 1 else 'y'} run because selected "
            f"items need {'them' if len(names) != 1 else 'it'} (--orchestrate-deps=run): {shown}"
        )
        reporter = config.pluginmanager.get_plugin("terminalreporter")
        stats = getattr(reporter, "stats", None)
        if stats is not None and stats.get("deselected"):
            stats["deselected"] = [i for i in stats["deselected"] if getattr(i, "nodeid", None) not in brought]
    items[:] = [item for nodeid in run.order() for item in by_id.get(nodeid, ())]
    return run
