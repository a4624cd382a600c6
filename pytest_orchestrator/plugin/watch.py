"""``--orchestrate-watch``: after the session, rerun what changes and everything downstream of it, until Ctrl-C.

The first run is the normal session. :class:`Watch` is registered by ``plugin/__init__.py``'s
``pytest_cmdline_main`` wrapper in the process the user started (never in an xdist worker); at the session's end it
keeps the item graph (:func:`~.properties.session_graph`: the session's, or the xdist scheduler's). Once pytest is
done with the session (its summary printed, the session unconfigured), :meth:`Watch.loop` watches the rootdir with
:class:`~pytest_orchestrator.triggers.files.FileTrigger` (watchfiles, else polling) in a thread, and for each burst of
changes:

- :func:`select` maps the changed paths to the test files and script items they hold (a new file that matches
  ``python_files`` or ``orchestrate_scripts`` counts too) and adds every item downstream of those in the graph;
- ``pytest`` runs again in a subprocess with the session's arguments, minus ``--orchestrate-watch`` and the paths
  it named, plus the changed files and the downstream node ids, and ``--orchestrate-deps=ignore``: a dependency that
  was not selected is taken as met, not rerun (xdist's ``-n`` and every other option pass through);
- one line says what changed and what reruns; once the rerun is over, another says how many items it ran (from the
  graph the rerun writes, :class:`RerunRecord`, which also updates the changed files' items); changes that hold no
  test or script are ignored.

Ctrl-C (SIGINT) or SIGTERM ends it: a rerun in progress gets the same signal (killed with its process group if it
has not stopped within :data:`RERUN_GRACE` seconds), whatever the reruns left running is killed by the run marker,
and the exit status is 130 or 143, as for an interrupted session (:mod:`.shutdown`). A watcher that breaks ends the
loop with a line that says why. Dependencies are the first session's (plus those of items the reruns found): a
dependency between files added later is seen after a restart.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from collections.abc import Sequence
import dataclasses
import fnmatch
import os
from pathlib import Path
import queue
import signal
import subprocess
import sys
import tempfile
import threading
from types import FrameType

import pytest

from pytest_orchestrator.execution import reaper
from pytest_orchestrator.plugin.dag import ItemGraph
from pytest_orchestrator.plugin.dag import Node
from pytest_orchestrator.plugin.names import SESSION_PLUGIN_NAME
from pytest_orchestrator.plugin.names import WATCH_RERUN_ENV
from pytest_orchestrator.plugin.properties import session_graph
from pytest_orchestrator.plugin.shutdown import Terminated
from pytest_orchestrator.triggers.files import DEFAULT_IGNORE
from pytest_orchestrator.triggers.files import ChangeSet
from pytest_orchestrator.triggers.files import FileChange
from pytest_orchestrator.triggers.files import FileTrigger


__all__ = [
    "RERUN_ENV",
    "RERUN_GRACE",
    "WATCH_PLUGIN_NAME",
    "RerunRecord",
    "Selection",
    "Watch",
    "refresh",
    "rerun_args",
    "select",
]

WATCH_PLUGIN_NAME = "orchestrate-watch"
#: set in a rerun's environment: a rerun never watches, even when ``addopts`` says ``--orchestrate-watch``
RERUN_ENV = WATCH_RERUN_ENV
#: seconds a rerun has to stop after Ctrl-C before its process group is killed
RERUN_GRACE = 10.0
#: what is never worth a rerun: the defaults, and the caches and environments tools keep under a project
IGNORE = (
    *DEFAULT_IGNORE,
    *(
        f"{prefix}{folder}/*"
        for folder in (".pytest_cache", ".mypy_cache", ".ruff_cache", ".tox", ".nox", ".venv")
        for prefix in ("", "*/")
    ),
)
#: the exit statuses after which there is nothing to watch for: interrupted, internal error, usage error
_STOP = frozenset(
    {128 + signal.SIGINT, 128 + signal.SIGTERM, int(pytest.ExitCode.INTERNAL_ERROR), int(pytest.ExitCode.USAGE_ERROR)}
)


def _file_of(nodeid: str) -> str:
    return nodeid.split("::", 1)[0]


@dataclasses.dataclass(frozen=True)
class Selection:
    """What one burst of changes reruns."""

    #: the changed test files and scripts (relative to the rootdir), rerun whole
    files: tuple[str, ...]
    #: the items downstream of them in other files (node ids)
    downstream: tuple[str, ...]
    #: what changed that counts, as ``path change`` (``a.py modified``)
    changed: tuple[str, ...] = ()

    def __bool__(self) -> bool:
        return bool(self.files or self.downstream)

    def describe(self) -> str:
        """The line printed before the rerun: what changed and what reruns."""
        parts = list(self.files)
        if self.downstream:
            n = len(self.downstream)
            parts.append(f"{n} item{'s' if n != 1 else ''} downstream")
        return f"orchestrate: watch: {', '.join(self.changed)}: rerunning {' and '.join(parts)}"

    def ran(self, graph: ItemGraph) -> str:
        """The line printed after the rerun, from the graph of what it ran: how many items, where."""
        total = len(graph)
        inside = sum(1 for n in graph if _file_of(n) in self.files)
        where = ", ".join(self.files) or "the changed files"
        return (
            f"orchestrate: watch: {', '.join(self.changed)}: {total} item{'s' if total != 1 else ''} rerun "
            f"({inside} in {where}, {total - inside} downstream)"
        )


def refresh(graph: ItemGraph, ran: ItemGraph, files: Iterable[str]) -> ItemGraph:
    """``graph`` with the items of ``files`` as a rerun found them (``ran``: the graph of what it ran): items gone
    from those files are dropped, new ones added (with the dependencies the rerun saw), the others kept as they
    were (the rerun, with ``--orchestrate-deps=ignore``, does not see dependencies outside what it ran)."""
    rerun = set(files)
    now = {n: node for n, node in ran.nodes.items() if _file_of(n) in rerun}
    kept = [node for n, node in graph.nodes.items() if _file_of(n) not in rerun or n in now]
    known = {node.nodeid for node in kept}
    return ItemGraph([*kept, *(node for n, node in now.items() if n not in known)])


def _relative(path: str, root: Path) -> str | None:
    try:
        return Path(path).resolve().relative_to(root).as_posix()
    except ValueError:
        return None


def select(
    graph: ItemGraph,
    changes: Iterable[FileChange],
    root: Path,
    *,
    test_globs: Sequence[str] = (),
    script_globs: Sequence[str] = (),
) -> Selection:
    """The changed files that hold items (or that are new tests or scripts) and every item downstream of theirs."""
    from pytest_orchestrator.scripts.globs import glob_match

    by_file: dict[str, list[str]] = {}
    dependents: dict[str, list[str]] = {}
    for nodeid, node in graph.nodes.items():
        by_file.setdefault(_file_of(nodeid), []).append(nodeid)
        for dep in node.deps:
            dependents.setdefault(dep, []).append(nodeid)
    files: list[str] = []
    seeds: list[str] = []
    changed: dict[str, str] = {}
    for change in changes:
        rel = _relative(change.path, root)
        if rel is None or rel in changed:
            continue
        if rel in by_file:
            seeds.extend(by_file[rel])
            changed[rel] = change.change
            if change.change != "deleted":
                files.append(rel)
        elif change.change != "deleted" and Path(change.path).is_file():
            name = rel.rsplit("/", 1)[-1]
            is_test = name.endswith(".py") and name != "conftest.py"
            is_test = is_test and any(fnmatch.fnmatch(name, g) for g in test_globs)
            if is_test or any(glob_match(g, rel) for g in script_globs):
                changed[rel] = change.change
                files.append(rel)
    below: set[str] = set()
    stack = list(seeds)
    while stack:
        for dependent in dependents.get(stack.pop(), ()):
            if dependent not in below:
                below.add(dependent)
                stack.append(dependent)
    kept = set(files)
    downstream = tuple(n for n in graph.nodes if n in below and _file_of(n) not in kept)
    return Selection(tuple(files), downstream, tuple(f"{p} {c}" for p, c in changed.items()))


def rerun_args(args: Sequence[str], positional: Sequence[str]) -> list[str]:
    """The session's arguments without ``--orchestrate-watch`` and the paths (``positional``) it was given."""
    out = [a for a in args if a != "--orchestrate-watch"]
    for path in reversed(positional):  # the paths are removed from the end: an option's value stays
        for i in range(len(out) - 1, -1, -1):
            if out[i] == path:
                del out[i]
                break
    return out


