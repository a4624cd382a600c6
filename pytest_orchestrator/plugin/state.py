"""Durable state of a ``pytest --orchestrate`` session: item outcomes recorded in the ``StateStore``, and
``--orchestrate-resume``.

Where. Ini ``orchestrate_state`` (a path, relative to the rootdir) names the file; by default it is
``orchestrate/state.db`` in pytest's cache folder (``config.cache.mkdir``: ``<cache_dir>/d/orchestrate/state.db``),
and with ``-p no:cacheprovider`` ``<rootdir>/.pytest_cache/d/orchestrate/state.db``. ``--orchestrate-no-state`` turns
it off. Each session is one run named ``pytest:<rootdir>``; each item that finished is one task row: its status from
:data:`~.outcomes.OUTCOME_STATUS` (passed -> completed, failed/error/timeout -> failed, skipped/xfailed -> skipped),
its attempts, times and error. An item interrupted half way (Ctrl-C, SIGKILL) is not recorded.

Fingerprint. An item's fingerprint is its node id, a digest of its file's *content* and the fingerprints of its
dependencies in the item graph: editing a test file reruns its items, and everything downstream of them, on resume.
(Conftest files and fixtures outside the item's file are not part of it.)

Commits. Rows are committed in batches, at most :data:`COMMIT_LATENCY` seconds after an item finished, and always
when the session ends or is interrupted. An item's teardown queues its row; the main thread writes the queue at a
teardown once its oldest row has waited half the latency, and a committer thread once that row has waited the whole
latency, which happens only while an item runs long (two threads taking turns at SQLite's steps cost far more than the
writes). A passed item whose row was committed is carried over by resume; one that finished within the last
:data:`COMMIT_LATENCY` before a SIGKILL runs again.

Roles. The process that sees every report records: the serial session, or the xdist controller. A worker records
nothing: it computes fingerprints (sent to the controller on its teardown reports) and, when resuming, reports the
items carried over (what to carry is decided where the items are, from the resumed run's rows the controller hands
over in ``workerinput``).

Resume. ``--orchestrate-resume [RUN_ID]`` resumes the last unfinished run (a run that was interrupted or had
failures) or the one given. An item is carried over by :func:`~pytest_orchestrator.core.recording.carry_over`: it
passed in that run (or in the run that run resumed, and so on), its fingerprint is the same, and every dependency it
has in this session is carried over too. A carried item is *reported as passed* (``PASSED (carried over)`` under
``-v``, a ``carried_over_from`` user property in JUnit) without running: a skip would tell the dependency rules that
it did not complete and skip its dependents, and the session's counts stay those of an uninterrupted run. The
workflow summary says ``N carried over from run RUN_ID``.

The store is never the reason a session fails: a store that cannot be opened or locked turns state off for the
session (said once), a write that fails stops recording (said once) and marks the run so that resuming from it is
refused.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable
from collections.abc import Mapping
from collections.abc import Sequence
import hashlib
import os
from pathlib import Path
import threading
import time
from typing import TYPE_CHECKING
from typing import Any
from typing import Literal
from typing import NamedTuple
import warnings

import pytest

from pytest_orchestrator.core.recording import carry_over
from pytest_orchestrator.core.recording import fingerprint
from pytest_orchestrator.errors import ConcurrencyError
from pytest_orchestrator.errors import StateError
from pytest_orchestrator.plugin.dag import ItemGraph
from pytest_orchestrator.plugin.outcomes import OUTCOME_STATUS


if TYPE_CHECKING:
    from pytest_orchestrator.plugin.compat import WorkerNode
    from pytest_orchestrator.plugin.summary import ItemRecord
    from pytest_orchestrator.state.store import StateStore
    from pytest_orchestrator.state.store import TaskRow

__all__ = [
    "CARRIED_ATTR",
    "COMMIT_LATENCY",
    "FINGERPRINT_ATTR",
    "RESUME_KEY",
    "SessionState",
    "StoredItem",
    "item_fingerprints",
    "open_state",
    "session_name",
    "state_path",
    "stored_items",
]

#: seconds between an item finishing and its row being committed, at most (while the store works)
COMMIT_LATENCY = 1.0
#: report attributes (they travel with xdist's serialised reports): an item's fingerprint, the run it was carried from
FINGERPRINT_ATTR = "orchestrate_fingerprint"
CARRIED_ATTR = "orchestrate_carried"
#: the ``workerinput`` key under which the controller hands a worker the resumed run's rows
RESUME_KEY = "orchestrate_state"

#: an item's status word (:mod:`.outcomes`) -> the status its row records
_STATUS = {outcome: status.value for outcome, status in OUTCOME_STATUS.items()}

STATE_PLUGIN_NAME = "orchestrate-state"
CARRIED_PLUGIN_NAME = "orchestrate-carried"
NOTES_PLUGIN_NAME = "orchestrate-fingerprints"


def session_name(config: pytest.Config) -> str:
    """The name the runs of this project's sessions are recorded under."""
    return f"pytest:{config.rootpath}"


