"""The names the plugin's modules share: those it registers its plugin objects under, the other plugins' it takes
over, the stash keys collection fills, and :func:`stashed`, how an item's stash is read per item (a leaf: the xdist
halves and the lazily imported modules import it)."""

from __future__ import annotations

from typing import TypeVar

import pytest


__all__ = [
    "DEPENDENCY_PLUGIN_NAME",
    "ORDER_PLUGIN_NAME",
    "SESSION_PLUGIN_NAME",
    "WATCH_RERUN_ENV",
    "WORKER_PLUGIN_NAME",
    "notes_key",
    "rejected_config_key",
    "stashed",
]

T = TypeVar("T")
D = TypeVar("D")

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


def stashed(stash: pytest.Stash, key: pytest.StashKey[T], default: D) -> T | D:
    """``stash.get(key, default)``, without the ``KeyError`` that ``Stash.get`` raises and catches for a missing key
    (about five times the cost of a look-up): per item, a key is mostly missing."""
    return stash[key] if key in stash else default