class _Watcher:
    """A :class:`FileTrigger` listening in a thread of its own; each burst of changes lands in :attr:`changes`."""

    def __init__(self, trigger: FileTrigger) -> None:
        self.trigger = trigger
        self.changes: queue.Queue[ChangeSet | BaseException] = queue.Queue()
        self._ready = threading.Event()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._task: asyncio.Task[None] | None = None
        self._thread = threading.Thread(target=self._run, name="orchestrate-watch", daemon=True)

    def start(self, timeout: float = 10.0) -> None:
        self._thread.start()
        self._ready.wait(timeout)

    def _run(self) -> None:
        asyncio.run(self._main())

    async def _main(self) -> None:
        from pytest_orchestrator.core.clock import SystemClock

        self._loop = asyncio.get_running_loop()
        self._task = asyncio.current_task()
        try:
            await self.trigger.listen(self.changes.put, self._ready.set, SystemClock())
        except asyncio.CancelledError:
            pass
        except Exception as exc:  # the watcher broke: the loop says so and stops
            self.changes.put(exc)
            self._ready.set()

    def next(self) -> ChangeSet:
        """The next burst of changes, merged with any that queued up while a rerun ran."""
        while True:  # short waits: Ctrl-C is noticed whatever the platform's lock does with signals
            try:
                got = self.changes.get(timeout=0.25)
                break
            except queue.Empty:
                continue
        while True:
            if isinstance(got, BaseException):
                raise got
            merged = {c.path: c for c in got}
            try:
                more = self.changes.get_nowait()
            except queue.Empty:
                return ChangeSet(tuple(sorted(merged.values())))
            if isinstance(more, BaseException):
                raise more
            got = ChangeSet(tuple(sorted({**merged, **{c.path: c for c in more}}.values())))

    def stop(self) -> None:
        loop, task = self._loop, self._task
        if loop is not None and task is not None:
            try:
                loop.call_soon_threadsafe(task.cancel)
            except RuntimeError:  # the loop has closed already
                pass
        self._thread.join(2.0)