def state_path(config: pytest.Config) -> Path:
    """The state file: ini ``orchestrate_state``, else in pytest's cache folder (see the module docstring)."""
    named = str(config.getini("orchestrate_state") or "").strip()
    if named:
        path = Path(os.path.expanduser(named))
        return path if path.is_absolute() else config.rootpath / path
    cache = getattr(config, "cache", None)
    if cache is not None:
        return Path(cache.mkdir("orchestrate")) / "state.db"
    return config.rootpath / ".pytest_cache" / "d" / "orchestrate" / "state.db"


def _file_digest(path: str | None) -> str:
    if path is None:
        return "-"
    try:
        with open(path, "rb") as stream:
            return hashlib.file_digest(stream, "blake2b").hexdigest()[:16]
    except OSError:
        return "-"


def item_fingerprints(graph: ItemGraph, paths: Mapping[str, str]) -> dict[str, str]:
    """Every node's fingerprint: node id, its file's content digest, its dependencies' fingerprints."""
    digests: dict[str | None, str] = {}
    out: dict[str, str] = {}
    nodes = graph.nodes
    for nodeid in graph.order():
        path = paths.get(nodeid)
        digest = digests.get(path)
        if digest is None:
            digest = digests[path] = _file_digest(path)
        deps = nodes[nodeid].deps  # most items have none
        out[nodeid] = fingerprint(nodeid, digest, sorted(out[d] for d in deps if d in out) if deps else [])
    return out


class StoredItem(NamedTuple):
    """An item as an earlier run recorded it (what :func:`carry_over` reads)."""

    status: str
    fingerprint: str | None
    value: Any = None
    value_stored: bool = False


def stored_items(store: StateStore, run_id: str) -> dict[str, StoredItem]:
    """The rows of ``run_id``, over those of the runs it resumed (the latest row of an item wins).

    A run killed before it reported the items it carried over still carries them, from the run before it.
    """
    chain: list[str] = []
    current: str | None = run_id
    while current is not None and current not in chain:
        chain.append(current)
        current = store.get_run(current).resumed_from
    merged: dict[str, StoredItem] = {}
    for rid in reversed(chain):
        for name, task in store.tasks(rid).items():
            merged[name] = StoredItem(task.status, task.fingerprint)
    return merged


def _looks_like_path(value: str) -> bool:
    return "::" in value or os.sep in value or value.endswith(".py") or os.path.exists(value)


def _finish_status(exitstatus: int, failed: bool) -> str:
    if exitstatus == pytest.ExitCode.INTERRUPTED:
        return "interrupted"
    if failed or exitstatus not in (pytest.ExitCode.OK, pytest.ExitCode.NO_TESTS_COLLECTED):
        return "failed"
    return "completed"


