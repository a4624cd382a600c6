"""The item-graph hand-off between the xdist workers and the controller: both sides of it, and its names.

The controller (:mod:`.xdist_controller`) opens one execnet channel per worker (``node.gateway.newchannel()``) and
hands it over in ``workerinput`` under :data:`CHANNEL_KEY`, xdist's documented way to give a worker data. Each
worker (:mod:`.xdist_worker`) sends one message on it, :func:`encode`'s text, *before* xdist sends
``collectionfinish`` on its own channel; both channels share the gateway's one connection, so the message is there
when the controller's scheduler (:mod:`.xdist_scheduling`) reads it after ``collectionfinish``. Nothing goes through
the filesystem: the worker may be remote (``--tx socket=...``, ``--tx ssh=...``) with a working directory of its own.

The same channel carries the controller's word back to a worker (:data:`VERDICT`, :data:`STOP`): see
:mod:`.xdist_worker`. Before the graph, a worker sends the lines its collection has for the user (:data:`NOTES`:
``--orchestrate-deps=run`` bringing items back, ``order`` labels that name nothing, ...), which the controller prints
once. While tests run, a worker may ask how items ended (:data:`ASK`, for pytest-dependency's runtime
``depends(request, ...)``); the controller's end of the channel, a :class:`Mailbox`, answers at once from execnet's
receiving thread (:data:`ANSWER`) and keeps the worker's other messages for the scheduler.

The message is compact (a 10,000-item graph is a few hundred kB and decodes in a few tens of ms): node ids are sent
once, dependencies as indices, parents and paths as indices into their own tables, everything that is usually
empty only where it is not. A graph with no edges is sent as its node count alone: the controller then leaves the
run to xdist's own scheduler.
"""

from __future__ import annotations

from collections.abc import Callable
from collections.abc import Mapping
from collections.abc import Sequence
import json
import queue
from typing import Any

from pytest_orchestrator.plugin.dag import Blocker
from pytest_orchestrator.plugin.dag import ItemGraph
from pytest_orchestrator.plugin.dag import Node


__all__ = [
    "ANSWER",
    "ASK",
    "CHANNEL_KEY",
    "FREE",
    "NOTES",
    "PENDING",
    "STOP",
    "VERDICT",
    "Handoff",
    "HandoffError",
    "Mailbox",
    "decode",
    "encode",
    "encode_error",
    "is_flat",
    "receive",
]

#: the ``workerinput`` key of the execnet channel between the controller and one worker
CHANNEL_KEY = "orchestrate_channel"
#: controller -> worker: ``(VERDICT, node id, skip reason or None)``: a held dependent may start (or is skipped)
VERDICT = "verdict"
#: controller -> worker: ``(FREE,)``: another scheduler runs the session, no verdicts will come
FREE = "free"
#: controller -> worker: ``(STOP, reason)``: the run is stopping, skip every dependent still waiting for a verdict
STOP = "stop"
#: worker -> controller, before the graph: ``(NOTES, [line, ...])``: what its collection has to say to the user
NOTES = "notes"
#: worker -> controller: ``(ASK, number, [node id, ...])``: how did these items end?
ASK = "ask"
#: controller -> worker: ``(ANSWER, number, {node id: status or None})``: the status of each item as the summary
#: records it (``"passed"``, ``"failed"``, ``"xfailed"``, ...), :data:`PENDING`, or ``None`` (not run, and it may
#: not run before the asking worker's item ends)
ANSWER = "answer"
#: an item has not finished, but runs (or waits in the queue of) another worker than the asking one
PENDING = "pending"
_VERSION = 2
#: seconds the controller waits for a worker's message (sent before ``collectionfinish``, so it is there at once)
RECEIVE_TIMEOUT = 60.0


class HandoffError(Exception):
    """No usable item graph: the worker's error, or why its message cannot be read."""

    def __init__(self, message: str, *, usage_error: bool = False) -> None:
        super().__init__(message)
        self.message = message
        #: the worker failed with a ``pytest.UsageError`` (raise it again on the controller)
        self.usage_error = usage_error


class Handoff:
    """What a worker hands over: the item graph (``None`` when it has no edges), its size, and the
    ``xdist_group`` of each item that has one."""

    def __init__(self, graph: ItemGraph | None, size: int, groups: Mapping[str, str]) -> None:
        self.graph = graph
        self.size = size
        self.groups = dict(groups)


def is_flat(graph: ItemGraph) -> bool:
    """Whether ``graph`` leaves nothing to schedule: no edges and no item skipped up front."""
    return not any(node.deps or node.blocked for node in graph.nodes.values())


def encode(graph: ItemGraph, groups: Mapping[str, str] | None = None) -> str:
    """The message for ``graph`` (and the items' ``xdist_group`` names), as text."""
    data: dict[str, Any] = {"v": _VERSION, "size": len(graph)}
    if groups:
        data["groups"] = dict(groups)
    if is_flat(graph):
        return json.dumps(data, separators=(",", ":"))
    ids = list(graph.nodes)
    index = {n: i for i, n in enumerate(ids)}
    parents: dict[str, int] = {}
    paths: dict[str, int] = {}
    parent: list[int] = []
    location: list[list[Any]] = []
    estimate: list[float | None] = []
    deps: dict[str, list[int | str]] = {}
    extra: dict[str, dict[str, Any]] = {}
    for i, node in enumerate(graph.nodes.values()):
        parent.append(parents.setdefault(node.parent, len(parents)))
        path, lineno, domain = node.location
        location.append([paths.setdefault(path, len(paths)), lineno, domain])
        estimate.append(node.estimated_duration)
        if node.deps:
            deps[str(i)] = [index.get(d, d) for d in node.deps]
        more: dict[str, Any] = {}
        if node.kind != "test":
            more["kind"] = node.kind
        if node.stage is not None:
            more["stage"] = node.stage
        if node.aliases:
            more["aliases"] = list(node.aliases)
        if node.missing:
            more["missing"] = [list(m) for m in node.missing]
        if node.blocked:
            more["blocked"] = [[b.target, b.state, b.reason] for b in node.blocked]
        if node.brought_back:
            more["brought_back"] = True
        if node.soft:
            more["soft"] = list(node.soft)
        if node.any_of:
            more["any_of"] = [list(g) for g in node.any_of]
        if node.unknown:
            more["unknown"] = [list(u) for u in node.unknown]
        if more:
            extra[str(i)] = more
    data.update(
        ids=ids,
        parents=list(parents),
        parent=parent,
        paths=list(paths),
        location=location,
        estimate=estimate,
        deps=deps,
        extra=extra,
    )
    return json.dumps(data, separators=(",", ":"))


