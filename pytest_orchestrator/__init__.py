"""pytest-orchestrator: DAG workflows for pytest and beyond.

The public API is re-exported here. Importing the package is cheap: each name loads its module on first use, so
``pytest`` start-up (which imports the plugin through its entry point) pays for nothing it does not use.
"""

from __future__ import annotations

from typing import TYPE_CHECKING
from typing import Any

from pytest_orchestrator import errors as _errors
from pytest_orchestrator._lazy import lazy_getattr
from pytest_orchestrator.errors import ConcurrencyError as ConcurrencyError
from pytest_orchestrator.errors import CycleError as CycleError
from pytest_orchestrator.errors import DependencyResolutionError as DependencyResolutionError
from pytest_orchestrator.errors import OrchestratorTimeoutError as OrchestratorTimeoutError
from pytest_orchestrator.errors import StateError as StateError
from pytest_orchestrator.errors import StepError as StepError
from pytest_orchestrator.errors import TaskFailedError as TaskFailedError
from pytest_orchestrator.errors import WorkflowError as WorkflowError


# The public API loaded on first use: module (relative to this package) -> the names it defines. This is the one
# list; ``__all__`` is derived from it. The ``TYPE_CHECKING`` block below repeats it for static type checkers (they
# cannot follow ``__getattr__``); tests/test_public_api.py pins that the two agree.
_EXPORTS: dict[str, tuple[str, ...]] = {
    "core.retry": ("RetryPolicy",),
    "core.workflow": (
        "Workflow",
        "Task",
        "SkipTask",
        "TaskStatus",
        "TaskResult",
        "chain",
        "parallel",
        "fan_out_fan_in",
    ),
    "orchestrator": ("run_orchestrator",),
    "core.graph": ("analyze_workflow_dependencies",),
    "runners": (
        "run_script",
        "run_function",
        "ParallelRunner",
        "BatchRunner",
        "ExecutionResult",
        "ScriptResult",
        "FunctionResult",
        "run_parallel",
        "run_parallel_async",
    ),
    "thin": (
        "run",
        "run_async",
        "pipe",
        "batch",
        "chain_scripts",
        "workflow",
        "step",
        "Steps",
        "StepResult",
        "shell",
        "python_func",
        "retry",
        "timeout",
        "condition",
    ),
    "pipelines": (
        "StageConfig",
        "PipelineConfig",
        "create_pipeline_workflow",
        "run_ci_stage",
        "load_pipeline",
    ),
    "integration": (
        "OrchestratorBridge",
        "CICDBridge",
        "AgentOrchestrator",
        "run_agent_task",
    ),
    "state": ("StateStore",),
    "execution.dask": ("DaskExecutor",),
    "schedule": (
        "Scheduler",
        "CronTrigger",
        "IntervalTrigger",
        "OnceTrigger",
        "cron",
        "every",
        "at",
        "Job",
        "JobStatus",
    ),
    "triggers": ("FileTrigger", "EventTrigger", "emit"),
    "monitors": ("MetricsCollector", "get_scheduler_metrics"),
    "templates": ("ci_pipeline", "etl", "fan_out", "retry_until"),
    "reporting.report": ("build_report", "report_from_workflow", "write_report"),
    "reporting.recorder": ("ReportRecorder",),
    "reporting.secrets": ("mask_secrets",),
    "reporting.schema": ("validate_report",),
    "scripts": (
        "discover_scripts",
        "load_config",
        "get_script_config",
    ),
    "plugin.compat_dependency": ("depends",),
}
_LAZY: dict[str, str] = {name: module for module, names in _EXPORTS.items() for name in names}

__all__ = sorted([*_LAZY, *_errors.__all__, "__version__"])  # noqa: PLE0605 - derived, never written twice


_lazy_name = lazy_getattr(__name__, _LAZY, globals())


def __getattr__(name: str) -> Any:
    if name == "__version__":  # from the installed metadata: the version is written once, in pyproject.toml
        from importlib.metadata import PackageNotFoundError
        from importlib.metadata import version

        try:
            value = version("pytest-orchestrator")
        except PackageNotFoundError:  # a source tree that was never installed
            value = "0+unknown"
        globals()["__version__"] = value
        return value
    return _lazy_name(name)


def __dir__() -> list[str]:
    return __all__