class CarriedItems:
    """Reports the items carried over from the resumed run as passed, without running them (``tryfirst``
    ``pytest_runtest_protocol``, registered after the retry hook so it is asked first)."""

    def __init__(self, carried: Iterable[str], run_id: str, fingerprints: Mapping[str, str]) -> None:
        self.carried = set(carried)
        self.run_id = run_id
        self.fingerprints = fingerprints

    @pytest.hookimpl(tryfirst=True)
    def pytest_runtest_protocol(self, item: pytest.Item, nextitem: pytest.Item | None) -> bool | None:
        if item.nodeid not in self.carried:
            return None
        ihook = item.ihook
        ihook.pytest_runtest_logstart(nodeid=item.nodeid, location=item.location)
        keywords: dict[str, Any] = dict.fromkeys(item.keywords, 1)  # (pytest 9.2 types the values Literal[1])
        now = time.time()
        fp = self.fingerprints.get(item.nodeid)
        whens: tuple[Literal["setup", "call", "teardown"], ...] = ("setup", "call", "teardown")
        for when in whens:
            properties = [*item.user_properties, ("carried_over_from", self.run_id)] if when == "teardown" else []
            report = pytest.TestReport(
                item.nodeid,
                item.location,
                keywords,
                "passed",
                None,
                when,
                start=now,
                stop=now,
                user_properties=properties,
            )
            setattr(report, CARRIED_ATTR, self.run_id)
            setattr(report, FINGERPRINT_ATTR, fp)
            ihook.pytest_runtest_logreport(report=report)
        ihook.pytest_runtest_logfinish(nodeid=item.nodeid, location=item.location)
        return True


class CarriedWord:
    """``PASSED (carried over)`` under ``-v`` (registered only when resuming, where the reports are shown)."""

    @pytest.hookimpl(tryfirst=True)
    def pytest_report_teststatus(
        self, report: pytest.TestReport
    ) -> tuple[str, str, tuple[str, Mapping[str, bool]]] | None:
        if report.when == "call" and getattr(report, CARRIED_ATTR, None):
            return "passed", ".", ("PASSED (carried over)", {"green": True})
        return None


class FingerprintNotes:
    """On an xdist worker: puts each item's fingerprint on its teardown report, for the controller to record."""

    def __init__(self, fingerprints: Mapping[str, str]) -> None:
        self.fingerprints = fingerprints

    @pytest.hookimpl(tryfirst=True)
    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        if report.when == "teardown" and not hasattr(report, FINGERPRINT_ATTR):
            setattr(report, FINGERPRINT_ATTR, self.fingerprints.get(report.nodeid))


