"""Helpers shared by the tests that watch real processes through Linux ``/proc`` (independently of the package)."""

from __future__ import annotations

import os
from pathlib import Path
import signal
import time
import uuid


#: process states of a process that has exited (zombie, dead)
_GONE = (b"Z", b"X", b"x")


def _stat_fields(data: bytes) -> list[bytes]:
    """The fields of a ``/proc/<pid>/stat`` line after the command name: state, ppid, pgrp, ..."""
    return data[data.rfind(b")") + 1 :].split()


def live_members(pgid: int, wait: float = 0.0) -> list[int]:
    """PIDs of the non-zombie processes of group ``pgid``, read from /proc, after waiting up to ``wait`` s for none."""
    deadline = time.monotonic() + wait
    while True:
        found = []
        for name in os.listdir("/proc"):
            if not name.isdigit():
                continue
            try:
                with open(f"/proc/{name}/stat", "rb") as fh:
                    data = fh.read()
            except OSError:
                continue
            fields = _stat_fields(data)
            if int(fields[2]) == pgid and fields[0] not in _GONE:
                found.append(int(name))
        if not found or time.monotonic() >= deadline:
            return found
        time.sleep(0.05)


def pid_alive(pid: int) -> bool:
    """Whether process ``pid`` exists and is not a zombie."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as fh:
            data = fh.read()
    except OSError:
        return False
    return _stat_fields(data)[0] not in _GONE


def wait_for_file(path: Path, timeout: float = 10.0) -> str:
    """The stripped text of ``path`` once it exists and is not blank; fails the test after ``timeout`` s."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if path.exists() and path.read_text().strip():
            return path.read_text().strip()
        time.sleep(0.01)
    raise AssertionError(f"{path} did not appear")


# -- the process table, by marker ------------------------------------------------------------------------------


def new_marker(prefix: str = "po-proc-test") -> str:
    """A unique string to put in the command line (an argv element) of every process a test starts."""
    return f"{prefix}-{uuid.uuid4().hex}"


def _cmdline(pid: str) -> bytes:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as fh:
            return fh.read()
    except OSError:
        return b""


def survivors(marker: str, wait: float = 0.0) -> list[int]:
    """PIDs of live processes (not this one) whose command line contains ``marker``, after waiting up to ``wait``
    seconds for there to be none. Zombies have an empty command line in /proc, so they never count."""
    needle = marker.encode()
    me = os.getpid()
    deadline = time.monotonic() + wait
    while True:
        found = [
            int(name)
            for name in os.listdir("/proc")
            if name.isdigit() and int(name) != me and needle in _cmdline(name) and pid_alive(int(name))
        ]
        if not found or time.monotonic() >= deadline:
            return found
        time.sleep(0.05)


def kill_survivors(marker: str) -> list[int]:
    """SIGKILL every survivor carrying ``marker`` (test cleanup) and return their PIDs."""
    found = survivors(marker)
    for pid in found:
        try:
            os.kill(pid, signal.SIGKILL)
        except OSError:
            pass
    return found


def zombie_children() -> list[int]:
    """PIDs of this process's children that have exited and were not reaped."""
    me = os.getpid()
    found = []
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            with open(f"/proc/{name}/stat", "rb") as fh:
                fields = _stat_fields(fh.read())
        except OSError:
            continue
        if fields[0] == b"Z" and int(fields[1]) == me:
            found.append(int(name))
    return found


def _environ(pid: str) -> bytes:
    try:
        with open(f"/proc/{pid}/environ", "rb") as fh:
            return fh.read()
    except OSError:
        return b""


def env_survivors(marker: str, wait: float = 0.0) -> list[int]:
    """PIDs of live processes (not this one) whose command line *or* initial environment contains ``marker``:
    for processes we cannot give an argv element (xdist workers), started with the marker in their environment."""
    needle = marker.encode()
    me = os.getpid()
    deadline = time.monotonic() + wait
    while True:
        found = [
            int(name)
            for name in os.listdir("/proc")
            if name.isdigit()
            and int(name) != me
            and (needle in _cmdline(name) or needle in _environ(name))
            and pid_alive(int(name))
        ]
        if not found or time.monotonic() >= deadline:
            return found
        time.sleep(0.05)


def kill_env_survivors(marker: str) -> list[int]:
    """SIGKILL every :func:`env_survivors` of ``marker`` (test cleanup) and return their PIDs."""
    found = env_survivors(marker)
    for pid in found:
        try:
            os.kill(pid, signal.SIGKILL)
        except OSError:
            pass
    return found
