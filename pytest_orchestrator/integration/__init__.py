"""Bridges to other systems: CI providers, background runs, and agents.

- ``ci.py``: ``CICDBridge`` (detect the CI, run stages, run and export pipelines), ``GitHubReporter`` (a run
  listener) and ``ci_listeners()`` (the listeners for the CI we run in).
- ``export.py``: ``to_github_actions`` / ``to_gitlab_ci``.
- ``github.py``: GitHub Actions workflow commands (``github_error``, ``github_annotations_for_junit``, ...).
- ``bridge.py``: ``OrchestratorBridge``: submit / status / result / cancel / list_runs from any thread.
- ``agents.py``: ``AgentOrchestrator``, ``run_agent_task``, ``create_agent_workflow``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from pytest_orchestrator._lazy import lazy_getattr


# name -> module: loaded on first use (the pytest plugin's GitHub output needs github.py, not the agents)
_LAZY = {
    "AgentInfo": "agents",
    "AgentOrchestrator": "agents",
    "AgentResult": "agents",
    "create_agent_workflow": "agents",
    "default_orchestrator": "agents",
    "run_agent_task": "agents",
    "OrchestratorBridge": "bridge",
    "CICDBridge": "ci",
    "GitHubReporter": "ci",
    "ci_listeners": "ci",
    "detect_ci": "ci",
    "to_github_actions": "export",
    "to_gitlab_ci": "export",
    "github_annotations_for_junit": "github",
    "github_error": "github",
    "github_warning": "github",
}

__all__ = [
    "AgentInfo",
    "AgentOrchestrator",
    "AgentResult",
    "CICDBridge",
    "GitHubReporter",
    "OrchestratorBridge",
    "ci_listeners",
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

__getattr__ = lazy_getattr(__name__, _LAZY, globals())

if TYPE_CHECKING:
    from pytest_orchestrator.integration.agents import AgentInfo as AgentInfo
    from pytest_orchestrator.integration.agents import AgentOrchestrator as AgentOrchestrator
    from pytest_orchestrator.integration.agents import AgentResult as AgentResult
    from pytest_orchestrator.integration.agents import create_agent_workflow as create_agent_workflow
    from pytest_orchestrator.integration.agents import default_orchestrator as default_orchestrator
    from pytest_orchestrator.integration.agents import run_agent_task as run_agent_task
    from pytest_orchestrator.integration.bridge import OrchestratorBridge as OrchestratorBridge
    from pytest_orchestrator.integration.ci import CICDBridge as CICDBridge
    from pytest_orchestrator.integration.ci import GitHubReporter as GitHubReporter
    from pytest_orchestrator.integration.ci import ci_listeners as ci_listeners
    from pytest_orchestrator.integration.ci import detect_ci as detect_ci
    from pytest_orchestrator.integration.export import to_github_actions as to_github_actions
    from pytest_orchestrator.integration.export import to_gitlab_ci as to_gitlab_ci
    from pytest_orchestrator.integration.github import github_annotations_for_junit as github_annotations_for_junit
    from pytest_orchestrator.integration.github import github_error as github_error
    from pytest_orchestrator.integration.github import github_warning as github_warning