class SessionState:
    """The session's state: the recorder (serial session, xdist controller: ``store`` set) or a worker's part
    (``store`` is ``None``). The session plugin calls :meth:`arranged` after collection and :meth:`finished` at
    each item's teardown report; the rest are hooks (the object is registered as a plugin)."""

    def __init__(
        self,
        config: pytest.Config,
        store: StateStore | None,
        *,
        resumed_from: str | None = None,
        stored: Mapping[str, StoredItem] | None = None,
        notices: Sequence[str] = (),
    ) -> None:
        self.config = config
        self.store = store
        self.worker = hasattr(config, "workerinput")
        self.name = session_name(config)
        self.resumed_from = resumed_from
        self.stored: Mapping[str, StoredItem] = stored or {}
        self.notices = list(notices)
        self.fingerprints: dict[str, str] = {}
        #: items carried over in this session (on the recorder: counted from the reports)
        self.carried = 0
        self.run_id: str | None = None
        self._lock = threading.Lock()
        #: the rows of finished items, written next
        self._done: deque[TaskRow] = deque()
        #: when the oldest queued row was queued (``time.monotonic``; set as a row joins an empty queue)
        self._oldest = 0.0
        self._stop = threading.Event()
        self._committer: threading.Thread | None = None
        self._failure: str | None = None
        self._failure_told = False
        self._failed_items = False

    # -- collection (where the items are) ---------------------------------------------------------------------
    def arranged(
        self, items: Sequence[pytest.Item], snapshot: Sequence[pytest.Item], full: ItemGraph, run: ItemGraph
    ) -> None:
        """Fingerprint the items; when resuming, register the reporter of the items carried over."""
        paths = {item.nodeid: str(item.path) for item in snapshot}
        self.fingerprints = item_fingerprints(full, paths)
        manager = self.config.pluginmanager
        if self.resumed_from is not None:
            carried, _ = carry_over(run.order(), run.deps_map(), self.fingerprints, self.stored, need_values=False)
            running = {item.nodeid for item in items}
            chosen = [n for n in carried if n in running]
            old = manager.get_plugin(CARRIED_PLUGIN_NAME)
            if old is not None:
                manager.unregister(old)
            if chosen:
                manager.register(CarriedItems(chosen, self.resumed_from, self.fingerprints), CARRIED_PLUGIN_NAME)
        if self.worker and not manager.has_plugin(NOTES_PLUGIN_NAME):
            manager.register(FingerprintNotes(self.fingerprints), NOTES_PLUGIN_NAME)

    # -- the run -------------------------------------------------------------------------------------------------
    @pytest.hookimpl(tryfirst=True)
    def pytest_sessionstart(self, session: pytest.Session) -> None:
        store = self.store
        if store is None:
            return
        store.on_failure = self._on_failure
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            try:
                self.run_id = store.begin_run(self.name, kind="pytest", resumed_from=self.resumed_from)
            except (ConcurrencyError, StateError) as exc:
                self.notices.append(f"orchestrate: state is off for this session: {exc}")
                self._close()
                return
        self.notices.extend(f"orchestrate: {w.message}" for w in caught)
        self._committer = threading.Thread(target=self._commit_loop, name="orchestrate-state", daemon=True)
        self._committer.start()

    def pytest_report_header(self, config: pytest.Config) -> list[str]:
        return list(self.notices)

    @pytest.hookimpl(optionalhook=True)
    def pytest_configure_node(self, node: WorkerNode) -> None:
        # xdist's documented way to hand a worker data: the resumed run's rows, so the worker can decide what to carry
        if self.store is not None:
            node.workerinput[RESUME_KEY] = {
                "run": self.resumed_from,
                "tasks": {n: [t.status, t.fingerprint] for n, t in self.stored.items()},
            }

    def finished(self, report: pytest.TestReport, record: ItemRecord) -> None:
        """An item's teardown report: queue its row (not an attempt that will be retried: its record is final once
        its last report arrived), and write the queue when it is due."""
        if self.run_id is None or not record.finished:
            return
        nodeid = record.nodeid
        status = _STATUS[record.status]
        carried = getattr(report, CARRIED_ATTR, None)
        if carried:
            self.carried += 1
        if status == "failed":
            self._failed_items = True
        error = record.reason or (record.errors[-1] if record.errors else None)
        now = time.monotonic()
        if not self._done:
            self._oldest = now
        self._done.append(
            (
                nodeid,
                status,
                getattr(report, FINGERPRINT_ATTR, None) or self.fingerprints.get(nodeid),
                record.reruns + 1,
                record.start or None,
                record.stop or None,
                error or None,
                None,
                bool(carried),
            )
        )
        if now - self._oldest >= COMMIT_LATENCY / 2:
            with self._lock:
                self._write_locked()
        if self._failure is not None and not self._failure_told:
            self._tell_failure()

    def _take_rows(self) -> list[TaskRow]:
        """The rows queued since the last call."""
        popleft = self._done.popleft
        return [popleft() for _ in range(len(self._done))]

    def _write_locked(self) -> None:
        """Buffer the queued rows and commit them (the lock held)."""
        assert self.store is not None and self.run_id is not None
        if self._done:
            self.store.record_rows(self.run_id, self._take_rows())
            self.store.flush(self.run_id)

    def _commit_loop(self) -> None:
        # the main thread writes the queue at a teardown once its oldest row has waited half the latency; this
        # thread writes it once that row has waited the whole latency, which happens only while an item runs long.
        # So the two never take turns at SQLite's steps in a session of short items (each turn is a switch of
        # threads). With nothing queued it waits a full period: a row queued meanwhile is due later than that.
        while not self._stop.wait(
            max(0.0, self._oldest + COMMIT_LATENCY - time.monotonic()) if self._done else COMMIT_LATENCY
        ):
            if self._done and time.monotonic() - self._oldest >= COMMIT_LATENCY:
                with self._lock:
                    self._write_locked()

    def _on_failure(self, message: str) -> None:
        self._failure = message  # told from the main thread (this may run in the committer thread)

    def _tell_failure(self) -> None:
        self._failure_told = True
        reporter = self.config.pluginmanager.get_plugin("terminalreporter")
        if reporter is not None:
            reporter.ensure_newline()
            reporter.write_line(f"orchestrate: {self._failure}; the session goes on without state", yellow=True)

    def _stop_committer(self) -> None:
        self._stop.set()
        if self._committer is not None:
            self._committer.join()
            self._committer = None

    @pytest.hookimpl(tryfirst=True)
    def pytest_sessionfinish(self, session: pytest.Session, exitstatus: int) -> None:
        self._stop_committer()
        store, run_id = self.store, self.run_id
        if store is None or run_id is None:
            return
        with self._lock:
            store.record_rows(run_id, self._take_rows())
            status = _finish_status(exitstatus, self._failed_items or bool(session.testsfailed))
            store.finish_run(run_id, status, {"exitstatus": int(exitstatus), "carried_over": self.carried})
        if self._failure is not None and not self._failure_told:
            self._tell_failure()

    def pytest_orchestrate_summary(self, config: pytest.Config, summary: dict[str, Any], lines: list[str]) -> None:
        if self.carried and self.resumed_from is not None:
            lines.append(f"{self.carried} carried over from run {self.resumed_from} (passed there, not run again)")
        if self._failure is not None:
            lines.append(f"state not recorded: {self._failure}")

    def _close(self) -> None:
        if self.store is not None:
            if self.run_id is not None and self._done:  # the session did not finish: keep what did
                self.store.record_rows(self.run_id, self._take_rows())
            self.store.close()

    def pytest_unconfigure(self, config: pytest.Config) -> None:
        self._stop_committer()
        try:
            self._close()
        except Exception:  # pragma: no cover - a store that fails on close must not fail the session
            pass
        self.fingerprints = {}  # let go before pytest's last garbage collections
        self.stored = {}


