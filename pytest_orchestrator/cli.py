"""The ``orchestrate`` command: parse the arguments and dispatch. The work is done in
:mod:`pytest_orchestrator.orchestrator` and :mod:`pytest_orchestrator.reporting`.

Commands::

    orchestrate run [PATH] [-j N] [--timeout S] [--retries N] [--fail-fast] [-q] [--run-dir DIR] [--dry-run]
    orchestrate list [PATH]
    orchestrate graph [PATH] [--format mermaid|dot]
    orchestrate validate [PATH]

``PATH`` is a folder of scripts (default ``scripts``). Exit status: 0 success, 1 a script failed, 2 bad input
(missing folder, bad metadata or config, unknown dependency, cycle), 130 interrupted.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
import importlib
from pathlib import Path
import sys

from pytest_orchestrator import __version__
from pytest_orchestrator.argtypes import number


__all__ = ["build_parser", "main"]

PROG = "orchestrate"
USAGE_ERROR = 2
INTERRUPTED = 130


_positive_int = number(int, minimum=1, what="a whole number")
_count = number(int, minimum=0, what="a whole number")
_seconds = number(float, minimum=0, what="a number of seconds")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=PROG,
        description="Run a folder of scripts as a dependency graph (PEP 723 [tool.orchestrate] metadata).",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")

    def add(name: str, help_text: str) -> argparse.ArgumentParser:
        sub = commands.add_parser(name, help=help_text, description=help_text)
        sub.add_argument(
            "path", nargs="?", default="scripts", metavar="PATH", help="folder of scripts (default: scripts)"
        )
        return sub

    run = add("run", "run the scripts in dependency order, in parallel")
    run.add_argument("-j", "--jobs", type=_positive_int, help="scripts at once (default: number of CPUs)")
    run.add_argument(
        "--timeout",
        type=_seconds,
        metavar="S",
        help="per-attempt timeout of scripts that set none (default 60, 0: none)",
    )
    run.add_argument("--retries", type=_count, metavar="N", help="extra attempts for scripts that set no retry")
    run.add_argument("--fail-fast", action="store_true", help="stop at the first failure (default: run on)")
    run.add_argument("-q", "--quiet", action="store_true", help="no live progress lines")
    run.add_argument("--run-dir", type=Path, metavar="DIR", help="where run folders go (default: .orchestrate/runs)")
    run.add_argument("--dry-run", action="store_true", help="print the plan and run nothing")
    add("list", "list the scripts with their dependencies and stage")
    graph = add("graph", "print the dependency graph")
    graph.add_argument("--format", choices=("mermaid", "dot"), default="mermaid", help="default: mermaid")
    add("validate", "check metadata, config, dependencies and cycles")
    return parser


def _error(message: str) -> int:
    print(f"{PROG}: error: {message}", file=sys.stderr)
    return USAGE_ERROR


def _problems(lines: Sequence[str]) -> int:
    for line in lines:
        print(line, file=sys.stderr)
    return USAGE_ERROR


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``orchestrate`` command; returns the exit status."""
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # --help, --version, or a usage error (argparse printed it)
        return exc.code if isinstance(exc.code, int) else (0 if exc.code is None else USAGE_ERROR)
    if args.command is None:
        parser.print_help(sys.stderr)
        return USAGE_ERROR
    try:
        return _dispatch(args)
    except KeyboardInterrupt:
        print(f"{PROG}: interrupted", file=sys.stderr)
        return INTERRUPTED


def _dispatch(args: argparse.Namespace) -> int:
    path = Path(args.path)
    if args.command == "run" and path.suffix.lower() in (".yaml", ".yml") and path.is_file():
        return _run_pipeline(path, args)

    from pytest_orchestrator import orchestrator
    from pytest_orchestrator.reporting import summary

    try:
        plan = orchestrator.build_plan(path)
    except (FileNotFoundError, NotADirectoryError) as exc:
        return _error(f"{exc}; PATH must be a folder of scripts")
    except OSError as exc:
        return _error(f"cannot read {str(path)!r}: {exc}")

    if args.command == "list":
        sys.stdout.write(summary.format_scripts(orchestrator.plan_outcomes(plan)))
        return _problems(plan.problems) if plan.problems else 0
    if args.command == "graph":
        from pytest_orchestrator.reporting.graph import render_graph

        sys.stdout.write(render_graph(plan.graph, args.format))
        return _problems(plan.problems) if plan.problems else 0
    if plan.problems:
        return _problems(plan.problems)
    if args.command == "validate":
        print(f"ok: {len(plan.scripts)} script{'s' if len(plan.scripts) != 1 else ''}")
        return 0

    options = orchestrator.RunOptions(
        jobs=args.jobs,
        timeout=args.timeout,
        retries=args.retries,
        fail_fast=args.fail_fast,
        quiet=args.quiet,
        runs_dir=args.run_dir,
    )
    if args.dry_run:
        text = summary.format_plan(
            orchestrator.plan_levels(plan, options), jobs=options.effective_jobs, fail_fast=options.fail_fast
        )
        sys.stdout.write(text)
        return 0
    try:
        report = orchestrator.run_plan(plan, options)
    except OSError as exc:
        return _error(f"cannot create the run folder: {exc}")
    sys.stdout.write(summary.format_summary(report))
    sys.stdout.flush()
    return report.exit_code


def _run_pipeline(path: Path, args: argparse.Namespace) -> int:
    """The seam for YAML pipelines: ``pytest_orchestrator.pipelines.run_pipeline_file`` when it exists."""
    try:
        pipelines = importlib.import_module("pytest_orchestrator.pipelines")
    except ModuleNotFoundError as exc:
        if exc.name != "pytest_orchestrator.pipelines":
            raise
        pipelines = None
    run_pipeline_file = getattr(pipelines, "run_pipeline_file", None)
    if run_pipeline_file is None:
        return _error(f"{path}: pipelines are not supported yet")
    return int(run_pipeline_file(path, args))


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