class Watch:
    """Keeps what the loop needs from the session (registered in the main process only), then runs the loop."""

    def __init__(self, config: pytest.Config) -> None:
        self.config = config
        self.graph: ItemGraph | None = None
        self.finished = False
        self.test_globs: list[str] = []
        self.script_globs: list[str] = []
        #: every rerun's environment carries it: what the reruns leave behind is killed at the end
        self.marker = reaper.new_marker()
        #: where a rerun writes the graph of what it ran (:class:`RerunRecord`)
        self.record = Path(tempfile.gettempdir(), f"pytest-orchestrator-watch-{os.getpid()}-{self.marker}.json")

    @pytest.hookimpl(trylast=True)
    def pytest_sessionfinish(self, session: pytest.Session) -> None:
        config = session.config
        self.graph = _ran_graph(config)
        self.test_globs = [str(g) for g in config.getini("python_files")]
        self.script_globs = [str(g) for g in config.getini("orchestrate_scripts")]
        self.finished = True

    # -- the loop -------------------------------------------------------------------------------------------------
    def loop(self, status: int) -> int:
        """Watch and rerun until Ctrl-C (then 130) or SIGTERM (143); ``status`` (the first session's) when there is
        nothing to do or the rootdir cannot be watched."""
        if not self.finished or int(status) in _STOP:
            return status
        root = self.config.rootpath
        watcher = _Watcher(FileTrigger(root, ignore=IGNORE))
        proc: subprocess.Popen[bytes] | None = None
        main = threading.current_thread() is threading.main_thread()  # only there can signals be handled
        previous = signal.signal(signal.SIGTERM, _terminate) if main else None  # SIGTERM stops it as Ctrl-C does
        try:
            watcher.start()
            waiting = f"orchestrate: watch: waiting for changes under {root} (Ctrl-C to stop)"
            _say(waiting)
            while True:
                try:
                    changes = watcher.next()
                except Exception as exc:  # the watcher itself broke (no inotify watches left, ...)
                    _say(f"orchestrate: watch: cannot watch {root}: {exc}")
                    return status
                assert self.graph is not None
                chosen = select(self.graph, changes, root, test_globs=self.test_globs, script_globs=self.script_globs)
                if not chosen:
                    continue
                _say(chosen.describe())
                self.record.unlink(missing_ok=True)
                proc = self._start(chosen)
                proc.wait()
                proc = None
                ran = _read_graph(self.record)
                if ran is not None:  # the rerun's own graph: the exact count, and the changed files' items now
                    _say(chosen.ran(ran))
                    self.graph = refresh(self.graph, ran, chosen.files)
                _say(waiting)
        except KeyboardInterrupt as exc:
            signum = signal.SIGTERM if isinstance(exc, Terminated) else signal.SIGINT
            if proc is not None:
                _interrupt(proc, signum)
            _say("orchestrate: watch: stopped")
            return 128 + signum
        finally:
            if main:
                signal.signal(signal.SIGTERM, previous)
            self.record.unlink(missing_ok=True)
            watcher.stop()
            if reaper.supported():
                reaper.kill_marked(self.marker, grace=1.0)

    def _argv(self, chosen: Selection) -> list[str]:
        config = self.config
        here = config.invocation_params.dir
        root = config.rootpath
        args = rerun_args(config.invocation_params.args, list(config.option.file_or_dir or ()))

        def arg(nodeid: str) -> str:  # node ids are rootdir-relative; the rerun starts where this one did
            path, sep, rest = nodeid.partition("::")
            return os.path.relpath(root / path, here) + sep + rest

        targets = [arg(f) for f in chosen.files] + [arg(n) for n in chosen.downstream]
        return [sys.executable, "-m", "pytest", *args, "--orchestrate-deps=ignore", *targets]

    def _start(self, chosen: Selection) -> subprocess.Popen[bytes]:
        # not run_process: the rerun's output goes straight to this terminal, and Ctrl-C is handed on to it; in a
        # session of its own, so the terminal's Ctrl-C reaches this loop alone, which passes it on once
        return subprocess.Popen(
            self._argv(chosen),
            cwd=self.config.invocation_params.dir,
            env=reaper.mark_env({RERUN_ENV: str(self.record)}, self.marker),
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )


