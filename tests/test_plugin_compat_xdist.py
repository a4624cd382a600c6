"""pytest-dependency's and pytest-order's semantics that need more than one process to check, serial and -n 2:
the runtime ``depends(request, ...)`` sees tests that passed on another xdist worker (it asks the controller), the
lines collection has for the user are printed once by the controller, and an index gives way to a relative order
(pytest-order's rule) instead of closing a cycle."""

from __future__ import annotations

import re
import threading

from plugin_helpers import WITHOUT_PLUGINS
from plugin_helpers import WORKERS
from plugin_helpers import lean_xdist_inner_runs
from plugin_helpers import project
import pytest

from pytest_orchestrator.plugin.xdist_handoff import ANSWER
from pytest_orchestrator.plugin.xdist_handoff import ASK
from pytest_orchestrator.plugin.xdist_worker import Verdicts


@pytest.fixture(autouse=True)
def _lean(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> None:
    lean_xdist_inner_runs(monkeypatch)


# Two slow producers start together, one on each worker; the consumer is ordered after both (soft edges), so
# under -n 2 at least one of them ran on another worker than the consumer.
RUNTIME = """
import time
import pytest
from {module} import depends

@pytest.mark.dependency()
def test_left(): time.sleep(0.3)

@pytest.mark.dependency()
def test_right(): time.sleep(0.3); assert {right_passes}

@pytest.mark.order(after=["test_left", "test_right"])
def test_consumer(request): depends(request, ["test_left", "test_right"])
"""


def reported(result: pytest.RunResult) -> list[tuple[str, str, str]]:
    """``(test name, word, worker)`` in the order a ``-v`` run reported them (worker ``""`` serially)."""
    found: list[tuple[str, str, str]] = []
    for line in result.outlines:
        xdist = re.match(r"\[(gw\d+)\] (?:\[\s*\d+%\] )?(PASSED|FAILED|SKIPPED) \S+::(\S+)", line)
        serial = re.match(r"\S+::(\S+) (PASSED|FAILED|SKIPPED)", line)
        if xdist is not None:
            found.append((xdist.group(3), xdist.group(2), xdist.group(1)))
        elif serial is not None:
            found.append((serial.group(1), serial.group(2), ""))
    return found


def words(result: pytest.RunResult) -> dict[str, tuple[str, str]]:
    """``{test name: (word, worker)}`` from a ``-v`` run."""
    return {name: (word, worker) for name, word, worker in reported(result)}


def run_runtime(pytester: pytest.Pytester, module: str, right_passes: bool, workers: tuple[str, ...]) -> None:
    project(pytester)
    pytester.makepyfile(test_runtime=RUNTIME.format(module=module, right_passes=right_passes))
    flags = WITHOUT_PLUGINS if module == "pytest_orchestrator" else ("-p", "no:pytest_order", "-p", "no:cacheprovider")
    result = pytester.runpytest_subprocess("--orchestrate", "-v", "-rs", *flags, *workers)
    seen = words(result)
    assert seen["test_left"][0] == "PASSED", result.stdout.str()
    if workers:  # the producers ran on two workers: one of them is not the consumer's
        assert seen["test_left"][1] != seen["test_right"][1], result.stdout.str()
    if right_passes:
        assert seen["test_consumer"][0] == "PASSED", result.stdout.str()
    else:
        assert seen["test_consumer"][0] == "SKIPPED", result.stdout.str()
        result.stdout.fnmatch_lines(["SKIPPED [[]1[]] *: test_consumer depends on test_right"])
    assert "did not answer" not in result.stdout.str()


@WORKERS
@pytest.mark.parametrize("right_passes", [True, False], ids=["passed", "failed"])
def test_runtime_depends_counts_what_passed_on_another_worker(
    pytester: pytest.Pytester, workers: tuple[str, ...], right_passes: bool
) -> None:
    """``pytest_orchestrator.depends(request, [...])``: the outcome is the serial run's under -n 2."""
    run_runtime(pytester, "pytest_orchestrator", right_passes, workers)


@WORKERS
@pytest.mark.parametrize("right_passes", [True, False], ids=["passed", "failed"])
def test_pytest_dependency_depends_counts_what_passed_on_another_worker(
    pytester: pytest.Pytester, workers: tuple[str, ...], right_passes: bool
) -> None:
    """``pytest_dependency.depends(request, [...])`` (the plugin installed, its skipping ours): the same."""
    pytest.importorskip("pytest_dependency")
    run_runtime(pytester, "pytest_dependency", right_passes, workers)


# No edges at all (xdist's own scheduler runs the session): a module fixture per parameter calls depends() on the
# producer of its parameter. Serially each producer runs just before its consumer; under -n 2 a consumer may start
# while its producer still runs on the other worker: it waits for it, as the serial order implies.
FIXTURE_CALLER = """
import time
import pytest
from pytest_orchestrator import depends

@pytest.fixture(scope="module", params=[1, 2, 3, 4, 5, 6])
def batch(request):
    return request.param

@pytest.fixture(scope="module")
def checked(request, batch):
    depends(request, [f"test_produce[{batch}]"])
    return batch

@pytest.mark.dependency()
def test_produce(batch):
    time.sleep(0.15)
    assert batch != 4

def test_consume(checked):
    pass
"""


@WORKERS
def test_runtime_depends_waits_for_a_test_that_runs_earlier_in_the_serial_order(
    pytester: pytest.Pytester, workers: tuple[str, ...]
) -> None:
    project(pytester)
    pytester.makepyfile(test_batches=FIXTURE_CALLER)
    result = pytester.runpytest_subprocess("--orchestrate", "-v", *WITHOUT_PLUGINS, *workers)
    found = {name: word for name, (word, _) in words(result).items()}
    expected = {f"test_produce[{i}]": "FAILED" if i == 4 else "PASSED" for i in range(1, 7)}
    expected.update({f"test_consume[{i}]": "SKIPPED" if i == 4 else "PASSED" for i in range(1, 7)})
    assert found == expected, result.stdout.str()


class _Channel:
    """The worker's end of the channel, as far as :class:`Verdicts` uses it: the controller answers on a thread."""

    def __init__(self, verdicts: Verdicts, answer: dict[str, str | None] | None) -> None:
        self.verdicts = verdicts
        self.answer = answer

    def send(self, message: tuple[str, int, list[str]]) -> None:
        assert message[0] == ASK
        if self.answer is not None:
            reply = (ANSWER, message[1], self.answer)
            threading.Timer(0.05, self.verdicts.receive, (reply,)).start()


def test_a_worker_waits_for_the_answer_and_falls_back_when_none_comes() -> None:
    verdicts = Verdicts()
    assert verdicts.ask(_Channel(verdicts, {"t.py::a": "passed"}), ["t.py::a"], timeout=5) == {"t.py::a": "passed"}
    assert verdicts.ask(_Channel(verdicts, None), ["t.py::a"], timeout=0.1) is None  # bounded wait
    verdicts.receive(None)  # the channel's end marker: the controller is gone
    assert verdicts.ask(_Channel(verdicts, {"t.py::a": "passed"}), ["t.py::a"], timeout=5) is None


NOTES = """
import pytest

def test_base(): pass

@pytest.mark.depends("test_base")
def test_top(): pass

@pytest.mark.order(after="test_nowhere")
def test_other(): pass
"""


def notes(result: pytest.RunResult) -> list[str]:
    """The collection lines for the user (not the header lines that differ between serial and xdist on purpose)."""
    return [line for line in result.outlines if re.match(r"orchestrate: (?!\d+ items,|DAG scheduling)", line)]


@pytest.mark.parametrize("verbosity", ["-v", "-q"])
def test_collection_lines_are_printed_once_under_xdist_as_serially(pytester: pytest.Pytester, verbosity: str) -> None:
    project(pytester)
    pytester.makepyfile(test_notes=NOTES)
    args = ("--orchestrate", verbosity, *WITHOUT_PLUGINS, "-k", "top or other")
    serial = notes(pytester.runpytest_subprocess(*args))
    assert serial == [
        "orchestrate: test_notes.py::test_other: order(after='test_nowhere') names no collected test; ignored",
        "orchestrate: 1 deselected dependency run because selected items need it (--orchestrate-deps=run): "
        "test_notes.py::test_base",
    ]
    assert notes(pytester.runpytest_subprocess(*args, "-n", "2")) == serial


@pytest.mark.parametrize("verbosity", ["-v", "-q"])
def test_the_ignored_markers_line_is_printed_once_under_xdist_as_serially(
    pytester: pytest.Pytester, verbosity: str
) -> None:
    """Without --orchestrate: the one warning line about ordering markers nothing acts on."""
    project(pytester)
    pytester.makepyfile(test_notes=NOTES)
    args = (verbosity, *WITHOUT_PLUGINS)
    serial = notes(pytester.runpytest_subprocess(*args))
    assert serial == [
        "orchestrate: 2 items carry depends/stage/dependency/order markers, ignored without --orchestrate"
    ]
    assert notes(pytester.runpytest_subprocess(*args, "-n", "2")) == serial


ORDINAL_AND_RELATIVE = """
import pytest

def test_prepare(): pass

@pytest.mark.order(index=0, after="test_one")
def test_zero(): pass

@pytest.mark.order(1)
def test_one(): pass

@pytest.mark.order(after="test_pinned", before="test_final")
def test_between(): pass

@pytest.mark.order("second_to_last")
def test_pinned(): pass

@pytest.mark.order("last")
def test_final(): pass
"""


@WORKERS
def test_a_relative_order_wins_over_an_index(pytester: pytest.Pytester, workers: tuple[str, ...]) -> None:
    """pytest-order's rule: relative markers take precedence, the index gives way (no cycle, nothing errors)."""
    project(pytester)
    pytester.makepyfile(test_mixed=ORDINAL_AND_RELATIVE)
    result = pytester.runpytest_subprocess("--orchestrate", "-v", *WITHOUT_PLUGINS, *workers)
    result.assert_outcomes(passed=6)
    names = [name for name, _, _ in reported(result)]
    assert names == ["test_one", "test_zero", "test_prepare", "test_pinned", "test_between", "test_final"]
