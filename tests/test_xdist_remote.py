"""``pytest --orchestrate`` with a remote-style xdist worker: an execnet socket server on 127.0.0.1.

The server (execnet's own ``execnet/script/socketserver.py``) runs in a subprocess started by the test, in a folder
of its own; the worker it hosts changes into a copy of the project (``//chdir=``), so nothing is shared with the
controller but the socket: the item graph has to travel over the execnet channel.
"""

from __future__ import annotations

from collections.abc import Iterator
import json
import os
from pathlib import Path
import re
import subprocess
import sys
import textwrap
import time

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
    line = json.dumps([request.node.nodeid, start, time.time(), os.environ.get("PYTEST_XDIST_WORKER", "-"),
                       os.getcwd()])
    with open(TIMELINE, "a") as stream:
        stream.write(line + "\\n")
"""

TESTS = """
import time
import pytest

def test_a(): time.sleep(0.2)

@pytest.mark.depends("test_a")
def test_b(): time.sleep(0.1)

@pytest.mark.depends("test_b")
def test_c(): pass

def test_fail(): assert False

@pytest.mark.depends("test_fail")
def test_after_fail(): pass

def test_free_1(): time.sleep(0.1)

def test_free_2(): time.sleep(0.1)
"""


@pytest.fixture(autouse=True)
def _inner_env(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> None:
    lean_xdist_inner_runs(monkeypatch)


@pytest.fixture
def socket_server(tmp_path: Path) -> Iterator[tuple[int, Path]]:
    """An execnet socket server on 127.0.0.1 (a free port), its working folder, and its cleanup."""
    home = tmp_path / "server"
    home.mkdir()
    env = dict(os.environ)
    env.pop("PYTEST_XDIST_WORKER", None)
    proc = subprocess.Popen(
        [sys.executable, "-u", "-m", "execnet.script.socketserver", "127.0.0.1:0"],
        cwd=home,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        match = re.search(r"Entering Accept loop \('127\.0\.0\.1', (\d+)\)", line)
        assert match, f"the socket server did not start: {line!r}"
        yield int(match.group(1)), home
    finally:
        proc.kill()
        proc.wait(timeout=10)
        if proc.stdout is not None:
            proc.stdout.close()


def write_project(folder: Path, timeline: Path) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "pytest.ini").write_text("[pytest]\n")
    (folder / "conftest.py").write_text(f"TIMELINE = {str(timeline)!r}\n" + textwrap.dedent(CONFTEST))
    (folder / "test_remote.py").write_text(textwrap.dedent(TESTS))


def test_socket_worker_with_its_own_working_directory(
    pytester: pytest.Pytester, socket_server: tuple[int, Path], tmp_path: Path
) -> None:
    port, home = socket_server
    timeline = tmp_path / "timeline.jsonl"
    write_project(pytester.path, timeline)
    remote = home / "checkout"
    write_project(remote, timeline)  # the worker's own copy of the project, as a remote machine would have it
    start = time.monotonic()
    result = pytester.runpytest_subprocess(
        "-p",
        "no:cacheprovider",
        "--orchestrate",
        "-v",
        "--tx",
        f"socket=127.0.0.1:{port}//chdir={remote}",
        "--tx",
        "popen",
        "--dist",
        "load",
        timeout=TIMEOUT,
    )
    assert time.monotonic() - start < TIMEOUT
    result.assert_outcomes(passed=5, failed=1, skipped=1)
    spans = {}
    for line in timeline.read_text().splitlines():
        nodeid, begin, end, worker, cwd = json.loads(line)
        spans[nodeid] = (begin, end, worker, cwd)
    assert spans["test_remote.py::test_a"][1] <= spans["test_remote.py::test_b"][0] + 1e-3
    assert spans["test_remote.py::test_b"][1] <= spans["test_remote.py::test_c"][0] + 1e-3
    # the socket worker ran in its own checkout, the popen worker in the controller's folder
    assert {Path(cwd).resolve() for *_, cwd in spans.values()} == {remote.resolve(), pytester.path.resolve()}
    assert "test_after_fail" in "\n".join(line for line in result.outlines if "SKIPPED" in line)
