"""Stopping cleanly: SIGTERM and SIGINT during ``pytest --orchestrate``, and workers that die (:class:`Shutdown`).

Registered in every ``--orchestrate`` process (serial run, xdist controller, xdist worker):

- **A run marker.** The process appends a marker of its own to ``PYTEST_ORCHESTRATOR_RUN`` in ``os.environ``
  (:mod:`pytest_orchestrator.execution.reaper`), so every process it starts from then on, directly or not (xdist
  workers, scripts, what Python tests start, daemons that left the tree), carries it. An xdist worker's marker
  is chosen by the controller and handed over in ``workerinput``.
- **SIGTERM is an interrupt.** It raises :class:`Terminated` (a ``KeyboardInterrupt``) in the main thread, so
  SIGTERM and SIGINT take pytest's own interrupt path: a running script's process tree is killed by
  ``run_process``, fixtures are torn down, the JUnit XML and the reports are written, temporary folders are
  removed. A second signal while stopping is ignored (the stop is bounded: every kill has a grace period).
- **Nothing left behind.** After an interrupt, once pytest has finished the session, every process carrying the
  marker is killed (:func:`~pytest_orchestrator.execution.reaper.kill_marked`); on an xdist controller this
  happens as soon as the interrupt arrives, so busy workers and their scripts stop at once. A worker that dies
  (``kill -9``, a crash) takes its scripts with it: the controller kills what carries that worker's marker.
- **The conventional exit status.** A session interrupted by a signal exits with ``128 + signal``: 130 for SIGINT
  (Ctrl-C), 143 for SIGTERM. (SIGINT is noted on its way to Python's own handler; an interrupt that is no signal,
  such as xdist's "stopping after N failures", keeps pytest's status.)

Off Linux there is no marker sweep (:func:`~pytest_orchestrator.execution.reaper.supported`): a script's process
group is still killed on interrupt, and the exit statuses are the same.
"""

from __future__ import annotations

from collections.abc import Generator
import signal
import threading
from types import FrameType
from typing import TYPE_CHECKING
from typing import Any

import pytest

from pytest_orchestrator.execution import reaper


if TYPE_CHECKING:
    from pytest_orchestrator.plugin.compat import WorkerNode

__all__ = ["SHUTDOWN_PLUGIN_NAME", "WORKER_MARKER_KEY", "Shutdown", "Terminated", "register"]

SHUTDOWN_PLUGIN_NAME = "orchestrate-shutdown"
#: the ``workerinput`` key of an xdist worker's run marker
WORKER_MARKER_KEY = "orchestrate_run_marker"

_CONTROLLER_GRACE = 1.0  # SIGTERM to SIGKILL for what runs, when the controller is interrupted
_SWEEP_GRACE = 1.0  # the same for what is left once the session is over


class Terminated(KeyboardInterrupt):
    """SIGTERM arrived: stop as for Ctrl-C, and exit with 143."""


class Shutdown:
    """The interrupt, the exit status and the process sweep of one ``--orchestrate`` process."""

    def __init__(self, config: pytest.Config) -> None:
        self.config = config
        workerinput: dict[str, Any] | None = getattr(config, "workerinput", None)
        given = workerinput.get(WORKER_MARKER_KEY) if workerinput is not None else None
        self.is_worker = workerinput is not None
        #: this process's run marker (a worker's comes from its controller)
        self.marker: str = given if isinstance(given, str) and given else reaper.new_marker()
        #: the signal (SIGTERM, SIGINT) that arrived first, if any
        self.signal: int | None = None
        self.interrupted = False
        #: the markers of the xdist workers this controller configured, by worker id
        self.worker_markers: dict[str, str] = {}
        self._previous_env = reaper.push_marker(self.marker)
        self._previous: dict[int, Any] = {}
        if threading.current_thread() is threading.main_thread():
            for signum, handler in ((signal.SIGTERM, self._on_sigterm), (signal.SIGINT, self._on_sigint)):
                try:
                    self._previous[signum] = signal.signal(signum, handler)
                except (ValueError, OSError):  # not the main interpreter, or no such signal here
                    pass

    def _on_sigterm(self, signum: int, frame: FrameType | None) -> None:
        if self.signal is not None:
            return  # already stopping
        self.signal = signum
        raise Terminated("SIGTERM")

    def _on_sigint(self, signum: int, frame: FrameType | None) -> None:
        # noted (an interrupt by a signal, not xdist's "stopping after N failures"), then Python's own handling
        if self.signal is None:
            self.signal = signum
        previous = self._previous.get(signum)
        if callable(previous):
            previous(signum, frame)
        elif previous != signal.SIG_IGN:
            raise KeyboardInterrupt

    # -- xdist (controller) -----------------------------------------------------------------------------------
    @pytest.hookimpl(optionalhook=True)
    def pytest_configure_node(self, node: WorkerNode) -> None:
        marker = reaper.new_marker()
        node.workerinput[WORKER_MARKER_KEY] = marker
        self.worker_markers[str(node.gateway.id)] = marker

    @pytest.hookimpl(optionalhook=True)
    def pytest_testnodedown(self, node: WorkerNode, error: object) -> None:
        marker = self.worker_markers.get(str(node.gateway.id))
        if marker is not None and error is not None:
            # the worker died: what it started dies with it (its scripts got SIGKILL from the kernel already)
            reaper.kill_marked(marker, grace=_SWEEP_GRACE)

    # -- the interrupt --------------------------------------------------------------------------------------------
    def pytest_keyboard_interrupt(self, excinfo: pytest.ExceptionInfo[BaseException]) -> None:
        if not isinstance(excinfo.value, KeyboardInterrupt) or self.signal is None:
            return  # pytest.exit(), or xdist's "stopping after N failures": not a signal
        self.interrupted = True
        if not self.is_worker and self.worker_markers:
            # an xdist controller: the workers and their scripts stop now, not after xdist's exit timeout
            reaper.kill_marked(self.marker, grace=_CONTROLLER_GRACE)

    @pytest.hookimpl(wrapper=True, tryfirst=True)
    def pytest_sessionfinish(self, session: pytest.Session) -> Generator[None, object, object]:
        try:
            return (yield)
        finally:
            if self.interrupted:
                # after fixtures were torn down and the reports written: whatever the session started goes
                reaper.kill_marked(self.marker, grace=_SWEEP_GRACE)
                session.exitstatus = 128 + (self.signal or signal.SIGINT)

    def pytest_unconfigure(self, config: pytest.Config) -> None:
        for signum, handler in self._previous.items():
            signal.signal(signum, handler)
        self._previous.clear()
        reaper.restore_markers(self._previous_env)


def register(config: pytest.Config) -> None:
    """Register :class:`Shutdown` for this process (once)."""
    if not config.pluginmanager.has_plugin(SHUTDOWN_PLUGIN_NAME):
        config.pluginmanager.register(Shutdown(config), SHUTDOWN_PLUGIN_NAME)
