"""The ``orchestrate`` command: parse the arguments and call the library. ``run`` is
:func:`pytest_orchestrator.orchestrator.run_orchestrator`; ``list``, ``graph`` and ``validate`` read the plan of
:mod:`pytest_orchestrator.orchestrator` and print it with :mod:`pytest_orchestrator.reporting`.

Commands::

    orchestrate run [PATH] [-j N] [-t S] [--retries N] [--fail-fast] [-q | -v] [-o DIR] [-n] [--resume [ID]] ...
    orchestrate list [PATH]
    orchestrate graph [PATH] [--format mermaid|dot]
    orchestrate validate [PATH]
    orchestrate runs [--limit N] [--json]
    orchestrate show RUN_ID [--json]

``PATH`` is a folder of scripts (default ``scripts``) or a pipeline file (``*.yaml`` / ``*.yml``), for ``run``,
``list``, ``graph`` and ``validate`` alike. On GitHub Actions (``GITHUB_ACTIONS=true``) a run also writes log
groups, annotations and the job summary: the command attaches that listener, the library does not look for it.
Exit status, in every path: 0 success, 1 a script or stage failed, 2 usage or configuration error (bad flags,
missing folder, bad metadata or config, unknown dependency, cycle, invalid pipeline), 130 interrupted (Ctrl-C),
143 terminated (SIGTERM).
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
import json
from pathlib import Path
import sys

from pytest_orchestrator import __version__
from pytest_orchestrator.argtypes import number
from pytest_orchestrator.errors import StateError
from pytest_orchestrator.integration.ci import ci_listeners
from pytest_orchestrator.orchestrator.entry import INTERRUPTED
from pytest_orchestrator.orchestrator.entry import PROG
from pytest_orchestrator.orchestrator.entry import USAGE_ERROR
from pytest_orchestrator.orchestrator.entry import is_pipeline_file
from pytest_orchestrator.orchestrator.entry import open_plan
from pytest_orchestrator.orchestrator.entry import print_problems
from pytest_orchestrator.orchestrator.entry import run_orchestrator
from pytest_orchestrator.orchestrator.entry import usage_error
from pytest_orchestrator.orchestrator.options import RUN_EPILOG
from pytest_orchestrator.orchestrator.options import RUN_HELP
from pytest_orchestrator.orchestrator.options import add_path_argument
from pytest_orchestrator.orchestrator.options import add_run_arguments
from pytest_orchestrator.orchestrator.options import plan_outcomes
from pytest_orchestrator.orchestrator.options import target_path
from pytest_orchestrator.orchestrator.pipeline import open_pipeline
from pytest_orchestrator.orchestrator.pipeline import pipeline_outcomes
from pytest_orchestrator.orchestrator.state import DEFAULT_STATE_PATH
from pytest_orchestrator.orchestrator.state import format_run
from pytest_orchestrator.orchestrator.state import format_runs
from pytest_orchestrator.orchestrator.state import run_details
from pytest_orchestrator.reporting.report import write_report
from pytest_orchestrator.reporting.runs import report_from_state
from pytest_orchestrator.reporting.summary import format_scripts
from pytest_orchestrator.state import StateStore


__all__ = ["build_parser", "main"]


_EXAMPLES = {
    "list": """\
