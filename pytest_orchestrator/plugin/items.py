"""Scripts as test items: :class:`ScriptFile` (the collector) and :class:`ScriptItem` (one item per script).

A script item runs its script through :func:`pytest_orchestrator.runners.run_script` (a subprocess in its own
process group, killed as a group on timeout), with the settings :func:`~pytest_orchestrator.scripts.config.
get_script_config` gives it (inline PEP 723 metadata, then ``orchestrate.yaml``). Exit status 0 (or an allowed
status) passes, 77 skips with the script's last stderr line as the reason, anything else fails showing the
command, the status and the tail of stdout and stderr. When coverage measures the pytest process, ``.py``
scripts run under ``coverage run --parallel-mode`` so their lines count after ``coverage combine``.
"""

from __future__ import annotations

from collections.abc import Mapping
from collections.abc import Sequence
import dataclasses
import os
from pathlib import Path
import sys
import time
from typing import TYPE_CHECKING
from typing import Any

import pytest

from pytest_orchestrator.core.retry import RetryPolicy
from pytest_orchestrator.errors import OrchestratorTimeoutError
from pytest_orchestrator.errors import StepError
from pytest_orchestrator.plugin.attempts import run_judged_attempts
from pytest_orchestrator.plugin.markers import ItemSpec
from pytest_orchestrator.plugin.markers import spec_key
from pytest_orchestrator.plugin.names import rejected_config_key


if TYPE_CHECKING:
    from pytest_orchestrator.plugin.compat import TerminalRepr
    from pytest_orchestrator.plugin.compat import TracebackStyle
    from pytest_orchestrator.runners import ScriptResult


__all__ = [
    "ScriptFailure",
    "ScriptFile",
    "ScriptItem",
    "ScriptRunner",
    "ScriptSettings",
    "ScriptTimeout",
    "SettingsLoader",
    "coverage_prefix",
    "execute_script",
    "rejected_config_key",
]

_TAIL_LINES = 20


# --------------------------------------------------------------------------------------------------------------
# which files are scripts
# --------------------------------------------------------------------------------------------------------------


# --------------------------------------------------------------------------------------------------------------
# settings
# --------------------------------------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class ScriptSettings:
    """A script's effective settings (see :func:`~pytest_orchestrator.scripts.config.get_script_config`)."""

    depends: tuple[str, ...] = ()
    timeout: float | None = None
    retry: RetryPolicy | None = None
    args: tuple[str, ...] = ()
    env: Mapping[str, str] = dataclasses.field(default_factory=dict)
    stage: str | None = None
    allowed_exit_codes: tuple[int, ...] = (0,)
    skip: bool = False
    #: the config file the settings came from, if any
    config_path: str | None = None

    def spec(self) -> ItemSpec:
        return ItemSpec(targets=self.depends, stage=self.stage, retry=self.retry, timeout=self.timeout)


class SettingsLoader:
    """Loads script settings, reading each folder's config once per session.

    The config of a script is the one :func:`~pytest_orchestrator.scripts.config.load_config` finds walking up
    from the script's folder. Raises :class:`ConfigError` (with file and line) for malformed files.
    """

    def __init__(self) -> None:
        self._configs: dict[Path, Any] = {}

    def load(self, path: Path) -> ScriptSettings:
        from pytest_orchestrator.scripts.config import get_script_config
        from pytest_orchestrator.scripts.config import load_config

        folder = path.parent
        config = self._configs.get(folder)
        if config is None:
            config = self._configs[folder] = load_config(folder)
        data = get_script_config(path, config=config)
        return ScriptSettings(
            depends=tuple(data.get("depends") or ()),
            timeout=data.get("timeout"),
            retry=data.get("retry"),
            args=tuple(str(a) for a in data.get("args") or ()),
            env=dict(data.get("env") or {}),
            stage=data.get("stage"),
            allowed_exit_codes=tuple(data.get("allowed_exit_codes") or (0,)),
            skip=bool(data.get("skip")),
            config_path=None if config.path is None else str(config.path),
        )


_loader_key = pytest.StashKey[SettingsLoader]()


def settings_loader(config: pytest.Config) -> SettingsLoader:
    """The session's loader (one per config, so each config file is read once)."""
    loader = config.stash.get(_loader_key, None)
    if loader is None:
        loader = config.stash[_loader_key] = SettingsLoader()
    return loader


# --------------------------------------------------------------------------------------------------------------
# running
# --------------------------------------------------------------------------------------------------------------


