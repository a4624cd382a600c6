"""The one way anything external is run.

Every subprocess the package starts (scripts, shell commands, pipes, command-string tasks) goes through
:func:`run_process` or :func:`run_process_async`. The module knows nothing of workflows.

Guarantees:

* every child starts in its own session, so it leads a process group (``pgid == pid``) of its own;
* stdin is ``/dev/null`` unless ``input`` is given, so a child that reads stdin sees EOF at once;
* stdout and stderr are read concurrently (one ``selectors`` loop), only the last ``max_output`` bytes of each
  are kept, so memory stays bounded whatever the program writes; the result says how many bytes and lines were
  dropped from the head (:meth:`ProcessResult.describe_truncation`); text is decoded with ``errors="replace"``;
* on timeout, cancellation (``cancel_event`` or a cancelled asyncio task) or Ctrl-C the *whole tree* gets
  SIGTERM, then SIGKILL once ``grace`` seconds have passed with a member still alive; zombies do not count as
  alive (liveness is read from ``/proc``, because PID 1 does not reap orphans on every host). On Linux the
  tree is the process group plus every descendant, including those that left the group or the session
  (``setsid``, double fork): see :mod:`pytest_orchestrator.execution.reaper` (subreaper, run marker in the
  environment, death signal when the orchestrating process dies). Elsewhere it is the process group only;
* a program that cannot be started does not raise: the result has ``returncode=None`` and an ``error``.

When the program exits by itself, processes that it left running are *not* killed; the run only waits until the
output pipes are closed (bounded by ``timeout``, like everything else). On Linux they are reaped once they exit.

Usage::

    result = run_process(["pytest", "-q", "tests/"], timeout=600)
    if not result.ok:
        print(result.error or result.tail("stderr"))

    result = await run_process_async("make -j4 | tee build.log", shell=True, timeout=60)
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from collections.abc import Sequence
import dataclasses
import os
import selectors
import shlex
import signal
import subprocess
import threading
import time
from typing import Any

from pytest_orchestrator.execution import reaper


__all__ = [
    "DEFAULT_GRACE",
    "DEFAULT_MAX_OUTPUT",
    "CommandResult",
    "ProcessResult",
    "describe_exit",
    "group_alive",
    "kill_process_group",
    "run_process",
    "run_process_async",
]

DEFAULT_MAX_OUTPUT: int = 1_000_000
"""Bytes kept per stream (the tail)."""

DEFAULT_GRACE: float = 2.0
"""Seconds between SIGTERM and SIGKILL when a group has to be killed."""

_SHELL = "/bin/sh"
_READ_CHUNK = 65536
_WRITE_CHUNK = 65536
_WAIT_POLL = 0.05  # how often the wait loop looks at cancel_event / the leader when it has to poll
_LIVENESS_POLL = 0.02  # how often group liveness is checked during the grace period
_KILL_SETTLE = 0.5  # how long to wait for SIGKILLed members to actually die
_DRAIN_AFTER_KILL = 1.0  # how long output is still read after the group was killed
_REAP_TIMEOUT = 1.0  # how long to wait for the killed leader's exit status
_DEAD_STATES = frozenset({"Z", "X", "x"})


@dataclasses.dataclass
class ProcessResult:
    """What happened when one external program was run.

    ``returncode`` is ``None`` when the program never started (see ``error``) or its exit status could not be
    collected; a negative value ``-N`` means it was ended by signal ``N``, as in :mod:`subprocess`.
    ``duration`` is measured on the monotonic clock, ``start_time``/``end_time`` are ``time.time()`` values.
    """

    args: list[str] | str
    returncode: int | None
    stdout: str
    stderr: str
    start_time: float
    end_time: float
    duration: float
    timed_out: bool = False
    cancelled: bool = False
    stdout_truncated: bool = False
    stderr_truncated: bool = False
    error: str | None = None
    pid: int | None = None
    stdout_dropped_bytes: int = 0
    stdout_dropped_lines: int = 0
    stderr_dropped_bytes: int = 0
    stderr_dropped_lines: int = 0

    @property
    def ok(self) -> bool:
        """Exit status 0, and neither timed out, cancelled nor failed to start."""
        return self.returncode == 0 and not self.timed_out and not self.cancelled and self.error is None

    @property
    def truncated(self) -> bool:
        """Whether the head of stdout or stderr was dropped to respect ``max_output``."""
        return self.stdout_truncated or self.stderr_truncated

    def to_dict(self) -> dict[str, Any]:
        """A JSON-serialisable dict of every field, plus ``ok`` and ``truncated``."""
        data = dataclasses.asdict(self)
        data["ok"] = self.ok
        data["truncated"] = self.truncated
        return data

    def tail(self, stream: str = "stderr", lines: int = 20) -> str:
        """The last ``lines`` lines of ``stream`` (``"stdout"`` or ``"stderr"``), joined with newlines."""
        if stream not in ("stdout", "stderr"):
            raise ValueError(f"stream must be 'stdout' or 'stderr', not {stream!r}")
        if lines <= 0:
            return ""
        text: str = getattr(self, stream)
        return "\n".join(text.splitlines()[-lines:])

    def describe_truncation(self, stream: str = "stdout") -> str:
        """What was dropped from the head of ``stream`` and what was kept, in words; ``""`` if nothing was dropped.

        For example ``"(output truncated: first 48.7 MB / 812,345 lines dropped, last 1.0 MB kept)"``. The lines
        are the complete lines dropped: a line cut in two counts as kept.
        """
        if stream not in ("stdout", "stderr"):
            raise ValueError(f"stream must be 'stdout' or 'stderr', not {stream!r}")
        dropped: int = getattr(self, f"{stream}_dropped_bytes")
        if not dropped and not getattr(self, f"{stream}_truncated"):
            return ""
        lines: int = getattr(self, f"{stream}_dropped_lines")
        kept = len(getattr(self, stream).encode("utf-8", errors="replace"))
        noun = "line" if lines == 1 else "lines"
        return f"(output truncated: first {_size(dropped)} / {lines:,} {noun} dropped, last {_size(kept)} kept)"


def _size(count: int) -> str:
    """A byte count for people: exact below 10 kB, one decimal (kB, MB, GB; powers of 1000) above."""
    if count < 10_000:
        return f"{count:,} B"
    for unit, scale in (("kB", 1e3), ("MB", 1e6)):
        if count < scale * 1000:
            return f"{count / scale:.1f} {unit}"
    return f"{count / 1e9:.1f} GB"


@dataclasses.dataclass
class CommandResult:
    """One command that ran (a shell line, a pipeline stage's line, a thin-API command): the one result shape.

    ``returncode`` is ``None`` when the command could not be started (``error`` says why) or was killed before its
    status was known; ``-N`` means it was ended by signal ``N``. ``error`` is ``None`` exactly when it exited 0
    in time; ``success`` is derived from the fields, never stored.
    """

    command: str
    returncode: int | None
    stdout: str = ""
    stderr: str = ""
    error: str | None = None
    execution_time: float = 0.0
    timed_out: bool = False

    @property
    def success(self) -> bool:
        return self.returncode == 0 and self.error is None and not self.timed_out

    @classmethod
    def from_process(cls, command: str, proc: ProcessResult) -> CommandResult:
        """The result of ``command`` from the ``ProcessResult`` of running it."""
        error = proc.error
        if error is None and proc.returncode is not None and proc.returncode != 0:
            error = describe_exit(proc.returncode)
        return cls(
            command=command,
            returncode=proc.returncode,
            stdout=proc.stdout,
            stderr=proc.stderr,
            error=error,
            execution_time=proc.duration,
            timed_out=proc.timed_out,
        )

    def to_dict(self) -> dict[str, Any]:
        """Every field, plus ``success``."""
        data = dataclasses.asdict(self)
        data["success"] = self.success
        return data


def describe_exit(returncode: int) -> str:
    """How a process ended, in words: ``"exited with status N"`` or ``"killed by signal N"`` (negative codes)."""
    return f"killed by signal {-returncode}" if returncode < 0 else f"exited with status {returncode}"


# --------------------------------------------------------------------------------------------------------------
# Process groups


def _parse_stat(data: bytes) -> tuple[str, int] | None:
    """``(state, pgid)`` from the contents of ``/proc/<pid>/stat``; ``None`` if it cannot be parsed.

    The command name (field 2) is in parentheses and may itself contain spaces and parentheses, so the fields
    are counted from the *last* ``)``: state is field 3, pgrp field 5.
    """
    end = data.rfind(b")")
    if end < 0:
        return None
    fields = data[end + 1 :].split()
    if len(fields) < 3:
        return None
    try:
        return fields[0].decode("ascii", "replace"), int(fields[2])
    except ValueError:
        return None


def _read_stat(pid: int | str) -> tuple[str, int] | None:
    """``(state, pgid)`` of a process, or ``None`` if it does not exist (any more)."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as fh:
            data = fh.read()
    except OSError:
        return None
    return _parse_stat(data)


