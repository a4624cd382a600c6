"""How a job is written to the state file and read back: its target by import path, its trigger as a JSON spec.

A function is stored as ``"package.module:qualified.name"`` and must import back to the very same object, so
lambdas, nested functions and bound methods cannot be stored (``schedule`` says so when the scheduler has a state
store); a pipeline file or a scripts folder is stored as its absolute path. Triggers are stored as specs:
``{"kind": "cron", "expr": ..., "tz": ...}``, ``{"kind": "interval", "seconds": ..., "start_at": ...}``,
``{"kind": "once", "at": ...}``, ``{"kind": "file", ...}`` and ``{"kind": "event", "name": ...}``.
"""

from __future__ import annotations

import datetime as dt
import importlib
import json
import os
from pathlib import Path
import sys
from typing import Any

from pytest_orchestrator.core.workflow import Workflow
from pytest_orchestrator.schedule.triggers import CronTrigger
from pytest_orchestrator.schedule.triggers import IntervalTrigger
from pytest_orchestrator.schedule.triggers import OnceTrigger


__all__ = ["from_iso", "import_target", "iso", "target_ref", "trigger_from_spec", "trigger_spec"]


def iso(value: dt.datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


def from_iso(value: str | None) -> dt.datetime | None:
    return dt.datetime.fromisoformat(value) if value else None


def _zone_name(tz: dt.tzinfo | None) -> str | None:
    if tz is None:
        return None
    key = getattr(tz, "key", None)  # zoneinfo.ZoneInfo
    if isinstance(key, str):
        return key
    if tz is dt.UTC or tz == dt.UTC:
        return "UTC"
    raise ValueError(f"the time zone {tz!r} cannot be stored: give the trigger a zone name (tz='Europe/Berlin')")


def trigger_spec(trigger: Any) -> dict[str, Any]:
    """``trigger`` as JSON-ready data; ``ValueError`` for a trigger that cannot be stored."""
    if isinstance(trigger, CronTrigger):
        return {"kind": "cron", "expr": trigger.expr, "tz": _zone_name(trigger.tz)}
    if isinstance(trigger, IntervalTrigger):
        return {"kind": "interval", "seconds": trigger.seconds, "start_at": iso(trigger.start_at)}
    if isinstance(trigger, OnceTrigger):
        return {"kind": "once", "at": iso(trigger.at)}
    kind = type(trigger).__name__
    if kind == "FileTrigger" and type(trigger).__module__.startswith("pytest_orchestrator."):
        return {
            "kind": "file",
            "paths": [str(p) for p in trigger.paths],
            "patterns": list(trigger.patterns),
            "ignore": list(trigger.ignore),
            "debounce": trigger.debounce,
            "backend": trigger.backend,
            "poll_interval": trigger.poll_interval,
        }
    if kind == "EventTrigger" and type(trigger).__module__.startswith("pytest_orchestrator."):
        return {"kind": "event", "name": trigger.name}
    raise ValueError(
        f"a {kind} cannot be stored in the state file: use cron(...), every(...), at(...), OnceTrigger, "
        "FileTrigger or EventTrigger, or a scheduler without state"
    )


def trigger_from_spec(spec: dict[str, Any]) -> Any:
    """The trigger ``trigger_spec`` described; ``ValueError`` for a spec this version does not know."""
    kind = spec.get("kind")
    if kind == "cron":
        return CronTrigger(spec["expr"], spec.get("tz"))
    if kind == "interval":
        return IntervalTrigger(float(spec["seconds"]), from_iso(spec.get("start_at")))
    if kind == "once":
        at = from_iso(spec["at"])
        assert at is not None
        return OnceTrigger(at)
    if kind == "file":
        from pytest_orchestrator.triggers.files import FileTrigger

        return FileTrigger(
            spec["paths"],
            patterns=spec["patterns"],
            ignore=spec["ignore"],
            debounce=spec["debounce"],
            backend=spec["backend"],
            poll_interval=spec["poll_interval"],
        )
    if kind == "event":
        from pytest_orchestrator.triggers.events import EventTrigger

        return EventTrigger(spec["name"])
    raise ValueError(f"unknown trigger kind {kind!r} in the state file")


def import_target(ref: str) -> Any:
    """The object at ``"package.module:qualified.name"`` (importing the module); ``ImportError`` if it is not there,
    ``ValueError`` for a reference that is not of that form."""
    module_name, sep, qualname = ref.partition(":")
    if not sep or not module_name or not qualname:
        raise ValueError(f"an import path is 'package.module:function', got {ref!r}")
    module = sys.modules["__main__"] if module_name == "__main__" else importlib.import_module(module_name)
    value: Any = module
    for part in qualname.split("."):
        try:
            value = getattr(value, part)
        except AttributeError:
            raise ImportError(f"module {module_name!r} has no attribute {qualname!r}", name=module_name) from None
    return value


def target_ref(target: Any) -> tuple[str, str]:
    """``(kind, reference)`` under which ``target`` is stored: ``("import", "module:name")`` or ``("path", path)``;
    ``ValueError`` saying why when it cannot be stored."""
    if isinstance(target, str | os.PathLike):
        return "path", str(Path(target).resolve())
    if isinstance(target, Workflow):
        raise ValueError(
            f"workflow {target.name!r} cannot be stored in the state file: schedule the function that builds it "
            "(a module-level function returning the Workflow)"
        )
    module = getattr(target, "__module__", None)
    qualname = getattr(target, "__qualname__", None)
    if not isinstance(module, str) or not isinstance(qualname, str) or "<" in qualname:
        raise ValueError(
            f"{target!r} cannot be stored in the state file: a job's function must be importable by name "
            "(defined at the top level of a module; not a lambda, a nested function or a bound method)"
        )
    ref = f"{module}:{qualname}"
    try:
        found = import_target(ref)
    except (ImportError, ValueError):
        found = None
    if found is not target:
        raise ValueError(
            f"{target!r} cannot be stored in the state file: {ref!r} does not import back to it (a job's function "
            "must be defined at the top level of a module; not a lambda, a nested function or a bound method)"
        )
    return "import", ref


def check_json(value: Any, what: str) -> Any:
    """``value`` if it survives a JSON round trip, else ``ValueError`` (a stored job's args and kwargs)."""
    try:
        if json.loads(json.dumps(value)) == value:
            return value
    except (TypeError, ValueError):
        pass
    raise ValueError(f"{what} of a job stored in the state file must be JSON data (str, numbers, lists, dicts)")
