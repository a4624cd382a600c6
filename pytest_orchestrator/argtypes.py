"""Validators for command-line numbers, shared by the ``orchestrate`` command and the pytest options.

Each returns an ``argparse`` ``type=`` callable that names what it expected, so a bad value is a one-line usage
error, never a traceback. Standard library only: the pytest plugin imports this at start-up (the check of a number
of seconds, from ``core.limits``, is loaded when a value is converted).
"""

from __future__ import annotations

import argparse
from collections.abc import Callable


__all__ = ["REPORT_SUFFIXES", "number", "report_path"]

#: the file suffixes a run report can be written as (JSON, or the self-contained HTML page)
REPORT_SUFFIXES = (".json", ".html", ".htm")


def number(kind: type[int] | type[float], *, minimum: float, what: str, above: bool = False) -> Callable[[str], float]:
    """A ``type=`` callable accepting a ``kind`` (int or float) of at least ``minimum`` (more than it, with
    ``above``); ``what`` names what is expected.

    A float is a number of seconds: ``minimum`` must be 0, and the value is judged by
    :func:`pytest_orchestrator.core.limits.check_seconds`, the one check of a number of seconds (imported when a
    value is converted, so this module stays cheap to import).

    Usage::

        parser.add_argument("-j", type=number(int, minimum=1, what="a whole number"))
        parser.add_argument("--timeout", type=number(float, minimum=0, what="a number of seconds"))
    """
    if kind is float and minimum != 0:
        raise ValueError(f"a float option is a number of seconds, so its minimum is 0, not {minimum!r}")
    bound = "more than" if above else "at least"

    def out_of_range(text: str) -> argparse.ArgumentTypeError:
        return argparse.ArgumentTypeError(f"{what} must be {bound} {minimum:g}, got {text!r}")

    def convert(text: str) -> float:
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected {what}, got {text!r}") from None
        if kind is float:
            from pytest_orchestrator.core.limits import check_seconds

            return check_seconds(value, what, zero=not above, error=lambda _message: out_of_range(text))
        if value < minimum or (above and value == minimum):
            raise out_of_range(text)
        return value

    convert.__name__ = what.replace(" ", "_")  # argparse names the type in its messages
    return convert


def report_path(text: str) -> str:
    """A ``type=`` callable accepting a path ending in ``.json`` or ``.html`` (a run report's two formats)."""
    suffix = text.rsplit(".", 1)[-1].lower() if "." in text.rsplit("/", 1)[-1] else ""
    if f".{suffix}" not in REPORT_SUFFIXES:
        raise argparse.ArgumentTypeError(f"a report path must end in .json or .html, got {text!r}")
    return text


report_path.__name__ = "a_report_path"