def _have_proc() -> bool:
    return os.path.exists("/proc/self/stat")


def group_alive(pgid: int) -> bool:
    """Whether any process of group ``pgid`` is still alive; zombies (exited, not yet reaped) do not count.

    Reads ``/proc``; where there is no ``/proc`` it falls back to ``os.killpg(pgid, 0)`` (zombies count there).
    """
    if pgid <= 0:
        return False
    if not _have_proc():
        try:
            os.killpg(pgid, 0)
        except ProcessLookupError:
            return False
        except PermissionError:
            return True
        return True
    # Fast path: the leader itself is usually the last one standing.
    leader = _read_stat(pgid)
    if leader is not None and leader[1] == pgid and leader[0] not in _DEAD_STATES:
        return True
    try:
        entries = os.listdir("/proc")
    except OSError:
        return False
    for name in entries:
        if not name.isdigit() or int(name) == pgid:
            continue
        stat = _read_stat(name)
        if stat is not None and stat[1] == pgid and stat[0] not in _DEAD_STATES:
            return True
    return False


def _signal_group(pgid: int, sig: int) -> bool:
    """Send ``sig`` to group ``pgid``; ``False`` if the group no longer exists."""
    try:
        os.killpg(pgid, sig)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _wait_group_dead(pgid: int, timeout: float) -> bool:
    """Poll until no live member is left in ``pgid`` or ``timeout`` passes; ``True`` if the group is dead."""
    deadline = time.monotonic() + max(0.0, timeout)
    while True:
        if not group_alive(pgid):
            return True
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            return False
        time.sleep(min(_LIVENESS_POLL, remaining))


