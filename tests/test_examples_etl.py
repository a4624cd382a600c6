"""The ETL example (``examples/etl``) runs end to end with ``orchestrate run examples/etl/scripts``.

Every run uses a temporary ``ETL_WORKDIR`` and ``--run-dir``, so the tests never write into the checkout.
"""

from __future__ import annotations

import json
from pathlib import Path
import subprocess
import sys
from typing import Any

import pytest


pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="the example has bash scripts")

PASSING = ("extract", "clean_users", "clean_orders", "geo_lookup", "join", "report")


def orchestrate(
    repo_root: Path, env: dict[str, str], *args: str, extra_env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "pytest_orchestrator.cli", *args],
        cwd=repo_root,
        env={**env, **(extra_env or {})},
        check=False,
        capture_output=True,
        text=True,
        timeout=120,
    )


def newest_summary(runs: Path) -> dict[str, Any]:
    folder = sorted(runs.iterdir())[-1]
    data: dict[str, Any] = json.loads((folder / "summary.json").read_text())
    return data


@pytest.fixture
def env(subprocess_env: dict[str, str], tmp_path: Path) -> dict[str, str]:
    out = dict(subprocess_env)
    out["ETL_WORKDIR"] = str(tmp_path / "work")
    out.pop("ETL_PUBLISH_DIR", None)
    return out


def test_the_example_runs_and_passes(repo_root: Path, env: dict[str, str], tmp_path: Path) -> None:
    runs = tmp_path / "runs"
    result = orchestrate(repo_root, env, "run", "examples/etl/scripts", "-j", "4", "--run-dir", str(runs))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "orchestrate: OK: 8 scripts" in result.stdout
    assert "6 passed, 2 skipped" in result.stdout
    assert "clean_orders: 2 attempts, passed (earlier: exited with status 1)" in result.stdout
    assert "PASS clean_orders" in result.stderr and "2 attempts" in result.stderr

    data = newest_summary(runs)
    scripts = data["scripts"]
    assert next(iter(scripts)) == "extract"
    for name in PASSING:
        assert scripts[name]["status"] == "passed", (name, scripts[name])
    assert scripts["clean_orders"]["attempts"] == 2
    assert [s["attempts"] for n, s in scripts.items() if n != "clean_orders" and s["attempts"]] == [1] * 6
    assert scripts["publish"]["status"] == "skipped" and scripts["publish"]["exit_code"] == 77
    assert scripts["publish"]["reason"] == "ETL_PUBLISH_DIR is not set: nothing to publish to"
    assert scripts["notify"]["status"] == "skipped"
    assert scripts["notify"]["reason"] == "dependency 'publish' was skipped"
    assert scripts["notify"]["attempts"] == 0

    # the scripts really passed data along, and orchestrate.yaml's env reached report.py
    work = tmp_path / "work"
    report = json.loads((work / "report.json").read_text())
    assert report == {"currency": "EUR", "orders": 5, "revenue": {"AMER": 119.99, "APAC": 41.0, "EMEA": 19.75}}
    assert json.loads((work / "geo.json").read_text()) == {"AT": "EMEA", "CN": "APAC", "GB": "EMEA", "US": "AMER"}


def test_each_run_starts_clean_so_the_flaky_script_fails_once_per_run(
    repo_root: Path, env: dict[str, str], tmp_path: Path
) -> None:
    runs = tmp_path / "runs"
    for _ in range(2):
        result = orchestrate(repo_root, env, "run", "examples/etl/scripts", "-q", "--run-dir", str(runs))
        assert result.returncode == 0, result.stdout + result.stderr
        assert newest_summary(runs)["scripts"]["clean_orders"]["attempts"] == 2


def test_publishing_when_configured(repo_root: Path, env: dict[str, str], tmp_path: Path) -> None:
    runs = tmp_path / "runs"
    published = tmp_path / "published"
    result = orchestrate(
        repo_root,
        env,
        "run",
        "examples/etl/scripts",
        "-q",
        "--run-dir",
        str(runs),
        extra_env={"ETL_PUBLISH_DIR": str(published)},
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "8 passed" in result.stdout
    assert json.loads((published / "report.json").read_text())["currency"] == "EUR"


def test_the_example_validates(repo_root: Path, env: dict[str, str]) -> None:
    result = orchestrate(repo_root, env, "validate", "examples/etl/scripts")
    assert (result.returncode, result.stdout, result.stderr) == (0, "ok: 8 scripts\n", "")
    result = orchestrate(repo_root, env, "graph", "examples/etl/scripts")
    assert result.returncode == 0 and result.stdout.count("-->") == 9


def run_pytest(repo_root: Path, env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "pytest", "--orchestrate", "examples/etl", "-p", "no:cacheprovider", *args],
        cwd=repo_root,
        env=env,
        check=False,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_the_readme_main_command_runs_scripts_and_tests_as_one_graph(repo_root: Path, env: dict[str, str]) -> None:
    """The README's main command: ``pytest --orchestrate examples/etl``."""
    result = run_pytest(repo_root, env, "-rs")
    out = result.stdout
    assert result.returncode == 0, out + result.stderr
    assert "9 passed, 3 skipped, 1 rerun" in out
    assert "workflow summary" in out
    assert "scripts/clean_orders.py::clean_orders: 2 attempts" in out
    # the test that reads publish.py's output is skipped because publish skipped itself, and says so
    assert (
        "tests/test_etl.py::test_published_report_is_readable: dependency 'scripts/publish.py::publish' was skipped"
        in out
    )
    # scripts run before the tests that read their output
    assert out.index("scripts/report.py") < out.index("tests/test_etl.py")


def test_the_example_tests_pass_with_publishing(repo_root: Path, env: dict[str, str], tmp_path: Path) -> None:
    env = {**env, "ETL_PUBLISH_DIR": str(tmp_path / "published")}
    result = run_pytest(repo_root, env)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "12 passed, 1 rerun" in result.stdout
