"""Validators for command-line numbers, shared by the ``orchestrate`` command and the pytest options.

Each returns an ``argparse`` ``type=`` callable that names what it expected, so a bad value is a one-line usage
error, never a traceback. Standard library only: the pytest plugin imports this at start-up.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
import math


__all__ = ["number"]


def number(kind: type[int] | type[float], *, minimum: float, what: str, above: bool = False) -> Callable[[str], float]:
    """A ``type=`` callable accepting a ``kind`` (int or float) of at least ``minimum`` (more than it, with
    ``above``); ``what`` names what is expected.

    Usage::

        parser.add_argument("-j", type=number(int, minimum=1, what="a whole number"))
        parser.add_argument("--timeout", type=number(float, minimum=0, what="a number of seconds"))
    """

    def convert(text: str) -> float:
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected {what}, got {text!r}") from None
        if math.isnan(value) or value < minimum or (above and value == minimum):
            bound = "more than" if above else "at least"
            raise argparse.ArgumentTypeError(f"{what} must be {bound} {minimum:g}, got {text!r}")
        return value

    convert.__name__ = what.replace(" ", "_")  # argparse names the type in its messages
    return convert
