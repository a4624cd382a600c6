"""``orchestrate run``: a folder of scripts or a pipeline file, run as a DAG by one run driver.

- :mod:`.plan`: ``build_plan(path)`` finds the scripts, reads their settings and resolves their dependencies into
  a ``Plan`` (with every problem found: bad metadata, unknown or ambiguous dependencies, cycles);
- :mod:`.options`: ``RunOptions`` and the ``orchestrate run`` flags (declared once, ``add_run_arguments``); each
  script's effective timeout and retry; ``plan_outcomes`` / ``plan_levels`` for ``orchestrate list`` and
  ``--dry-run``;
- :mod:`.driver`: ``RunDriver``, the one run driver: run folder, live progress, Ctrl-C and SIGTERM,
  ``summary.json``, and the ``RunListener`` s it is given (e.g. GitHub Actions output, attached by the CLI);
- :mod:`.execute`: the scripts run (``run_plan(plan, options)``), a plan as a workflow for the driver;
- :mod:`.pipeline`: the pipeline run (``run_pipeline_file(path)``), a pipeline as a workflow for the driver;
- :mod:`.entry`: ``run_orchestrator(argv)``, the library entry point of ``orchestrate run ARGS...`` (the
  command line calls it).
"""

from __future__ import annotations

from pytest_orchestrator.orchestrator.driver import RunDriver
from pytest_orchestrator.orchestrator.driver import RunKind
from pytest_orchestrator.orchestrator.driver import RunListener
from pytest_orchestrator.orchestrator.entry import run_orchestrator
from pytest_orchestrator.orchestrator.execute import ScriptFailedError
from pytest_orchestrator.orchestrator.execute import run_plan
from pytest_orchestrator.orchestrator.options import DEFAULT_TIMEOUT
from pytest_orchestrator.orchestrator.options import RunOptions
from pytest_orchestrator.orchestrator.options import plan_levels
from pytest_orchestrator.orchestrator.options import plan_outcomes
from pytest_orchestrator.orchestrator.pipeline import run_pipeline_file
from pytest_orchestrator.orchestrator.plan import DEFAULT_SCRIPTS_DIR
from pytest_orchestrator.orchestrator.plan import Plan
from pytest_orchestrator.orchestrator.plan import ScriptSpec
from pytest_orchestrator.orchestrator.plan import build_plan


__all__ = [
    "DEFAULT_SCRIPTS_DIR",
    "DEFAULT_TIMEOUT",
    "Plan",
    "RunDriver",
    "RunKind",
    "RunListener",
    "RunOptions",
    "ScriptFailedError",
    "ScriptSpec",
    "build_plan",
    "plan_levels",
    "plan_outcomes",
    "run_orchestrator",
    "run_pipeline_file",
    "run_plan",
]
