"""``run_orchestrator()``: the library entry point of ``orchestrate run`` (the command line calls it).

``PATH`` is a folder of scripts (run as a plan, :mod:`.execute`) or a pipeline file (``*.yaml`` / ``*.yml``,
:mod:`.pipeline`); both go through the one run driver. Exit status: 0 success, 1 a script or stage failed, 2 bad
input (missing folder, bad metadata or config, unknown dependency, cycle, invalid pipeline), 130 interrupted.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from pathlib import Path
import sys

from pytest_orchestrator.errors import StateError
from pytest_orchestrator.orchestrator.driver import RunListener
from pytest_orchestrator.orchestrator.execute import run_plan
from pytest_orchestrator.orchestrator.options import RunOptions
from pytest_orchestrator.orchestrator.options import plan_levels
from pytest_orchestrator.orchestrator.options import run_parser
from pytest_orchestrator.orchestrator.pipeline import run_pipeline_file
from pytest_orchestrator.orchestrator.plan import Plan
from pytest_orchestrator.orchestrator.plan import build_plan
from pytest_orchestrator.reporting.runs import finish_run_output
from pytest_orchestrator.reporting.summary import format_plan
from pytest_orchestrator.reporting.summary import format_summary


__all__ = [
    "INTERRUPTED",
    "PROG",
    "USAGE_ERROR",
    "is_pipeline_file",
    "open_plan",
    "print_problems",
    "run_orchestrator",
    "usage_error",
]

PROG = "orchestrate"
USAGE_ERROR = 2
INTERRUPTED = 130


def usage_error(message: str) -> int:
    """Print ``orchestrate: error: <message>`` on stderr; return the usage-error status (2)."""
    print(f"{PROG}: error: {message}", file=sys.stderr)
    return USAGE_ERROR


def print_problems(lines: Sequence[str]) -> int:
    """Print a plan's problems on stderr, one a line; return the usage-error status (2)."""
    for line in lines:
        print(line, file=sys.stderr)
    return USAGE_ERROR


def is_pipeline_file(path: Path) -> bool:
    """Whether ``orchestrate run PATH`` runs a pipeline (an existing ``.yaml`` / ``.yml`` file)."""
    return path.suffix.lower() in (".yaml", ".yml") and path.is_file()


def open_plan(path: Path) -> Plan | int:
    """The plan of the scripts folder ``path``, or the usage-error status after saying why it cannot be read."""
    try:
        return build_plan(path)
    except (FileNotFoundError, NotADirectoryError) as exc:
        return usage_error(f"{exc}; PATH must be a folder of scripts")
    except OSError as exc:
        return usage_error(f"cannot read {str(path)!r}: {exc}")


def run_orchestrator(
    argv: Sequence[str] | argparse.Namespace | None = None, *, listeners: Sequence[RunListener] = ()
) -> int:
    """``orchestrate run ARGV...``: e.g. ``run_orchestrator(["examples/etl/scripts", "-j", "4"])``.

    ``argv`` defaults to ``sys.argv[1:]``; already parsed ``run`` flags (a namespace) are taken as they are.
    ``listeners`` hear the run start and end (see :class:`~.driver.RunListener`). Returns the exit status: 0 all
    passed or skipped, 1 a script failed, 2 bad input, 130 interrupted.
    """
    if isinstance(argv, argparse.Namespace):
        args = argv
    else:
        try:
            args = run_parser().parse_args(sys.argv[1:] if argv is None else list(argv))
        except SystemExit as exc:  # --help, or a usage error (argparse printed it)
            return exc.code if isinstance(exc.code, int) else (0 if exc.code is None else USAGE_ERROR)
    try:
        return _run(args, listeners)
    except KeyboardInterrupt:
        print(f"{PROG}: interrupted", file=sys.stderr)
        return INTERRUPTED


def _run(args: argparse.Namespace, listeners: Sequence[RunListener]) -> int:
    path = Path(args.path)
    if is_pipeline_file(path):
        return run_pipeline_file(path, args, listeners=listeners)
    plan = open_plan(path)
    if isinstance(plan, int):
        return plan
    if plan.problems:
        return print_problems(plan.problems)
    options = RunOptions.from_args(args)
    if args.dry_run:
        text = format_plan(plan_levels(plan, options), jobs=options.effective_jobs, fail_fast=options.fail_fast)
        sys.stdout.write(text)
        return 0
    try:
        report = run_plan(plan, options, listeners=listeners)
    except StateError as exc:
        return usage_error(exc.message)
    except OSError as exc:
        return usage_error(f"cannot create the run folder: {exc}")
    finish_run_output(
        report,
        format_summary(report),
        sys.stdout,
        report_path=getattr(args, "report", None),
        as_json=getattr(args, "json", False),
    )
    return report.exit_code
