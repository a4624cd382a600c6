"""``orchestrate run DIR|pipeline.yaml --executor dask://HOST:PORT``: scripts and stages on a Dask cluster's workers.

Most tests share one in-process ``LocalCluster`` listening on a TCP address of 127.0.0.1 (its workers run in this
process: a script is a child of the test process, killed through the worker's cancel event); the slow test starts a
``dask scheduler`` and a ``dask worker`` as processes and checks that scripts and stages are that worker's children.
"""

from __future__ import annotations

from collections.abc import Iterator
import json
import os
from pathlib import Path
import socket
import subprocess
import sys
import time
from typing import Any

import pytest


distributed = pytest.importorskip("distributed")

import dask  # noqa: E402
from script_helpers import write  # noqa: E402
from test_dask import read_pid  # noqa: E402
from test_dask import wait_dead  # noqa: E402

from pytest_orchestrator.orchestrator import cluster as orchestrator_cluster  # noqa: E402
from pytest_orchestrator.orchestrator import run_orchestrator  # noqa: E402


@pytest.fixture(scope="module")
def scheduler() -> Iterator[Any]:
    """An in-process cluster (two workers, two threads each) whose scheduler listens on tcp://127.0.0.1."""
    with (
        dask.config.set({"distributed.worker.profile.enabled": False}),
        distributed.LocalCluster(
            processes=False,
            n_workers=2,
            threads_per_worker=2,
            protocol="tcp",
            host="127.0.0.1",
            dashboard_address=":0",
        ) as cluster,
    ):
        yield cluster


def address(cluster: Any) -> str:
    tcp: str = cluster.scheduler_address
    return "dask://" + tcp.removeprefix("tcp://")


def ran_on(cluster: Any, *names: str) -> bool:
    """Whether the cluster's scheduler has seen a task for each of ``names`` (keys are ``<name>-<uuid>``)."""
    return all(name in cluster.scheduler.task_prefixes for name in names)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def summary(runs: Path) -> dict[str, Any]:
    (folder,) = [p for p in runs.iterdir() if p.is_dir()]
    data: dict[str, Any] = json.loads((folder / "summary.json").read_text())
    return data


@pytest.fixture(autouse=True)
def _in_tmp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)


def test_scripts_run_on_the_cluster(scheduler: Any, tmp_path: Path) -> None:
    scripts = tmp_path / "scripts"
    write(scripts / "extract.py", "print('extracted')\n")
    write(scripts / "transform.py", "# /// script\n# [tool.orchestrate]\n# depends = ['extract']\n# ///\nprint('ok')\n")
    runs = tmp_path / "runs"
    assert run_orchestrator([str(scripts), "-q", "--run-dir", str(runs), "--executor", address(scheduler)]) == 0
    report = summary(runs)
    assert [s["status"] for s in report["scripts"].values()] == ["passed", "passed"]
    assert report["jobs"] == 4, "-j defaults to the cluster's worker threads"
    assert ran_on(scheduler, "extract", "transform")
    (folder,) = [p for p in runs.iterdir() if p.is_dir()]
    assert "extracted" in (folder / "logs" / "extract.log").read_text()


def test_a_failing_script_on_the_cluster_fails_the_run(scheduler: Any, tmp_path: Path) -> None:
    scripts = tmp_path / "scripts"
    write(scripts / "bad.py", "import sys\nprint('oops', file=sys.stderr)\nsys.exit(3)\n")
    runs = tmp_path / "runs"
    assert run_orchestrator([str(scripts), "-q", "--run-dir", str(runs), "--executor", address(scheduler)]) == 1
    (bad,) = summary(runs)["scripts"].values()
    assert bad["status"] == "failed" and bad["exit_code"] == 3
    assert bad["stderr_tail"] == ["oops"]