examples:
  orchestrate list                      # the scripts under scripts/
  orchestrate list examples/etl/scripts
  orchestrate list examples/ci/pipeline.yaml   # a pipeline's stages""",
    "graph": """\
examples:
  orchestrate graph examples/etl/scripts > dag.mmd
  orchestrate graph examples/ci/pipeline.yaml --format dot | dot -Tsvg > ci.svg""",
    "validate": """\
examples:
  orchestrate validate examples/etl/scripts     # "ok: 8 scripts", or one problem a line (exit status 2)
  orchestrate validate examples/ci/pipeline.yaml""",
    "runs": """\
examples:
  orchestrate runs                  # the 20 most recent runs recorded here
  orchestrate runs --limit 5 --json""",
    "show": """\
examples:
  orchestrate runs                  # find the run's id
  orchestrate show 20240101-120000-ab12 --json""",
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=PROG,
        description="Run a folder of scripts (PEP 723 [tool.orchestrate] metadata) or a pipeline file as a "
        "dependency graph.",
        epilog="exit status: 0 ok, 1 failures, 2 usage or configuration error, 130 interrupted, 143 terminated",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")

    def add(name: str, help_text: str, epilog: str | None = None) -> argparse.ArgumentParser:
        return commands.add_parser(
            name,
            help=help_text,
            description=help_text,
            epilog=epilog if epilog is not None else _EXAMPLES.get(name),
            formatter_class=argparse.RawDescriptionHelpFormatter,
        )

    run = add("run", RUN_HELP, RUN_EPILOG)
    add_path_argument(run)
    add_run_arguments(run)
    add_path_argument(add("list", "list the scripts (or a pipeline's stages) with their dependencies"))
    graph = add("graph", "print the dependency graph of the scripts or of a pipeline's stages")
    add_path_argument(graph)
    graph.add_argument("--format", choices=("mermaid", "dot"), default="mermaid", help="default: mermaid")
    add_path_argument(add("validate", "check metadata, config, dependencies and cycles (or a pipeline file)"))
    runs = add("runs", "list recent runs recorded in .orchestrate/state.db")
    runs.add_argument("--limit", type=number(int, minimum=1, what="a whole number"), default=20, metavar="N")
    runs.add_argument("--json", action="store_true", help="print the runs as JSON")
    show = add("show", "print one recorded run")
    show.add_argument("run_id", metavar="RUN_ID")
    show.add_argument("--json", action="store_true", help="print the run as JSON")
    report = commands.add_parser(
        "report", help="the report of a recorded run: JSON on stdout, or a self-contained HTML page with --html"
    )
    report.add_argument("run_id", metavar="RUN_ID")
    report.add_argument("--html", type=Path, metavar="PATH", help="write the HTML page to PATH")
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
    if args.command in ("runs", "show", "report"):
        return _history(args)
    try:
        return _inspect(args)
    except KeyboardInterrupt:
        print(f"{PROG}: interrupted", file=sys.stderr)
        return INTERRUPTED


def _history(args: argparse.Namespace) -> int:
    """``runs`` and ``show``: read the state store, print what was asked."""
    if not DEFAULT_STATE_PATH.exists():
        return usage_error(f"no state recorded here ({DEFAULT_STATE_PATH} does not exist)")
    store = StateStore(DEFAULT_STATE_PATH)
    try:
        if args.command == "runs":
            runs = store.list_runs(limit=args.limit)
            if args.json:
                print(json.dumps([r.to_dict() for r in runs], indent=2))
            else:
                sys.stdout.write(format_runs(runs))
            return 0
        if args.command == "report":
            report = report_from_state(store, args.run_id)
            if args.html is not None:
                print(f"wrote {write_report(report, args.html)}")
            else:
                print(json.dumps(report, indent=2, default=str))
            return 0
        details = run_details(store, args.run_id)
    except StateError as exc:
        return usage_error(exc.message)
    finally:
        store.close()
    sys.stdout.write(json.dumps(details, indent=2) + "\n" if args.json else format_run(details))
    return 0


def _inspect(args: argparse.Namespace) -> int:
    """``list``, ``graph`` and ``validate``: read the plan (or the pipeline), print what was asked."""
    path = target_path(args)
    if isinstance(path, str):
        return usage_error(path)
    if is_pipeline_file(path):
        return _inspect_pipeline(args, path)
    plan = open_plan(path)
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


def _inspect_pipeline(args: argparse.Namespace, path: Path) -> int:
    """``list``, ``graph`` and ``validate`` of a pipeline file (an invalid one: ``file:line: message``, status 2)."""
    config = open_pipeline(path)
    if isinstance(config, int):
        return config
    if args.command == "list":
        sys.stdout.write(format_scripts(pipeline_outcomes(config)))
    elif args.command == "graph":
        from pytest_orchestrator.reporting.graph import render_graph

        sys.stdout.write(render_graph(config.dependencies(), args.format))
    else:
        count = len(config.stage_list)
        print(f"ok: pipeline {config.name!r}, {count} stage{'s' if count != 1 else ''}")
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
