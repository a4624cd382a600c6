"""Markers -> frozen specs: ``depends``, ``retry``, ``timeout`` and ``stage``, parsed once per item and validated.

Each ``parse_*`` function takes the marker's arguments and returns a plain value or raises ``ValueError`` with a
message that names the problem; :func:`evaluate_marks` gathers them for one item into an :class:`ItemSpec` and turns
every problem into one :class:`MarkerError` naming the item and the marker. The session plugin reports those as a
usage error (never a traceback).
"""

from __future__ import annotations

from collections.abc import Iterable
from collections.abc import Mapping
from collections.abc import Sequence
from collections.abc import Set
import math
import os
from typing import TYPE_CHECKING
from typing import Any
from typing import NamedTuple

import pytest

from pytest_orchestrator.core.limits import check_seconds


if TYPE_CHECKING:
    from pytest_orchestrator.core.retry import RetryPolicy


__all__ = [
    "ItemSpec",
    "MarkerError",
    "NO_SPEC",
    "SPEC_MARKS",
    "spec_marked",
    "broken_key",
    "check_foreign_timeout",
    "evaluate_marks",
    "Depends",
    "parse_depends",
    "parse_depends_marker",
    "parse_retry",
    "parse_stage",
    "parse_timeout",
    "spec_key",
]


class MarkerError(ValueError):
    """One or more of an item's orchestrate markers are malformed; the message names the item and each marker."""


class ItemSpec(NamedTuple):
    """What an item's markers (or a script's settings) ask of the orchestrator."""

    #: dependency targets as written, in declaration order (resolved later by :mod:`.dag`)
    targets: tuple[str, ...] = ()
    #: names others may depend on (``depends(name=...)``)
    aliases: tuple[str, ...] = ()
    #: targets to run after, for ordering only (``depends(..., soft=True)``)
    soft_targets: tuple[str, ...] = ()
    #: targets that run after this item (``depends(before=[...])``): hard, and soft ones
    before: tuple[str, ...] = ()
    soft_before: tuple[str, ...] = ()
    #: groups of targets of which one that passed is enough (``depends(any_of=[...])``)
    any_of: tuple[tuple[str, ...], ...] = ()
    stage: str | None = None
    retry: RetryPolicy | None = None
    #: seconds; ``None`` when not set, ``0`` when explicitly disabled
    timeout: float | None = None


#: the markers an :class:`ItemSpec` is made of
SPEC_MARKS = frozenset({"depends", "retry", "stage", "timeout"})


def spec_marked(names: Set[str]) -> bool:
    """Whether ``names`` (a session's marker names, :func:`~.arrange.marker_names`) hold one of
    :data:`SPEC_MARKS`: else every item's spec is :data:`NO_SPEC`."""
    return not names.isdisjoint(SPEC_MARKS)


#: the spec of an item without any of them (specs are frozen: one object serves them all)
NO_SPEC = ItemSpec()

#: where each item's spec is cached
spec_key = pytest.StashKey[ItemSpec]()
#: why an item cannot run as declared (an unknown dependency, a cycle): it errors at setup with this message
broken_key = pytest.StashKey[str]()


def _type_name(value: Any) -> str:
    return "None" if value is None else type(value).__name__


def _target(value: Any) -> str:
    if isinstance(value, os.PathLike):
        value = os.fspath(value)
    elif isinstance(value, type) or (callable(value) and hasattr(value, "__qualname__")):
        value = str(value.__qualname__).replace(".", "::")  # a test class or function: by its name
    if not isinstance(value, str):
        raise ValueError(
            f"a dependency target must be a string (node id, test name, path, script or alias), "
            f"got {_type_name(value)} {value!r}"
        )
    text = value.strip()
    if not text:
        raise ValueError("a dependency target must not be empty")
    return text


def _targets(kwargs: Mapping[str, Any], key: str) -> list[str]:
    value = kwargs.get(key, ())
    if isinstance(value, str | os.PathLike | type) or callable(value):
        value = (value,)
    if not isinstance(value, Iterable):
        raise ValueError(f"{key}= must be a target or a list of targets, got {_type_name(value)} {value!r}")
    return [_target(t) for t in value]


class Depends(NamedTuple):
    """One ``depends`` marker, parsed."""

    targets: tuple[str, ...] = ()
    name: str | None = None
    before: tuple[str, ...] = ()
    any_of: tuple[str, ...] = ()
    soft: bool = False


