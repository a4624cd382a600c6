"""YAML pipelines: CI stages as a workflow.

- ``config.py``: ``StageConfig`` and ``PipelineConfig`` (validated dataclasses) and the dependency rules.
- ``loader.py``: ``load_pipeline(path)`` with ``file:line`` errors.
- ``stages.py``: running one stage (``run_ci_stage``, ``execute_stage``) into a ``StageResult``.
- ``run.py``: ``PipelineWorkflow`` and ``create_pipeline_workflow``.

``orchestrate run X.yaml`` (run folder, progress, summary) is ``pytest_orchestrator.orchestrator.run_pipeline_file``:
the one run driver runs pipelines and scripts alike. Nothing here knows which CI hosts a run.

Usage::

    from pytest_orchestrator.pipelines import load_pipeline, create_pipeline_workflow

    wf = create_pipeline_workflow(load_pipeline("pipeline.yaml"))
    asyncio.run(wf.run())
    wf.get_summary()["warnings"]
"""

from __future__ import annotations

from pytest_orchestrator.pipelines.config import PipelineConfig
from pytest_orchestrator.pipelines.config import StageConfig
from pytest_orchestrator.pipelines.loader import load_pipeline
from pytest_orchestrator.pipelines.run import PipelineWorkflow
from pytest_orchestrator.pipelines.run import create_pipeline_workflow
from pytest_orchestrator.pipelines.stages import CommandResult
from pytest_orchestrator.pipelines.stages import StageResult
from pytest_orchestrator.pipelines.stages import execute_stage
from pytest_orchestrator.pipelines.stages import run_ci_stage
from pytest_orchestrator.scripts.errors import ConfigError


__all__ = [
    "CommandResult",
    "ConfigError",
    "PipelineConfig",
    "PipelineWorkflow",
    "StageConfig",
    "StageResult",
    "create_pipeline_workflow",
    "execute_stage",
    "load_pipeline",
    "run_ci_stage",
]
