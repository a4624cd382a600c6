"""Nothing we start outlives its run: the subreaper, the run marker, the kill of a whole process tree, the reaping of
orphans. Used by :mod:`pytest_orchestrator.execution.process`; knows nothing of workflows.

A process group is not enough to find everything a program started: a descendant that calls ``setsid`` (or
``setpgid``), or a daemon that double-forks, leaves the group, and once its parent exits it is re-parented away
from us. On Linux three things close that hole:

* **Subreaper.** The first time a process is started, the orchestrating process becomes a *child subreaper*
  (``prctl(PR_SET_CHILD_SUBREAPER, 1)``, :func:`enable_subreaper`): orphaned descendants are re-parented to it
  instead of to PID 1, so every process we started, directly or not, stays in our process tree.
* **Run marker.** Every started program gets ``PYTEST_ORCHESTRATOR_RUN`` in its environment, holding a marker unique
  to that run (appended to the value inherited from an orchestrator above us, so the outer one can still find
  it). Descendants inherit their environment, so the marker says which run an escaped process belongs to.
  :func:`kill_tree` kills the run's process group, every descendant of its leader, and every process in our
  tree that carries the marker or lives in the session the leader created: SIGTERM, then SIGKILL to whatever is
  still alive after the grace period. Processes that appear meanwhile (a fork during the kill) are found by
  the next scan. Killed orphans re-parented to us, and leftovers of runs that ended by themselves, are reaped
  (:func:`reap_orphans`) so they do not pile up as zombies; no other child of ours is ever reaped, so the exit
  status of a child started by other code is never stolen.
* **Death with the parent.** The started program asks the kernel for SIGKILL when its parent dies
  (``prctl(PR_SET_PDEATHSIG, SIGKILL)``, :func:`die_with_parent`), so a worker that is ``kill -9``-ed does not
  leave its script running. This runs as ``preexec_fn`` between ``fork`` and ``exec``: the module already
  starts every child in a new session, the callable only makes one pre-resolved ``prctl`` call and a
  ``getppid`` check (no import, no lock), and glibc's ``fork`` keeps ``malloc`` usable in the child. It covers
  the program itself, not its own children (the kernel clears the setting on ``fork``); their processes carry
  the run marker, which :func:`kill_marked` uses to clean up after a dead orchestrator. The kernel ties the
  signal to the *thread* that started the child: a thread that starts a program must outlive it, which
  ``run_process`` does (it returns only once the program has exited or was killed).

A descendant that both leaves the session and clears its environment is found only while it is still below the
leader. On other platforms there is no subreaper, no death signal and no ``/proc``: only the process group is
killed (SIGTERM, grace, SIGKILL), as :func:`~pytest_orchestrator.execution.process.kill_process_group` does.
"""

from __future__ import annotations

from collections.abc import Callable
from collections.abc import Iterable
from collections.abc import Mapping
import os
import signal
import sys
import threading
import time
from typing import TYPE_CHECKING
from typing import Any


if TYPE_CHECKING:
    import psutil
else:

    class _Psutil:
        """psutil, imported on first use: every ``--orchestrate`` session and xdist worker imports this module for
        its shutdown path (psutil costs ~5 ms), and most never kill anything. A plain ``import`` per access: the
        import system's locks make a first use from two threads at once safe (``importlib.util.LazyLoader`` is
        not, before Python 3.12)."""

        def __getattr__(self, name: str) -> Any:
            import psutil

            return getattr(psutil, name)

    psutil = _Psutil()


__all__ = [
    "MARKER_ENV",
    "descendants",
    "die_with_parent",
    "enable_subreaper",
    "is_subreaper",
    "kill_marked",
    "kill_started_since",
    "kill_tree",
    "mark_env",
    "new_marker",
    "push_marker",
    "reap_orphans",
    "restore_markers",
    "supported",
    "track_leftovers",
]

MARKER_ENV = "PYTEST_ORCHESTRATOR_RUN"
"""Environment variable naming the runs a process belongs to (space-separated markers, outermost first)."""