def parse_depends_marker(args: Sequence[Any], kwargs: Mapping[str, Any]) -> Depends:
    """``depends(*targets, on=(), name=None, before=(), any_of=(), soft=False)``.

    A target is a node id, a test or class name, a path, a script or an alias (a class means all its tests);
    ``before=`` targets run after this item; ``any_of=`` is met when one of its targets passed; ``soft=True``
    makes every edge of the marker ordering only (the item runs whatever its dependencies ended in).
    """
    unknown = set(kwargs) - {"on", "name", "before", "any_of", "soft"}
    if unknown:
        raise ValueError(
            f"unexpected keyword argument(s) {', '.join(sorted(unknown))}; use on=, name=, before=, any_of=, soft="
        )
    targets = [_target(a) for a in args] + _targets(kwargs, "on")
    before = _targets(kwargs, "before")
    any_of = _targets(kwargs, "any_of")
    soft = kwargs.get("soft", False)
    if not isinstance(soft, bool):
        raise ValueError(f"soft= must be True or False, got {_type_name(soft)} {soft!r}")
    if soft and any_of:
        raise ValueError("any_of= cannot be soft: a soft dependency is met whatever happens")
    name = kwargs.get("name")
    if name is not None and (not isinstance(name, str) or not name.strip()):
        raise ValueError(f"name= must be a non-empty string, got {_type_name(name)} {name!r}")
    if not (targets or before or any_of) and name is None:
        raise ValueError("give at least one target (depends('test_a')) or an alias (depends(name='db'))")
    return Depends(
        targets=tuple(dict.fromkeys(targets)),
        name=None if name is None else name.strip(),
        before=tuple(dict.fromkeys(before)),
        any_of=tuple(dict.fromkeys(any_of)),
        soft=soft,
    )


def parse_depends(args: Sequence[Any], kwargs: Mapping[str, Any]) -> tuple[tuple[str, ...], str | None]:
    """``depends(*targets, on=(), name=None, ...)`` -> ``(targets, name)`` (see :func:`parse_depends_marker`)."""
    parsed = parse_depends_marker(args, kwargs)
    return parsed.targets, parsed.name


def parse_retry(args: Sequence[Any], kwargs: Mapping[str, Any]) -> RetryPolicy:
    """``retry(...)`` takes :class:`RetryPolicy`'s arguments."""
    from pytest_orchestrator.core.retry import RetryPolicy  # loaded where a retry marker is (it is not cheap)

    try:
        return RetryPolicy(*args, **kwargs)
    except TypeError as exc:
        raise ValueError(str(exc).replace("RetryPolicy.__init__()", "retry()")) from None


def parse_timeout(args: Sequence[Any], kwargs: Mapping[str, Any]) -> float:
    """``timeout(seconds)``; ``0`` or ``None`` disables a default timeout. Every form of pytest-timeout's marker is
    accepted: ``method=``, ``func_only=`` and ``disable_debugger_detection=`` are ignored."""
    kwargs = dict(kwargs)
    for ignored in ("method", "func_only", "disable_debugger_detection"):
        kwargs.pop(ignored, None)
    values = list(args)
    for key in ("seconds", "timeout"):
        if key in kwargs:
            values.append(kwargs.pop(key))
    if kwargs:
        raise ValueError(f"unexpected keyword argument(s) {', '.join(sorted(kwargs))}; use timeout(seconds)")
    if len(values) != 1:
        raise ValueError(f"expected one number of seconds, got {len(values)} values")
    value = values[0]
    if value is None:
        return 0.0
    if isinstance(value, str):
        try:
            value = float(value)
        except ValueError:
            raise ValueError(f"seconds must be a number, got {value!r}") from None
    if isinstance(value, bool) or not isinstance(value, int | float) or math.isnan(value):
        raise ValueError(f"seconds must be a number, got {_type_name(value)} {value!r}")
    return check_seconds(
        value,
        "seconds",
        zero=True,
        error=lambda _message: ValueError(f"seconds must be >= 0 (0 disables the timeout), got {value!r}"),
    )