def _worker_state(config: pytest.Config) -> SessionState | None:
    info = getattr(config, "workerinput", {}).get(RESUME_KEY)
    if not isinstance(info, dict):
        return None
    stored = {str(n): StoredItem(str(s), f) for n, (s, f) in dict(info.get("tasks") or {}).items()}
    return SessionState(config, None, resumed_from=info.get("run"), stored=stored)


def open_state(config: pytest.Config, *, runs_nothing: bool = False) -> SessionState | None:
    """The session's state, registered as a plugin; ``None`` when it is off, when the session runs nothing
    (``runs_nothing``: ``--orchestrate-graph``; ``--collect-only``), or on a worker whose controller does not record.
    Raises ``pytest.UsageError`` when ``--orchestrate-resume`` cannot be honoured."""
    resume: bool | str | None = config.getoption("orchestrate_resume", None)
    if config.getoption("orchestrate_no_state", False):
        if resume:
            raise pytest.UsageError("--orchestrate-resume needs state: drop --orchestrate-no-state")
        return None
    if runs_nothing or config.getoption("collectonly", False):
        return None
    if hasattr(config, "workerinput"):
        state = _worker_state(config)
    else:
        state = _recorder_state(config, resume)
    if state is not None:
        config.pluginmanager.register(state, STATE_PLUGIN_NAME)
        if state.resumed_from is not None and state.store is not None:
            config.pluginmanager.register(CarriedWord(), "orchestrate-carried-word")
    return state


def _recorder_state(config: pytest.Config, resume: bool | str | None) -> SessionState:
    from pytest_orchestrator.state.store import StateStore

    name = session_name(config)
    try:
        store = StateStore(state_path(config))
        store.connect()
    except (StateError, OSError) as exc:
        text = exc.message if isinstance(exc, StateError) else str(exc)
        if resume:
            raise pytest.UsageError(f"--orchestrate-resume: {text}") from None
        return SessionState(config, None, notices=[f"orchestrate: state is off for this session: {text}"])
    if not resume:
        return SessionState(config, store)
    try:
        run_id, message = store.resumable(name, resume)
        stored = stored_items(store, run_id) if run_id is not None else {}
    except StateError as exc:
        store.close()
        hint = ""
        if isinstance(resume, str) and _looks_like_path(resume):
            hint = f" ({resume!r} looks like a path: write --orchestrate-resume=RUN_ID, or put the paths first)"
        raise pytest.UsageError(f"--orchestrate-resume: {exc.message}{hint}") from None
    return SessionState(config, store, resumed_from=run_id, stored=stored, notices=[f"orchestrate: {message}"])
