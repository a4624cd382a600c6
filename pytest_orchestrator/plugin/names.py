"""The names under which the plugin registers its plugin objects (a leaf: the xdist halves import it too)."""

from __future__ import annotations


__all__ = ["SESSION_PLUGIN_NAME", "WATCH_RERUN_ENV", "WORKER_PLUGIN_NAME"]

#: name under which the session plugin is registered
SESSION_PLUGIN_NAME = "orchestrate-session"
#: name under which the worker half of the xdist scheduler is registered (on xdist workers)
WORKER_PLUGIN_NAME = "orchestrate-xdist-worker"

#: in the environment of a ``--orchestrate-watch`` rerun: that session does not watch (``plugin/watch.py``)
WATCH_RERUN_ENV = "PYTEST_ORCHESTRATOR_WATCH_RERUN"
