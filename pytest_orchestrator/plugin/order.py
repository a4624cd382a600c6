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

from pytest_orchestrator.plugin.dag import ItemGraph
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
PLUGIN_NAME = "orderingplugin"


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
    chain = [n for _, _, n in sorted(first)]
    tail = [n for _, _, n in sorted(last)]
    for earlier, later in itertools.pairwise(chain):
        graph.add_dependency(later, earlier, soft=True)
    for earlier, later in itertools.pairwise(tail):
        graph.add_dependency(later, earlier, soft=True)
    if chain:
        for nodeid in [*plain, *tail[:1]]:
            graph.add_dependency(nodeid, chain[-1], soft=True)
    if tail:
        for nodeid in plain:
            graph.add_dependency(tail[0], nodeid, soft=True)
    return warnings


def take_over(config: pytest.Config) -> str | None:
    """Switch pytest-order's reordering off (the graph orders); the line to say so, or ``None``."""
    manager = config.pluginmanager
    plugin = manager.get_plugin(PLUGIN_NAME)
    if plugin is None:
        return None
    manager.unregister(plugin)
    return "orchestrate: pytest-order's markers are run by --orchestrate (its own reordering is off)"
