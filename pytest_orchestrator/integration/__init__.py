"""Bridges to other systems: CI providers, background runs, and agents.

- ``ci.py``: ``CICDBridge`` (detect the CI, run stages, run and export pipelines) and ``GitHubReporter``.
- ``export.py``: ``to_github_actions`` / ``to_gitlab_ci``.
- ``github.py``: GitHub Actions workflow commands (``github_error``, ``github_annotations_for_junit``, ...).
- ``bridge.py``: ``OrchestratorBridge``: submit / status / result / cancel / list_runs from any thread.
- ``agents.py``: ``AgentOrchestrator``, ``run_agent_task``, ``create_agent_workflow``.
"""

from __future__ import annotations

from pytest_orchestrator.integration.agents import AgentInfo
from pytest_orchestrator.integration.agents import AgentOrchestrator
from pytest_orchestrator.integration.agents import AgentResult
from pytest_orchestrator.integration.agents import create_agent_workflow
from pytest_orchestrator.integration.agents import default_orchestrator
from pytest_orchestrator.integration.agents import run_agent_task
from pytest_orchestrator.integration.bridge import OrchestratorBridge
from pytest_orchestrator.integration.ci import CICDBridge
from pytest_orchestrator.integration.ci import GitHubReporter
from pytest_orchestrator.integration.ci import detect_ci
from pytest_orchestrator.integration.export import to_github_actions
from pytest_orchestrator.integration.export import to_gitlab_ci
from pytest_orchestrator.integration.github import github_annotations_for_junit
from pytest_orchestrator.integration.github import github_error
from pytest_orchestrator.integration.github import github_warning


__all__ = [
    "AgentInfo",
    "AgentOrchestrator",
    "AgentResult",
    "CICDBridge",
    "GitHubReporter",
    "OrchestratorBridge",
    "create_agent_workflow",
    "default_orchestrator",
    "detect_ci",
    "github_annotations_for_junit",
    "github_error",
    "github_warning",
    "run_agent_task",
    "to_github_actions",
    "to_gitlab_ci",
]