def test_a_script_that_times_out_is_killed_on_its_worker(scheduler: Any, tmp_path: Path) -> None:
    scripts = tmp_path / "scripts"
    pidfile = tmp_path / "pid"
    write(
        scripts / "slow.py", f"import os, time\nopen({str(pidfile)!r}, 'w').write(str(os.getpid()))\ntime.sleep(30)\n"
    )
    runs = tmp_path / "runs"
    start = time.monotonic()
    code = run_orchestrator([str(scripts), "-q", "-t", "1", "--run-dir", str(runs), "--executor", address(scheduler)])
    assert code == 1
    assert time.monotonic() - start < 15
    assert summary(runs)["scripts"]["slow"]["status"] == "timeout"
    assert wait_dead(read_pid(pidfile))


def test_fail_fast_kills_a_running_script_on_its_worker(scheduler: Any, tmp_path: Path) -> None:
    scripts = tmp_path / "scripts"
    pidfile = tmp_path / "pid"
    write(
        scripts / "slow.py", f"import os, time\nopen({str(pidfile)!r}, 'w').write(str(os.getpid()))\ntime.sleep(30)\n"
    )
    write(
        scripts / "bad.py",
        f"import os, sys, time\nwhile not os.path.exists({str(pidfile)!r}):\n    time.sleep(0.02)\nsys.exit(1)\n",
    )
    runs = tmp_path / "runs"
    start = time.monotonic()
    argv = [str(scripts), "-q", "--fail-fast", "--run-dir", str(runs), "--executor", address(scheduler)]
    assert run_orchestrator(argv) == 1
    assert time.monotonic() - start < 15
    statuses = {n: s["status"] for n, s in summary(runs)["scripts"].items()}
    assert statuses == {"bad": "failed", "slow": "cancelled"}
    assert wait_dead(read_pid(pidfile))


def test_pipeline_stages_run_on_the_cluster(scheduler: Any, tmp_path: Path) -> None:
    write(tmp_path / "hello.py", "import os\nprint('stage', os.environ['ORCHESTRATE_STAGE'])\n")
    pipeline = write(
        tmp_path / "pipeline.yaml",
        """
        name: p
        stages:
          - name: build
            commands: ["echo built-$GREETING"]
            environment: {GREETING: hi}
          - name: greet
            script: hello.py
            needs: [build]
        """,
    )
    runs = tmp_path / "runs"
    assert run_orchestrator([str(pipeline), "-q", "--run-dir", str(runs), "--executor", address(scheduler)]) == 0
    report = summary(runs)
    assert [s["status"] for s in report["scripts"].values()] == ["passed", "passed"]
    assert ran_on(scheduler, "build", "greet")
    (folder,) = [p for p in runs.iterdir() if p.is_dir()]
    assert "built-hi" in (folder / "logs" / "build.log").read_text()
    assert "stage greet" in (folder / "logs" / "greet.log").read_text()


def test_a_pipeline_stage_that_times_out_is_killed_on_its_worker(scheduler: Any, tmp_path: Path) -> None:
    pidfile = tmp_path / "pid"
    pipeline = write(
        tmp_path / "pipeline.yaml",
        f"""
        name: p
        stages:
          - name: slow
            commands: ["echo $$ > {pidfile}; sleep 30"]
            timeout: 1
        """,
    )
    runs = tmp_path / "runs"
    start = time.monotonic()
    assert run_orchestrator([str(pipeline), "-q", "--run-dir", str(runs), "--executor", address(scheduler)]) == 1
    assert time.monotonic() - start < 15
    assert summary(runs)["scripts"]["slow"]["status"] == "timeout"
    assert wait_dead(read_pid(pidfile))


