"""The durations cache: each item's last measured duration, kept in pytest's cache between runs.

The next run reads them as the item graph's estimates (the critical path in the collection header and in
``--orchestrate-graph``, the xdist scheduler's priorities). Skipped items and zero durations are not remembered;
the cache keeps the newest :data:`MAX_REMEMBERED` entries.
"""

from __future__ import annotations

from collections.abc import Iterable
import math
from typing import Any

import pytest


__all__ = ["DURATIONS_KEY", "MAX_REMEMBERED", "load_durations", "save_durations"]

#: pytest cache key of the remembered item durations ({node id: seconds})
DURATIONS_KEY = "orchestrate/durations"
MAX_REMEMBERED = 50_000


def _cache(config: pytest.Config) -> Any:
    return getattr(config, "cache", None)  # None with -p no:cacheprovider


def load_durations(config: pytest.Config) -> dict[str, float]:
    """``{node id: seconds}`` from the cache (the entries that are finite numbers; nothing without a cache)."""
    cache = _cache(config)
    if cache is None:
        return {}
    data = cache.get(DURATIONS_KEY, {})
    if not isinstance(data, dict):
        return {}
    return {
        k: float(v)
        for k, v in data.items()
        if isinstance(k, str) and isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v)
    }


def save_durations(config: pytest.Config, measured: Iterable[tuple[str, float]]) -> None:
    """Merge ``measured`` (``(node id, seconds)`` pairs, rounded to microseconds) into the cache (``measured`` is
    not read without one)."""
    cache = _cache(config)
    if cache is None:
        return
    rounded = {n: round(seconds, 6) for n, seconds in measured}
    if not rounded:
        return
    known = load_durations(config)
    known.update(rounded)
    if len(known) > MAX_REMEMBERED:
        known = dict(list(known.items())[-MAX_REMEMBERED:])
    cache.set(DURATIONS_KEY, known)
