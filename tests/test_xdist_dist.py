"""``--orchestrate -n N`` and xdist's own schedulers: a user's ``pytest_xdist_make_scheduler`` wins, a session
with nothing to schedule runs under the scheduler ``--dist`` chose (``loadfile`` keeps a file on one worker), and
with dependencies the DAG scheduler honours ``--dist loadfile``, ``loadscope`` and ``loadgroup`` inside the DAG's
order (what xdist keeps on one worker stays on one worker)."""

from __future__ import annotations

import json
from pathlib import Path
import textwrap
import xml.etree.ElementTree as ET

from plugin_helpers import lean_xdist_inner_runs
import pytest


TIMEOUT = 90

CONFTEST = """
import json, os, time
import pytest

@pytest.fixture(autouse=True)
def _timeline(request):
    start = time.time()
    yield
    line = json.dumps([request.node.nodeid, os.environ.get("PYTEST_XDIST_WORKER", "-"), start, time.time()])
    with open(os.path.join(str(request.config.rootpath), "workers.jsonl"), "a") as stream:
        stream.write(line + "\\n")
"""


@pytest.fixture(autouse=True)
def _inner_env(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> None:
    lean_xdist_inner_runs(monkeypatch)


def spans(pytester: pytest.Pytester) -> dict[str, tuple[str, float, float]]:
    """``{node id: (worker, start, end)}`` of the items that ran."""
    lines = (pytester.path / "workers.jsonl").read_text().splitlines()
    return {nodeid: (worker, start, end) for nodeid, worker, start, end in map(json.loads, lines)}


def workers(pytester: pytest.Pytester) -> dict[str, str]:
    return {nodeid: span[0] for nodeid, span in spans(pytester).items()}


def junit(path: Path) -> dict[str, str]:
    """``{classname::name: outcome}``."""
    out = {}
    for case in ET.parse(path).getroot().iter("testcase"):
        outcome = next((c.tag for c in case if c.tag in ("failure", "error", "skipped")), "passed")
        out[f"{case.get('classname')}::{case.get('name')}"] = outcome
    return out


def test_loadfile_keeps_a_file_on_one_worker(pytester: pytest.Pytester) -> None:
    pytester.makeini("[pytest]\n")
    pytester.makeconftest(CONFTEST)
    pytester.makepyfile(
        test_shared="".join(f"def test_{i}():\n    import time; time.sleep(0.05)\n\n" for i in range(6)),
        test_other="".join(f"def test_{i}():\n    import time; time.sleep(0.05)\n\n" for i in range(6)),
    )
    result = pytester.runpytest_subprocess(
        "-p", "no:cacheprovider", "--orchestrate", "-n", "2", "--dist", "loadfile", timeout=TIMEOUT
    )
    result.assert_outcomes(passed=12)
    seen = workers(pytester)
    assert len({w for n, w in seen.items() if n.startswith("test_shared.py")}) == 1
    assert len({w for n, w in seen.items() if n.startswith("test_other.py")}) == 1


def test_a_users_scheduler_wins(pytester: pytest.Pytester) -> None:
    pytester.makeini("[pytest]\n")
    pytester.makeconftest(
        CONFTEST
        + """
from xdist.scheduler import LoadScheduling

class MyScheduling(LoadScheduling):
    pass

def pytest_xdist_make_scheduler(config, log):
    print("my scheduler is used")
    return MyScheduling(config, log)
"""
    )
    pytester.makepyfile(
        test_deps="""
        import pytest

        def test_a(): pass
        @pytest.mark.depends("test_a")
        def test_b(): pass
        def test_c(): pass
        """
    )
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "--orchestrate", "-n", "2", "-s", timeout=TIMEOUT)
    result.assert_outcomes(passed=3)
    assert "orchestrate: DAG scheduling" not in result.stdout.str()
    assert "my scheduler is used" in result.stdout.str()