def test_a_failing_stage_cancels_a_running_one_killed_on_its_worker(scheduler: Any, tmp_path: Path) -> None:
    pidfile = tmp_path / "pid"
    pipeline = write(
        tmp_path / "pipeline.yaml",
        f"""
        name: p
        stages:
          - name: slow
            commands: ["echo $$ > {pidfile}; sleep 30"]
          - name: bad
            commands: ["while [ ! -s {pidfile} ]; do sleep 0.02; done; exit 1"]
            needs: []
        """,
    )
    runs = tmp_path / "runs"
    start = time.monotonic()
    assert run_orchestrator([str(pipeline), "-q", "--run-dir", str(runs), "--executor", address(scheduler)]) == 1
    assert time.monotonic() - start < 15
    statuses = {n: s["status"] for n, s in summary(runs)["scripts"].items()}
    assert statuses == {"bad": "failed", "slow": "cancelled"}
    assert wait_dead(read_pid(pidfile))


@pytest.mark.parametrize("kind", ["scripts", "pipeline"])
def test_an_unreachable_scheduler_is_exit_2_naming_it_before_anything_runs(
    kind: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(orchestrator_cluster, "CONNECT_TIMEOUT", 0.5)
    marker = tmp_path / "ran"
    write(tmp_path / "scripts" / "a.py", f"open({str(marker)!r}, 'w')\n")
    write(tmp_path / "pipeline.yaml", f"stages:\n  - name: a\n    commands: ['touch {marker}']\n")
    target = "scripts" if kind == "scripts" else "pipeline.yaml"
    port = free_port()
    runs = tmp_path / "runs"
    assert run_orchestrator([target, "--run-dir", str(runs), "--executor", f"dask://127.0.0.1:{port}"]) == 2
    err = capsys.readouterr().err
    assert f"cannot reach the Dask scheduler at tcp://127.0.0.1:{port}" in err
    assert not marker.exists()
    assert not runs.exists(), "no run folder: nothing ran"


@pytest.mark.parametrize("value", ["thread", "process", "dask://", "tcp://h:1"])
def test_executor_values(value: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert run_orchestrator(["scripts", "--executor", value]) == 2
    assert "--executor" in capsys.readouterr().err


@pytest.mark.slow
def test_scripts_and_stages_are_children_of_a_dask_worker_process(
    tmp_path: Path, subprocess_env: dict[str, str]
) -> None:
    port = free_port()
    tcp = f"tcp://127.0.0.1:{port}"
    scheduler_cli = [sys.executable, "-m", "distributed.cli.dask_scheduler"]
    worker_cli = [sys.executable, "-m", "distributed.cli.dask_worker"]
    started: list[subprocess.Popen[bytes]] = []
    log = (tmp_path / "cluster.log").open("wb")
    try:
        started.append(
            subprocess.Popen(
                [*scheduler_cli, "--host", "127.0.0.1", "--port", str(port), "--dashboard-address", ":0"],
                env=subprocess_env,
                stdout=log,
                stderr=log,
            )
        )
        started.append(
            subprocess.Popen(
                [*worker_cli, tcp, "--nthreads", "2", "--no-dashboard", "--host", "127.0.0.1"],
                env=subprocess_env,
                stdout=log,
                stderr=log,
            )
        )
        with distributed.Client(tcp, timeout=30) as client:
            client.wait_for_workers(1, timeout=60)
            (worker,) = client.run(os.getpid).values()
        out = tmp_path / "out"
        write(
            tmp_path / "scripts" / "who.py", f"import os\nopen({str(out / 'script')!r}, 'w').write(str(os.getppid()))\n"
        )
        out.mkdir()
        pipeline = write(
            tmp_path / "pipeline.yaml",
            f"stages:\n  - name: who\n    commands: ['echo $PPID > {out / 'stage'}']\n",
        )
        runs = tmp_path / "runs"
        for target in ("scripts", str(pipeline)):
            assert (
                run_orchestrator([target, "-q", "--run-dir", str(runs), "--executor", f"dask://127.0.0.1:{port}"]) == 0
            )
        assert int((out / "script").read_text()) == worker
        # the stage's shell is a child of the worker (a command line runs through /bin/sh -c)
        assert int((out / "stage").read_text()) == worker
    finally:
        for proc in reversed(started):
            proc.terminate()
        for proc in started:
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        log.close()
