"""Scripts as workflow steps: find them, read their inline metadata, and merge in the project configuration.

Usage::

    from pytest_orchestrator.scripts import discover_scripts, get_script_config, load_config

    config = load_config("project/")
    for script in discover_scripts("project/scripts"):
        settings = get_script_config(script, config=config)

One module per job: :mod:`.globs` (glob matching), :mod:`.discovery` (walking a folder), :mod:`.pep723` (a
script's inline metadata), :mod:`.fields` (the settings and their validation), :mod:`.config` (config files and the
merge), :mod:`.documents` (reading YAML safely), :mod:`.lines` (key path to line, for YAML and TOML),
:mod:`.errors` (``ConfigError``). PyYAML is imported only when an ``orchestrate.yaml`` is actually read.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from pytest_orchestrator._lazy import lazy_getattr


# name -> module: loaded on first use, so that the pytest plugin can match globs without reading configs
_LAZY = {
    "ConfigError": "errors",
    "OrchestrateConfig": "config",
    "ScriptMetadata": "pep723",
    "discover_scripts": "discovery",
    "get_script_config": "config",
    "glob_match": "globs",
    "load_config": "config",
    "parse_script_metadata": "pep723",
}

__all__ = [
    "ConfigError",
    "OrchestrateConfig",
    "ScriptMetadata",
    "discover_scripts",
    "get_script_config",
    "glob_match",
    "load_config",
    "parse_script_metadata",
]


__getattr__ = lazy_getattr(__name__, _LAZY, globals())


if TYPE_CHECKING:
    from pytest_orchestrator.scripts.config import OrchestrateConfig as OrchestrateConfig
    from pytest_orchestrator.scripts.config import get_script_config as get_script_config
    from pytest_orchestrator.scripts.config import load_config as load_config
    from pytest_orchestrator.scripts.discovery import discover_scripts as discover_scripts
    from pytest_orchestrator.scripts.errors import ConfigError as ConfigError
    from pytest_orchestrator.scripts.globs import glob_match as glob_match
    from pytest_orchestrator.scripts.pep723 import ScriptMetadata as ScriptMetadata
    from pytest_orchestrator.scripts.pep723 import parse_script_metadata as parse_script_metadata
