"""``--lf`` snapshots: the items pytest's last-failed plugin drops at collection, kept as dependencies to bring back.

Under ``--lf`` pytest's cache plugin removes a file's passed tests while the file is collected, before
``pytest_collection_modifyitems``, so the snapshot the session takes there no longer holds them. The session
plugin's innermost ``pytest_make_collect_report`` wrapper hands every file's items to :meth:`LastFailedSnapshot.seen`
first; :meth:`LastFailedSnapshot.add_to` then adds them to the snapshot, so a failed test's passed dependencies can
be run again.

:func:`remember_dependency_skips` is the other half of ``--lf``: at the end of a session it adds the items that were
skipped because a dependency *failed* to pytest's last-failed cache (pytest drops skipped items from it), so
``pytest --orchestrate --lf`` reruns the failed items and their skipped dependents, in DAG order. Their dependents
skipped for any other reason (a dependency skipped by a marker) are left out: they would only be skipped again.
"""

from __future__ import annotations

from collections.abc import Mapping
import re
from typing import TYPE_CHECKING

import pytest


if TYPE_CHECKING:
    from pytest_orchestrator.plugin.summary import ItemRecord


__all__ = ["LastFailedSnapshot", "failed_upstream", "remember_dependency_skips"]

#: the dependency rules' skip reasons (core/scheduler.py) whose root cause is a failure
_FAILED_UPSTREAM = re.compile(r"^dependency '.*' failed$|\(root cause: '.*' failed\)$")
#: pytest's last-failed cache key (a documented cache entry: ``pytest --cache-show``)
_LASTFAILED = "cache/lastfailed"


class LastFailedSnapshot:
    """The items of each collected file, as they were before ``--lf`` dropped any (only when ``--lf`` is on)."""

    def __init__(self, active: bool) -> None:
        self.active = active
        self._dropped: list[pytest.Item] = []

    def seen(self, collector: pytest.Collector, report: pytest.CollectReport) -> None:
        """Remember a file's items (called with its collect report, before the last-failed plugin filters it)."""
        if self.active and isinstance(collector, pytest.File) and report.result:
            self._dropped.extend(x for x in report.result if isinstance(x, pytest.Item))

    def add_to(self, snapshot: list[pytest.Item]) -> None:
        """Add the remembered items that ``snapshot`` lacks (and forget them)."""
        if not self._dropped:
            return
        present = {id(item) for item in snapshot}
        snapshot.extend(item for item in self._dropped if id(item) not in present)
        self._dropped = []


def failed_upstream(reason: str) -> bool:
    """Whether a dependency skip's ``reason`` says a dependency (or the root cause upstream) failed."""
    return bool(_FAILED_UPSTREAM.search(reason.strip()))


def remember_dependency_skips(config: pytest.Config, records: Mapping[str, ItemRecord]) -> None:
    """Add the items skipped because a dependency failed to pytest's last-failed cache (run after the last-failed
    plugin wrote it)."""
    cache = getattr(config, "cache", None)
    if cache is None or not config.pluginmanager.has_plugin("lfplugin"):
        return
    skipped = [n for n, r in records.items() if r.dependency_skip and failed_upstream(r.reason)]
    if not skipped:
        return
    lastfailed = dict(cache.get(_LASTFAILED, {}) or {})
    missing = [n for n in skipped if n not in lastfailed]
    if missing:
        lastfailed.update(dict.fromkeys(missing, True))
        cache.set(_LASTFAILED, lastfailed)
