"""How to run (``RunOptions`` and the ``orchestrate run`` flags) and what that makes of each script's settings.

``add_run_arguments`` declares the ``run`` flags once: the ``orchestrate`` command's ``run`` and
``run_orchestrator()`` (scripts and pipelines alike) parse with them. A script's own timeout and retry win;
``--timeout`` and ``--retries`` fill in for scripts that set none. ``plan_outcomes`` (``orchestrate list``) and
``plan_levels`` (``--dry-run``) show the effective settings without running anything.
"""

from __future__ import annotations

import argparse
from collections.abc import Mapping
import dataclasses
import os
from pathlib import Path
from typing import TYPE_CHECKING
from typing import TextIO

from pytest_orchestrator.argtypes import number
from pytest_orchestrator.core.graph import generations
from pytest_orchestrator.core.graph import topological_order
from pytest_orchestrator.core.retry import RetryPolicy
from pytest_orchestrator.errors import CycleError
from pytest_orchestrator.orchestrator.plan import Plan
from pytest_orchestrator.orchestrator.plan import ScriptSpec
from pytest_orchestrator.reporting.summary import ScriptOutcome


if TYPE_CHECKING:
    from pytest_orchestrator.execution.cluster import ClusterExecutor

__all__ = [
    "CONFIG_SKIP_REASON",
    "DEFAULT_RETRY_DELAY",
    "DEFAULT_TIMEOUT",
    "RUN_EPILOG",
    "RUN_HELP",
    "RunOptions",
    "add_path_argument",
    "add_run_arguments",
    "add_selection_arguments",
    "effective_limits",
    "plan_levels",
    "plan_outcomes",
    "run_parser",
    "script_outcome",
    "target_path",
]

#: per-attempt timeout of a script that sets none (metadata, orchestrate.yaml or --timeout)
DEFAULT_TIMEOUT = 60.0
#: first delay between attempts when --retries gives a script its retries
DEFAULT_RETRY_DELAY = 0.5
#: the reason of a script with ``skip`` in the config
CONFIG_SKIP_REASON = "skipped by configuration"


@dataclasses.dataclass
class RunOptions:
    """How to run a plan (the ``orchestrate run`` flags)."""

    #: scripts at once (default: the number of CPUs)
    jobs: int | None = None
    #: per-attempt timeout for scripts that set none; ``0`` means no limit (default ``DEFAULT_TIMEOUT``)
    timeout: float | None = None
    #: extra attempts for scripts that set no ``retry``
    retries: int | None = None
    fail_fast: bool = False
    #: no live progress lines
    quiet: bool = False
    #: where run folders go (default ``.orchestrate/runs`` under the current folder)
    runs_dir: Path | None = None
    #: where progress lines go (default stderr)
    stream: TextIO | None = None
    #: extra environment for every script
    env: Mapping[str, str] | None = None
    #: the scripts' working folder (default: the current one)
    cwd: Path | None = None
    #: record the run in ``.orchestrate/state.db`` (the command does unless ``--no-state``; the library when asked)
    state: bool = False
    #: ``--resume``: ``True`` for the last unfinished run, a run id, or ``False``
    resume: bool | str = False
    #: ``-v``: each script's output is printed above its progress line as it finishes
    verbose: bool = False
    #: ``--executor``: where the scripts run: ``None`` here, or a Dask scheduler (``"dask://HOST:PORT"``), or an
    #: executor already open (a ``ClusterExecutor``; the caller closes it)
    executor: str | ClusterExecutor | None = None

    @property
    def effective_jobs(self) -> int:
        return self.jobs if self.jobs else os.cpu_count() or 1

    @classmethod
    def from_args(cls, args: argparse.Namespace) -> RunOptions:
        """The options that parsed ``run`` flags (see :func:`add_run_arguments`) ask for."""
        return cls(
            jobs=args.jobs,
            timeout=args.timeout,
            retries=args.retries,
            fail_fast=args.fail_fast,
            quiet=args.quiet,
            runs_dir=args.run_dir,
            state=not getattr(args, "no_state", False),
            resume=getattr(args, "resume", False) or False,
            verbose=bool(getattr(args, "verbose", False)),
            executor=getattr(args, "executor", None),
        )


# -- the ``orchestrate run`` flags, declared once ---------------------------------------------------------------
_positive_int = number(int, minimum=1, what="a whole number")
_count = number(int, minimum=0, what="a whole number")
_seconds = number(float, minimum=0, what="a number of seconds")