def kill_process_group(pgid: int, *, grace: float = DEFAULT_GRACE) -> None:
    """Kill every process of group ``pgid``: SIGTERM, wait up to ``grace`` seconds for no live (non-zombie)
    member to be left, then SIGKILL.

    Returns as soon as the group is dead, so a group that obeys SIGTERM costs one liveness poll (~20 ms), and
    at most about ``grace + 0.5`` seconds otherwise. A second KeyboardInterrupt during the grace period sends
    SIGKILL at once and is re-raised.
    """
    if pgid <= 1:
        raise ValueError(f"refusing to kill process group {pgid}")
    if not _signal_group(pgid, signal.SIGTERM):
        return
    try:
        _wait_group_dead(pgid, grace)
    except KeyboardInterrupt:
        _signal_group(pgid, signal.SIGKILL)
        raise
    # Also when /proc says the group is dead: a member we cannot see there must not survive either. Only
    # zombies can be left, and they keep the pgid from being reused.
    if _signal_group(pgid, signal.SIGKILL):
        _wait_group_dead(pgid, _KILL_SETTLE)


# --------------------------------------------------------------------------------------------------------------
# Running


class _TailBuffer:
    """Keeps the last ``limit`` bytes written to it (trimming in amortised batches), and counts what it was fed."""

    __slots__ = ("_data", "_slack", "limit", "newlines", "total")

    def __init__(self, limit: int) -> None:
        self.limit = max(0, limit)
        self._slack = max(self.limit, _READ_CHUNK)
        self._data = bytearray()
        self.total = 0
        self.newlines = 0

    def feed(self, chunk: bytes) -> None:
        self.total += len(chunk)
        self.newlines += chunk.count(b"\n")
        self._data += chunk
        if len(self._data) > self.limit + self._slack:
            self._trim()

    def _trim(self) -> None:
        excess = len(self._data) - self.limit
        if excess > 0:
            del self._data[:excess]

    @property
    def truncated(self) -> bool:
        return self.total > self.limit

    def result(self) -> tuple[str, int, int]:
        """``(kept text, bytes dropped from the head, complete lines dropped from the head)``."""
        self._trim()
        data = bytes(self._data)
        if self.truncated:
            # Do not start with the orphaned continuation bytes of a UTF-8 sequence that was cut.
            skip = 0
            while skip < min(3, len(data)) and 0x80 <= data[skip] <= 0xBF:
                skip += 1
            data = data[skip:]
        dropped_lines = self.newlines - data.count(b"\n")
        return data.decode("utf-8", errors="replace"), self.total - len(data), dropped_lines


