"""Run a folder of scripts as a DAG: discover -> configure -> build the DAG -> run -> report.

- :mod:`.plan`: ``build_plan(path)`` finds the scripts, reads their settings and resolves their dependencies into
  a ``Plan`` (with every problem found: bad metadata, unknown or ambiguous dependencies, cycles);
- :mod:`.options`: ``RunOptions`` (the ``orchestrate run`` flags) and each script's effective timeout and retry;
  ``plan_outcomes`` / ``plan_levels`` for ``orchestrate list`` and ``--dry-run``;
- :mod:`.execute`: ``run_plan(plan, options)`` runs the plan on the core workflow engine, writes the run folder
  and returns a :class:`~pytest_orchestrator.reporting.summary.RunReport`.

``run_orchestrator(argv)`` is ``orchestrate run ARGS...`` (the arguments are parsed by
:mod:`pytest_orchestrator.cli`).
"""

from __future__ import annotations

from collections.abc import Sequence
import sys

from pytest_orchestrator.orchestrator.execute import ScriptFailedError
from pytest_orchestrator.orchestrator.execute import run_plan
from pytest_orchestrator.orchestrator.options import DEFAULT_TIMEOUT
from pytest_orchestrator.orchestrator.options import RunOptions
from pytest_orchestrator.orchestrator.options import plan_levels
from pytest_orchestrator.orchestrator.options import plan_outcomes
from pytest_orchestrator.orchestrator.plan import DEFAULT_SCRIPTS_DIR
from pytest_orchestrator.orchestrator.plan import Plan
from pytest_orchestrator.orchestrator.plan import ScriptSpec
from pytest_orchestrator.orchestrator.plan import build_plan


__all__ = [
    "DEFAULT_SCRIPTS_DIR",
    "DEFAULT_TIMEOUT",
    "Plan",
    "RunOptions",
    "ScriptFailedError",
    "ScriptSpec",
    "build_plan",
    "plan_outcomes",
    "plan_levels",
    "run_orchestrator",
    "run_plan",
]


def run_orchestrator(argv: Sequence[str] | None = None) -> int:
    """``orchestrate run ARGV...``: e.g. ``run_orchestrator(["examples/etl/scripts", "-j", "4"])``.

    Returns the exit status: 0 all passed or skipped, 1 a script failed, 2 bad input, 130 interrupted.
    """
    from pytest_orchestrator.cli import main

    return main(["run", *(sys.argv[1:] if argv is None else argv)])
