"""``--lf`` snapshots: the items pytest's last-failed plugin drops at collection, kept as dependencies to bring back.

Under ``--lf`` pytest's cache plugin removes a file's passed tests while the file is collected, before
``pytest_collection_modifyitems``, so the snapshot the session takes there no longer holds them. The session
plugin's innermost ``pytest_make_collect_report`` wrapper hands every file's items to :meth:`LastFailedSnapshot.seen`
first; :meth:`LastFailedSnapshot.add_to` then adds them to the snapshot, so a failed test's passed dependencies can
be run again.
"""

from __future__ import annotations

import pytest


__all__ = ["LastFailedSnapshot"]


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
