"""The ``orchestrate`` command: parse the arguments and call the library. ``run`` is
:func:`pytest_orchestrator.orchestrator.run_orchestrator`; ``list``, ``graph`` and ``validate`` read the plan of
:mod:`pytest_orchestrator.orchestrator` and print it with :mod:`pytest_orchestrator.reporting`.

Commands::

    orchestrate run [PATH] [-j N] [--timeout S] [--retries N] [--fail-fast] [-q] [--run-dir DIR] [--dry-run]
    orchestrate list [PATH]
    orchestrate graph [PATH] [--format mermaid|dot]
    orchestrate validate [PATH]

``PATH`` is a folder of scripts (default ``scripts``); ``run`` also takes a pipeline file (``*.yaml``). On GitHub
Actions (``GITHUB_ACTIONS=true``) a run also writes log groups, annotations and the job summary: the command
attaches that listener, the library does not look for it. Exit status: 0 success, 1 a script failed, 2 bad input
(missing folder, bad metadata or config, unknown dependency, cycle), 130 interrupted.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from pathlib import Path
import sys

from pytest_orchestrator import __version__
from pytest_orchestrator.integration.ci import ci_listeners
from pytest_orchestrator.orchestrator.entry import INTERRUPTED
from pytest_orchestrator.orchestrator.entry import PROG
from pytest_orchestrator.orchestrator.entry import USAGE_ERROR
from pytest_orchestrator.orchestrator.entry import open_plan
from pytest_orchestrator.orchestrator.entry import print_problems
from pytest_orchestrator.orchestrator.entry import run_orchestrator
from pytest_orchestrator.orchestrator.options import RUN_HELP
from pytest_orchestrator.orchestrator.options import add_path_argument
from pytest_orchestrator.orchestrator.options import add_run_arguments
from pytest_orchestrator.orchestrator.options import plan_outcomes
from pytest_orchestrator.reporting.summary import format_scripts


__all__ = ["build_parser", "main"]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=PROG,
        description="Run a folder of scripts as a dependency graph (PEP 723 [tool.orchestrate] metadata).",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")

    def add(name: str, help_text: str) -> argparse.ArgumentParser:
        sub = commands.add_parser(name, help=help_text, description=help_text)
        add_path_argument(sub)
        return sub

    add_run_arguments(add("run", RUN_HELP))
    add("list", "list the scripts with their dependencies and stage")
    graph = add("graph", "print the dependency graph")
    graph.add_argument("--format", choices=("mermaid", "dot"), default="mermaid", help="default: mermaid")
    add("validate", "check metadata, config, dependencies and cycles")
    return parser


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
    if args.command == "run":
        return run_orchestrator(args, listeners=ci_listeners())
    try:
        return _inspect(args)
    except KeyboardInterrupt:
        print(f"{PROG}: interrupted", file=sys.stderr)
        return INTERRUPTED


def _inspect(args: argparse.Namespace) -> int:
    """``list``, ``graph`` and ``validate``: read the plan, print what was asked."""
    plan = open_plan(Path(args.path))
    if isinstance(plan, int):
        return plan
    if args.command == "list":
        sys.stdout.write(format_scripts(plan_outcomes(plan)))
        return print_problems(plan.problems) if plan.problems else 0
    if args.command == "graph":
        from pytest_orchestrator.reporting.graph import render_graph

        sys.stdout.write(render_graph(plan.graph, args.format))
        return print_problems(plan.problems) if plan.problems else 0
    if plan.problems:
        return print_problems(plan.problems)
    print(f"ok: {len(plan.scripts)} script{'s' if len(plan.scripts) != 1 else ''}")
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