def encode_error(message: str, *, usage_error: bool) -> str:
    """The message of a worker that has no graph to hand over."""
    return json.dumps({"v": _VERSION, "error": message, "usage_error": usage_error})


class Mailbox:
    """The controller's end of one worker's channel: answers the worker's :data:`ASK` at once (``answer`` runs in
    execnet's receiving thread, so it must only read), keeps its :data:`NOTES`, and queues every other message (the
    item graph) for :func:`receive`."""

    _CLOSED = object()

    def __init__(self, channel: Any, answer: Callable[[Sequence[str]], Mapping[str, str | None]]) -> None:
        self.channel = channel
        #: the lines the worker's collection has for the user (None until they arrive)
        self.notes: list[str] | None = None
        self._answer = answer
        self._inbox: queue.Queue[object] = queue.Queue()
        channel.setcallback(self._receive, endmarker=self._CLOSED)

    def _receive(self, message: object) -> None:
        if isinstance(message, tuple | list) and len(message) == 3 and message[0] == ASK:
            try:
                answer = dict(self._answer([str(n) for n in message[2]]))
            except Exception:  # never let the worker wait out its timeout for an error of ours
                answer = {}
            try:
                self.channel.send((ANSWER, message[1], answer))
            except Exception:  # the worker is gone
                pass
        elif isinstance(message, tuple | list) and len(message) == 2 and message[0] == NOTES:
            self.notes = [str(line) for line in message[1]]
        else:
            self._inbox.put(message)

    def receive(self, timeout: float | None = None) -> object:
        """The worker's next message (not :data:`ASK` nor :data:`NOTES`), as ``channel.receive`` gives it."""
        try:
            message = self._inbox.get(timeout=timeout)
        except queue.Empty:
            raise TimeoutError(f"no message within {timeout} s") from None
        if message is self._CLOSED:
            self._inbox.put(message)
            raise EOFError("the worker closed the channel")
        return message

    def send(self, item: object) -> None:
        self.channel.send(item)


def receive(channel: Any, worker: str) -> object:
    """The message worker ``worker`` sent on ``channel`` (an execnet channel or a :class:`Mailbox`);
    :class:`HandoffError` if none came."""
    if channel is None:
        raise HandoffError(f"orchestrate: no channel to worker {worker}")
    try:
        return channel.receive(timeout=RECEIVE_TIMEOUT)
    except Exception as exc:  # execnet's TimeoutError, EOFError (the worker died), RemoteError
        raise HandoffError(f"orchestrate: no item graph from worker {worker}: {type(exc).__name__}: {exc}") from None


def decode(text: object, worker: str) -> Handoff:
    """What worker ``worker`` handed over in ``text``; raises :class:`HandoffError` for its error or bad data."""
    try:
        if not isinstance(text, str):
            raise ValueError(f"unexpected {type(text).__name__}")
        data = json.loads(text)
        if not isinstance(data, dict) or data.get("v") != _VERSION:
            raise ValueError("not an item graph of this version of pytest-orchestrator")
    except ValueError as exc:
        raise HandoffError(f"orchestrate: cannot read the item graph of worker {worker}: {exc}") from None
    if "error" in data:
        raise HandoffError(str(data["error"]), usage_error=bool(data.get("usage_error")))
    groups = {str(k): str(v) for k, v in data.get("groups", {}).items()}
    if "ids" not in data:
        return Handoff(None, int(data["size"]), groups)
    ids: list[str] = data["ids"]
    parents: list[str] = data["parents"]
    paths: list[str] = data["paths"]
    deps: dict[str, list[int | str]] = data["deps"]
    extra: dict[str, dict[str, Any]] = data["extra"]
    nodes = []
    for i, nodeid in enumerate(ids):
        path, lineno, domain = data["location"][i]
        node = Node(
            nodeid,
            deps=[ids[d] if isinstance(d, int) else d for d in deps.get(str(i), ())],
            parent=parents[data["parent"][i]],
            location=(paths[path], lineno, domain),
            estimated_duration=data["estimate"][i],
        )
        more = extra.get(str(i))
        if more:
            node.kind = more.get("kind", "test")
            node.stage = more.get("stage")
            node.aliases = tuple(more.get("aliases", ()))
            node.missing = [(str(t), str(h)) for t, h in more.get("missing", ())]
            node.blocked = [Blocker(str(t), str(s), str(r)) for t, s, r in more.get("blocked", ())]
            node.brought_back = bool(more.get("brought_back", False))
            node.soft = [str(d) for d in more.get("soft", ())]
            node.any_of = [[str(d) for d in g] for g in more.get("any_of", ())]
            node.unknown = [(str(t), str(r)) for t, r in more.get("unknown", ())]
        nodes.append(node)
    return Handoff(ItemGraph(nodes), len(ids), groups)