def _prepare(args: Sequence[str] | str, shell: bool) -> tuple[list[str] | None, list[str] | str, str | None]:
    """``(argv to execute, args to record, error)``.

    A list never goes through a shell (``shell`` is ignored for it); a string runs via ``/bin/sh -c`` with
    ``shell=True`` and is split with :func:`shlex.split` otherwise.
    """
    if isinstance(args, str):
        if shell:
            if not args.strip():
                return None, args, "cannot start '': empty command"
            return [_SHELL, "-c", args], args, None
        try:
            argv = shlex.split(args)
        except ValueError as exc:
            return None, args, f"cannot parse command {args!r}: {exc}"
    elif isinstance(args, bytes | bytearray):
        raise TypeError("args must be a string or a sequence of strings, not bytes")
    else:
        argv = [os.fspath(arg) for arg in args]
    if not argv:
        return None, argv, "cannot start '': empty command"
    return argv, argv, None


def _start_error(program: str, exc: BaseException) -> str:
    if isinstance(exc, OSError):
        reason = exc.strerror or str(exc)
        filename = exc.filename
        if filename is not None and os.fsdecode(filename) != program:
            reason = f"{reason}: {os.fsdecode(filename)!r}"
    else:
        reason = str(exc)
    return f"cannot start {program!r}: {reason}"


def _leader_exited(pid: int) -> bool:
    """Whether our child ``pid`` has exited, *without* reaping it (so its pgid cannot be reused meanwhile)."""
    try:
        info = os.waitid(os.P_PID, pid, os.WEXITED | os.WNOHANG | os.WNOWAIT)
    except ChildProcessError:  # somebody else reaped it
        return True
    return info is not None


def _open_pidfd(pid: int) -> int | None:
    pidfd_open = getattr(os, "pidfd_open", None)
    if pidfd_open is None:
        return None
    try:
        fd: int = pidfd_open(pid)
    except OSError:
        return None
    return fd


def _reap(proc: subprocess.Popen[bytes], timeout: float | None) -> int | None:
    try:
        return proc.wait(timeout)
    except subprocess.TimeoutExpired:
        return None


_PIDFD = "pidfd"
_STDIN = "stdin"


