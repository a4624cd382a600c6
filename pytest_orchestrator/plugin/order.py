"""pytest-order's ``@pytest.mark.order(index | "first" | "last" | ..., before=..., after=...)`` under ``--orchestrate``.

Every relation is a *soft* edge (ordering only, pytest-order's meaning: a test runs even if the one it follows
failed). Ordinals, in the session: tests with an index >= 0 ("first" is 0, "second" 1, ...) run first by index,
then the tests without one, then those with a negative index ("last" is -1, "second_to_last" -2, ...) by index.
``before=`` / ``after=`` name tests like our targets (a name in the class or module, a node id, a path relative to
the rootdir or the test's folder, a class); one that names nothing is warned about once and ignored, as pytest-order
does. When pytest-order is installed its own reordering is switched off under ``--orchestrate`` (:func:`take_over`).
"""

from __future__ import annotations

from collections.abc import Sequence
import itertools

import pytest

from pytest_orchestrator.core.graph import dependents_of
from pytest_orchestrator.core.graph import upstream
from pytest_orchestrator.plugin.dag import ItemGraph
from pytest_orchestrator.plugin.names import ORDER_PLUGIN_NAME
from pytest_orchestrator.plugin.targets import ItemRef
from pytest_orchestrator.plugin.targets import TargetResolver


__all__ = ["ORDINALS", "apply_order_marks", "take_over"]

_WORDS = ("first", "second", "third", "fourth", "fifth", "sixth", "seventh", "eighth")
#: pytest-order's names for indexes
ORDINALS: dict[str, int] = {
    **{w: i for i, w in enumerate(_WORDS)},
    "last": -1,
    **{f"{w}_to_last": -(i + 1) for i, w in enumerate(_WORDS) if i},
}
PLUGIN_NAME = ORDER_PLUGIN_NAME


def _labels(value: object) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, list | tuple):
        return [str(v) for v in value]
    return [str(value)] if value else []


def _index(item: pytest.Item) -> int | None:
    for mark in item.iter_markers("order"):
        value = mark.args[0] if mark.args else mark.kwargs.get("index")
        if value is None:
            continue
        if isinstance(value, bool) or not isinstance(value, int | str):
            raise pytest.UsageError(f"orchestrate: {item.nodeid}: @pytest.mark.order({value!r}): expected an index")
        if isinstance(value, str):
            if value not in ORDINALS:
                raise pytest.UsageError(
                    f"orchestrate: {item.nodeid}: @pytest.mark.order({value!r}): unknown index; use an int or "
                    f"one of {', '.join(ORDINALS)}"
                )
            return ORDINALS[value]
        return value
    return None


def apply_order_marks(
    items: Sequence[pytest.Item], refs: dict[str, ItemRef], resolver: TargetResolver, graph: ItemGraph
) -> list[str]:
    """Add the soft edges of every ``order`` marker to ``graph``; return warnings for labels naming nothing."""
    if not any(item.get_closest_marker("order") is not None for item in items):
        return []
    warnings: list[str] = []
    first: list[tuple[int, int, str]] = []
    last: list[tuple[int, int, str]] = []
    plain: list[str] = []
    for position, item in enumerate(items):
        if item.nodeid not in graph.nodes or not isinstance(item, pytest.Function):
            continue
        index = _index(item)
        if index is None:
            plain.append(item.nodeid)
        else:
            (first if index >= 0 else last).append((index, position, item.nodeid))
        ref = refs[item.nodeid]
        for mark in item.iter_markers("order"):
            for key, after in (("after", True), ("before", False)):
                for label in _labels(mark.kwargs.get(key)):
                    found = resolver.resolve(ref, label)
                    if not isinstance(found, list) or not found:
                        warnings.append(f"{item.nodeid}: order({key}={label!r}) names no collected test; ignored")
                        continue
                    for other in found:
                        if after:
                            graph.add_dependency(item.nodeid, other, soft=True)
                        else:
                            graph.add_dependency(other, item.nodeid, soft=True)
    _add_ordinals(graph, [n for _, _, n in sorted(first)], plain, [n for _, _, n in sorted(last)])
    return warnings


def _add_ordinals(graph: ItemGraph, chain: list[str], plain: list[str], tail: list[str]) -> None:
    """The soft edges of the indexes: ``chain`` (index >= 0) in order, then ``plain``, then ``tail`` (negative) in
    order. Relative order wins, as in pytest-order: an index edge that would close a cycle with the edges already
    there (``before=``/``after=``, dependencies) is left out, so the ordinal gives way."""
    deps = {n: node.deps for n, node in graph.nodes.items()}  # live: edges added below are seen

    def add(later: str, earlier: str) -> None:
        if later not in upstream(deps, earlier):
            graph.add_dependency(later, earlier, soft=True)

    for earlier, later in itertools.pairwise(chain):
        add(later, earlier)
    for earlier, later in itertools.pairwise(tail):
        add(later, earlier)
    # the items without an index wait for the whole chain, and the tail waits for them: for the chain's last
    # item and the tail's first, and for any item of theirs that a left-out edge cut loose
    last_needs = upstream(deps, chain[-1]) if chain else set()
    ends = [c for c in chain if c not in last_needs]
    for end in ends:
        before = upstream(deps, end)  # one walk for every item without an index
        for nodeid in [*plain, *tail[:1]]:
            if nodeid not in before:
                graph.add_dependency(nodeid, end, soft=True)
    first_feeds = upstream(dependents_of(deps), tail[0]) if tail else set()
    starts = [t for t in tail if t not in first_feeds]
    for start in starts:
        after = upstream(dependents_of(deps), start)  # the reverse graph anew: the edges just added count
        for nodeid in plain:
            if nodeid not in after:
                graph.add_dependency(start, nodeid, soft=True)


def take_over(config: pytest.Config) -> str | None:
    """Switch pytest-order's reordering off (the graph orders); the line to say so, or ``None``."""
    manager = config.pluginmanager
    plugin = manager.get_plugin(PLUGIN_NAME)
    if plugin is None:
        return None
    manager.unregister(plugin)
    return "orchestrate: pytest-order's markers are run by --orchestrate (its own reordering is off)"