class RerunRecord:
    """Registered in a rerun (``RERUN_ENV`` names a file): at the session's end it writes there the graph of what
    it ran (the session's, or the xdist scheduler's), for the watch loop."""

    def __init__(self, path: str) -> None:
        self.path = path

    @pytest.hookimpl(trylast=True)
    def pytest_sessionfinish(self, session: pytest.Session) -> None:
        from pytest_orchestrator.reporting.report import write_text_atomic

        write_text_atomic(self.path, _ran_graph(session.config).to_json())


def _ran_graph(config: pytest.Config) -> ItemGraph:
    """The session's item graph; under xdist without a dependency there is none: the items reported, then."""
    graph = session_graph(config)
    if graph is None:
        recorder = getattr(config.pluginmanager.get_plugin(SESSION_PLUGIN_NAME), "recorder", None)
        graph = ItemGraph(Node(nodeid) for nodeid in getattr(recorder, "items", ()))
    return graph


def _read_graph(path: Path) -> ItemGraph | None:
    try:
        return ItemGraph.from_json(path.read_bytes())
    except (OSError, ValueError, KeyError, TypeError):  # the rerun stopped before writing it
        return None


def _terminate(signum: int, frame: FrameType | None) -> None:
    raise Terminated("SIGTERM")


def _interrupt(proc: subprocess.Popen[bytes], signum: int) -> None:
    """Hand the signal on to a rerun (its own plugin then stops what it started); kill its group if it lingers."""
    from pytest_orchestrator.execution.process import kill_process_group

    try:
        proc.send_signal(signum)
        proc.wait(RERUN_GRACE)
    except subprocess.TimeoutExpired:
        kill_process_group(proc.pid, grace=1.0)
        proc.wait()
    except KeyboardInterrupt:  # a second Ctrl-C (or SIGTERM): no more waiting
        kill_process_group(proc.pid, grace=0.0)
        proc.wait()


def _say(line: str) -> None:
    print(line, flush=True)