class _Run:
    """One started process: the select loop over its pipes, its deadline and its cancellation."""

    def __init__(
        self,
        proc: subprocess.Popen[bytes],
        data: bytes | None,
        max_output: int,
        cancel_event: threading.Event | None,
        marker: str | None = None,
    ) -> None:
        self.proc = proc
        self.pgid = proc.pid
        self.marker = marker
        self.cancel_event = cancel_event
        self.out = _TailBuffer(max_output)
        self.err = _TailBuffer(max_output)
        self.sel = selectors.DefaultSelector()
        self.readers = 0
        self.exited = False
        self.killed = False
        self.pending = memoryview(data) if data else None
        self.pidfd: int | None = None

        assert proc.stdout is not None and proc.stderr is not None
        for pipe, buffer in ((proc.stdout, self.out), (proc.stderr, self.err)):
            self.sel.register(pipe.fileno(), selectors.EVENT_READ, buffer)
            self.readers += 1
        if proc.stdin is not None:
            if self.pending is None:
                self._close_stdin()
            else:
                os.set_blocking(proc.stdin.fileno(), False)
                self.sel.register(proc.stdin.fileno(), selectors.EVENT_WRITE, _STDIN)
        self.pidfd = _open_pidfd(proc.pid)
        if self.pidfd is not None:
            self.sel.register(self.pidfd, selectors.EVENT_READ, _PIDFD)

    # -- the loop ------------------------------------------------------------------------------------------

    def wait(self, deadline: float | None) -> str | None:
        """Run until the leader exited and both pipes are closed. Returns ``"timeout"`` or ``"cancelled"`` if
        the run has to be stopped (the caller kills the group), ``None`` when it finished by itself."""
        while True:
            if not self.exited:
                self.exited = _leader_exited(self.proc.pid)
            if self.exited and self.readers == 0:
                return None
            if self.cancel_event is not None and self.cancel_event.is_set():
                return "cancelled"
            now = time.monotonic()
            if deadline is not None and now >= deadline:
                return "timeout"
            wait: float | None = None
            if self.cancel_event is not None or (not self.exited and self.pidfd is None):
                wait = _WAIT_POLL
            if deadline is not None:
                wait = deadline - now if wait is None else min(wait, deadline - now)
            self._step(wait)

    def drain(self, timeout: float) -> None:
        """Read what is left in the pipes after a kill, for at most ``timeout`` seconds."""
        self._close_stdin()
        deadline = time.monotonic() + timeout
        while self.readers:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                break
            self._step(remaining)

    def _step(self, wait: float | None) -> None:
        for key, _mask in self.sel.select(wait):
            if key.data is _PIDFD:
                self._close_pidfd()
            elif key.data is _STDIN:
                self._write_input()
            else:
                self._read(key)

    def _read(self, key: selectors.SelectorKey) -> None:
        try:
            chunk = os.read(key.fd, _READ_CHUNK)
        except BlockingIOError:
            return
        except OSError:
            chunk = b""
        if chunk:
            key.data.feed(chunk)
        else:
            self.sel.unregister(key.fd)
            self.readers -= 1

    def _write_input(self) -> None:
        assert self.proc.stdin is not None and self.pending is not None
        try:
            written = os.write(self.proc.stdin.fileno(), self.pending[:_WRITE_CHUNK])
        except BlockingIOError:
            return
        except OSError:  # BrokenPipeError: the child does not want (more) input
            self._close_stdin()
            return
        self.pending = self.pending[written:]
        if not self.pending:
            self._close_stdin()

    # -- cleanup -------------------------------------------------------------------------------------------

    def _close_stdin(self) -> None:
        stdin = self.proc.stdin
        if stdin is None or stdin.closed:
            return
        try:
            self.sel.unregister(stdin.fileno())
        except (KeyError, ValueError):
            pass
        try:
            stdin.close()
        except OSError:
            pass
        self.pending = None

    def _close_pidfd(self) -> None:
        if self.pidfd is None:
            return
        try:
            self.sel.unregister(self.pidfd)
        except (KeyError, ValueError):
            pass
        os.close(self.pidfd)
        self.pidfd = None

    def kill(self, grace: float) -> None:
        self.killed = True
        self._close_stdin()
        _kill(self.pgid, self.marker, grace)

    def close(self) -> int | None:
        """Release every descriptor and reap the leader; returns its exit status if it could be collected."""
        self._close_stdin()
        self._close_pidfd()
        self.sel.close()
        for pipe in (self.proc.stdout, self.proc.stderr):
            if pipe is not None:
                pipe.close()
        return _reap(self.proc, None if self.exited else _REAP_TIMEOUT)