_PR_SET_PDEATHSIG = 1
_PR_SET_CHILD_SUBREAPER = 36
_PR_GET_CHILD_SUBREAPER = 37

_LIVENESS_POLL = 0.02  # how often liveness is checked while waiting for the tree to die
_RESCAN_EVERY = 0.1  # how often the tree is scanned again for processes that appeared meanwhile
_KILL_SETTLE = 0.5  # how long to wait for SIGKILLed processes to actually die

_lock = threading.Lock()
_subreaper = False  # whether this process made itself a subreaper (reset in a forked child: it is not inherited)
_adopted: dict[int, psutil.Process] = {}  # processes of our runs that may come back to us as zombies


def supported() -> bool:
    """Whether this platform has what the module needs (Linux: ``prctl`` and ``/proc``)."""
    return sys.platform.startswith("linux") and _prctl_function() is not None


_PRCTL: Callable[..., int] | None = None
_PRCTL_LOOKED_UP = False


def _prctl_function() -> Callable[..., int] | None:
    global _PRCTL, _PRCTL_LOOKED_UP
    if not _PRCTL_LOOKED_UP:
        _PRCTL_LOOKED_UP = True
        if sys.platform.startswith("linux"):
            import ctypes  # here: most sessions never ask (ctypes costs ~1.5 ms to import)

            try:
                function = ctypes.CDLL(None, use_errno=True).prctl
            except (OSError, AttributeError):
                function = None
            if function is not None:
                function.argtypes = [ctypes.c_int, ctypes.c_ulong, ctypes.c_ulong, ctypes.c_ulong, ctypes.c_ulong]
                function.restype = ctypes.c_int
                _PRCTL = function
    return _PRCTL


def _after_fork_in_child() -> None:
    global _subreaper, _lock
    _subreaper = False  # the kernel does not pass the setting on to a child
    _adopted.clear()  # our runs' processes are not the child's children
    _lock = threading.Lock()  # another thread may have held it at the fork


os.register_at_fork(after_in_child=_after_fork_in_child)


# --------------------------------------------------------------------------------------------------------------
# The subreaper and the death signal


def is_subreaper() -> bool:
    """Whether this process is a child subreaper now (asks the kernel; ``False`` off Linux)."""
    prctl = _prctl_function()
    if prctl is None:
        return False
    import ctypes

    value = ctypes.c_int(0)
    if prctl(_PR_GET_CHILD_SUBREAPER, ctypes.addressof(value), 0, 0, 0) != 0:
        return False
    return value.value != 0


def enable_subreaper() -> bool:
    """Make this process a child subreaper (once; later calls are free). Returns whether it is one."""
    global _subreaper
    if _subreaper:
        return True
    with _lock:
        if not _subreaper:
            prctl = _prctl_function()
            _subreaper = prctl is not None and prctl(_PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) == 0
    return _subreaper


def die_with_parent() -> Callable[[], None] | None:
    """A ``preexec_fn`` that makes the child get SIGKILL when this process dies; ``None`` where unsupported."""
    prctl = _prctl_function()
    if prctl is None:
        return None
    parent = os.getpid()
    kill, getppid, getpid, sigkill = os.kill, os.getppid, os.getpid, int(signal.SIGKILL)

    def preexec() -> None:
        prctl(_PR_SET_PDEATHSIG, sigkill, 0, 0, 0)
        if getppid() != parent:  # the parent died between fork and prctl: the death signal will never come
            kill(getpid(), sigkill)

    return preexec


# --------------------------------------------------------------------------------------------------------------
# The run marker


def new_marker() -> str:
    """A marker unique to one run (no spaces)."""
    return f"po{os.getpid()}-{os.urandom(8).hex()}"


def mark_env(env: Mapping[str, str] | None, marker: str) -> dict[str, str]:
    """``env`` merged over ``os.environ``, with ``marker`` appended to :data:`MARKER_ENV`."""
    full = {**os.environ, **(env or {})}
    inherited = full.get(MARKER_ENV, "").split()
    full[MARKER_ENV] = " ".join([*inherited, marker])
    return full


