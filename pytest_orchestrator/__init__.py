"""pytest-orchestrator: DAG workflows for pytest and beyond.

The public API is re-exported here. Importing the package is cheap: each name loads its module on first use, so
``pytest`` start-up (which imports the plugin through its entry point) pays for nothing it does not use.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from pytest_orchestrator._lazy import lazy_getattr
from pytest_orchestrator.errors import ConcurrencyError
from pytest_orchestrator.errors import CycleError
from pytest_orchestrator.errors import DependencyResolutionError
from pytest_orchestrator.errors import OrchestratorTimeoutError
from pytest_orchestrator.errors import StateError
from pytest_orchestrator.errors import StepError
from pytest_orchestrator.errors import TaskFailedError
from pytest_orchestrator.errors import WorkflowError


__version__ = "0.1.0"

# name -> module that defines it (relative to this package)
_LAZY: dict[str, str] = {
    "RetryPolicy": "core.retry",
    "Workflow": "core.workflow",
    "Task": "core.workflow",
    "SkipTask": "core.workflow",
    "run_orchestrator": "orchestrator",
    "TaskStatus": "core.workflow",
    "TaskResult": "core.workflow",
    "chain": "core.workflow",
    "parallel": "core.workflow",
    "fan_out_fan_in": "core.workflow",
    "analyze_workflow_dependencies": "core.graph",
    "run_script": "runners",
    "run_function": "runners",
    "ParallelRunner": "runners",
    "BatchRunner": "runners",
    "ExecutionResult": "runners",
    "ScriptResult": "runners",
    "FunctionResult": "runners",
    "run_parallel": "runners",
    "run_parallel_async": "runners",
    "run": "thin",
    "run_async": "thin",
    "pipe": "thin",
    "batch": "thin",
    "chain_scripts": "thin",
    "workflow": "thin",
    "step": "thin",
    "Steps": "thin",
    "StepResult": "thin",
    "shell": "thin",
    "python_func": "thin",
    "retry": "thin",
    "timeout": "thin",
    "condition": "thin",
    "StageConfig": "pipelines",
    "PipelineConfig": "pipelines",
    "create_pipeline_workflow": "pipelines",
    "run_ci_stage": "pipelines",
    "load_pipeline": "pipelines",
    "OrchestratorBridge": "integration",
    "CICDBridge": "integration",
    "AgentOrchestrator": "integration",
    "run_agent_task": "integration",
    "discover_scripts": "scripts",
    "load_config": "scripts",
    "get_script_config": "scripts",
}

__all__ = [
    "AgentOrchestrator",
    "BatchRunner",
    "CICDBridge",
    "ConcurrencyError",
    "CycleError",
    "DependencyResolutionError",
    "ExecutionResult",
    "FunctionResult",
    "OrchestratorBridge",
    "OrchestratorTimeoutError",
    "ParallelRunner",
    "PipelineConfig",
    "RetryPolicy",
    "ScriptResult",
    "SkipTask",
    "StageConfig",
    "StateError",
    "StepError",
    "StepResult",
    "Steps",
    "Task",
    "TaskFailedError",
    "TaskResult",
    "TaskStatus",
    "Workflow",
    "WorkflowError",
    "__version__",
    "analyze_workflow_dependencies",
    "batch",
    "chain",
    "chain_scripts",
    "condition",
    "create_pipeline_workflow",
    "discover_scripts",
    "fan_out_fan_in",
    "get_script_config",
    "load_config",
    "load_pipeline",
    "parallel",
    "pipe",
    "python_func",
    "retry",
    "run",
    "run_agent_task",
    "run_async",
    "run_ci_stage",
    "run_function",
    "run_orchestrator",
    "run_parallel",
    "run_parallel_async",
    "run_script",
    "shell",
    "step",
    "timeout",
    "workflow",
]


__getattr__ = lazy_getattr(__name__, _LAZY, globals())


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
    from pytest_orchestrator.integration import AgentOrchestrator as AgentOrchestrator
    from pytest_orchestrator.integration import CICDBridge as CICDBridge
    from pytest_orchestrator.integration import OrchestratorBridge as OrchestratorBridge
    from pytest_orchestrator.integration import run_agent_task as run_agent_task
    from pytest_orchestrator.orchestrator import run_orchestrator as run_orchestrator
    from pytest_orchestrator.pipelines import PipelineConfig as PipelineConfig
    from pytest_orchestrator.pipelines import StageConfig as StageConfig
    from pytest_orchestrator.pipelines import create_pipeline_workflow as create_pipeline_workflow
    from pytest_orchestrator.pipelines import load_pipeline as load_pipeline
    from pytest_orchestrator.pipelines import run_ci_stage as run_ci_stage
    from pytest_orchestrator.runners import BatchRunner as BatchRunner
    from pytest_orchestrator.runners import ExecutionResult as ExecutionResult
    from pytest_orchestrator.runners import FunctionResult as FunctionResult
    from pytest_orchestrator.runners import ParallelRunner as ParallelRunner
    from pytest_orchestrator.runners import ScriptResult as ScriptResult
    from pytest_orchestrator.runners import run_function as run_function
    from pytest_orchestrator.runners import run_parallel as run_parallel
    from pytest_orchestrator.runners import run_parallel_async as run_parallel_async
    from pytest_orchestrator.runners import run_script as run_script
    from pytest_orchestrator.scripts import discover_scripts as discover_scripts
    from pytest_orchestrator.scripts import get_script_config as get_script_config
    from pytest_orchestrator.scripts import load_config as load_config
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
