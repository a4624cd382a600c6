"""Pipeline definitions: ``StageConfig``, ``PipelineConfig`` and ``load_pipeline`` (YAML with file:line errors).

A pipeline file::

    name: ci
    variables: {PYTHONUNBUFFERED: "1"}     # exported to every stage
    timeout: 1800                          # the whole pipeline (seconds)
    fail_fast: true
    interrupt_grace: 30                    # after Ctrl-C / SIGTERM, seconds the ``when: always`` stages get
    stages:                                # a list of mappings with ``name`` ...
      - name: lint
        commands: ["python -m compileall -q src"]
      - name: unit
        pytest: ["tests", "-q"]
        retry: 1
      - name: cleanup
        when: always
        commands: ["rm -rf build"]

``stages`` may also be a mapping ``name -> stage``. ``load_pipeline`` (in ``loader.py``) reads such a file; every
mistake is a :class:`ConfigError` that names the stage (and, from a file, starts with ``<file>:<line>:``).

Dependencies: ``needs: [a, b]`` names them and ``needs: []`` means none. A stage without ``needs`` waits for the
closest earlier stage that has ``when: on_success``; a stage with ``when: always`` or ``when: on_failure`` and no
``needs`` waits for *every* earlier stage (so a cleanup or a failure notice sees the whole pipeline, and the stages
after it do not wait for it).
"""

from __future__ import annotations

from collections.abc import Mapping
from collections.abc import Sequence
import dataclasses
from pathlib import Path
import shlex
from typing import Any

from pytest_orchestrator.core.graph import close_matches
from pytest_orchestrator.core.graph import find_cycle
from pytest_orchestrator.core.limits import check_seconds
from pytest_orchestrator.scripts.errors import ConfigError


__all__ = [
    "DEFAULT_INTERRUPT_GRACE",
    "PIPELINE_KEYS",
    "RETRY_INITIAL_DELAY",
    "STAGE_KEYS",
    "TRIGGER_RULE_OF",
    "WHEN_VALUES",
    "PipelineConfig",
    "StageConfig",
]

WHEN_VALUES = ("on_success", "always", "on_failure")
#: ``when`` -> the engine's trigger rule
TRIGGER_RULE_OF = {"on_success": "all_success", "always": "all_done", "on_failure": "one_failed"}
#: seconds before the first retry of a stage; it doubles for each further attempt (at most 10 s)
RETRY_INITIAL_DELAY = 0.5

STAGE_KEYS = (
    "name",
    "commands",
    "script",
    "pytest",
    "needs",
    "when",
    "allow_failure",
    "timeout",
    "retry",
    "retry_delay",
    "environment",
    "shell",
)
PIPELINE_KEYS = ("name", "variables", "timeout", "fail_fast", "interrupt_grace", "stages")
#: seconds a pipeline's ``when: always`` stages get to run after Ctrl-C or SIGTERM, unless it says otherwise
DEFAULT_INTERRUPT_GRACE = 30.0


def _error(message: str, *, stage: str | None = None, key: str | None = None, **context: Any) -> ConfigError:
    where = f"stage {stage!r}: " if stage is not None else ""
    return ConfigError(where + message, stage=stage, key=key, **context)


def _seconds(value: Any, what: str, stage: str | None, *, zero: bool = False) -> float:
    """``check_seconds``, failing with a ``ConfigError`` that names the stage and key (the loader adds file:line)."""
    return check_seconds(value, what, zero=zero, error=lambda message: _error(message, stage=stage, key=what))


def _flag(value: Any, what: str, stage: str | None) -> bool:
    if not isinstance(value, bool):
        raise _error(f"{what} must be true or false, got {value!r}", stage=stage, key=what)
    return value


def _env(value: Any, what: str, stage: str | None) -> dict[str, str]:
    """Environment values: strings; numbers are written out, booleans become ``true`` / ``false``."""
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise _error(f"{what} must be a mapping of NAME: value, got {type(value).__name__}", stage=stage, key=what)
    out: dict[str, str] = {}
    for name, item in value.items():
        if not isinstance(name, str) or not name or "=" in name:
            raise _error(f"{what}: invalid variable name {name!r}", stage=stage, key=what)
        if isinstance(item, bool):
            out[name] = "true" if item else "false"
        elif isinstance(item, str | int | float):
            out[name] = str(item)
        else:
            raise _error(
                f"{what}: {name} must be a string or a number, got {type(item).__name__}", stage=stage, key=what
            )
    return out


def _strings(value: Any, what: str, stage: str | None, *, split: bool = False) -> list[str]:
    """A string or a list of strings as a list (``split``: a single string is split like a shell would)."""
    if isinstance(value, str):
        if not split:
            return [value]
        try:
            return shlex.split(value)
        except ValueError as exc:
            raise _error(f"{what}: cannot split {value!r}: {exc}", stage=stage, key=what) from None
    if isinstance(value, Sequence) and all(isinstance(v, str) for v in value):
        return list(value)
    raise _error(f"{what} must be a string or a list of strings, got {value!r}", stage=stage, key=what)