if TYPE_CHECKING:
    from pytest_orchestrator.core.graph import analyze_workflow_dependencies as analyze_workflow_dependencies
    from pytest_orchestrator.core.retry import RetryPolicy as RetryPolicy
    from pytest_orchestrator.core.workflow import SkipTask as SkipTask
    from pytest_orchestrator.core.workflow import Task as Task
    from pytest_orchestrator.core.workflow import TaskResult as TaskResult
    from pytest_orchestrator.core.workflow import TaskStatus as TaskStatus
    from pytest_orchestrator.core.workflow import Workflow as Workflow
    from pytest_orchestrator.core.workflow import chain as chain
    from pytest_orchestrator.core.workflow import fan_out_fan_in as fan_out_fan_in
    from pytest_orchestrator.core.workflow import parallel as parallel
    from pytest_orchestrator.execution.dask import DaskExecutor as DaskExecutor
    from pytest_orchestrator.integration import AgentOrchestrator as AgentOrchestrator
    from pytest_orchestrator.integration import CICDBridge as CICDBridge
    from pytest_orchestrator.integration import OrchestratorBridge as OrchestratorBridge
    from pytest_orchestrator.integration import run_agent_task as run_agent_task
    from pytest_orchestrator.monitors import MetricsCollector as MetricsCollector
    from pytest_orchestrator.monitors import get_scheduler_metrics as get_scheduler_metrics
    from pytest_orchestrator.orchestrator import run_orchestrator as run_orchestrator
    from pytest_orchestrator.pipelines import PipelineConfig as PipelineConfig
    from pytest_orchestrator.pipelines import StageConfig as StageConfig
    from pytest_orchestrator.pipelines import create_pipeline_workflow as create_pipeline_workflow
    from pytest_orchestrator.pipelines import load_pipeline as load_pipeline
    from pytest_orchestrator.pipelines import run_ci_stage as run_ci_stage
    from pytest_orchestrator.plugin.compat_dependency import depends as depends
    from pytest_orchestrator.reporting.recorder import ReportRecorder as ReportRecorder
    from pytest_orchestrator.reporting.report import build_report as build_report
    from pytest_orchestrator.reporting.report import report_from_workflow as report_from_workflow
    from pytest_orchestrator.reporting.report import write_report as write_report
    from pytest_orchestrator.reporting.schema import validate_report as validate_report
    from pytest_orchestrator.reporting.secrets import mask_secrets as mask_secrets
    from pytest_orchestrator.runners import BatchRunner as BatchRunner
    from pytest_orchestrator.runners import ExecutionResult as ExecutionResult
    from pytest_orchestrator.runners import FunctionResult as FunctionResult
    from pytest_orchestrator.runners import ParallelRunner as ParallelRunner
    from pytest_orchestrator.runners import ScriptResult as ScriptResult
    from pytest_orchestrator.runners import run_function as run_function
    from pytest_orchestrator.runners import run_parallel as run_parallel
    from pytest_orchestrator.runners import run_parallel_async as run_parallel_async
    from pytest_orchestrator.runners import run_script as run_script
    from pytest_orchestrator.schedule import CronTrigger as CronTrigger
    from pytest_orchestrator.schedule import IntervalTrigger as IntervalTrigger
    from pytest_orchestrator.schedule import Job as Job
    from pytest_orchestrator.schedule import JobStatus as JobStatus
    from pytest_orchestrator.schedule import OnceTrigger as OnceTrigger
    from pytest_orchestrator.schedule import Scheduler as Scheduler
    from pytest_orchestrator.schedule import at as at
    from pytest_orchestrator.schedule import cron as cron
    from pytest_orchestrator.schedule import every as every
    from pytest_orchestrator.scripts import discover_scripts as discover_scripts
    from pytest_orchestrator.scripts import get_script_config as get_script_config
    from pytest_orchestrator.scripts import load_config as load_config
    from pytest_orchestrator.state import StateStore as StateStore
    from pytest_orchestrator.templates import ci_pipeline as ci_pipeline
    from pytest_orchestrator.templates import etl as etl
    from pytest_orchestrator.templates import fan_out as fan_out
    from pytest_orchestrator.templates import retry_until as retry_until
    from pytest_orchestrator.thin import StepResult as StepResult
    from pytest_orchestrator.thin import Steps as Steps
    from pytest_orchestrator.thin import batch as batch
    from pytest_orchestrator.thin import chain_scripts as chain_scripts
    from pytest_orchestrator.thin import condition as condition
    from pytest_orchestrator.thin import pipe as pipe
    from pytest_orchestrator.thin import python_func as python_func
    from pytest_orchestrator.thin import retry as retry
    from pytest_orchestrator.thin import run as run
    from pytest_orchestrator.thin import run_async as run_async
    from pytest_orchestrator.thin import shell as shell
    from pytest_orchestrator.thin import step as step
    from pytest_orchestrator.thin import timeout as timeout
    from pytest_orchestrator.thin import workflow as workflow
    from pytest_orchestrator.triggers import EventTrigger as EventTrigger
    from pytest_orchestrator.triggers import FileTrigger as FileTrigger
    from pytest_orchestrator.triggers import emit as emit
