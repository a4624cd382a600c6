"""Running a workflow's blocking work on a Dask cluster: ``DaskExecutor``.

Dask (``pip install 'pytest-orchestrator[dask]'``) is imported when a ``DaskExecutor`` is made, never before. The
engine keeps everything that decides *whether* and *when* a task runs (retries, backoff, timeouts, conditions,
trigger rules, cancellation, state); Dask only places each attempt on a worker:

* a sync action is one Dask task (``dask.utils.apply``). Its value stays on the cluster when nothing in the driver
  reads it before the run ends (no condition, ``_task_results``, listener or state store in the workflow, no
  ``transform_result``, no async dependent: ``Engine._kept_on_cluster``): dependents get its Dask future, so a worker
  fetches it from its peer, and the driver gathers every such value once, in one batch, for ``run()``'s result.
  Otherwise the value comes back as the task finishes, and one of ``LARGE_VALUE`` or more is still handed to
  dependents on the cluster as its future, not sent back from the driver. The calls the engine makes in one turn of
  its loop (the tasks it starts together) are submitted as one graph (``client.map``) at the end of that turn;
* a command task runs on a worker through ``execution.process.run_process``; when the engine cancels it (timeout,
  fail_fast, ``Workflow.cancel``) a Dask ``Event`` tells that worker to kill the command's process tree. Any
  function taking a ``cancel_event`` runs that way too (``run_killable``: the scripts and stages of ``orchestrate
  run --executor dask://...``);
* ``resources={"GPU": 1}`` becomes Dask worker resources; a need that no worker can meet is an error, not a wait;
* a worker lost in the middle of a task fails that attempt (``KilledWorker``): the retry policy decides, and a
  retry goes to a surviving worker. On a cluster this executor starts, Dask's own silent rescheduling is off
  (``allowed_failures=0``); on a cluster it is given, the scheduler's ``distributed.scheduler.allowed-failures``
  applies first.

Each run opens its own asynchronous ``Client`` in the engine's loop (``open_session``); ``submit`` (the
``concurrent.futures.Executor`` API) uses a synchronous one. On an in-process cluster (``inproc://``) calls are
handed to the worker by reference, as with threads: nothing is pickled.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from collections.abc import Mapping
import concurrent.futures
import importlib
import itertools
import threading
import time
from typing import TYPE_CHECKING
from typing import Any
import uuid

from pytest_orchestrator.errors import ConcurrencyError
from pytest_orchestrator.execution.cluster import ClusterExecutor
from pytest_orchestrator.execution.cluster import OnCluster


if TYPE_CHECKING:
    from pytest_orchestrator.execution.process import ProcessResult

__all__ = ["LARGE_VALUE", "DaskExecutor", "scheduler_address"]

#: bytes (``dask.sizeof``) from which a task's value is kept on the cluster for dependents that run there
LARGE_VALUE = 1 << 20

_INSTALL = "Dask is not installed: pip install 'pytest-orchestrator[dask]'"
#: how often a command's worker asks whether it was cancelled (seconds; one scheduler round trip each)
_CANCEL_POLL = 0.5
#: how long a cancelled command's kill is awaited before the cancellation goes through (the process module's grace)
_KILL_WAIT = 5.0
#: how long closing a run's client may take (it is interrupted when the run is, e.g. by Ctrl-C)
_CLOSE_WAIT = 2.0


def _distributed() -> Any:
    """The ``distributed`` module (partly typed: used through ``Any``), or an ImportError saying what to install."""
    try:
        return importlib.import_module("distributed")
    except ImportError as exc:
        raise ImportError(_INSTALL) from exc


def scheduler_address(spec: str) -> str:
    """``dask://HOST[:PORT]`` -> ``tcp://HOST:PORT`` (``dask+tls://`` -> ``tls://``); a Dask address is kept."""
    for prefix, scheme in (("dask+tls://", "tls://"), ("dask://", "tcp://")):
        if spec.startswith(prefix):
            host = spec[len(prefix) :].strip("/")
            if not host:
                raise ValueError(f"{spec!r} names no scheduler; use 'dask://HOST:PORT'")
            return scheme + (host if ":" in host.rsplit("]", 1)[-1] else f"{host}:8786")
    return spec if "://" in spec else f"tcp://{spec}"


