"""``pytest --orchestrate -n N``: the DAG-aware xdist scheduler end to end (inner runs in subprocesses with a timeout).

Each project gets a ``conftest.py`` whose autouse fixture appends ``[node id, start, end, worker]`` to
``timeline.jsonl``, so the tests can check that nothing started before its dependencies ended.
"""

from __future__ import annotations

import json
from pathlib import Path
import re
import textwrap
import xml.etree.ElementTree as ET

from plugin_helpers import lean_xdist_inner_runs
import pytest


TIMEOUT = 90

TIMELINE_CONFTEST = """
import json, os, time
import pytest

@pytest.fixture(autouse=True)
def _timeline(request):
    start = time.time()
    yield
    line = json.dumps([request.node.nodeid, start, time.time(), os.environ.get("PYTEST_XDIST_WORKER", "-")])
    with open(os.path.join(str(request.config.rootpath), "timeline.jsonl"), "a") as stream:
        stream.write(line + "\\n")
"""


@pytest.fixture(autouse=True)
def _inner_env(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> None:
    lean_xdist_inner_runs(monkeypatch)


def project(pytester: pytest.Pytester, timeline: bool = True, **modules: str) -> Path:
    pytester.makeini("[pytest]\n")
    if timeline:
        pytester.makeconftest(TIMELINE_CONFTEST)
    if modules:
        pytester.makepyfile(**{name: textwrap.dedent(text) for name, text in modules.items()})
    return pytester.path


def run(pytester: pytest.Pytester, *args: str) -> pytest.RunResult:
    return pytester.runpytest_subprocess("-p", "no:cacheprovider", *args, timeout=TIMEOUT)


def timeline(pytester: pytest.Pytester) -> dict[str, tuple[float, float, str]]:
    path = pytester.path / "timeline.jsonl"
    out = {}
    for line in path.read_text().splitlines() if path.exists() else []:
        nodeid, start, end, worker = json.loads(line)
        out[nodeid] = (start, end, worker)
    return out


def assert_dependencies_first(pytester: pytest.Pytester, deps: dict[str, list[str]]) -> None:
    spans = timeline(pytester)
    for nodeid, wanted in deps.items():
        for dep in wanted:
            if nodeid in spans and dep in spans:
                assert spans[dep][1] <= spans[nodeid][0] + 1e-3, f"{nodeid} started before {dep} ended"


def skipped_lines(result: pytest.RunResult) -> list[str]:
    return sorted(line for line in result.outlines if line.startswith("SKIPPED ["))


def junit(path: Path) -> dict[str, tuple[str, str]]:
    """``{classname::name: (outcome, message)}``."""
    out = {}
    for case in ET.parse(path).getroot().iter("testcase"):
        outcome, message = "passed", ""
        for child in case:
            if child.tag in ("failure", "error", "skipped"):
                outcome, message = child.tag, child.get("message", "")
                break
        out[f"{case.get('classname')}::{case.get('name')}"] = (outcome, message)
    return out


CHAIN = """
import time
import pytest

def test_c0(): time.sleep(0.05)
@pytest.mark.depends("test_c0")
def test_c1(): time.sleep(0.05)
@pytest.mark.depends("test_c1")
def test_c2(): time.sleep(0.05)
@pytest.mark.depends("test_c2")
def test_c3(): time.sleep(0.05)
@pytest.mark.depends("test_c3")
def test_c4(): pass
@pytest.mark.depends("test_c4")
def test_c5(): pass
"""
CHAIN_DEPS = {f"test_chain.py::test_c{i}": [f"test_chain.py::test_c{i - 1}"] for i in range(1, 6)}


@pytest.mark.parametrize("workers", ["1", "2", "auto"])
def test_chain_longer_than_the_worker_count(pytester: pytest.Pytester, workers: str) -> None:
    project(pytester, test_chain=CHAIN)
    result = run(pytester, "--orchestrate", "-n", workers)
    result.assert_outcomes(passed=6)
    assert_dependencies_first(pytester, CHAIN_DEPS)


def test_diamond_and_fan_in(pytester: pytest.Pytester) -> None:
    project(
        pytester,
        test_diamond="""
        import time
        import pytest

        def test_top(): time.sleep(0.1)
        @pytest.mark.depends("test_top")
        def test_left(): time.sleep(0.2)
        @pytest.mark.depends("test_top")
        def test_right(): time.sleep(0.2)
        @pytest.mark.depends("test_left", "test_right")
        def test_bottom(): pass
        """,
    )
    result = run(pytester, "--orchestrate", "-n", "2")
    result.assert_outcomes(passed=4)
    d = "test_diamond.py::"
    deps = {f"{d}test_left": [f"{d}test_top"], f"{d}test_right": [f"{d}test_top"]}
    deps[f"{d}test_bottom"] = [f"{d}test_left", f"{d}test_right"]
    assert_dependencies_first(pytester, deps)
    spans = timeline(pytester)
    # the two middle items ran at the same time, on different workers
    left, right = spans[f"{d}test_left"], spans[f"{d}test_right"]
    assert left[2] != right[2]
    assert left[0] < right[1] and right[0] < left[1]


@pytest.mark.parametrize("root_passes", [True, False])
def test_everything_depends_on_one_item(pytester: pytest.Pytester, root_passes: bool) -> None:
    body = "\n".join(
        ["import pytest", "", f"def test_root(): assert {root_passes}", ""]
        + [f'@pytest.mark.depends("test_root")\ndef test_leaf{i}(): pass\n' for i in range(12)]
    )
    project(pytester, test_fan=body)
    result = run(pytester, "--orchestrate", "-n", "3", "-rs")
    if root_passes:
        result.assert_outcomes(passed=13)
        assert_dependencies_first(
            pytester, {f"test_fan.py::test_leaf{i}": ["test_fan.py::test_root"] for i in range(12)}
        )
    else:
        result.assert_outcomes(failed=1, skipped=12)
        assert "SKIPPED [12] test_fan.py" not in result.stdout.str()  # one line per location
        reason = "dependency 'test_fan.py::test_root' failed"
        assert len([line for line in skipped_lines(result) if reason in line]) == 12
        assert set(timeline(pytester)) == {"test_fan.py::test_root"}  # no worker time spent on the skips


def test_empty_graph(pytester: pytest.Pytester) -> None:
    project(pytester, test_nothing="X = 1\n")
    result = run(pytester, "--orchestrate", "-n", "2")
    assert result.ret == pytest.ExitCode.NO_TESTS_COLLECTED


def test_more_workers_than_items(pytester: pytest.Pytester) -> None:
    project(
        pytester,
        test_two="""
        import pytest

        def test_a(): pass
        @pytest.mark.depends("test_a")
        def test_b(): pass
        """,
    )
    result = run(pytester, "--orchestrate", "-n", "4", "-v")
    result.assert_outcomes(passed=2)
    assert_dependencies_first(pytester, {"test_two.py::test_b": ["test_two.py::test_a"]})
    text = result.stdout.str()
    assert "__orchestrate_flush__" not in text
    assert "4 workers [2 items]" in text


def test_skips_match_serial_mode(pytester: pytest.Pytester) -> None:
    project(
        pytester,
        test_skips="""
        import time
        import pytest

        def test_slow_fail():
            time.sleep(0.3)
            assert False

        def test_fast_fail():
            assert False

        def test_skipper():
            pytest.skip("not today")

        @pytest.mark.xfail(reason="known")
        def test_xfail():
            assert False

        @pytest.mark.depends("test_slow_fail", "test_fast_fail")
        def test_two_failed(): pass

        @pytest.mark.depends("test_two_failed")
        def test_cascade(): pass

        @pytest.mark.depends("test_skipper")
        def test_after_skip(): pass

        @pytest.mark.depends("test_xfail")
        def test_after_xfail(): pass
        """,
    )
    serial = run(pytester, "--orchestrate", "-rs", "--junitxml=serial.xml")
    parallel = run(pytester, "--orchestrate", "-n", "2", "-rs", "-v", "--junitxml=parallel.xml")
    assert serial.parseoutcomes() == parallel.parseoutcomes()
    assert skipped_lines(serial) == skipped_lines(parallel)
    assert junit(pytester.path / "serial.xml") == junit(pytester.path / "parallel.xml")
    # the first dependency in declaration order, although the other one failed first
    assert any("dependency 'test_skips.py::test_slow_fail' failed" in line for line in skipped_lines(parallel))
    assert "test_skips.py::test_two_failed" not in timeline(pytester)


def test_deselected_dependency_skip_policy(pytester: pytest.Pytester) -> None:
    project(
        pytester,
        test_sel="""
        import pytest

        def test_base(): pass
        @pytest.mark.depends("test_base")
        def test_user(): pass
        """,
    )
    args = ("--orchestrate", "--orchestrate-deps=skip", "-k", "user", "-rs")
    serial = run(pytester, *args)
    parallel = run(pytester, *args, "-n", "2")
    parallel.assert_outcomes(skipped=1)  # xdist's controller does not count deselected items
    assert skipped_lines(serial) == skipped_lines(parallel)
    assert "was deselected" in "\n".join(skipped_lines(parallel))


def test_controller_skips_print_in_the_worker_layout(pytester: pytest.Pytester) -> None:
    # more dependents of a failure than workers can hold behind a running item: the controller reports the rest
    body = "import time\nimport pytest\n\ndef test_a(): time.sleep(0.3)\n"
    body += "def test_fail():\n    time.sleep(0.1)\n    assert False\n"
    body += "".join(f"@pytest.mark.depends('test_fail')\ndef test_dep{i}(): pass\n" for i in range(6))
    project(pytester, test_fan=body)
    result = run(pytester, "--orchestrate", "-n", "2", "-v", "-rs")
    result.assert_outcomes(passed=1, failed=1, skipped=6)
    by_controller = re.search(r"xdist: (\d+) dependency skips? reported by the controller", result.stdout.str())
    assert by_controller and int(by_controller.group(1)) >= 1, result.stdout.str()
    verdicts = [line for line in result.outlines if re.search(r"SKIPPED test_fan.py::test_dep\d", line)]
    assert len(verdicts) == 6
    # the worker that ran the failure (the one the dependents would have followed), as xdist prints a worker's line
    failed_line = next(line for line in result.outlines if "FAILED test_fan.py::test_fail" in line)
    failed_on = re.match(r"\[(gw\d)\]", failed_line)
    assert failed_on is not None
    for line in verdicts:
        assert re.fullmatch(r"\[gw\d\] \[ *\d+%\] SKIPPED test_fan.py::test_dep\d ?", line), line
    assert sum(line.startswith(f"[{failed_on.group(1)}]") for line in verdicts) >= int(by_controller.group(1))
    assert len([line for line in skipped_lines(result) if "dependency 'test_fan.py::test_fail' failed" in line]) == 6


def test_skips_decided_before_any_worker_print_as_the_controllers(pytester: pytest.Pytester) -> None:
    project(
        pytester,
        test_sel="""
        import pytest

        def test_base(): pass
        @pytest.mark.depends("test_base")
        def test_user(): pass
        """,
    )
    result = run(pytester, "--orchestrate", "--orchestrate-deps=skip", "-k", "user", "-n", "2", "-v")
    result.assert_outcomes(skipped=1)
    result.stdout.fnmatch_lines(["[[]controller[]] [[]100%[]] SKIPPED test_sel.py::test_user*"])


FIXTURES = """
import os
import pytest

@pytest.fixture(scope="module", autouse=True)
def module_fixture(request):
    with open(os.path.join(str(request.config.rootpath), "setups.log"), "a") as stream:
        stream.write(request.module.__name__ + "\\n")
    yield
"""


def test_module_fixtures_not_set_up_more_often_than_stock(pytester: pytest.Pytester) -> None:
    project(pytester, timeline=False)
    pytester.makeconftest(FIXTURES)
    for m in range(4):
        lines = ["import time", "import pytest", ""]
        for i in range(8):
            if i % 3 == 2:
                lines.append(f'@pytest.mark.depends("test_{i - 1}")')
            lines.append(f"def test_{i}(): time.sleep(0.01)\n")
        pytester.makepyfile(**{f"test_m{m}": "\n".join(lines)})
    log = pytester.path / "setups.log"
    counts = {}
    for mode in ("stock", "orchestrate"):
        log.unlink(missing_ok=True)
        args = ["-n", "2"] + (["--orchestrate"] if mode == "orchestrate" else [])
        run(pytester, *args).assert_outcomes(passed=32)
        counts[mode] = len(log.read_text().splitlines())
    assert counts["orchestrate"] <= counts["stock"], counts


def test_class_fixture_kept_across_a_batch(pytester: pytest.Pytester) -> None:
    project(pytester, timeline=False)
    pytester.makeconftest(
        FIXTURES.replace('scope="module"', 'scope="class"').replace("request.module.__name__", "request.cls.__name__")
    )
    pytester.makepyfile(
        test_cls="""
        import pytest

        class TestA:
            def test_1(self): pass
            @pytest.mark.depends("test_1")
            def test_2(self): pass
            @pytest.mark.depends("test_2")
            def test_3(self): pass
        """
    )
    run(pytester, "--orchestrate", "-n", "1").assert_outcomes(passed=3)
    assert (pytester.path / "setups.log").read_text().split() == ["TestA"]


CRASH = """
import os
import time
import pytest

def test_crash():
    time.sleep(0.1)
    os._exit(1)

@pytest.mark.depends("test_crash")
def test_child(): pass

@pytest.mark.depends("test_child")
def test_grandchild(): pass

def test_x(): time.sleep(0.3)
@pytest.mark.depends("test_x")
def test_y(): pass
@pytest.mark.depends("test_y")
def test_z(): pass
"""


def test_worker_crash_fails_the_item_and_skips_dependents_after_it(pytester: pytest.Pytester) -> None:
    project(pytester, test_crash=CRASH)
    result = run(pytester, "--orchestrate", "-n", "2", "-v", "-rs")
    result.assert_outcomes(failed=1, passed=3, skipped=2)
    text = result.stdout.str()
    crashed = re.search(r"worker '(gw\d)' crashed while running 'test_crash.py::test_crash'", text)
    assert crashed
    assert "replacing crashed worker" in text
    lines = result.outlines
    failed_at = next(i for i, line in enumerate(lines) if re.search(r"FAILED test_crash.py::test_crash\b", line))
    child_at = next(i for i, line in enumerate(lines) if re.search(r"SKIPPED test_crash.py::test_child\b", line))
    assert failed_at < child_at
    # reported by the controller, on the line of the worker that crashed (the child would have followed there)
    assert lines[child_at].startswith(f"[{crashed.group(1)}] ")
    result.stdout.fnmatch_lines(["*SKIPPED*dependency 'test_crash.py::test_crash' failed*"])
    assert_dependencies_first(pytester, {"test_crash.py::test_z": ["test_crash.py::test_y"]})


def test_no_worker_restarts_every_item_is_reported(pytester: pytest.Pytester) -> None:
    project(pytester, test_crash=CRASH + "\ndef test_w(): pass\n\ndef test_v(): pass\n")
    result = run(pytester, "--orchestrate", "-n", "2", "--max-worker-restart=0", "-rs", "--junitxml=out.xml")
    outcomes = result.parseoutcomes()
    assert sum(outcomes.get(k, 0) for k in ("passed", "failed", "skipped")) == 8, outcomes
    assert len(junit(pytester.path / "out.xml")) == 8
    assert "worker gw" in result.stdout.str() and "restarting disabled" in result.stdout.str()
    not_run = [line for line in skipped_lines(result) if "not run: no xdist worker left" in line]
    assert not_run or outcomes.get("passed", 0) == 5


@pytest.mark.parametrize("stop", ["-x", "--maxfail=2"])
def test_exitfirst_and_maxfail_stop_cleanly(pytester: pytest.Pytester, stop: str) -> None:
    project(
        pytester,
        test_stop="""
        import time
        import pytest

        def test_f1(): assert False
        def test_f2(): time.sleep(0.2); assert False
        @pytest.mark.depends("test_f1")
        def test_after(): pass
        def test_slow(): time.sleep(0.5)
        @pytest.mark.depends("test_slow")
        def test_later(): pass
        def test_more(): pass
        """,
    )
    result = run(pytester, "--orchestrate", "-n", "2", stop)
    # as with stock xdist: the controller stops with "Interrupted: stopping after N failures"
    assert result.ret in (pytest.ExitCode.TESTS_FAILED, pytest.ExitCode.INTERRUPTED)
    # test_later waits on a worker when the stop comes: the worker skips it ("not run: stopping after N failures"),
    # and the controller lists it as not run unless that skip reached it first (older xdist waits for it)
    text = result.stdout.str()
    listed = re.search(
        r"orchestrate: \d+ items? not run \(stopping after \d+ failures\): .*test_stop.py::test_later", text
    )
    skipped = re.search(r"test_stop.py::test_later: not run: stopping after \d+ failures", text)
    assert listed or skipped, text


def test_retry_and_timeout_markers_on_workers(pytester: pytest.Pytester) -> None:
    project(
        pytester,
        test_markers="""
        import os
        import time
        import pytest

        @pytest.mark.retry(max_attempts=3, initial_delay=0)
        def test_flaky(request):
            marker = os.path.join(str(request.config.rootpath), "attempts")
            with open(marker, "a") as stream:
                stream.write("x")
            assert len(open(marker).read()) >= 2

        @pytest.mark.depends("test_flaky")
        def test_after_flaky(): pass

        @pytest.mark.timeout(0.3)
        def test_slow(): time.sleep(5)

        @pytest.mark.depends("test_slow")
        def test_after_slow(): pass
        """,
    )
    result = run(pytester, "--orchestrate", "-n", "2", "-p", "no:timeout", "-rs", "--junitxml=out.xml")
    assert result.parseoutcomes() == {"passed": 2, "failed": 1, "skipped": 1, "rerun": 1}
    result.stdout.fnmatch_lines(
        ["*ItemTimeout: timed out after 0.3 s*", "*dependency 'test_markers.py::test_slow' failed*"]
    )
    cases = junit(pytester.path / "out.xml")
    assert len(cases) == 4
    assert cases["test_markers::test_flaky"][0] == "passed"


@pytest.mark.parametrize(
    ("body", "fragment"),
    [
        ('@pytest.mark.depends("test_nope")\ndef test_b(): pass\n', "dependency 'test_nope' matches no collected"),
        (
            '@pytest.mark.depends("test_c")\ndef test_b(): pass\n@pytest.mark.depends("test_b")\ndef test_c(): pass\n',
            "cycle",
        ),
    ],
    ids=["unknown", "cycle"],
)
def test_usage_errors_are_reported_once(pytester: pytest.Pytester, body: str, fragment: str) -> None:
    project(pytester, test_bad="import pytest\n\ndef test_a(): pass\n\n" + body)
    result = run(pytester, "--orchestrate", "--orchestrate-strict", "-n", "2")
    text = result.stdout.str() + result.stderr.str()
    assert result.ret == pytest.ExitCode.USAGE_ERROR, text
    assert text.count("ERROR: orchestrate:") == 1, text
    assert fragment in text
    assert "Traceback" not in text and "INTERNALERROR" not in text, text


def test_collection_mismatch_is_a_clear_error(pytester: pytest.Pytester) -> None:
    project(
        pytester,
        test_mm="""
        import os
        import pytest

        @pytest.mark.parametrize("who", [os.environ.get("PYTEST_XDIST_WORKER", "main")])
        def test_p(who): pass

        def test_q(): pass
        """,
    )
    result = run(pytester, "--orchestrate", "-n", "2")
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    result.stdout.fnmatch_lines(["*Different tests were collected between gw* and gw*", "*1 error*"])
    assert "orchestrate: the workers collected different tests; nothing was run" in result.stdout.str()
    assert not timeline(pytester)


@pytest.mark.parametrize(
    ("dist", "said"),
    [
        (None, ""),
        ("load", ""),
        ("loadfile", "; --dist=loadfile honoured inside the DAG order"),
        ("worksteal", "; --dist=worksteal overridden by the DAG scheduler"),
    ],
)
def test_dist_is_said_in_one_line(pytester: pytest.Pytester, dist: str | None, said: str) -> None:
    project(pytester, test_chain=CHAIN)
    args = ["--orchestrate", "-n", "2"] + ([f"--dist={dist}"] if dist else [])
    result = run(pytester, *args)
    result.assert_outcomes(passed=6)
    lines = [line for line in result.outlines if line.startswith("orchestrate: DAG scheduling on 2 workers")]
    assert len(lines) == 1, result.stdout.str()
    assert lines[0].endswith("dependencies" + said), lines[0]


def test_workflow_summary_has_per_worker_lines(pytester: pytest.Pytester) -> None:
    project(
        pytester,
        test_par="""
        import time
        def test_a(): time.sleep(0.2)
        def test_b(): time.sleep(0.2)
        """,
    )
    result = run(pytester, "--orchestrate", "-n", "2")
    result.assert_outcomes(passed=2)
    result.stdout.fnmatch_lines(
        [
            "*workflow summary*",
            "wall time *s on 2 workers, summed item durations 0.4* s: parallel efficiency *%",
            "xdist workers busy: gw0 0.2* s, gw1 0.2* s",
        ]
    )


def test_longest_path_first_from_cached_durations(pytester: pytest.Pytester) -> None:
    project(
        pytester,
        test_dur="""
        import time
        import pytest

        def test_short(): time.sleep(0.01)
        def test_mid(): time.sleep(0.1)
        def test_long(): time.sleep(0.3)
        def test_head(): time.sleep(0.01)
        @pytest.mark.depends("test_head")
        def test_tail(): time.sleep(0.5)
        """,
    )
    warm = pytester.runpytest_subprocess("--orchestrate", timeout=TIMEOUT)  # with the cache: durations remembered
    warm.assert_outcomes(passed=5)
    (pytester.path / "timeline.jsonl").unlink()
    result = pytester.runpytest_subprocess("--orchestrate", "-n", "1", timeout=TIMEOUT)
    result.assert_outcomes(passed=5)
    spans = timeline(pytester)
    order = [n.split("::")[1] for n in sorted(spans, key=lambda n: spans[n][0])]
    assert order == ["test_head", "test_tail", "test_long", "test_mid", "test_short"]


def test_module_teardown_error_is_reported(pytester: pytest.Pytester) -> None:
    project(pytester, timeline=False)
    pytester.makepyfile(
        test_td="""
        import pytest

        @pytest.fixture(scope="module")
        def broken():
            yield
            raise RuntimeError("teardown went wrong")

        def test_a(broken): pass
        @pytest.mark.depends("test_a")
        def test_b(broken): pass
        """,
        test_other="def test_c(): pass\n",
    )
    result = run(pytester, "--orchestrate", "-n", "2")
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    # filed under the last real item of that worker, as serial pytest files it under the module's last test
    result.stdout.fnmatch_lines(["*ERROR at teardown of test_*", "*RuntimeError: teardown went wrong*"])
    result.assert_outcomes(passed=3, errors=1)
    assert "__orchestrate_flush__" not in result.stdout.str()


def test_loadgroup_keeps_node_ids_matching_the_dependencies(pytester: pytest.Pytester) -> None:
    # xdist's worker would append "@db" to test_setup's node id under --dist loadgroup: the targets must still match
    project(
        pytester,
        test_grp="""
        import pytest

        @pytest.mark.xdist_group("db")
        def test_setup(): pass
        @pytest.mark.depends("test_setup")
        def test_use(): pass
        """,
    )
    result = run(pytester, "--orchestrate", "-n", "2", "--dist", "loadgroup", "-v")
    result.assert_outcomes(passed=2)
    assert "@db" not in result.stdout.str()
    assert "--dist=loadgroup honoured inside the DAG order" in result.stdout.str()
    assert_dependencies_first(pytester, {"test_grp.py::test_use": ["test_grp.py::test_setup"]})


def test_workflow_summary_has_the_graph_part(pytester: pytest.Pytester) -> None:
    # the controller collects nothing: the critical path and the items not run come from the scheduler's graph
    project(
        pytester,
        test_cp="""
        import time
        import pytest

        def test_a(): time.sleep(0.1)
        @pytest.mark.depends("test_a")
        def test_b(): time.sleep(0.1)
        @pytest.mark.depends("test_b")
        def test_fail(): assert False
        @pytest.mark.depends("test_fail")
        def test_after(): pass
        def test_never(): time.sleep(0.5)
        """,
    )
    result = run(pytester, "--orchestrate", "-n", "1", "-x")
    result.stdout.fnmatch_lines(
        [
            "*workflow summary*",
            "5 items: 2 passed, 1 failed, * not run",
            "critical path * s: test_cp.py::test_a (* s) -> test_cp.py::test_b (* s) -> test_cp.py::test_fail (* s)*",
            "xdist workers busy: gw0 *",
        ]
    )


@pytest.mark.parametrize("workers", [(), ("-n", "2")], ids=["serial", "xdist"])
def test_a_dependent_starts_after_the_module_teardown_of_its_dependency(
    pytester: pytest.Pytester, workers: tuple[str, ...]
) -> None:
    # The guarantee (README, "In parallel"): a dependent starts after its dependency's whole protocol ended on its
    # worker, teardowns included, of every fixture the worker's next item does not share. A failing teardown
    # fails the dependency, so the dependent is skipped, as in a serial run.
    project(
        pytester,
        timeline=False,
        test_m1="""
        import time, pytest

        @pytest.fixture(scope="module")
        def resource():
            yield
            time.sleep(0.3)
            with open("m1_down", "w") as f:
                f.write(repr(time.time()))

        def test_a(resource): pass
        """,
        test_m2="""
        import time, pytest

        @pytest.mark.depends("test_m1.py::test_a")
        def test_b():
            with open("b_start", "w") as f:
                f.write(repr(time.time()))
        """,
        test_m3="""
        import pytest

        @pytest.fixture(scope="module")
        def broken():
            yield
            raise RuntimeError("teardown went wrong")

        def test_c(broken): pass
        """,
        test_m4="""
        import pytest

        @pytest.mark.depends("test_m3.py::test_c")
        def test_d(): pass
        def test_e(): pass
        """,
    )
    result = run(pytester, "--orchestrate", "-rs", *workers)
    result.assert_outcomes(passed=4, skipped=1, errors=1)
    assert float((pytester.path / "m1_down").read_text()) <= float((pytester.path / "b_start").read_text())
    result.stdout.fnmatch_lines(["SKIPPED * test_m4.py:*dependency 'test_m3.py::test_c' failed"])
