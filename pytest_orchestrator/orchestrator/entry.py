"""``run_orchestrator()``: the library entry point of ``orchestrate run`` (the command line calls it).

``PATH`` is a folder of scripts (run as a plan, :mod:`.execute`) or a pipeline file (``*.yaml`` / ``*.yml``,
:mod:`.pipeline`); both go through the one run driver. The original module's command line is accepted as well
(``--scripts-dir``, ``-n``, ``-t``, ``-s``, ``-f``, ``-o``, ``-v``, ``--max-depth``, ``--generate-docs``; see
:func:`~.options.add_run_arguments`). Exit status: 0 success, 1 a script or stage failed, 2 bad input (missing
folder, bad metadata or config, unknown dependency, cycle, invalid pipeline, bad flags, a ``--executor`` cluster that
cannot be reached), 130 interrupted (Ctrl-C),
143 terminated (SIGTERM).
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from pathlib import Path
import sys

from pytest_orchestrator.errors import ConcurrencyError
from pytest_orchestrator.errors import StateError
from pytest_orchestrator.orchestrator.docs import plan_reference
from pytest_orchestrator.orchestrator.driver import RunListener
from pytest_orchestrator.orchestrator.execute import run_plan
from pytest_orchestrator.orchestrator.options import RunOptions
from pytest_orchestrator.orchestrator.options import plan_levels
from pytest_orchestrator.orchestrator.options import run_parser
from pytest_orchestrator.orchestrator.options import target_path
from pytest_orchestrator.orchestrator.pipeline import run_pipeline_file
from pytest_orchestrator.orchestrator.plan import Plan
from pytest_orchestrator.orchestrator.plan import build_plan
from pytest_orchestrator.orchestrator.plan import select_scripts
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
#: Ctrl-C (SIGINT); a run ended by SIGTERM exits with 143 (128 + the signal's number, as a shell reports it)
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


def open_plan(path: Path, args: argparse.Namespace | None = None) -> Plan | int:
    """The plan of the scripts folder ``path``, or the usage-error status after saying why it cannot be read.

    ``args`` (parsed ``run`` flags) may narrow it: ``--max-depth``, ``--subdirs``, ``--filter``. A deprecation
    note of the configuration (the original module's ``config.yaml``) and the plan's notes (links skipped, config
    entries that name no script) are printed on stderr.
    """
    try:
        plan = build_plan(path, max_depth=getattr(args, "max_depth", None))
    except (FileNotFoundError, NotADirectoryError) as exc:
        return usage_error(f"{exc}; PATH must be a folder of scripts or a pipeline file")
    except OSError as exc:
        return usage_error(f"cannot read {str(path)!r}: {exc}")
    if plan.config is not None and plan.config.deprecation:
        print(f"{PROG}: {plan.config.deprecation}", file=sys.stderr)
    for note in plan.notes:
        print(f"{PROG}: {note}", file=sys.stderr)
    return select_scripts(plan, pattern=getattr(args, "filter", None), subdirs=getattr(args, "subdirs", None))


def run_orchestrator(
    argv: Sequence[str] | argparse.Namespace | None = None, *, listeners: Sequence[RunListener] = ()
) -> int:
    """``orchestrate run ARGV...``: e.g. ``run_orchestrator(["examples/etl/scripts", "-j", "4"])``.

    ``argv`` defaults to ``sys.argv[1:]``; already parsed ``run`` flags (a namespace) are taken as they are.
    ``listeners`` hear the run start and end (see :class:`~.driver.RunListener`). Returns the exit status: 0 all
    passed or skipped, 1 a script failed, 2 bad input, 130 interrupted (Ctrl-C), 143 terminated (SIGTERM).

    The original module's command line works too: ``run_orchestrator(["--scripts-dir", "scripts", "-f", "etl",
    "-o", "output/runs", "-t", "30"])``.
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
    path = target_path(args)
    if isinstance(path, str):
        return usage_error(path)
    if is_pipeline_file(path):
        scripts_only = [
            flag
            for flag, given in (
                ("--subdirs", getattr(args, "subdirs", None)),
                ("--filter", getattr(args, "filter", None)),
                ("--max-depth", getattr(args, "max_depth", None) is not None),
                ("--generate-docs", getattr(args, "generate_docs", None)),
            )
            if given
        ]
        if scripts_only:
            return usage_error(f"{', '.join(scripts_only)}: only for a folder of scripts, not a pipeline file")
        return run_pipeline_file(path, args, listeners=listeners)
    plan = open_plan(path, args)
    if isinstance(plan, int):
        return plan
    options = RunOptions.from_args(args)
    docs: Path | None = getattr(args, "generate_docs", None)
    if docs is not None:
        return _write_docs(plan, options, docs)
    if plan.problems:
        return print_problems(plan.problems)
    if args.dry_run:
        text = format_plan(plan_levels(plan, options), jobs=options.effective_jobs, fail_fast=options.fail_fast)
        sys.stdout.write(text)
        return 0
    try:
        report = run_plan(plan, options, listeners=listeners)
    except (StateError, ConcurrencyError) as exc:  # ConcurrencyError: --executor's cluster, before anything ran
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


def _write_docs(plan: Plan, options: RunOptions, target: Path) -> int:
    """``--generate-docs FILE``: the reference of the scripts, written even when the plan has problems (then
    reported, exit status 2)."""
    text = plan_reference(plan, options)
    if str(target) == "-":
        sys.stdout.write(text)
    else:
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(text, encoding="utf-8")
        except OSError as exc:
            return usage_error(f"cannot write {str(target)!r}: {exc.strerror or exc}")
        print(f"wrote the reference of {len(plan.scripts)} scripts to {target}", file=sys.stderr)
    return print_problems(plan.problems) if plan.problems else 0