def coverage_prefix() -> list[str] | None:
    """The command prefix that runs a ``.py`` script under coverage, when coverage measures this process.

    Uses coverage's own ``coverage run --parallel-mode``, writing next to the active data file with the active
    config file, source and branch settings; ``coverage combine`` then merges the scripts' data. ``None`` when
    coverage is not measuring, or when coverage's own subprocess support (``COVERAGE_PROCESS_START`` /
    ``[run] patch = subprocess``) will measure the child anyway.
    """
    if "coverage" not in sys.modules:
        return None
    if os.environ.get("COVERAGE_PROCESS_START") or os.environ.get("COVERAGE_PROCESS_CONFIG"):
        return None
    import coverage

    current = getattr(coverage.Coverage, "current", None)
    cov = current() if current is not None else None
    if cov is None:
        return None
    command = [sys.executable, "-m", "coverage", "run", "--parallel-mode"]
    data_file = cov.get_option("run:data_file")
    if isinstance(data_file, str) and data_file:
        command.append(f"--data-file={os.path.abspath(data_file)}")
    rcfile = getattr(getattr(cov, "config", None), "config_file", None)
    if isinstance(rcfile, str) and rcfile:
        command.append(f"--rcfile={os.path.abspath(rcfile)}")
    source = cov.get_option("run:source")
    if source:
        command.append("--source=" + ",".join(str(s) for s in source))
    if cov.get_option("run:branch"):
        command.append("--branch")
    return command


def execute_script(
    path: Path,
    *,
    args: Sequence[str] = (),
    env: Mapping[str, str] | None = None,
    timeout: float | None = None,
    allowed_exit_codes: Sequence[int] = (0,),
    cwd: Path | None = None,
) -> ScriptResult:
    """Run a script once (no retries: the caller decides) and return its :class:`ScriptResult`."""
    from pytest_orchestrator.runners import run_script

    return run_script(
        path,
        args=args,
        env=env,
        timeout=timeout,
        allowed_exit_codes=allowed_exit_codes,
        cwd=cwd,
        retry=None,
        interpreter=coverage_prefix() if path.suffix.lower() == ".py" else None,
    )


class ScriptFailure(StepError):
    """A script item did not pass; carries the :class:`ScriptResult`."""

    def __init__(self, message: str, result: ScriptResult) -> None:
        super().__init__(message)
        self.result = result

    def __str__(self) -> str:
        return self.message


class ScriptTimeout(ScriptFailure, OrchestratorTimeoutError):
    """A script item ran out of time; its process group was killed."""


def _tail(text: str, lines: int = _TAIL_LINES) -> tuple[list[str], int]:
    all_lines = text.rstrip("\n").splitlines()
    return all_lines[-lines:], len(all_lines)


def _rel(path: Path, rootdir: Path) -> str:
    try:
        return path.relative_to(rootdir).as_posix()
    except ValueError:
        return str(path)


def describe_failure(result: ScriptResult, shown_path: str) -> str:
    """The text a failing script item shows: what ran, how it ended, and the end of its output."""
    import shlex

    if result.status == "timeout":
        head = f"{shown_path} {result.error} (process group killed)"
    elif result.status == "error":
        head = f"{shown_path} could not run: {result.error}"
    else:
        head = f"{shown_path} {result.error or 'failed'}"
    lines = [head]
    if result.command:
        lines.append("command: " + shlex.join(result.command))
    lines.append(f"exit status: {result.exit_code}")
    for name in ("stdout", "stderr"):
        tail, total = _tail(getattr(result, name))
        if not tail:
            lines.append(f"----- {name}: (empty) -----")
            continue
        cut: str = getattr(result, f"{name}_truncation", "")
        if cut:  # the head was dropped to bound memory: say what was kept and what was dropped
            kept = f"last {len(tail)} of the {total} lines kept" if total > len(tail) else f"the {total} lines kept"
            shown = f"{kept}; {cut.strip('()')}"
        else:
            shown = f"last {len(tail)} of {total} lines" if total > len(tail) else f"{total} lines"
        lines.append(f"----- {name} ({shown}) -----")
        lines.extend(tail)
    return "\n".join(lines)


# --------------------------------------------------------------------------------------------------------------
# collection
# --------------------------------------------------------------------------------------------------------------


class ScriptFile(pytest.File):
    """A script file: collects one :class:`ScriptItem` named after the script's stem."""

    def collect(self) -> list[pytest.Item]:
        from pytest_orchestrator.scripts.errors import ConfigError

        try:
            settings = settings_loader(self.config).load(self.path)
        except ConfigError as exc:
            # noted for the session plugin: a rejected configuration is a usage error, and nothing runs
            self.config.stash.setdefault(rejected_config_key, []).append(exc.message)
            raise
        item = ScriptItem.from_parent(self, name=self.path.stem, settings=settings)
        return [item]

    def repr_failure(self, excinfo: pytest.ExceptionInfo[BaseException]) -> str | TerminalRepr:  # type: ignore[override]
        from pytest_orchestrator.scripts.errors import ConfigError

        if isinstance(excinfo.value, ConfigError):
            return excinfo.value.message
        return super().repr_failure(excinfo)


