"""The names the plugin's modules share: those it registers its plugin objects under, the other plugins' it takes
over, and the stash keys collection fills (a leaf: the xdist halves and the lazily imported modules import it)."""

from __future__ import annotations

import pytest


__all__ = [
    "DEPENDENCY_PLUGIN_NAME",
    "ORDER_PLUGIN_NAME",
    "SESSION_PLUGIN_NAME",
    "WATCH_RERUN_ENV",
    "WORKER_PLUGIN_NAME",
    "notes_key",
    "rejected_config_key",
]

#: name under which the session plugin is registered
SESSION_PLUGIN_NAME = "orchestrate-session"
#: name under which the worker half of the xdist scheduler is registered (on xdist workers)
WORKER_PLUGIN_NAME = "orchestrate-xdist-worker"

#: in the environment of a ``--orchestrate-watch`` rerun: that session does not watch (``plugin/watch.py``)
WATCH_RERUN_ENV = "PYTEST_ORCHESTRATOR_WATCH_RERUN"

#: the names pytest-dependency and pytest-order register under (their plugins are taken over under --orchestrate)
DEPENDENCY_PLUGIN_NAME = "dependency"
ORDER_PLUGIN_NAME = "orderingplugin"

#: lines to print once after collection (pytest-order labels that name nothing, ...)
notes_key = pytest.StashKey[list[str]]()
#: the messages of the configurations (orchestrate.yaml, PEP 723 blocks) that collection rejected
rejected_config_key = pytest.StashKey[list[str]]()