@dataclasses.dataclass
class StageConfig:
    """One pipeline stage: what it runs and when.

    A stage runs exactly one of: ``commands`` (each line through ``/bin/sh -c``, stopping at the first that fails;
    with ``shell=False`` a line is split with :mod:`shlex` and run without a shell), ``script`` (a script path,
    optionally followed by arguments, run with ``run_script``) or ``pytest`` (arguments for
    ``python -m pytest --orchestrate``). ``when`` is ``on_success``, ``always`` (cleanup) or ``on_failure``.
    ``retry`` extra attempts wait ``retry_delay`` seconds, then twice as long each time. ``allow_failure`` turns a
    failure into a warning. ``timeout`` (seconds, per attempt) kills the stage's processes.

    Bad values raise :class:`ConfigError` (context: ``stage``, ``key``).
    """

    name: str
    commands: Sequence[str] = ()
    needs: Sequence[str] | None = None
    allow_failure: bool = False
    timeout: float = 300
    retry: int = 0
    environment: Mapping[str, Any] = dataclasses.field(default_factory=dict)
    when: str = "on_success"
    script: str | None = None
    pytest: Sequence[str] | str | None = None
    shell: bool = True
    retry_delay: float = RETRY_INITIAL_DELAY

    def __post_init__(self) -> None:
        name = self.name
        if not isinstance(name, str) or not name.strip():
            raise _error(
                f"a stage needs a non-empty name, got {name!r}", stage=None if name is None else str(name), key="name"
            )
        self.commands = _strings(self.commands, "commands", name)
        if any(not c.strip() for c in self.commands):
            raise _error("commands: a command is empty", stage=name, key="commands")
        self.needs = None if self.needs is None else _strings(self.needs, "needs", name)
        if self.script is not None and (not isinstance(self.script, str) or not self.script.strip()):
            raise _error(f"script must be a path (and arguments), got {self.script!r}", stage=name, key="script")
        self.pytest = None if self.pytest is None else _strings(self.pytest, "pytest", name, split=True)
        given = [k for k in ("commands", "script", "pytest") if getattr(self, k)]
        if not given:
            raise _error("nothing to run: give commands, script or pytest", stage=name, key="commands")
        if len(given) > 1:
            raise _error(f"give only one of commands, script or pytest, not {' and '.join(given)}", stage=name)
        if self.when not in WHEN_VALUES:
            hint = close_matches(str(self.when), WHEN_VALUES)
            raise _error(
                f"when must be one of {', '.join(WHEN_VALUES)}, got {self.when!r}"
                + (f" (did you mean {hint[0]!r}?)" if hint else ""),
                stage=name,
                key="when",
            )
        self.allow_failure = _flag(self.allow_failure, "allow_failure", name)
        self.shell = _flag(self.shell, "shell", name)
        self.timeout = _seconds(self.timeout, "timeout", name)
        if isinstance(self.retry, bool) or not isinstance(self.retry, int) or self.retry < 0:
            raise _error(
                f"retry is a number of extra attempts (0 or more), got {self.retry!r}", stage=name, key="retry"
            )
        _seconds(self.retry_delay, "retry_delay", name, zero=True)
        self.environment = _env(self.environment, "environment", name)

    @property
    def kind(self) -> str:
        """``"commands"``, ``"script"`` or ``"pytest"``."""
        return "script" if self.script else "pytest" if self.pytest else "commands"

    @property
    def trigger_rule(self) -> str:
        return TRIGGER_RULE_OF[self.when]

    @property
    def pytest_args(self) -> list[str]:
        return list(self.pytest or ())

    def to_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {"name": self.name}
        if self.commands:
            data["commands"] = list(self.commands)
        if self.script:
            data["script"] = self.script
        if self.pytest is not None:
            data["pytest"] = self.pytest_args
        if self.needs is not None:
            data["needs"] = list(self.needs)
        data.update(
            when=self.when,
            allow_failure=self.allow_failure,
            timeout=self.timeout,
            retry=self.retry,
            retry_delay=self.retry_delay,
            environment=dict(self.environment),
            shell=self.shell,
        )
        return data


