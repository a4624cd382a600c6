"""pytest-dependency's and pytest-order's markers read natively under --orchestrate, serial and -n 2, outcome by
outcome, whether or not those plugins are installed (they are switched off here with -p no:...). The expected
outcomes are what pytest-dependency 0.6 gives these files in a serial run of its own; the order relations are
pytest-order 1.5's. Also: our own depends marker's class targets, before=, any_of= and soft=True."""

from __future__ import annotations

from pathlib import Path

from plugin_helpers import WITHOUT_PLUGINS
from plugin_helpers import WORKERS
from plugin_helpers import lean_xdist_inner_runs
from plugin_helpers import project
import pytest


@pytest.fixture(autouse=True)
def _lean(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> None:
    lean_xdist_inner_runs(monkeypatch)


DEP_BASIC = """
import pytest

@pytest.mark.dependency()
@pytest.mark.xfail(reason="deliberate fail")
def test_a(): assert False

@pytest.mark.dependency()
def test_b(): pass

@pytest.mark.dependency(depends=["test_a"])
def test_c(): pass

@pytest.mark.dependency(depends=["test_b"])
def test_d(): pass

@pytest.mark.dependency(depends=["test_b", "test_c"])
def test_e(): pass

def test_unmarked(): pass

@pytest.mark.dependency(depends=["test_unmarked"])
def test_on_unmarked(): pass

@pytest.mark.dependency(name="named_f")
def test_f(): pass

@pytest.mark.dependency(depends=["named_f"])
def test_g(): pass

@pytest.mark.dependency(depends=["test_f"])
def test_h(): pass
"""


DEP_CLS = """
import pytest

@pytest.mark.dependency()
class TestClass:
    def test_a(self): assert False
    def test_b(self): pass

    @pytest.mark.dependency(depends=["TestClass::test_a"])
    def test_c(self): pass

    @pytest.mark.dependency(depends=["test_b"], scope="class")
    def test_d(self): pass

    @pytest.mark.dependency(depends=["test_b"])
    def test_e(self): pass

    @pytest.mark.dependency(depends=["test_dep_cls.py::TestClass::test_b"], scope="session")
    def test_f(self): pass
"""


DEP_PARAMS = """
import pytest

@pytest.mark.parametrize("x", [
    pytest.param(0, marks=pytest.mark.dependency(name="a0")),
    pytest.param(1, marks=[pytest.mark.dependency(name="a1"), pytest.mark.xfail(reason="deliberate")]),
])
def test_a(x): assert x == 0

@pytest.mark.parametrize("y", [
    pytest.param(0, marks=pytest.mark.dependency(depends=["a0"])),
    pytest.param(1, marks=pytest.mark.dependency(depends=["a1"])),
    pytest.param(2, marks=pytest.mark.dependency(depends=["test_a[0]"])),
])
def test_b(y): pass
"""


DEP_RUNTIME = """
import pytest
from pytest_orchestrator import depends

@pytest.mark.dependency()
def test_x(): pass

@pytest.mark.dependency()
def test_y(): assert False

def test_rt_ok(request): depends(request, ["test_x"])

def test_rt_skip(request): depends(request, ["test_y"])
"""


ORD_ORDER = """
import pytest

@pytest.mark.order(2)
def test_two(): pass

def test_plain_a(): pass

@pytest.mark.order("last")
def test_last(): pass

@pytest.mark.order(1)
def test_one(): pass

@pytest.mark.order(-2)
def test_second_last(): pass

@pytest.mark.order("first")
def test_zero(): assert False

@pytest.mark.order(after="test_zero")
def test_after_zero(): pass

@pytest.mark.order(before="test_plain_a")
def test_before_a(): pass

def test_plain_b(): pass

class TestK:
    @pytest.mark.order(after="test_m")
    def test_l(self): pass

    def test_m(self): pass

@pytest.mark.order(after="test_other.py::test_x")
def test_cross(): pass
"""


#: what pytest-dependency 0.6 gives the files above in a serial run of its own
DEPENDENCY_OUTCOMES = {
    "test_dep_basic.py::test_a": "XFAIL",
    "test_dep_basic.py::test_b": "PASSED",
    "test_dep_basic.py::test_c": "SKIPPED",
    "test_dep_basic.py::test_d": "PASSED",
    "test_dep_basic.py::test_e": "SKIPPED",
    "test_dep_basic.py::test_unmarked": "PASSED",
    "test_dep_basic.py::test_on_unmarked": "SKIPPED",
    "test_dep_basic.py::test_f": "PASSED",
    "test_dep_basic.py::test_g": "PASSED",
    "test_dep_basic.py::test_h": "SKIPPED",
    "test_dep_cls.py::TestClass::test_a": "FAILED",
    "test_dep_cls.py::TestClass::test_b": "PASSED",
    "test_dep_cls.py::TestClass::test_c": "SKIPPED",
    "test_dep_cls.py::TestClass::test_d": "PASSED",
    "test_dep_cls.py::TestClass::test_e": "SKIPPED",
    "test_dep_cls.py::TestClass::test_f": "PASSED",
    "test_dep_params.py::test_a[0]": "PASSED",
    "test_dep_params.py::test_a[1]": "XFAIL",
    "test_dep_params.py::test_b[0]": "PASSED",
    "test_dep_params.py::test_b[1]": "SKIPPED",
    "test_dep_params.py::test_b[2]": "SKIPPED",
    "test_dep_runtime.py::test_x": "PASSED",
    "test_dep_runtime.py::test_y": "FAILED",
    "test_dep_runtime.py::test_rt_ok": "PASSED",
    "test_dep_runtime.py::test_rt_skip": "SKIPPED",
}
_WORDS = ("PASSED", "FAILED", "SKIPPED", "XFAIL", "XPASS", "ERROR")


def outcomes(result: pytest.RunResult) -> dict[str, str]:
    """``{node id: word}`` from a ``-v`` run, serial or under xdist."""
    found: dict[str, str] = {}
    for line in result.outlines:
        words = line.split()
        for i, word in enumerate(words):
            if word in _WORDS:
                other = words[i + 1] if i + 1 < len(words) and "::" in words[i + 1] else words[i - 1] if i else ""
                if "::" in other:
                    found.setdefault(other, word)
                break
    return found


def dependency_project(pytester: pytest.Pytester, ini: str = "") -> None:
    project(pytester, ini)
    pytester.makepyfile(
        test_dep_basic=DEP_BASIC, test_dep_cls=DEP_CLS, test_dep_params=DEP_PARAMS, test_dep_runtime=DEP_RUNTIME
    )


@WORKERS
def test_pytest_dependency_markers_outcome_by_outcome(pytester: pytest.Pytester, workers: tuple[str, ...]) -> None:
    dependency_project(pytester)
    result = pytester.runpytest_subprocess("--orchestrate", "-v", *WITHOUT_PLUGINS, *workers)
    expected = dict(DEPENDENCY_OUTCOMES)
    got = outcomes(result)
    if workers:
        # the runtime depends() sees only what its own worker ran (the markers hold across workers)
        for nodeid in ("test_dep_runtime.py::test_rt_ok", "test_dep_runtime.py::test_rt_skip"):
            expected.pop(nodeid)
            got.pop(nodeid, None)
    assert got == expected, result.stdout.str()


@pytest.mark.parametrize(
    ("ini", "args"), [("automark_dependency = true\n", ()), ("", ("--ignore-unknown-dependency",))]
)
def test_unknown_names_automark_and_ignore(pytester: pytest.Pytester, ini: str, args: tuple[str, ...]) -> None:
    dependency_project(pytester, ini)
    result = pytester.runpytest_subprocess("--orchestrate", "-v", *WITHOUT_PLUGINS, *args, "test_dep_basic.py")
    assert outcomes(result)["test_dep_basic.py::test_on_unmarked"] == "PASSED"


def test_a_dependency_collected_later_runs_first(pytester: pytest.Pytester) -> None:
    """Where we differ on purpose: pytest-dependency would skip test_top (its dependency had not run yet)."""
    project(pytester)
    pytester.makepyfile(
        test_s1="""
        import pytest

        @pytest.mark.dependency(depends=["test_s2.py::test_base"], scope="session")
        def test_top(): pass
        """,
        test_s2="import pytest\n\n@pytest.mark.dependency()\ndef test_base(): pass\n",
    )
    result = pytester.runpytest_subprocess("--orchestrate", "-v", *WITHOUT_PLUGINS)
    assert outcomes(result) == {"test_s2.py::test_base": "PASSED", "test_s1.py::test_top": "PASSED"}


def test_pytest_dependency_installed_is_switched_off_and_said_once(pytester: pytest.Pytester) -> None:
    pytest.importorskip("pytest_dependency")
    dependency_project(pytester)
    result = pytester.runpytest_subprocess("--orchestrate", "-v", "-p", "no:cacheprovider", "-p", "no:pytest_order")
    assert outcomes(result) == DEPENDENCY_OUTCOMES, result.stdout.str()
    assert result.stdout.str().count("its own skipping is off") == 1


#: (dependent, dependency) pairs pytest-order guarantees for ORD_ORDER
ORDER_RELATIONS = [
    ("test_one", "test_zero"),
    ("test_two", "test_one"),
    ("test_plain_a", "test_two"),
    ("test_plain_b", "test_two"),
    ("test_after_zero", "test_zero"),
    ("test_plain_a", "test_before_a"),
    ("TestK::test_l", "TestK::test_m"),
    ("test_cross", "test_x"),
    ("test_second_last", "test_plain_b"),
    ("test_second_last", "test_cross"),
    ("test_last", "test_second_last"),
]

LOG_CONFTEST = """
import os
import pytest

@pytest.fixture(autouse=True)
def _log(request):
    path = os.path.join(str(request.config.rootpath), "log.txt")
    name = request.node.nodeid.split("::", 1)[1]
    with open(path, "a") as f:
        f.write(f"start {name}\\n")
    yield
    with open(path, "a") as f:
        f.write(f"end {name}\\n")
"""


@WORKERS
def test_pytest_order_relations_hold(pytester: pytest.Pytester, workers: tuple[str, ...]) -> None:
    project(pytester)
    pytester.makeconftest(LOG_CONFTEST)
    pytester.makepyfile(test_order=ORD_ORDER, test_other="def test_x(): pass\n")
    result = pytester.runpytest_subprocess("--orchestrate", "-v", *WITHOUT_PLUGINS, *workers)
    assert result.parseoutcomes() == {"passed": 12, "failed": 1}  # test_after_zero runs although test_zero failed
    log = Path(pytester.path / "log.txt").read_text().splitlines()
    for dependent, dependency in ORDER_RELATIONS:
        assert log.index(f"end {dependency}") < log.index(f"start {dependent}"), (dependent, dependency, log)


def test_order_label_naming_nothing_is_warned_and_ignored(pytester: pytest.Pytester) -> None:
    project(pytester)
    pytester.makepyfile(test_o="import pytest\n\n@pytest.mark.order(after='test_nope')\ndef test_a(): pass\n")
    result = pytester.runpytest_subprocess("--orchestrate", *WITHOUT_PLUGINS)
    assert result.parseoutcomes() == {"passed": 1}
    result.stdout.fnmatch_lines(["*test_o.py::test_a: order(after='test_nope') names no collected test; ignored*"])


OURS = """
import pytest

class TestSetup:
    def test_db(self): pass
    def test_cache(self): assert False

@pytest.mark.depends("TestSetup")
def test_needs_class(): pass

@pytest.mark.depends(before=["test_report"])
def test_prepare(): assert False

def test_report(): pass

@pytest.mark.depends(any_of=["test_mirror_a", "test_mirror_b"])
def test_any(): pass

def test_mirror_a(): assert False
def test_mirror_b(): pass

@pytest.mark.depends(any_of=["test_mirror_a", "test_none_b"])
def test_any_none(): pass

def test_none_b(): pytest.skip("no")

@pytest.mark.depends("test_prepare", soft=True)
def test_soft(): pass
"""


@WORKERS
def test_our_marker_class_before_any_of_and_soft(pytester: pytest.Pytester, workers: tuple[str, ...]) -> None:
    project(pytester)
    pytester.makepyfile(test_ours=OURS)
    result = pytester.runpytest_subprocess("--orchestrate", "-v", *WITHOUT_PLUGINS, *workers)
    got = outcomes(result)
    assert got == {
        "test_ours.py::TestSetup::test_db": "PASSED",
        "test_ours.py::TestSetup::test_cache": "FAILED",
        "test_ours.py::test_needs_class": "SKIPPED",
        "test_ours.py::test_prepare": "FAILED",
        "test_ours.py::test_report": "SKIPPED",
        "test_ours.py::test_mirror_a": "FAILED",
        "test_ours.py::test_mirror_b": "PASSED",
        "test_ours.py::test_any": "PASSED",
        "test_ours.py::test_any_none": "SKIPPED",
        "test_ours.py::test_none_b": "SKIPPED",
        "test_ours.py::test_soft": "PASSED",
    }, result.stdout.str()