def _executor(value: str) -> str | None:
    """``--executor``: ``local`` (the default) or a Dask scheduler; checked here, connected to before the run."""
    from pytest_orchestrator.execution.executors import CLUSTER_SCHEMES
    from pytest_orchestrator.execution.executors import check_executor

    if value == "local":
        return None
    if not value.startswith(CLUSTER_SCHEMES):
        raise argparse.ArgumentTypeError(f"use 'local' or 'dask://HOST:PORT', not {value!r}")
    try:
        check_executor(value)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
    return value


def add_path_argument(parser: argparse.ArgumentParser, *, pipelines: bool = True) -> None:
    """The optional ``PATH`` of every ``orchestrate`` command (default ``scripts``; see :func:`target_path`)."""
    what = "a folder of scripts or a pipeline file (*.yaml)" if pipelines else "a folder of scripts"
    parser.add_argument("path", nargs="?", default=None, metavar="PATH", help=f"{what} (default: scripts)")


def add_run_arguments(parser: argparse.ArgumentParser) -> None:
    """The ``orchestrate run`` flags (without ``PATH``): the one declaration, for scripts and pipelines.

    The original module's flags are here too (``--scripts-dir``, ``-n``, ``-t``, ``-s``, ``-f``, ``-o``, ``-v``,
    ``--max-depth``, ``--generate-docs``), each doing what its name says on this engine.
    """
    parser.add_argument(
        "-j", "--jobs", type=_positive_int, metavar="N", help="scripts (or stages) at once (default: number of CPUs)"
    )
    parser.add_argument(
        "-t",
        "--timeout",
        type=_seconds,
        metavar="S",
        help="per-attempt timeout of scripts that set none (default 60, 0: none)",
    )
    parser.add_argument("--retries", type=_count, metavar="N", help="extra attempts for scripts that set no retry")
    parser.add_argument("--fail-fast", action="store_true", help="stop at the first failure (default: run on)")
    parser.add_argument(
        "--executor",
        type=_executor,
        metavar="WHERE",
        help="where scripts (or stages) run: 'local' (default) or the workers of the Dask scheduler "
        "'dask://HOST:PORT' (-j defaults to its worker threads; needs pytest-orchestrator[dask])",
    )
    output = parser.add_mutually_exclusive_group()
    output.add_argument("-q", "--quiet", action="store_true", help="no live progress lines")
    output.add_argument("-v", "--verbose", action="store_true", help="also print each script's output as it finishes")
    parser.add_argument(
        "-o",
        "--output-dir",
        "--run-dir",
        dest="run_dir",
        type=Path,
        metavar="DIR",
        help="where run folders (logs, summary.json) go (default: .orchestrate/runs)",
    )
    parser.add_argument("-n", "--dry-run", action="store_true", help="print the plan and run nothing")
    parser.add_argument(
        "--resume",
        nargs="?",
        const=True,
        default=False,
        metavar="RUN_ID",
        help="rerun only what did not complete in the last unfinished run (or in RUN_ID)",
    )
    parser.add_argument(
        "--no-state", action="store_true", help="do not record the run in .orchestrate/state.db (no --resume later)"
    )
    parser.add_argument(
        "--report", type=Path, metavar="PATH", help="also write the run report to PATH (.json or .html)"
    )
    parser.add_argument(
        "--json", action="store_true", help="print the run report as JSON on stdout instead of the summary"
    )
    add_selection_arguments(parser)
    parser.add_argument(
        "--generate-docs",
        type=Path,
        metavar="FILE",
        help="write a Markdown reference of the scripts (docstrings and metadata; nothing is run); - for stdout",
    )


def add_selection_arguments(parser: argparse.ArgumentParser) -> None:
    """Which scripts of the folder take part: ``--scripts-dir``, ``-s``, ``-f``, ``--max-depth``."""
    parser.add_argument("--scripts-dir", type=Path, metavar="DIR", help="the folder of scripts (the same as PATH)")
    parser.add_argument(
        "-s",
        "--subdirs",
        nargs="+",
        metavar="DIR",
        help="only the scripts under these subfolders of PATH (and what they depend on)",
    )
    parser.add_argument(
        "-f",
        "--filter",
        metavar="PATTERN",
        help="only the scripts whose name or path contains PATTERN or matches it as a glob (and their dependencies)",
    )
    parser.add_argument(
        "--max-depth",
        type=_count,
        metavar="N",
        help="look for scripts at most N folders below PATH (0: PATH itself; default: no limit)",
    )


