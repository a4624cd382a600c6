"""pytest-dependency's ``@pytest.mark.dependency(name=None, depends=(), scope="module")``, read under ``--orchestrate``.

Its rules, kept where they differ from ours (:mod:`.targets`):

- only tests marked ``dependency()`` are known (every test with the ini ``automark_dependency``); the closest
  ``dependency`` marker wins (a method's over its class's), and a marker on a ``pytest.param`` is the case's own;
- a known test is named, in each scope it belongs to, by its ``name=`` or else by its node id (``session``,
  ``package``), its node id without the module (``module``: ``test_a``, ``TestX::test_a``), or its name in its class
  (``class``); ``depends=`` names are looked up in the dependent's own scope node (default ``module``);
- a name nothing answers to skips the dependent (or is ignored with ``--ignore-unknown-dependency``).

Where we differ on purpose: a dependency runs first even if it was collected after its dependent (pytest-dependency
skips the dependent then), and the graph holds under xdist. The runtime call ``depends(request, other,
scope="module")`` is :func:`depends`: it skips the test unless each named test already ran and passed. Under xdist
that includes the tests that ran on other workers: the worker asks the controller (:mod:`.xdist_worker`), and says in
the skip reason when no answer came and only its own outcomes counted.
When pytest-dependency is installed, its own skipping is switched off under ``--orchestrate`` (:func:`take_over`);
its ``depends()`` keeps working from its recorded results, and on an xdist worker it asks the controller as ours does.
"""

from __future__ import annotations

from collections.abc import Iterable
from collections.abc import Sequence
import time
from typing import Any

import pytest

from pytest_orchestrator.plugin.dag import ItemGraph
from pytest_orchestrator.plugin.names import DEPENDENCY_PLUGIN_NAME
from pytest_orchestrator.plugin.names import SESSION_PLUGIN_NAME
from pytest_orchestrator.plugin.names import WORKER_PLUGIN_NAME
from pytest_orchestrator.plugin.xdist_handoff import PENDING


__all__ = ["SCOPES", "DependencyNames", "check_depends", "depends", "take_over"]

#: pytest-dependency's scopes, innermost last
SCOPES: dict[str, type[Any]] = {
    "session": pytest.Session,
    "package": pytest.Package,
    "module": pytest.Module,
    "class": pytest.Class,
}
PLUGIN_NAME = DEPENDENCY_PLUGIN_NAME
#: the statuses (:class:`~.summary.ItemRecord`) pytest-dependency counts as a success: every phase passed
_PASSED = ("passed", "xpassed")

#: seconds a runtime ``depends()`` on an xdist worker waits for a test that runs on another one
WAIT_SECONDS = 300.0
_POLL_SECONDS = 0.02

_names_key = pytest.StashKey["DependencyNames"]()
_positions_key = pytest.StashKey[dict[str, int]]()


def _scope_name(nodeid: str, scope: str) -> str | None:
    if scope in ("session", "package"):
        return nodeid
    parts = nodeid.split("::", 2)
    if scope == "module":
        return nodeid.split("::", 1)[1] if len(parts) > 1 else None
    return parts[2] if len(parts) > 2 else None


def _scope_node(item: pytest.Item, scope: str) -> str | None:
    cls = SCOPES.get(scope)
    if cls is None:
        return None
    node = item.getparent(cls)
    return None if node is None else node.nodeid


class DependencyNames:
    """Which tests pytest-dependency knows, by ``(scope node id, name)``."""

    def __init__(self, items: Iterable[pytest.Item], *, automark: bool) -> None:
        self.known: dict[tuple[str, str], list[str]] = {}
        for item in items:
            if not isinstance(item, pytest.Function):
                continue
            marker = item.get_closest_marker("dependency")
            if marker is None and not automark:
                continue
            name = marker.kwargs.get("name") if marker is not None else None
            for scope in SCOPES:
                node = _scope_node(item, scope)
                if node is None:
                    continue
                key = name if name else _scope_name(item.nodeid, scope)
                if key:
                    self.known.setdefault((node, str(key)), []).append(item.nodeid)

    def lookup(self, item: pytest.Item, name: str, scope: str) -> list[str] | None:
        node = _scope_node(item, scope)
        if node is None:
            return None
        found = self.known.get((node, name))
        return None if found is None else [n for n in found if n != item.nodeid]


def _depends_of(item: pytest.Item) -> tuple[list[str], str]:
    marker = item.get_closest_marker("dependency")
    if marker is None:
        return [], "module"
    others = marker.kwargs.get("depends") or ()
    if isinstance(others, str):
        others = (others,)
    scope = marker.kwargs.get("scope", "module")
    if scope not in SCOPES:
        raise pytest.UsageError(
            f"orchestrate: {item.nodeid}: @pytest.mark.dependency(scope={scope!r}): "
            f"scope must be one of {', '.join(SCOPES)}"
        )
    return [str(o) for o in others], scope


def apply_dependency_marks(config: pytest.Config, items: Sequence[pytest.Item], graph: ItemGraph) -> None:
    """Add the edges of every ``dependency`` marker to ``graph`` (unknown names skip the dependent up front)."""
    if not any(item.get_closest_marker("dependency") is not None for item in items):
        return
    names = DependencyNames(items, automark=bool(_ini(config, "automark_dependency")))
    config.stash[_names_key] = names
    ignore_unknown = bool(config.getoption("ignore_unknown_dependency", False))
    for item in items:
        others, scope = _depends_of(item)
        node = graph.nodes.get(item.nodeid)
        if not others or node is None:
            continue
        for other in others:
            found = names.lookup(item, other, scope)
            if found is None:
                if not ignore_unknown:
                    reason = (
                        f"{item.name} depends on {other}: no test marked @pytest.mark.dependency() is named "
                        f"{other!r} in its {scope} scope (--ignore-unknown-dependency ignores it)"
                    )
                    node.unknown = [*node.unknown, (other, reason)]
                continue
            for dep in found:
                graph.add_dependency(item.nodeid, dep)