class ScriptItem(pytest.Item):
    """One script run as a test item (node id ``scripts/load.py::load``)."""

    def __init__(self, *, settings: ScriptSettings, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.settings = settings
        self.result: ScriptResult | None = None
        self.stash[spec_key] = settings.spec()
        if settings.stage is not None:
            self.add_marker(pytest.mark.stage(settings.stage))
        if settings.skip:
            where = f" ({settings.config_path})" if settings.config_path else ""
            self.add_marker(pytest.mark.skip(reason=f"skipped by the orchestrate config{where}"))

    @property
    def shown_path(self) -> str:
        return _rel(self.path, self.config.rootpath)

    def effective_timeout(self) -> float | None:
        timeout = self.settings.timeout
        if timeout is None:
            timeout = self.config.getoption("orchestrate_timeout", None)
        return timeout or None

    def runtest(self) -> None:
        timeout = self.effective_timeout()
        result = execute_script(
            self.path,
            args=self.settings.args,
            env=self.settings.env,
            timeout=timeout,
            allowed_exit_codes=self.settings.allowed_exit_codes,
            cwd=self.config.rootpath,
        )
        self.result = result
        if result.status == "passed":
            # shown with -rP; a failure shows the tails in its own message instead
            for name in ("stdout", "stderr"):
                text = getattr(result, name)
                if text:
                    self.add_report_section("call", name, text)
            return
        if result.status == "skipped":
            raise pytest.skip.Exception(result.skip_reason, _use_item_location=True)
        if result.status == "timeout":
            raise ScriptTimeout(f"{self.shown_path} {result.error}", result)
        raise ScriptFailure(f"{self.shown_path} {result.error or result.status}", result)

    def repr_failure(
        self, excinfo: pytest.ExceptionInfo[BaseException], style: TracebackStyle | None = None
    ) -> str | TerminalRepr:
        if isinstance(excinfo.value, ScriptFailure):
            return describe_failure(excinfo.value.result, self.shown_path)
        return super().repr_failure(excinfo, style)

    def reportinfo(self) -> tuple[Path, int, str]:
        return self.path, 0, f"script {self.shown_path}"


# --------------------------------------------------------------------------------------------------------------
# the run_script fixture
# --------------------------------------------------------------------------------------------------------------


def _script_error(result: ScriptResult) -> BaseException | None:
    """What a retry policy judges of a script run: a timeout is a ``TimeoutError``, a failure a ``StepError``
    (their message is the result's error); a pass, a skip or a script that could not run is never retried."""
    if result.status == "timeout":
        return OrchestratorTimeoutError(result.error or "timeout")
    if result.status == "failed":
        return StepError(result.error or "failed")
    return None


class ScriptRunner:
    """``run_script(path, *args, timeout=None, env=None) -> ScriptResult``: run a script like a script item.

    A relative ``path`` is taken relative to the rootdir. The script's settings (inline metadata, then
    ``orchestrate.yaml``) apply: their args come before ``args``, ``env`` is merged over theirs, ``timeout``
    replaces theirs, and their retry policy retries a failed or timed-out run (through the one attempt loop,
    consulting its ``retry_on``). It never raises for a failing script: look at ``result.status`` /
    ``result.exit_code``.
    """

    def __init__(self, config: pytest.Config) -> None:
        self.config = config

    def __call__(
        self,
        path: str | os.PathLike[str],
        *args: str,
        timeout: float | None = None,
        env: Mapping[str, str] | None = None,
    ) -> ScriptResult:
        script = Path(path)
        if not script.is_absolute():
            script = self.config.rootpath / script
        if not script.is_file():
            pytest.fail(f"run_script: no such script: {script}", pytrace=False)
        from pytest_orchestrator.scripts.errors import ConfigError

        try:
            settings = settings_loader(self.config).load(script)
        except ConfigError as exc:
            pytest.fail(f"run_script: {exc.message}", pytrace=False)
        if timeout is None:
            timeout = settings.timeout or self.config.getoption("orchestrate_timeout", None)
        start = time.monotonic()

        def attempt(number: int) -> ScriptResult:
            return execute_script(
                script,
                args=[*settings.args, *map(str, args)],
                env={**settings.env, **(env or {})},
                timeout=timeout,
                allowed_exit_codes=settings.allowed_exit_codes,
                cwd=self.config.rootpath,
            )

        outcome = run_judged_attempts(attempt, settings.retry, judge=_script_error)
        result = outcome.value
        assert result is not None  # an attempt that returned no result raised instead
        result.attempts = outcome.attempts
        result.attempt_errors = [str(error) for error in outcome.errors]
        result.execution_time = time.monotonic() - start
        return result