def target_path(args: argparse.Namespace, default: str = "scripts") -> Path | str:
    """The folder or file the command works on: ``PATH`` or ``--scripts-dir`` (default ``scripts``).

    Returns the error message (a ``str``) when both are given and differ.
    """
    path: str | None = getattr(args, "path", None)
    scripts_dir: Path | None = getattr(args, "scripts_dir", None)
    if path is not None and scripts_dir is not None and Path(path).resolve() != scripts_dir.resolve():
        return f"PATH {path!r} and --scripts-dir {str(scripts_dir)!r} name different folders; give one"
    if path is not None:
        return Path(path)
    return scripts_dir if scripts_dir is not None else Path(default)


#: what ``orchestrate run`` does, in its help
RUN_HELP = "run a folder of scripts, or a pipeline file, in dependency order, in parallel"

#: the examples at the end of ``orchestrate run --help``
RUN_EPILOG = """\
PATH may be a folder of scripts (default: scripts) or a pipeline file (*.yaml, *.yml).
A scripts folder runs on after a failure (independent branches finish; --fail-fast stops);
a pipeline stops at its first failure unless it says fail_fast: false.

examples:
  orchestrate run scripts -j 4              # the scripts under scripts/, 4 at once
  orchestrate run examples/ci/pipeline.yaml # a pipeline file
  orchestrate run scripts -f 'clean_*'      # clean_* and what they depend on
  orchestrate run scripts --resume          # rerun what did not complete last time
  orchestrate run scripts --executor dask://10.0.0.5:8786  # on the workers of a Dask cluster
  orchestrate run scripts -n                # the plan, nothing run
  orchestrate run scripts --generate-docs docs/scripts.md

exit status: 0 all passed or skipped, 1 a failure, 2 usage or configuration error,
130 interrupted (Ctrl-C), 143 terminated (SIGTERM)
"""


def run_parser(prog: str = "orchestrate run") -> argparse.ArgumentParser:
    """A parser of ``orchestrate run``'s arguments alone: ``[PATH]`` and the run flags."""
    parser = argparse.ArgumentParser(
        prog=prog, description=RUN_HELP, epilog=RUN_EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    add_path_argument(parser)
    add_run_arguments(parser)
    return parser


def effective_limits(spec: ScriptSpec, options: RunOptions) -> tuple[float | None, RetryPolicy | None]:
    """The script's per-attempt timeout and retry policy: its own settings, else the run's defaults."""
    timeout = spec.settings.get("timeout")
    if timeout is None:
        timeout = options.timeout if options.timeout is not None else DEFAULT_TIMEOUT
    if timeout is not None and timeout <= 0:
        timeout = None
    policy = spec.settings.get("retry")
    if policy is None and options.retries:
        policy = RetryPolicy(max_attempts=options.retries + 1, initial_delay=DEFAULT_RETRY_DELAY)
    return timeout, policy


def script_outcome(spec: ScriptSpec, options: RunOptions) -> ScriptOutcome:
    """The script with its effective settings and nothing run yet (``status="not_run"``)."""
    timeout, policy = effective_limits(spec, options)
    return ScriptOutcome(
        name=spec.name,
        path=spec.rel,
        depends=list(spec.depends),
        stage=spec.settings.get("stage"),
        timeout=timeout,
        max_attempts=policy.max_attempts if policy else 1,
        retry_delay=policy.initial_delay if policy and policy.max_attempts > 1 else 0.0,
        reason=CONFIG_SKIP_REASON if spec.settings.get("skip") else None,
    )


def plan_outcomes(plan: Plan, options: RunOptions | None = None) -> list[ScriptOutcome]:
    """Every script of the plan with its effective settings, in dependency order, nothing run (for ``list``)."""
    options = options or RunOptions()
    try:
        order = topological_order(plan.graph)
    except CycleError:
        order = list(plan.scripts)
    return [script_outcome(plan.scripts[name], options) for name in order]


def plan_levels(plan: Plan, options: RunOptions | None = None) -> list[list[ScriptOutcome]]:
    """The scripts by level (for ``--dry-run``): each level only depends on earlier ones. Needs a valid plan."""
    options = options or RunOptions()
    return [[script_outcome(plan.scripts[n], options) for n in level] for level in generations(plan.graph)]