def _ini(config: pytest.Config, name: str) -> Any:
    try:
        return config.getini(name)
    except ValueError:
        return None


def depends(request: pytest.FixtureRequest, other: Iterable[str] | str, scope: str = "module") -> None:
    """Skip the calling test unless every test named in ``other`` already ran and passed (pytest-dependency's
    runtime call).

    Names follow pytest-dependency's rules for ``scope``. A dependency that has not run yet skips the test (use the
    marker to have it run first); under xdist one that passed on another worker counts (the controller is asked).
    """
    check_depends(request.node, [other] if isinstance(other, str) else list(other), scope)


def check_depends(item: pytest.Item, other: Sequence[str], scope: str) -> None:
    """:func:`depends` for ``item``: raise pytest's skip unless each name in ``other`` names tests that passed."""
    config = item.config
    names = config.stash.get(_names_key, None)
    if names is None:
        names = config.stash[_names_key] = DependencyNames(
            item.session.items, automark=bool(_ini(config, "automark_dependency"))
        )
    plugin = config.pluginmanager.get_plugin(SESSION_PLUGIN_NAME)
    records = getattr(getattr(plugin, "recorder", None), "items", {})
    ignore_unknown = bool(config.getoption("ignore_unknown_dependency", False))
    wanted: list[tuple[str, list[str]]] = []
    for name in other:
        found = names.lookup(item, name, scope)
        if found is None:
            if ignore_unknown:
                continue
            raise pytest.skip.Exception(f"{item.name} depends on {name}", _use_item_location=True)
        wanted.append((name, found))
    passed = {n for _, found in wanted for n in found if getattr(records.get(n), "status", None) in _PASSED}
    elsewhere = [n for _, found in wanted for n in found if n not in passed]
    worker = config.pluginmanager.get_plugin(WORKER_PLUGIN_NAME) if elsewhere else None
    note = "" if worker is None else _ask_workers(worker, item, elsewhere, passed)
    for name, found in wanted:
        if not passed.issuperset(found):
            raise pytest.skip.Exception(f"{item.name} depends on {name}{note}", _use_item_location=True)


def _ask_workers(worker: Any, item: pytest.Item, nodeids: list[str], passed: set[str]) -> str:
    """On an xdist worker: add to ``passed`` the ``nodeids`` that passed on any worker (the controller knows).

    One that a serial run would have run before ``item`` and that another worker runs or has queued is waited for
    (at most :data:`WAIT_SECONDS`), so the outcome is the serial run's. Returns what the skip reason should add
    when the answer is incomplete."""
    position = item.config.stash.get(_positions_key, None)
    if position is None:
        position = item.config.stash[_positions_key] = {n.nodeid: i for i, n in enumerate(item.session.items)}
    running = getattr(worker, "current", None) or item  # the test whose fixture may be calling, else the caller
    mine = position.get(running.nodeid, 0)
    deadline = time.monotonic() + WAIT_SECONDS
    while nodeids:
        answer = worker.outcomes(nodeids)
        if answer is None:
            return " (the xdist controller did not answer: only this worker's outcomes counted)"
        passed.update(n for n, status in answer.items() if status in _PASSED)
        nodeids = [n for n in nodeids if answer.get(n) == PENDING and position.get(n, mine) < mine]
        if nodeids and time.monotonic() > deadline:
            return f" ({nodeids[0]} was still running on another xdist worker after {WAIT_SECONDS:.0f} s)"
        if nodeids:
            time.sleep(_POLL_SECONDS)
    return ""


class _Results:
    """pytest-dependency's result recording without its skipping, so its own ``depends()`` still works; on an xdist
    worker its ``depends()`` is :func:`check_depends` (the other workers' outcomes count), until the session ends."""

    def __init__(self, module: Any, *, worker: bool) -> None:
        self.pytest_runtest_makereport = module.pytest_runtest_makereport
        manager = getattr(module, "DependencyManager", None)
        self._manager = manager if worker and callable(getattr(manager, "checkDepend", None)) else None
        if self._manager is not None:
            # pytest_dependency.depends(request, other, scope) calls getManager(item, scope).checkDepend(other, item)
            self._own = self._manager.__dict__.get("checkDepend")
            self._manager.checkDepend = _check_depend

    def pytest_unconfigure(self) -> None:
        if self._manager is not None:
            self._manager.checkDepend = self._own
            self._manager = None


def _check_depend(manager: Any, depends: Iterable[str], item: pytest.Item) -> None:
    check_depends(item, [str(d) for d in depends], str(getattr(manager, "scope", "module")))


def take_over(config: pytest.Config) -> str | None:
    """Switch pytest-dependency's skipping off (we order and skip); the line to say so, or ``None``."""
    manager = config.pluginmanager
    module = manager.get_plugin(PLUGIN_NAME)
    if module is None or not hasattr(module, "DependencyManager"):
        return None
    manager.unregister(module)
    manager.register(_Results(module, worker=hasattr(config, "workerinput")), "orchestrate-dependency-results")
    return "orchestrate: pytest-dependency's markers are run by --orchestrate (its own skipping is off)"