@dataclasses.dataclass
class PipelineConfig:
    """A named list of stages, the variables every stage sees, a time limit and the fail-fast switch.

    ``interrupt_grace``: after Ctrl-C or SIGTERM (``orchestrate run``), the stages that run are killed and the
    ``when: always`` stages still run, for at most this many seconds (0: they are killed too, at once).
    ``stages`` may hold ``StageConfig`` objects or mappings of their fields. Raises :class:`ConfigError` for a
    duplicate stage name, a ``needs`` naming no stage (with close matches) or a dependency cycle (with its path).
    """

    name: str
    stages: Sequence[StageConfig | Mapping[str, Any]]
    variables: Mapping[str, Any] = dataclasses.field(default_factory=dict)
    timeout: float = 3600
    fail_fast: bool = True
    interrupt_grace: float = DEFAULT_INTERRUPT_GRACE
    #: the file it was loaded from, if any
    path: Path | None = dataclasses.field(default=None, compare=False)
    #: ``{stage: line}`` in that file (for annotations that point at a stage)
    stage_lines: dict[str, int] = dataclasses.field(default_factory=dict, compare=False, repr=False)

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not self.name.strip():
            raise _error(f"the pipeline needs a non-empty name, got {self.name!r}", key="name")
        self.variables = _env(self.variables, "variables", None)
        self.timeout = _seconds(self.timeout, "timeout", None)
        self.fail_fast = _flag(self.fail_fast, "fail_fast", None)
        self.interrupt_grace = _seconds(self.interrupt_grace, "interrupt_grace", None, zero=True)
        if isinstance(self.stages, str | bytes) or not isinstance(self.stages, Sequence):
            raise _error(f"stages must be a list of stages, got {type(self.stages).__name__}", key="stages")
        stages: list[StageConfig] = []
        for item in self.stages:
            if isinstance(item, StageConfig):
                stages.append(item)
            elif isinstance(item, Mapping):
                stages.append(_stage_from_mapping(item))
            else:
                raise _error(f"a stage must be a mapping, got {type(item).__name__}: {item!r}", key="stages")
        if not stages:
            raise _error("the pipeline has no stages", key="stages")
        seen: set[str] = set()
        for stage in stages:
            if stage.name in seen:
                raise _error("duplicate stage name", stage=stage.name, key="name")
            seen.add(stage.name)
        self.stages = stages
        graph = self.dependencies()
        for stage in stages:
            for dep in stage.needs or ():
                if dep not in graph:
                    hints = close_matches(dep, [s for s in graph if s != stage.name])
                    raise _error(
                        f"needs unknown stage {dep!r}"
                        + ("; did you mean " + " or ".join(repr(h) for h in hints) + "?" if hints else ""),
                        stage=stage.name,
                        key="needs",
                        missing=dep,
                        suggestions=hints,
                    )
        cycle = find_cycle(graph)
        if cycle is not None:
            raise _error("dependency cycle: " + " -> ".join(cycle), stage=cycle[0], key="needs", cycle=list(cycle))

    @property
    def stage_list(self) -> list[StageConfig]:
        """The stages, as ``StageConfig`` objects (``__post_init__`` converted any mappings)."""
        return [s for s in self.stages if isinstance(s, StageConfig)]

    def stage(self, name: str) -> StageConfig:
        for s in self.stage_list:
            if s.name == name:
                return s
        raise KeyError(name)

    def dependencies(self) -> dict[str, list[str]]:
        """``{stage: the stages it waits for}``, with the implicit rule for stages without ``needs`` applied."""
        graph: dict[str, list[str]] = {}
        earlier: list[str] = []
        previous_regular: str | None = None
        for stage in self.stage_list:
            if stage.needs is not None:
                graph[stage.name] = list(dict.fromkeys(stage.needs))
            elif stage.when != "on_success":
                graph[stage.name] = list(earlier)
            else:
                graph[stage.name] = [previous_regular] if previous_regular is not None else []
            earlier.append(stage.name)
            if stage.when == "on_success":
                previous_regular = stage.name
        return graph

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "variables": dict(self.variables),
            "timeout": self.timeout,
            "fail_fast": self.fail_fast,
            "interrupt_grace": self.interrupt_grace,
            "stages": [s.to_dict() for s in self.stage_list],
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], *, path: Path | None = None) -> PipelineConfig:
        """Build from the structure of a pipeline file (unknown keys raise ``ConfigError``)."""
        _check_keys(data, PIPELINE_KEYS, None)
        stages = data.get("stages")
        if isinstance(stages, Mapping):
            stages = [_named(name, body) for name, body in stages.items()]
        kwargs = {k: v for k, v in data.items() if k != "stages"}
        kwargs.setdefault("name", path.stem if path is not None else "pipeline")
        return cls(stages=stages if stages is not None else [], path=path, **kwargs)


def _named(name: Any, body: Any) -> Any:
    if body is None:
        body = {}
    if isinstance(body, Mapping):
        if "name" in body and body["name"] != name:
            raise _error(f"the name {body['name']!r} differs from the key {name!r}", stage=str(name), key="name")
        return {"name": name, **body}
    return body


def _check_keys(data: Mapping[str, Any], allowed: tuple[str, ...], stage: str | None) -> None:
    for key in data:
        if key not in allowed:
            hints = close_matches(str(key), allowed)
            where = "stage key" if stage is not None else "pipeline key"
            raise _error(
                f"unknown {where} {key!r}"
                + (f" (did you mean {hints[0]!r}?)" if hints else f"; expected one of {', '.join(allowed)}"),
                stage=stage,
                key=str(key),
                suggestions=hints,
            )


def _stage_from_mapping(data: Mapping[str, Any]) -> StageConfig:
    name = data.get("name")
    _check_keys(data, STAGE_KEYS, name if isinstance(name, str) else "?")
    if name is None:
        raise _error("a stage needs a name", key="name")
    return StageConfig(**{str(k): v for k, v in data.items()})