def check_foreign_timeout(args: Sequence[Any], kwargs: Mapping[str, Any]) -> None:
    """A ``timeout`` marker pytest-timeout will read: reject (``ValueError``) what it would fail on with an
    internal error, so that the item gets a clean error instead. Its rules: ``timeout(timeout=None, method=None,
    func_only=None)``, at least one argument, ``timeout`` a number (or ``None``), ``method`` ``"signal"`` or
    ``"thread"``, ``func_only`` a bool."""
    names = ("timeout", "method", "func_only")
    if not args and not kwargs:
        raise ValueError("expected at least one argument: timeout(seconds, method=..., func_only=...)")
    if len(args) > len(names):
        raise ValueError(f"expected at most {len(names)} arguments (timeout, method, func_only), got {len(args)}")
    given = dict(zip(names, args, strict=False))
    for key, value in kwargs.items():
        if key not in names:
            raise ValueError(f"unexpected keyword argument {key!r}; use timeout(seconds, method=..., func_only=...)")
        given[key] = value
    seconds = given.get("timeout")
    if seconds is not None:
        try:
            float(seconds)
        except (TypeError, ValueError):
            raise ValueError(f"seconds must be a number, got {_type_name(seconds)} {seconds!r}") from None
    method = given.get("method")
    if method is not None and method not in ("signal", "thread"):
        raise ValueError(f"method must be 'signal' or 'thread', got {method!r}")
    func_only = given.get("func_only")
    if func_only is not None and not isinstance(func_only, bool):
        raise ValueError(f"func_only must be true or false, got {func_only!r}")


def parse_stage(args: Sequence[Any], kwargs: Mapping[str, Any]) -> str:
    """``stage(name)``."""
    kwargs = dict(kwargs)
    values = list(args)
    if "name" in kwargs:
        values.append(kwargs.pop("name"))
    if kwargs:
        raise ValueError(f"unexpected keyword argument(s) {', '.join(sorted(kwargs))}; use stage(name)")
    if len(values) != 1:
        raise ValueError(f"expected one stage name, got {len(values)} values")
    name = values[0]
    if not isinstance(name, str) or not name.strip():
        raise ValueError(f"the stage name must be a non-empty string, got {_type_name(name)} {name!r}")
    return name.strip()


def _signature(mark: pytest.Mark) -> str:
    parts = [repr(a) for a in mark.args] + [f"{k}={v!r}" for k, v in mark.kwargs.items()]
    text = ", ".join(parts)
    if len(text) > 60:
        text = text[:57] + "..."
    return f"@pytest.mark.{mark.name}({text})"


def evaluate_marks(item: pytest.Item, *, own_timeout: bool = True) -> ItemSpec:
    """The :class:`ItemSpec` of a Python test from its markers (closest wins, ``depends`` markers add up).

    ``own_timeout=False`` leaves the ``timeout`` marker to pytest-timeout, checked only against pytest-timeout's own
    rules (:func:`check_foreign_timeout`), so that a malformed one is this item's usage error and not an internal
    error of pytest-timeout's. Raises :class:`MarkerError` listing every malformed marker of the item.
    """
    marks = [mark for mark in item.iter_markers() if mark.name in SPEC_MARKS]
    if not marks:  # most items: nothing to parse
        return NO_SPEC
    problems: list[str] = []
    targets: list[str] = []
    aliases: list[str] = []
    soft: list[str] = []
    before: list[str] = []
    soft_before: list[str] = []
    any_of: list[tuple[str, ...]] = []
    parsers: dict[str, Any] = {"retry": parse_retry, "stage": parse_stage}
    parsers["timeout"] = parse_timeout if own_timeout else check_foreign_timeout
    values: dict[str, Any] = {}
    # one pass, closest marker first: the first retry/timeout/stage seen wins, every depends counts
    for mark in marks:
        name = mark.name
        if name == "depends":
            try:
                parsed = parse_depends_marker(mark.args, mark.kwargs)
            except ValueError as exc:
                problems.append(f"{_signature(mark)}: {exc}")
                continue
            (soft if parsed.soft else targets).extend(parsed.targets)
            (soft_before if parsed.soft else before).extend(parsed.before)
            if parsed.any_of:
                any_of.append(parsed.any_of)
            if parsed.name is not None:
                aliases.append(parsed.name)
        elif name in parsers and name not in values:
            try:
                values[name] = parsers[name](mark.args, mark.kwargs)
            except ValueError as exc:
                values[name] = None
                problems.append(f"{_signature(mark)}: {exc}")
    if problems:
        raise MarkerError("\n".join(f"{item.nodeid}: {p}" for p in problems))
    return ItemSpec(
        targets=tuple(dict.fromkeys(targets)),
        aliases=tuple(dict.fromkeys(aliases)),
        soft_targets=tuple(t for t in dict.fromkeys(soft) if t not in targets),
        before=tuple(dict.fromkeys(before)),
        soft_before=tuple(t for t in dict.fromkeys(soft_before) if t not in before),
        any_of=tuple(dict.fromkeys(any_of)),
        stage=values.get("stage"),
        retry=values.get("retry"),
        timeout=values.get("timeout"),
    )
