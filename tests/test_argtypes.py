"""``argtypes.number``: command-line numbers with one-line usage errors; seconds judged by ``core.limits``."""

from __future__ import annotations

import argparse
import subprocess
import sys

import pytest

from pytest_orchestrator.argtypes import number


def test_whole_numbers() -> None:
    workers = number(int, minimum=1, what="a whole number")
    assert workers("3") == 3
    with pytest.raises(argparse.ArgumentTypeError, match="a whole number must be at least 1, got '0'"):
        workers("0")
    with pytest.raises(argparse.ArgumentTypeError, match=r"expected a whole number, got '1\.5'"):
        workers("1.5")
    assert workers.__name__ == "a_whole_number"


@pytest.mark.parametrize(
    ("above", "text", "message"),
    [
        (False, "-1", "a number of seconds must be at least 0, got '-1'"),
        (False, "nan", "a number of seconds must be at least 0, got 'nan'"),
        (True, "0", "a number of seconds must be more than 0, got '0'"),
        (True, "nan", "a number of seconds must be more than 0, got 'nan'"),
        (True, "soon", "expected a number of seconds, got 'soon'"),
    ],
)
def test_seconds_refused(above: bool, text: str, message: str) -> None:
    seconds = number(float, minimum=0, what="a number of seconds", above=above)
    with pytest.raises(argparse.ArgumentTypeError) as info:
        seconds(text)
    assert str(info.value) == message


def test_seconds_accepted() -> None:
    assert number(float, minimum=0, what="seconds")("0") == 0.0
    assert number(float, minimum=0, what="seconds", above=True)("2.5") == 2.5


def test_a_float_is_a_number_of_seconds() -> None:
    with pytest.raises(ValueError, match="minimum is 0"):
        number(float, minimum=1, what="a ratio")


def test_the_parser_reports_a_usage_error() -> None:
    parser = argparse.ArgumentParser(prog="x", exit_on_error=False)
    parser.add_argument("--timeout", type=number(float, minimum=0, above=True, what="a number of seconds"))
    with pytest.raises(argparse.ArgumentError, match="must be more than 0"):
        parser.parse_args(["--timeout", "-2"])


def test_importing_stays_cheap() -> None:
    code = (
        "import sys\n"
        "import pytest_orchestrator.argtypes\n"
        "heavy = [m for m in ('asyncio', 'pytest_orchestrator.core.limits') if m in sys.modules]\n"
        "assert not heavy, heavy\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