#: dependencies crossing three files, a class per file (two in test_c), one failure and its dependents
CROSSING = {
    "test_a": """
        import time
        import pytest

        def test_a1(): time.sleep(0.05)
        @pytest.mark.depends("test_b.py::test_b1")
        def test_a2(): time.sleep(0.05)
        def test_a3(): time.sleep(0.1)
        @pytest.mark.depends("test_c.py::TestK::test_k2")
        def test_a4(): time.sleep(0.02)

        class TestA:
            @pytest.mark.xdist_group("db")
            def test_m1(self): time.sleep(0.05)
            @pytest.mark.depends("test_b.py::test_b2")
            def test_m2(self): time.sleep(0.02)
        """,
    "test_b": """
        import time
        import pytest

        @pytest.mark.depends("test_a.py::test_a1")
        def test_b1(): time.sleep(0.05)
        @pytest.mark.xdist_group("db")
        def test_b2(): time.sleep(0.05)
        @pytest.mark.depends("test_a.py::test_a2")
        def test_b3(): time.sleep(0.02)
        def test_b4(): assert False
        @pytest.mark.depends("test_b4")
        def test_b5(): pass

        class TestB:
            @pytest.mark.xdist_group("net")
            @pytest.mark.depends("test_a.py::TestA::test_m1")
            def test_n1(self): time.sleep(0.02)
            def test_n2(self): time.sleep(0.05)
        """,
    "test_c": """
        import time
        import pytest

        @pytest.mark.xdist_group("net")
        def test_c1(): time.sleep(0.05)
        @pytest.mark.xdist_group("db")
        @pytest.mark.depends("test_b.py::test_b1")
        def test_c2(): time.sleep(0.02)

        class TestK:
            def test_k1(self): time.sleep(0.05)
            @pytest.mark.depends("test_a.py::test_a3")
            def test_k2(self): time.sleep(0.02)
            @pytest.mark.depends("test_b.py::test_b5")
            def test_k3(self): pass

        class TestL:
            @pytest.mark.xdist_group("net")
            @pytest.mark.depends("test_c1")
            def test_l1(self): time.sleep(0.02)
            @pytest.mark.depends("test_a.py::test_a1")
            def test_l2(self): time.sleep(0.05)
        """,
}
CROSSING_DEPS = {
    "test_a.py::test_a2": ["test_b.py::test_b1"],
    "test_a.py::test_a4": ["test_c.py::TestK::test_k2"],
    "test_a.py::TestA::test_m2": ["test_b.py::test_b2"],
    "test_b.py::test_b1": ["test_a.py::test_a1"],
    "test_b.py::test_b3": ["test_a.py::test_a2"],
    "test_b.py::TestB::test_n1": ["test_a.py::TestA::test_m1"],
    "test_c.py::test_c2": ["test_b.py::test_b1"],
    "test_c.py::TestK::test_k2": ["test_a.py::test_a3"],
    "test_c.py::TestL::test_l1": ["test_c.py::test_c1"],
    "test_c.py::TestL::test_l2": ["test_a.py::test_a1"],
}
GROUPS = {"db": ["test_a.py::TestA::test_m1", "test_b.py::test_b2", "test_c.py::test_c2"]}
GROUPS["net"] = ["test_b.py::TestB::test_n1", "test_c.py::test_c1", "test_c.py::TestL::test_l1"]


def together(dist: str, nodeid: str) -> str | None:
    """What xdist keeps on one worker under ``dist`` (None: any worker)."""
    if dist == "loadfile":
        return nodeid.split("::", 1)[0]
    if dist == "loadscope":
        return nodeid.rsplit("::", 1)[0]
    return next((name for name, members in GROUPS.items() if nodeid in members), None)


@pytest.mark.parametrize("workers", ["2", "3"])
@pytest.mark.parametrize("dist", ["loadfile", "loadscope", "loadgroup"])
def test_dist_modes_are_honoured_inside_the_dag_order(pytester: pytest.Pytester, dist: str, workers: str) -> None:
    pytester.makeini("[pytest]\n")
    pytester.makeconftest(CONFTEST)
    pytester.makepyfile(**{name: textwrap.dedent(text) for name, text in CROSSING.items()})
    serial = pytester.runpytest_subprocess("-p", "no:cacheprovider", "--orchestrate", "--junitxml=serial.xml")
    (pytester.path / "workers.jsonl").unlink()
    result = pytester.runpytest_subprocess(
        "-p", "no:cacheprovider", "--orchestrate", "-n", workers, "--dist", dist, "--junitxml=parallel.xml",
        timeout=TIMEOUT,
    )  # fmt: skip
    result.assert_outcomes(passed=17, failed=1, skipped=2)
    assert f"--dist={dist} honoured inside the DAG order" in result.stdout.str()
    assert junit(pytester.path / "parallel.xml") == junit(pytester.path / "serial.xml")
    assert serial.ret == result.ret
    ran = spans(pytester)
    where: dict[str, set[str]] = {}
    for nodeid, (worker, _, _) in ran.items():
        key = together(dist, nodeid)
        if key is not None:
            where.setdefault(key, set()).add(worker)
    assert where and all(len(w) == 1 for w in where.values()), where
    assert len({worker for worker, _, _ in ran.values()}) > 1  # the run was spread, not kept on one worker
    for nodeid, deps in CROSSING_DEPS.items():
        for dep in deps:
            assert ran[dep][2] <= ran[nodeid][1] + 1e-3, f"{nodeid} started before {dep} ended"


def test_loadgroup_without_dependencies_keeps_a_group_on_one_worker(pytester: pytest.Pytester) -> None:
    # the workers leave out xdist's "@group" suffix under --orchestrate, so xdist's own loadgroup cannot see groups
    pytester.makeini("[pytest]\n")
    pytester.makeconftest(CONFTEST)
    body = "import time\nimport pytest\n\n"
    body += "".join(f"@pytest.mark.xdist_group('g')\ndef test_g{i}(): time.sleep(0.05)\n\n" for i in range(4))
    body += "".join(f"def test_free{i}(): time.sleep(0.05)\n\n" for i in range(4))
    pytester.makepyfile(test_groups=body)
    result = pytester.runpytest_subprocess(
        "-p", "no:cacheprovider", "--orchestrate", "-n", "2", "--dist", "loadgroup", timeout=TIMEOUT
    )
    result.assert_outcomes(passed=8)
    seen = workers(pytester)
    assert len({w for n, w in seen.items() if "::test_g" in n}) == 1
    assert len(set(seen.values())) == 2