def _kill(leader: int, marker: str | None, grace: float) -> None:
    """Kill the tree of a run (Linux, with its marker) or its process group (elsewhere)."""
    if marker is not None:
        reaper.kill_tree(leader, marker=marker, grace=grace)
    else:
        kill_process_group(leader, grace=grace)


def _run_blocking(
    argv: list[str],
    recorded: list[str] | str,
    *,
    timeout: float | None,
    env: Mapping[str, str] | None,
    cwd: str | os.PathLike[str] | None,
    input: str | bytes | None,
    max_output: int,
    grace: float,
    cancel_event: threading.Event | None,
) -> ProcessResult:
    data = input.encode("utf-8") if isinstance(input, str) else input
    marker: str | None = None
    preexec: Any = None
    if reaper.supported():
        reaper.enable_subreaper()
        reaper.reap_orphans()
        marker = reaper.new_marker()
        full_env: dict[str, str] | None = reaper.mark_env(env, marker)
        preexec = reaper.die_with_parent()
    else:
        full_env = None if env is None else {**os.environ, **env}
    start_time = time.time()
    start = time.monotonic()
    try:
        proc = subprocess.Popen(
            argv,
            stdin=subprocess.DEVNULL if data is None else subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=full_env,
            cwd=cwd,
            start_new_session=True,
            # one prctl call and a getppid check, no lock taken: see the reaper module on why this is safe
            preexec_fn=preexec,  # noqa: PLW1509
            close_fds=True,
            bufsize=0,
        )
    except (OSError, ValueError, subprocess.SubprocessError) as exc:
        return ProcessResult(
            args=recorded,
            returncode=None,
            stdout="",
            stderr="",
            start_time=start_time,
            end_time=time.time(),
            duration=time.monotonic() - start,
            error=_start_error(argv[0], exc),
        )

    try:
        run = _Run(proc, data, max_output, cancel_event, marker)
    except BaseException:
        _kill(proc.pid, marker, grace)
        proc.wait()
        raise
    returncode: int | None = None
    stop: str | None = None
    try:
        stop = run.wait(None if timeout is None else start + timeout)
        if stop is not None:
            run.kill(grace)
            run.drain(_DRAIN_AFTER_KILL)
        elif marker is not None:
            reaper.track_leftovers(marker, proc.pid)
    except BaseException:  # KeyboardInterrupt (or a bug): never leave the tree behind
        if not run.killed:
            run.kill(grace)
        run.close()
        raise
    returncode = run.close()
    stdout, stdout_dropped_bytes, stdout_dropped_lines = run.out.result()
    stderr, stderr_dropped_bytes, stderr_dropped_lines = run.err.result()

    error = None
    if stop == "timeout":
        error = f"timed out after {timeout:g} s"
    elif stop == "cancelled":
        error = "cancelled"
    return ProcessResult(
        args=recorded,
        returncode=returncode,
        stdout=stdout,
        stderr=stderr,
        start_time=start_time,
        end_time=time.time(),
        duration=time.monotonic() - start,
        timed_out=stop == "timeout",
        cancelled=stop == "cancelled",
        stdout_truncated=run.out.truncated,
        stderr_truncated=run.err.truncated,
        error=error,
        pid=proc.pid,
        stdout_dropped_bytes=stdout_dropped_bytes,
        stdout_dropped_lines=stdout_dropped_lines,
        stderr_dropped_bytes=stderr_dropped_bytes,
        stderr_dropped_lines=stderr_dropped_lines,
    )


