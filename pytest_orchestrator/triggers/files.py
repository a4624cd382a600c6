"""``FileTrigger``: run a job when files change (watchfiles when installed, else polling).

The change set handed to the job (``ChangeSet``) holds only the changed paths that match ``patterns`` and none of
``ignore`` (globs on the file name, or on the path relative to the watched folder when they contain ``/``).
Changes are gathered until ``debounce`` seconds pass without a new one, then the job runs once for all of them.
"""

from __future__ import annotations

from collections.abc import Callable
from collections.abc import Iterable
from collections.abc import Iterator
import dataclasses
import datetime as dt
import fnmatch
import os
from pathlib import Path
from typing import TYPE_CHECKING
from typing import Any


if TYPE_CHECKING:
    from pytest_orchestrator.schedule.clock import Clock

__all__ = ["DEFAULT_IGNORE", "ChangeSet", "FileChange", "FileTrigger"]

DEFAULT_IGNORE = (".git/*", "*/.git/*", "__pycache__/*", "*/__pycache__/*", "*.pyc", "*.swp", "*~", ".orchestrate/*")
BACKENDS = ("auto", "watchfiles", "polling")
#: polling fallback: seconds between two looks
POLL_INTERVAL = 0.1

_Snapshot = dict[str, tuple[int, int, int]]


@dataclasses.dataclass(frozen=True, slots=True, order=True)
class FileChange:
    """One changed path: ``change`` is ``added``, ``modified`` or ``deleted``."""

    path: str
    change: str


@dataclasses.dataclass(frozen=True)
class ChangeSet:
    """The changes one job run is for (sorted by path); iterable, with ``paths`` for the paths alone."""

    changes: tuple[FileChange, ...]

    @property
    def paths(self) -> list[str]:
        return [c.path for c in self.changes]

    def __iter__(self) -> Iterator[FileChange]:
        return iter(self.changes)

    def __len__(self) -> int:
        return len(self.changes)

    def __contains__(self, path: object) -> bool:
        return any(c.path == os.fspath(path) for c in self.changes if isinstance(path, str | os.PathLike))

    def to_env(self) -> dict[str, str]:
        """How a pipeline's stages receive it."""
        import json

        return {
            "ORCHESTRATE_CHANGED_FILES": os.pathsep.join(self.paths),
            "ORCHESTRATE_PAYLOAD": json.dumps([dataclasses.asdict(c) for c in self.changes]),
        }


def _watchfiles_available() -> bool:
    import importlib.util

    return importlib.util.find_spec("watchfiles") is not None