def push_marker(marker: str) -> str | None:
    """Append ``marker`` to :data:`MARKER_ENV` in ``os.environ`` (what this process starts from now on carries it);
    returns the previous value, for :func:`restore_markers`."""
    previous = os.environ.get(MARKER_ENV)
    os.environ[MARKER_ENV] = " ".join([*(previous or "").split(), marker])
    return previous


def restore_markers(previous: str | None) -> None:
    """Put :data:`MARKER_ENV` back as :func:`push_marker` found it."""
    if previous is None:
        os.environ.pop(MARKER_ENV, None)
    else:
        os.environ[MARKER_ENV] = previous


def _carries(pid: int, marker: bytes) -> bool:
    """Whether process ``pid`` has ``marker`` among the markers of its environment (``False`` if unreadable)."""
    try:
        with open(f"/proc/{pid}/environ", "rb") as fh:
            data = fh.read()
    except OSError:
        return False
    prefix = MARKER_ENV.encode() + b"="
    for entry in data.split(b"\0"):
        if entry.startswith(prefix):
            return marker in entry[len(prefix) :].split()
    return False


def _session(pid: int) -> int | None:
    try:
        return os.getsid(pid)
    except OSError:
        return None


def _group(pid: int) -> int | None:
    try:
        return os.getpgid(pid)
    except OSError:
        return None


# --------------------------------------------------------------------------------------------------------------
# Killing a tree


def _gone() -> tuple[str, str]:
    """The statuses of a process that has ended."""
    return (psutil.STATUS_ZOMBIE, psutil.STATUS_DEAD)


def _parent(proc: psutil.Process) -> int | None:
    try:
        return int(proc.ppid())
    except psutil.Error:
        return None


def _alive(proc: psutil.Process) -> bool:
    try:
        return bool(proc.is_running()) and proc.status() not in _gone()
    except psutil.Error:
        return False


def _signal(proc: psutil.Process, sig: int) -> None:
    try:
        proc.send_signal(sig)  # checks that the pid was not reused
    except psutil.Error:
        pass


def _signal_group(pgid: int, sig: int) -> None:
    try:
        os.killpg(pgid, sig)
    except OSError:
        pass


