"""The names under which the plugin registers its plugin objects (a leaf: the xdist halves import it too)."""

from __future__ import annotations


__all__ = ["SESSION_PLUGIN_NAME"]

#: name under which the session plugin is registered
SESSION_PLUGIN_NAME = "orchestrate-session"