def run_process(
    args: Sequence[str] | str,
    *,
    shell: bool = False,
    timeout: float | None = None,
    env: Mapping[str, str] | None = None,
    cwd: str | os.PathLike[str] | None = None,
    input: str | bytes | None = None,
    max_output: int = DEFAULT_MAX_OUTPUT,
    grace: float = DEFAULT_GRACE,
    cancel_event: threading.Event | None = None,
) -> ProcessResult:
    """Run a program to completion and return what happened; blocks the calling thread.

    ``args`` as a list is executed directly (never through a shell, whatever ``shell`` says); a string runs
    via ``/bin/sh -c`` with ``shell=True``, and is split with :func:`shlex.split` otherwise. ``env`` is merged
    over ``os.environ`` (``None`` inherits it unchanged). ``input`` (``str`` is UTF-8 encoded) is fed to stdin,
    which is ``/dev/null`` otherwise.

    ``timeout`` (seconds, covering the program and its output pipes) or ``cancel_event`` being set kills the
    whole tree (Linux: :func:`~pytest_orchestrator.execution.reaper.kill_tree`; elsewhere the process group,
    :func:`kill_process_group`) and returns a result with ``timed_out`` / ``cancelled`` set. A KeyboardInterrupt
    while waiting kills the tree, then propagates. On Linux the program also gets ``PYTEST_ORCHESTRATOR_RUN`` in
    its environment (the run marker) and is killed if this process dies. A program that
    cannot be started gives ``returncode=None`` and ``error="cannot start 'prog': ..."``; it does not raise.
    """
    argv, recorded, error = _prepare(args, shell)
    if argv is None:
        now = time.time()
        return ProcessResult(recorded, None, "", "", now, now, 0.0, error=error)
    return _run_blocking(
        argv,
        recorded,
        timeout=timeout,
        env=env,
        cwd=cwd,
        input=input,
        max_output=max_output,
        grace=grace,
        cancel_event=cancel_event,
    )


def _resolve(future: asyncio.Future[ProcessResult], result: ProcessResult | None, exc: BaseException | None) -> None:
    if future.done():
        return
    if exc is not None:
        future.set_exception(exc)
    else:
        assert result is not None
        future.set_result(result)


async def run_process_async(
    args: Sequence[str] | str,
    *,
    shell: bool = False,
    timeout: float | None = None,
    env: Mapping[str, str] | None = None,
    cwd: str | os.PathLike[str] | None = None,
    input: str | bytes | None = None,
    max_output: int = DEFAULT_MAX_OUTPUT,
    grace: float = DEFAULT_GRACE,
) -> ProcessResult:
    """:func:`run_process` without blocking the event loop.

    Each call is supervised by a dedicated daemon thread (not the loop's default executor, so many processes
    can run at once). If the awaiting task is cancelled, the process tree is killed (SIGTERM, ``grace``,
    SIGKILL), the kill is awaited, and :class:`asyncio.CancelledError` is re-raised.
    """
    loop = asyncio.get_running_loop()
    future: asyncio.Future[ProcessResult] = loop.create_future()
    cancel = threading.Event()

    def post(result: ProcessResult | None, exc: BaseException | None) -> None:
        try:
            loop.call_soon_threadsafe(_resolve, future, result, exc)
        except RuntimeError:  # the loop is closed: nobody is waiting any more
            pass

    def supervise() -> None:
        try:
            result = run_process(
                args,
                shell=shell,
                timeout=timeout,
                env=env,
                cwd=cwd,
                input=input,
                max_output=max_output,
                grace=grace,
                cancel_event=cancel,
            )
        except BaseException as exc:
            post(None, exc)
        else:
            post(result, None)

    thread = threading.Thread(target=supervise, name="pytest-orchestrator-process", daemon=True)
    thread.start()
    try:
        return await asyncio.shield(future)
    except asyncio.CancelledError:
        cancel.set()
        # Wait for the group to be killed before letting the cancellation through (bounded by grace + ~1.5 s).
        while not future.done():
            try:
                await asyncio.shield(future)
            except asyncio.CancelledError:
                continue
            except BaseException:
                break
        if not future.cancelled():
            future.exception()  # mark it retrieved
        raise