class _Sweep:
    """Finds the processes of one run, signals them, and remembers them to wait for their death."""

    def __init__(self, leader: int | None, marker: str | None, everywhere: bool) -> None:
        self.leader = leader
        self.marker = marker.encode() if marker else None
        self.everywhere = everywhere
        self.session = _session(leader) if leader is not None else None
        self.me = os.getpid()
        self.my_session = _session(self.me)
        self.found: dict[int, psutil.Process] = {}
        self.own: set[int] = set()  # found while already our children: maybe another caller's Popen, never reaped
        self.sig: int = signal.SIGTERM

    def _candidates(self) -> Iterable[psutil.Process]:
        try:
            if self.everywhere or not _subreaper:
                return list(psutil.process_iter())
            return list(psutil.Process(self.me).children(recursive=True))
        except psutil.Error:
            return []

    def _leader_tree(self) -> list[psutil.Process]:
        if self.leader is None:
            return []
        try:
            root = psutil.Process(self.leader)
            return [root, *root.children(recursive=True)]
        except psutil.Error:
            return []

    def _belongs(self, proc: psutil.Process) -> bool:
        if self.leader is not None and _group(proc.pid) == self.leader:
            return True
        if self.session is not None and self.session != self.my_session and _session(proc.pid) == self.session:
            return True
        return self.marker is not None and _carries(proc.pid, self.marker)

    def scan(self, send: bool = True) -> None:
        """Find the run's processes not seen yet, and send them the current signal (unless ``send`` is false)."""
        new = [p for p in self._leader_tree() if p.pid not in self.found]
        new += [p for p in self._candidates() if p.pid not in self.found and self._belongs(p)]
        for proc in new:
            if proc.pid == self.me or proc.pid in self.found:
                continue
            self.found[proc.pid] = proc
            if self.leader is None and _parent(proc) == self.me:
                self.own.add(proc.pid)
            if send:
                _signal(proc, self.sig)

    def signal_all(self, sig: int) -> None:
        """Send ``sig`` to the group and to every process found, then to any found by a new scan.

        SIGTERM is sent once per process: the group's members get it through the group."""
        self.sig = sig
        if self.leader is not None:
            _signal_group(self.leader, sig)
        for proc in self.found.values():
            if sig == signal.SIGKILL or self.leader is None or _group(proc.pid) != self.leader:
                _signal(proc, sig)
        self.scan()

    def alive(self) -> bool:
        return any(_alive(p) for p in self.found.values())

    def wait(self, timeout: float) -> bool:
        """Poll (scanning again now and then) until nothing is alive or ``timeout`` passes; ``True`` if all died."""
        deadline = time.monotonic() + max(0.0, timeout)
        next_scan = time.monotonic() + _RESCAN_EVERY
        while True:
            if not self.alive():
                self.scan()
                if not self.alive():
                    return True
            now = time.monotonic()
            if now >= deadline:
                return False
            if now >= next_scan:
                self.scan()
                next_scan = now + _RESCAN_EVERY
            time.sleep(min(_LIVENESS_POLL, deadline - now))

    def kill(self, grace: float) -> list[int]:
        self.scan(send=False)  # before the first signal, while the tree still has its shape
        try:
            self.signal_all(signal.SIGTERM)
            self.wait(grace)
            # Also when everything looks dead: a member we cannot see must not survive either.
            self.signal_all(signal.SIGKILL)
            self.wait(_KILL_SETTLE)
        except KeyboardInterrupt:
            self.signal_all(signal.SIGKILL)
            raise
        finally:
            self._adopt()
            reap_orphans()
        return sorted(self.found)

    def _adopt(self) -> None:
        with _lock:
            for pid, proc in self.found.items():
                if pid != self.leader and pid not in self.own:  # the leader is the caller's child to reap
                    _adopted[pid] = proc


def kill_tree(leader: int, *, marker: str | None = None, grace: float = 2.0) -> list[int]:
    """Kill the run whose program is ``leader`` (a child of ours that leads its own session and group).

    Kills its process group, every descendant of ``leader``, and (Linux) every process in our tree that carries
    ``marker`` in :data:`MARKER_ENV` or belongs to the session ``leader`` created: SIGTERM, then SIGKILL to all of
    them once ``grace`` seconds have passed with one still alive (at once if the group dies at the first signal).
    A KeyboardInterrupt during the grace period sends SIGKILL at once and is re-raised. Killed orphans that were
    re-parented to us are reaped; ``leader`` is not (its ``Popen`` does that). Returns the PIDs signalled
    individually (the group is also signalled as a whole). Linux only (:func:`supported`).
    """
    if leader <= 1:
        raise ValueError(f"refusing to kill process tree {leader}")
    if not supported():
        raise NotImplementedError("killing a process tree needs Linux; kill its process group instead")
    return _Sweep(leader, marker, everywhere=False).kill(grace)


def kill_marked(marker: str, *, grace: float = 2.0) -> list[int]:
    """Kill every process on the machine that carries ``marker`` in :data:`MARKER_ENV`, wherever it is in the
    process table (SIGTERM, ``grace``, SIGKILL); returns their PIDs. For a controller whose worker died: give the
    worker a marker with :func:`mark_env`, and after its death this finds what it left. Processes that are
    already children of this process when found are killed but not reaped (they may be another caller's
    ``Popen``: their owner collects their status); those re-parented to us later are. Linux only (``[]``
    elsewhere)."""
    if not marker or not supported():
        return []
    return _Sweep(None, marker, everywhere=True).kill(grace)


