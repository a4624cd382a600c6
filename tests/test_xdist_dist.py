"""``--orchestrate -n N`` and xdist's own schedulers: a user's ``pytest_xdist_make_scheduler`` wins, and a session
with nothing to schedule runs under the scheduler ``--dist`` chose (``loadfile`` keeps a file on one worker)."""

from __future__ import annotations

import json

from plugin_helpers import lean_xdist_inner_runs
import pytest


TIMEOUT = 90

CONFTEST = """
import json, os, time
import pytest

@pytest.fixture(autouse=True)
def _timeline(request):
    yield
    line = json.dumps([request.node.nodeid, os.environ.get("PYTEST_XDIST_WORKER", "-")])
    with open(os.path.join(str(request.config.rootpath), "workers.jsonl"), "a") as stream:
        stream.write(line + "\\n")
"""


@pytest.fixture(autouse=True)
def _inner_env(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> None:
    lean_xdist_inner_runs(monkeypatch)


def workers(pytester: pytest.Pytester) -> dict[str, str]:
    lines = (pytester.path / "workers.jsonl").read_text().splitlines()
    return dict(json.loads(line) for line in lines)


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