class DaskExecutor(ClusterExecutor):
    """Sync actions and command tasks of a workflow run on a Dask cluster.

    ``address`` is a scheduler address (``"tcp://HOST:PORT"``, ``"dask://HOST:PORT"``), a ``distributed.Client``,
    a cluster object (``LocalCluster``, ``SpecCluster``...), or ``None``: a ``LocalCluster`` with worker processes is
    started when first used (``cluster_kwargs`` go to it) and closed by ``shutdown()``, at the end of a ``with``
    block, or at exit. ``Workflow(executor="dask://HOST:PORT")`` makes one for the run and closes it after.

    Usage::

        with DaskExecutor("tcp://10.0.0.5:8786") as dask:
            asyncio.run(Workflow("etl", executor=dask).add_task(...).run())
    """

    def __init__(
        self,
        address: str | Any | None = None,
        *,
        connect_timeout: float = 10.0,
        **cluster_kwargs: Any,
    ) -> None:
        Client = _distributed().Client
        self._given_client: Any = None
        self._cluster: Any = None
        self._owns_cluster = False
        self._security: Any = None
        self._connect_timeout = connect_timeout
        self._cluster_kwargs = cluster_kwargs
        self._client: Any = None
        self._lock = threading.Lock()
        if cluster_kwargs and address is not None:
            raise TypeError("cluster keyword arguments are for the LocalCluster that DaskExecutor() starts")
        if address is None:
            self.address = "a LocalCluster (not started yet)"
        elif isinstance(address, str):
            self.address = scheduler_address(address)
        elif isinstance(address, Client):
            self._given_client = address
            self.address = address.scheduler.address
            self._security = address.security
        elif isinstance(getattr(address, "scheduler_address", None), str):
            self._cluster = address
            self.address = address.scheduler_address
            self._security = getattr(address, "security", None)
        else:
            raise TypeError(f"DaskExecutor needs an address, a Client, a cluster or None, got {address!r}")

    def __repr__(self) -> str:
        return f"DaskExecutor({self.address!r})"

    # -- the cluster ---------------------------------------------------------------------------------------------
    def _start_cluster(self) -> None:
        with self._lock:
            if self._cluster is not None or self._given_client is not None or "://" in self.address:
                return
            LocalCluster = _distributed().LocalCluster
            kwargs: dict[str, Any] = {"processes": True, "dashboard_address": ":0"}
            kwargs.update(self._cluster_kwargs)
            # a lost worker is a failed attempt for the task's retry policy, not a silent rerun
            scheduler_kwargs = {"allowed_failures": 0, **kwargs.pop("scheduler_kwargs", {})}
            import dask

            # non-daemonic worker processes may start processes of their own (run_function, multiprocessing)
            with dask.config.set({"distributed.worker.daemon": False}):
                self._cluster = LocalCluster(scheduler_kwargs=scheduler_kwargs, **kwargs)
            self._owns_cluster = True
            self.address = self._cluster.scheduler_address
            self._security = getattr(self._cluster, "security", None)

    @property
    def client(self) -> Any:
        """A synchronous ``Client`` of this cluster (the given one, or one made when first asked for)."""
        if self._given_client is not None:
            return self._given_client
        self._start_cluster()
        with self._lock:
            if self._client is None:
                Client = _distributed().Client
                target = self._cluster if self._cluster is not None else self.address
                try:
                    self._client = Client(target, timeout=self._connect_timeout, security=self._security)
                except (OSError, TimeoutError) as exc:
                    raise _unreachable(self.address, exc) from exc
            return self._client

    def connect(self) -> int:
        return sum(self.client.nthreads().values())

    # -- concurrent.futures.Executor -----------------------------------------------------------------------------
    def submit(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> concurrent.futures.Future[Any]:
        future: concurrent.futures.Future[Any] = self.client.get_executor(pure=False).submit(fn, *args, **kwargs)
        return future

    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None:
        """Close the client this executor made and the cluster it started (a given client or cluster stays open)."""
        with self._lock:
            client, self._client = self._client, None
            cluster = self._cluster if self._owns_cluster else None
            if cluster is not None:
                self._cluster = None
                self._owns_cluster = False
        if client is not None:
            client.close()
        if cluster is not None:
            cluster.close()

    # -- the engine's side ---------------------------------------------------------------------------------------
    async def open_session(self, requirements: Mapping[str, Mapping[str, float]] | None = None) -> _DaskSession:
        Client = _distributed().Client
        if self._cluster is None and self._given_client is None and "://" not in self.address:
            await asyncio.to_thread(self._start_cluster)
        try:
            client = await Client(
                self.address, asynchronous=True, timeout=self._connect_timeout, security=self._security
            )
        except (OSError, TimeoutError) as exc:
            raise _unreachable(self.address, exc) from exc
        session = _DaskSession(client, self.address)
        try:
            if requirements:
                await session.check_resources(requirements)
        except BaseException:
            await session.close()
            raise
        return session


def _unreachable(address: str, exc: BaseException) -> ConcurrencyError:
    message = f"cannot reach the Dask scheduler at {address}: {type(exc).__name__}: {exc}"
    return ConcurrencyError(message, address=address)


# -- one run ---------------------------------------------------------------------------------------------------------
#: in-process clusters: calls handed to the worker by reference (token -> (fn, args, kwargs))
_LOCAL_CALLS: dict[str, tuple[Callable[..., Any], tuple[Any, ...], Mapping[str, Any]]] = {}
_tokens = itertools.count()


def _call_local(token: str) -> Any:
    fn, args, kwargs = _LOCAL_CALLS[token]
    return fn(*args, **kwargs)


def _call_killable(fn: Callable[..., Any], args: tuple[Any, ...], kwargs: Mapping[str, Any], cancel_name: str) -> Any:
    """On a worker: ``fn(*args, cancel_event=..., **kwargs)``; a watcher thread sets that event when the driver sets
    the Dask event ``cancel_name`` (``fn`` then kills what it started: a command's process tree, a script's)."""
    distributed = _distributed()

    cancelled = threading.Event()
    finished = threading.Event()
    event = distributed.Event(
        cancel_name, client=distributed.get_client()
    )  # made here: the watcher thread has no worker context

    def watch() -> None:
        while not finished.is_set():
            try:
                if event.wait(_CANCEL_POLL):
                    cancelled.set()
                    return
            except Exception:  # the scheduler went away: fn runs on, bounded by its own timeout
                return

    watcher = threading.Thread(target=watch, name="pytest-orchestrator-cancel", daemon=True)
    watcher.start()
    try:
        return fn(*args, cancel_event=cancelled, **kwargs)
    finally:
        finished.set()


class _DaskSession:
    """One run's asynchronous client; what the engine awaits."""

    def __init__(self, client: Any, address: str) -> None:
        from dask.sizeof import sizeof
        from dask.utils import apply

        # distributed is partly typed: the asynchronous client is used through Any
        self.client: Any = client
        self.address = address
        self.inproc = client.scheduler.address.startswith("inproc://")
        self._apply: Callable[..., Any] = apply
        self._sizeof: Callable[[Any], int] = sizeof
        #: keys are ``<task>-<n>-<session>``: unique on a shared scheduler, and Dask groups them by task name
        self._session_id = uuid.uuid4().hex[:12]
        self._keys = itertools.count()
        #: large values that came from the cluster: id(value) -> (value, its future), for dependents that run there
        self._held: dict[int, tuple[Any, Any]] = {}
        #: a call's value was kept on the cluster (an ``OnCluster`` placeholder went to the engine)
        self._kept = False
        #: calls made in this turn of the loop, submitted together at its end (``_flush``): (key, fn, args, kwargs,
        #: what the call awaits: its Dask future)
        self._pending: list[tuple[str, Callable[..., Any], tuple[Any, ...], dict[str, Any], asyncio.Future[Any]]] = []
        self._workers: dict[str, Any] | None = None
        self._background: set[asyncio.Task[Any]] = set()

    # -- resources -----------------------------------------------------------------------------------------------
    async def _worker_resources(self, refresh: bool) -> list[dict[str, float]]:
        if self._workers is None or refresh:
            info = await self.client.scheduler.identity()
            self._workers = dict(info.get("workers", {}))
        return [dict(w.get("resources") or {}) for w in self._workers.values()]

    async def check_resources(self, requirements: Mapping[str, Mapping[str, float]]) -> None:
        """Raise ``ConcurrencyError`` naming the first task whose resources no worker has."""
        for name, need in requirements.items():
            await self._check(name, need)

    async def _check(self, name: str, need: Mapping[str, float]) -> None:
        for refresh in (False, True):
            offered = await self._worker_resources(refresh)
            if any(all(w.get(k, 0) >= v for k, v in need.items()) for w in offered):
                return
        have = sorted({f"{k}={v:g}" for w in offered for k, v in w.items()})
        raise ConcurrencyError(
            f"task {name!r} needs resources {dict(need)} but no worker of the Dask cluster at {self.address} has "
            f"them ({len(offered)} workers; resources offered: {', '.join(have) or 'none'})",
            task_name=name,
            resources=dict(need),
            address=self.address,
        )

    # -- calls ---------------------------------------------------------------------------------------------------
    def _submit(
        self, fn: Callable[..., Any], args: tuple[Any, ...], name: str, resources: Mapping[str, float] | None
    ) -> Any:
        return self.client.submit(
            fn,
            *args,
            key=self._key(name),
            resources=dict(resources) if resources else None,
            pure=False,
        )

    def _key(self, name: str) -> str:
        return f"{name}-{next(self._keys)}-{self._session_id}"

    async def _submit_batched(
        self, fn: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any], name: str
    ) -> Any:
        """``_submit`` of ``apply(fn, args, kwargs)``, together with the other calls made in this turn of the loop:
        the tasks that the engine starts at once (the dependents of the tasks that finished together) reach the
        scheduler as one graph, so the client serialises and the scheduler handles one message, not one each."""
        waiter: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._pending.append((self._key(name), fn, args, kwargs, waiter))
        if len(self._pending) == 1:
            waiter.get_loop().call_soon(self._flush)
        try:
            return await waiter
        except asyncio.CancelledError:
            if waiter.done() and not waiter.cancelled() and waiter.exception() is None:
                self._later(waiter.result().cancel())  # submitted just before the cancellation
            raise

    def _flush(self) -> None:
        pending, self._pending = self._pending, []
        live = [p for p in pending if not p[4].done()]  # a call cancelled while it waited is not submitted
        if not live:
            return
        try:
            futures = self.client.map(
                self._apply,
                [p[1] for p in live],
                [p[2] for p in live],
                [p[3] for p in live],
                key=[p[0] for p in live],
                pure=False,
            )
        except Exception as exc:
            for p in live:
                p[4].set_exception(exc)
            return
        for p, future in zip(live, futures, strict=True):
            p[4].set_result(future)

    def _remote(self, value: Any, nested: bool = True) -> Any:
        """``value`` as the cluster should get it: a placeholder or a large value that came from the cluster as its
        future (Dask hands the worker the value); also inside a dict, list or tuple (``{dependency: value}``)."""
        kind = type(value)
        if kind is OnCluster:
            return value.handle
        held = self._held.get(id(value))
        if held is not None and held[0] is value:
            return held[1]
        if nested and value:
            if kind is dict:
                return {k: self._remote(v, False) for k, v in value.items()}
            if kind is list or kind is tuple:
                return kind(self._remote(v, False) for v in value)
        return value

    async def call(
        self,
        fn: Callable[..., Any],
        args: tuple[Any, ...],
        kwargs: Mapping[str, Any],
        *,
        name: str,
        resources: Mapping[str, float] | None = None,
        keep: bool = False,
    ) -> Any:
        if resources:
            await self._check(name, resources)
        if self.inproc:
            # by reference, as with threads; the value always comes back (it is in this process anyway)
            token = f"{name}-{next(_tokens)}"
            _LOCAL_CALLS[token] = (fn, args, kwargs)
            try:
                return await self._result(self._submit(_call_local, (token,), name, resources))
            finally:
                del _LOCAL_CALLS[token]
        if self._held or self._kept:
            args = tuple(self._remote(a) for a in args)
            kwargs = {k: self._remote(v) for k, v in kwargs.items()}
        if resources:
            future = self._submit(self._apply, (fn, args, dict(kwargs)), name, resources)
        else:
            future = await self._submit_batched(fn, args, dict(kwargs), name)
        if keep:
            # wait for the task without gathering its value: dependents on the cluster get the future
            await self._result(future, gather=False)
            if future.status == "finished":
                self._kept = True
                return OnCluster(future)
        value = await self._result(future)
        self._hold(value, future)
        return value

    def _hold(self, value: Any, future: Any) -> None:
        if value is None or isinstance(value, int | float | bool | str):
            return
        try:
            size = self._sizeof(value)
        except Exception:
            return
        if size >= LARGE_VALUE:
            self._held[id(value)] = (value, future)

    async def _result(self, future: Any, gather: bool = True) -> Any:
        """The future's value (its error raised); without ``gather``, only wait until it is finished or failed."""
        try:
            if gather:
                return await future
            # what distributed.wait awaits, without its default-client lookup (this run's client is not the
            # default one); a distributed without that event gathers instead: the value travels, nothing else changes
            state: Any = getattr(future, "_state", None)
            await (state.wait() if callable(getattr(state, "wait", None)) else future)
            return None
        except asyncio.CancelledError:
            # the engine cancelled the attempt (timeout, fail_fast, cancel): the cluster forgets the task; a sync
            # function already running on a worker thread cannot be stopped there and is abandoned, as with threads
            self._later(future.cancel())
            raise

    async def fetch(self, values: list[OnCluster]) -> list[Any]:
        futures = [v.handle for v in values]
        try:
            return list(await self.client.gather(futures))
        except Exception:
            fetched: list[Any] = []
            for placeholder, future in zip(values, futures, strict=True):
                try:
                    fetched.append(await future)
                except Exception:
                    fetched.append(placeholder)
            return fetched

    def _later(self, result: Any) -> None:
        if asyncio.iscoroutine(result) or isinstance(result, asyncio.Future):
            task = asyncio.ensure_future(result)
            self._background.add(task)
            task.add_done_callback(self._background.discard)

    async def run_command(
        self,
        command: str,
        *,
        shell: bool,
        timeout: float | None,
        name: str,
        resources: Mapping[str, float] | None = None,
    ) -> ProcessResult:
        from pytest_orchestrator.execution.process import run_process

        result: ProcessResult = await self.run_killable(
            run_process, (command,), {"shell": shell, "timeout": timeout}, name=name, resources=resources
        )
        return result

    async def run_killable(
        self,
        fn: Callable[..., Any],
        args: tuple[Any, ...],
        kwargs: Mapping[str, Any],
        *,
        name: str,
        resources: Mapping[str, float] | None = None,
    ) -> Any:
        if resources:
            await self._check(name, resources)
        cancel_name = f"pytest-orchestrator-cancel-{self._session_id}-{next(self._keys)}"
        future = self._submit(_call_killable, (fn, args, dict(kwargs), cancel_name), name, resources)
        try:
            return await future
        except asyncio.CancelledError:
            # tell the worker to kill what fn started, and let the cancellation through once it has (bounded);
            # a second cancellation while doing so does not stop the kill
            stopping = asyncio.ensure_future(self._stop_command(future, cancel_name))
            while not stopping.done():
                try:
                    await asyncio.shield(stopping)
                except asyncio.CancelledError:
                    continue
                except Exception:
                    break
            raise

    async def _stop_command(self, future: Any, cancel_name: str) -> None:
        try:
            await _distributed().Event(cancel_name, client=self.client).set()
            deadline = time.monotonic() + _KILL_WAIT
            while not future.done() and time.monotonic() < deadline:
                await asyncio.sleep(0.05)
        finally:
            self._later(future.cancel())

    async def close(self) -> None:
        self._held.clear()
        if self._background:
            await asyncio.gather(*self._background, return_exceptions=True)
        try:
            await self.client.close(timeout=_CLOSE_WAIT)
        except BaseException:
            # interrupted while closing (the loop is shutting down): do not let the client retry from __del__
            self.client.status = "closed"
            raise