def descendants() -> set[int]:
    """PIDs of this process's descendants now (``set()`` where they cannot be listed).

    On Linux it reads ``/proc/<pid>/task/<tid>/children`` down the tree (cost: the size of our tree, about 20 us for
    a test process without children), else psutil, which scans the whole process table (~2 ms per 100 processes):
    it is taken before every call of a test that has a timeout."""
    try:
        return _proc_descendants(os.getpid())
    except OSError:
        pass
    try:
        return {p.pid for p in psutil.Process(os.getpid()).children(recursive=True)}
    except psutil.Error:
        return set()


def _proc_descendants(root: int) -> set[int]:
    """The descendants of ``root`` from ``/proc``'s per-thread ``children`` files (``OSError`` where there are none).

    A process that exits while it is read is skipped; ``root``'s own files must be readable."""
    found: set[int] = set()
    stack = [root]
    while stack:
        pid = stack.pop()
        try:
            tids = os.listdir(f"/proc/{pid}/task")
            children: list[int] = []
            for tid in tids:
                with open(f"/proc/{pid}/task/{tid}/children", "rb") as fh:
                    children += map(int, fh.read().split())
        except OSError:
            if pid == root:
                raise
            continue
        for child in children:
            if child not in found:
                found.add(child)
                stack.append(child)
    return found


def kill_started_since(before: Iterable[int], *, marker: str | None = None, grace: float = 2.0) -> list[int]:
    """Kill what this process started since ``before`` (a :func:`descendants` snapshot): its descendants that are
    not in ``before``, with their trees, and (Linux) every process carrying ``marker`` (give the environment that
    marker with :func:`mark_env` or ``os.environ`` while the work runs, and processes that escaped the tree are
    found too). SIGTERM, ``grace``, SIGKILL, as :func:`kill_tree`. Processes in ``before`` are never signalled
    unless they carry ``marker``. Our own children are killed but not reaped (their ``Popen`` collects their
    status). Returns the PIDs signalled; ``[]`` off Linux."""
    if not supported():
        return []
    old = set(before)
    sweep = _Sweep(None, marker, everywhere=marker is not None)
    me = os.getpid()
    try:
        current = psutil.Process(me).children(recursive=True)
    except psutil.Error:
        current = []
    for proc in current:
        if proc.pid not in old:
            sweep.found[proc.pid] = proc
            if _parent(proc) == me:
                sweep.own.add(proc.pid)
    if marker is None and not sweep.found:
        return []
    return sweep.kill(grace)


# --------------------------------------------------------------------------------------------------------------
# Reaping


def track_leftovers(marker: str, leader: int) -> None:
    """Remember what a run that ended by itself left running, so that it is reaped once it exits.

    Only descendants of ours carrying ``marker`` count (they exist only if this process is a subreaper and the
    program left something behind); ``leader`` is excluded.
    """
    if not _subreaper:
        return
    needle = marker.encode()
    try:
        children = psutil.Process(os.getpid()).children(recursive=True)
    except psutil.Error:
        return
    leftovers = [p for p in children if p.pid != leader and _carries(p.pid, needle)]
    if leftovers:
        with _lock:
            for proc in leftovers:
                _adopted[proc.pid] = proc


def reap_orphans() -> int:
    """Reap the processes of our runs that were re-parented to us and have exited; returns how many.

    Forgets those that are gone (reaped by their own parent). Cheap: it only looks at processes already known
    to be ours, and never touches any other child of this process.
    """
    me = os.getpid()
    reaped = 0
    with _lock:
        for pid, proc in list(_adopted.items()):
            try:
                if not proc.is_running():  # gone, or its pid reused by another process
                    del _adopted[pid]
                    continue
                if proc.ppid() != me or proc.status() not in _gone():
                    continue
            except psutil.Error:
                del _adopted[pid]
                continue
            try:
                done, _status = os.waitpid(pid, os.WNOHANG)
            except ChildProcessError:
                done = pid
            if done == pid:
                del _adopted[pid]
                reaped += 1
    return reaped