class FileTrigger:
    """Fires when files under ``paths`` change; the job receives a ``ChangeSet`` as its first argument.

    ``backend``: ``"auto"`` (watchfiles if installed, else polling), ``"watchfiles"`` or ``"polling"``.
    """

    def __init__(
        self,
        paths: str | os.PathLike[str] | Iterable[str | os.PathLike[str]],
        patterns: Iterable[str] = ("*",),
        ignore: Iterable[str] = DEFAULT_IGNORE,
        debounce: float = 0.2,
        *,
        backend: str = "auto",
        poll_interval: float = POLL_INTERVAL,
    ) -> None:
        raw = [paths] if isinstance(paths, str | os.PathLike) else list(paths)
        if not raw:
            raise ValueError("FileTrigger needs at least one path to watch")
        self.paths = tuple(Path(p).resolve() for p in raw)
        missing = [str(p) for p in self.paths if not p.exists()]
        if missing:
            raise ValueError(f"FileTrigger: no such file or folder: {', '.join(missing)}")
        self.patterns = (patterns,) if isinstance(patterns, str) else tuple(patterns)
        self.ignore = (ignore,) if isinstance(ignore, str) else tuple(ignore)
        for what, value in (("debounce", debounce), ("poll_interval", poll_interval)):
            if isinstance(value, bool) or not isinstance(value, int | float) or not value >= 0:
                raise ValueError(f"{what} must be a non-negative number of seconds, got {value!r}")
        if backend not in BACKENDS:
            raise ValueError(f"backend must be one of {', '.join(BACKENDS)}, got {backend!r}")
        if backend == "watchfiles" and not _watchfiles_available():
            raise ImportError(
                "FileTrigger(backend='watchfiles') needs watchfiles: pip install 'pytest-orchestrator[watch]'"
            )
        self.debounce = float(debounce)
        self.poll_interval = float(poll_interval)
        self.backend = backend

    def __repr__(self) -> str:
        shown = ", ".join(str(p) for p in self.paths)
        return f"FileTrigger([{shown}], patterns={self.patterns!r}, debounce={self.debounce})"

    def next_fire_time(self, after: dt.datetime) -> dt.datetime | None:
        """Never: a file trigger fires on changes, not at times."""
        return None

    def matches(self, path: str | os.PathLike[str]) -> bool:
        """Whether a change to ``path`` counts: it matches a pattern and no ignore glob."""
        p = Path(path)
        rels = [p.name]
        for root in self.paths:
            try:
                rels.append(p.relative_to(root).as_posix())
            except ValueError:
                continue

        def hit(globs: tuple[str, ...]) -> bool:
            return any(fnmatch.fnmatch(r, g) for g in globs for r in rels)

        return hit(self.patterns) and not hit(self.ignore)

    def _changes(self, raw: Iterable[tuple[str, str]]) -> ChangeSet:
        merged: dict[str, str] = {}
        for path, change in raw:
            if not self.matches(path):
                continue
            before = merged.get(path)
            if before == "added" and change == "modified":
                continue
            if before == "added" and change == "deleted":
                del merged[path]
                continue
            merged[path] = "modified" if before == "deleted" and change == "added" else change
        return ChangeSet(tuple(sorted(FileChange(p, c) for p, c in merged.items())))

    # -- listening -------------------------------------------------------------------------------------------
    async def listen(self, fire: Callable[[Any], None], ready: Callable[[], None], clock: Clock) -> None:
        """Watch until cancelled, calling ``fire(ChangeSet)`` after each debounced burst of matching changes."""
        use_watchfiles = self.backend == "watchfiles" or (self.backend == "auto" and _watchfiles_available())
        if use_watchfiles:
            await self._listen_watchfiles(fire, ready)
        else:
            await self._listen_polling(fire, ready, clock)

    async def _listen_watchfiles(self, fire: Callable[[Any], None], ready: Callable[[], None]) -> None:
        import asyncio

        from watchfiles import Change
        from watchfiles import awatch

        kinds = {Change.added: "added", Change.modified: "modified", Change.deleted: "deleted"}
        stream = awatch(
            *self.paths,
            watch_filter=lambda _change, path: self.matches(path),
            debounce=max(1, int(self.debounce * 1000)),
            step=50,
            yield_on_timeout=False,
        ).__aiter__()
        pending = asyncio.ensure_future(anext(stream))
        for _ in range(5):  # the watcher is set up in the generator's first steps, before it waits
            await asyncio.sleep(0)
        await asyncio.sleep(0.05)
        ready()
        try:
            while True:
                batch = await pending
                changes = self._changes((path, kinds[kind]) for kind, path in batch)
                if changes:
                    fire(changes)
                pending = asyncio.ensure_future(anext(stream))
        finally:
            pending.cancel()
            await asyncio.gather(pending, return_exceptions=True)
            await stream.aclose()  # type: ignore[attr-defined]

    def snapshot(self) -> _Snapshot:
        """``{path: (mtime_ns, size, inode)}`` of every watched file (polling backend)."""
        out: _Snapshot = {}
        for root in self.paths:
            files = [root] if root.is_file() else _walk(root)
            for path in files:
                try:
                    st = os.stat(path)
                except OSError:
                    continue
                out[str(path)] = (st.st_mtime_ns, st.st_size, st.st_ino)
        return out

    async def _listen_polling(self, fire: Callable[[Any], None], ready: Callable[[], None], clock: Clock) -> None:
        import asyncio

        loop = asyncio.get_running_loop()
        before = self.snapshot()
        ready()
        gathered: list[tuple[str, str]] = []
        quiet_since: float | None = None
        while True:
            await clock.sleep(self.poll_interval)
            after = await loop.run_in_executor(None, self.snapshot)
            diff = _diff(before, after)
            before = after
            now = clock.monotonic()
            if diff:
                gathered += diff
                quiet_since = now
            if gathered and quiet_since is not None and now - quiet_since >= self.debounce:
                changes = self._changes(gathered)
                gathered = []
                quiet_since = None
                if changes:
                    fire(changes)


def _walk(root: Path) -> list[Path]:
    out: list[Path] = []
    for folder, dirs, files in os.walk(root):
        dirs[:] = [d for d in dirs if d not in (".git", "__pycache__")]
        out += [Path(folder, f) for f in files]
    return out


def _diff(before: _Snapshot, after: _Snapshot) -> list[tuple[str, str]]:
    changes = [(p, "added") for p in after.keys() - before.keys()]
    changes += [(p, "deleted") for p in before.keys() - after.keys()]
    changes += [(p, "modified") for p in after.keys() & before.keys() if after[p] != before[p]]
    return sorted(changes)
