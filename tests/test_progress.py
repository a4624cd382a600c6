"""The ``orchestrate`` command's progress lines: a counter that counts, and colour by NO_COLOR, FORCE_COLOR and TTY."""

from __future__ import annotations

import io
import re

import pytest

from pytest_orchestrator.reporting.summary import ProgressPrinter
from pytest_orchestrator.reporting.terminal import paint
from pytest_orchestrator.reporting.terminal import use_colour


class Tty(io.StringIO):
    def isatty(self) -> bool:
        return True


@pytest.mark.parametrize(
    ("env", "tty", "expected"),
    [
        ({}, True, True),
        ({}, False, False),
        ({"NO_COLOR": "1"}, True, False),
        ({"NO_COLOR": ""}, True, True),  # an empty NO_COLOR does not count
        ({"FORCE_COLOR": "1"}, False, True),
        ({"FORCE_COLOR": "0"}, True, False),
        ({"NO_COLOR": "1", "FORCE_COLOR": "1"}, True, False),  # NO_COLOR wins
        ({"TERM": "dumb"}, True, False),
        ({"TERM": "dumb", "FORCE_COLOR": "1"}, False, True),
    ],
)
def test_use_colour(env: dict[str, str], tty: bool, expected: bool) -> None:
    stream = Tty() if tty else io.StringIO()
    assert use_colour(stream, env) is expected


def test_use_colour_on_odd_streams() -> None:
    assert use_colour(None, {}) is False
    closed = io.StringIO()
    closed.close()
    assert use_colour(closed, {}) is False  # isatty() of a closed stream raises ValueError
    assert paint("x") == "x"
    assert paint("x", "red", "bold") == "\x1b[31;1mx\x1b[0m"


def test_counter_counts_starts_and_finishes() -> None:
    stream = io.StringIO()
    progress = ProgressPrinter(12, stream, colour=False)
    progress.started("extract")
    progress.started("transform")
    progress.finished("extract", "passed", duration=0.5)
    progress.retrying("transform", 1, "boom", 0.0)
    progress.started("load")
    progress.finished("transform", "failed", duration=1.0, detail="exited with status 1")
    progress.finished("load", "skipped")
    assert stream.getvalue().splitlines() == [
        "[ 1/12] START extract",
        "[ 2/12] START transform",
        "[ 1/12] PASS extract (0.50s)",
        "         RETRY transform (attempt 1: boom; next in 0s)",
        "[ 3/12] START load",
        "[ 2/12] FAIL transform (1.00s, exited with status 1)",
        "[ 3/12] SKIP load",
    ]
    assert "[ /" not in stream.getvalue()


def test_colour_only_on_the_status_word(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("NO_COLOR", "FORCE_COLOR", "TERM"):
        monkeypatch.delenv(name, raising=False)
    tty = Tty()
    progress = ProgressPrinter(2, tty)
    assert progress.colour
    progress.started("a")
    progress.finished("a", "passed", duration=0.1)
    progress.finished("b", "timeout")
    lines = tty.getvalue().splitlines()
    assert lines[0] == "[1/2] \x1b[36mSTART\x1b[0m a"
    assert lines[1] == "[1/2] \x1b[32mPASS\x1b[0m a (0.10s)"
    assert lines[2] == "[2/2] \x1b[31;1mTIMEOUT\x1b[0m b"
    assert re.sub(r"\x1b\[[0-9;]*m", "", lines[1]) == "[1/2] PASS a (0.10s)"
    monkeypatch.setenv("NO_COLOR", "1")
    assert not ProgressPrinter(2, Tty()).colour
    monkeypatch.delenv("NO_COLOR")
    monkeypatch.setenv("FORCE_COLOR", "1")
    assert ProgressPrinter(2, io.StringIO()).colour
