"""The session's settings: each ``--orchestrate-*`` option, falling back to its ini key.

Precedence is marker > command line > ini: this module does the last two (a marker on an item still wins over
what is read here, see :func:`~.item_hooks.item_plan`). An ini value is checked like its option's value, and a
bad one is a usage error naming the ini key.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from typing import NamedTuple
from typing import TypeVar

import pytest

from pytest_orchestrator.argtypes import number


__all__ = [
    "DEPS_CHOICES",
    "GRAPH_CHOICES",
    "XFAIL_DEPS_CHOICES",
    "Settings",
    "metrics_path",
    "retry_count",
    "seconds",
    "xfail_deps_of",
]

T = TypeVar("T")

DEPS_CHOICES = ("run", "skip", "ignore")
GRAPH_CHOICES = ("mermaid", "dot")
XFAIL_DEPS_CHOICES = ("skip", "run")

#: ``type=`` of ``--orchestrate-timeout`` (and of ini ``orchestrate_timeout``)
seconds = number(float, minimum=0, above=True, what="a number of seconds")
#: ``type=`` of ``--orchestrate-retries`` (and of ini ``orchestrate_retries``)
retry_count = number(int, minimum=0, what="a whole number of retries")


def _choice(choices: tuple[str, ...]) -> Callable[[str], str]:
    def convert(text: str) -> str:
        if text not in choices:
            raise argparse.ArgumentTypeError(f"expected one of {', '.join(choices)}, got {text!r}")
        return text

    return convert


def _ini(config: pytest.Config, key: str, convert: Callable[[str], T]) -> T | None:
    text = str(config.getini(key) or "").strip()
    if not text:
        return None
    try:
        return convert(text)
    except argparse.ArgumentTypeError as exc:
        raise pytest.UsageError(f"ini {key}: {exc}") from None


def _setting(config: pytest.Config, dest: str, convert: Callable[[str], T]) -> T | None:
    value = config.getoption(dest, None)
    if value is not None:
        return value  # type: ignore[no-any-return]
    return _ini(config, dest, convert)


def xfail_deps_of(config: pytest.Config) -> str:
    """``--orchestrate-xfail-deps`` (or its ini key): ``"skip"`` (default) or ``"run"``."""
    value = config.getoption("orchestrate_xfail_deps", None)
    if value is None and hasattr(config, "getini"):
        value = _ini(config, "orchestrate_xfail_deps", _choice(XFAIL_DEPS_CHOICES))
    return str(value or "skip")


class Settings(NamedTuple):
    """What ``--orchestrate-*`` options (or their ini keys) ask for this session."""

    deps_policy: str = "run"
    retries: int | None = None
    timeout: float | None = None
    stages: tuple[str, ...] = ()
    graph_format: str | None = None
    strict: bool = False
    xfail_deps: str = "skip"

    @classmethod
    def from_config(cls, config: pytest.Config) -> Settings:
        """The command line's values, else the ini's; raises ``pytest.UsageError`` for a bad ini value."""
        stages = list(config.getoption("orchestrate_stage", None) or [])
        if not stages:
            stages = [str(s) for s in config.getini("orchestrate_stage") or ()]
        strict = config.getoption("orchestrate_strict", None)
        retries = _setting(config, "orchestrate_retries", retry_count)
        return cls(
            deps_policy=_setting(config, "orchestrate_deps", _choice(DEPS_CHOICES)) or "run",
            retries=None if retries is None else int(retries),
            timeout=_setting(config, "orchestrate_timeout", seconds),
            stages=tuple(stages),
            graph_format=_setting(config, "orchestrate_graph", _choice(GRAPH_CHOICES)),
            strict=bool(config.getini("orchestrate_strict")) if strict is None else bool(strict),
            xfail_deps=xfail_deps_of(config),
        )


def metrics_path(config: pytest.Config) -> str | None:
    """``--orchestrate-metrics``, else ini ``orchestrate_metrics``; ``None`` when neither is set."""
    value = config.getoption("orchestrate_metrics", None) or str(config.getini("orchestrate_metrics") or "").strip()
    return str(value) if value else None
