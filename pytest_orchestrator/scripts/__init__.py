"""Scripts as workflow steps: find them, read their inline metadata, and merge in the project configuration.

Usage::

    from pytest_orchestrator.scripts import discover_scripts, get_script_config, load_config

    config = load_config("project/")
    for script in discover_scripts("project/scripts"):
        settings = get_script_config(script, config=config)

PyYAML is imported only when an ``orchestrate.yaml`` is actually read.
"""

from __future__ import annotations

from pytest_orchestrator.scripts.config import OrchestrateConfig
from pytest_orchestrator.scripts.config import get_script_config
from pytest_orchestrator.scripts.config import load_config
from pytest_orchestrator.scripts.discovery import ScriptMetadata
from pytest_orchestrator.scripts.discovery import discover_scripts
from pytest_orchestrator.scripts.discovery import parse_script_metadata
from pytest_orchestrator.scripts.errors import ConfigError


__all__ = [
    "ConfigError",
    "OrchestrateConfig",
    "ScriptMetadata",
    "discover_scripts",
    "get_script_config",
    "load_config",
    "parse_script_metadata",
]
