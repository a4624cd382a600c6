"""The benchmarks run (not just exist): each is executed in its quick form and its report is checked.

Marked slow: CI runs them in their own bounded step (``python -m pytest -m slow``).
"""

from __future__ import annotations

import json
from pathlib import Path
import subprocess
import sys

import pytest


pytestmark = pytest.mark.slow


def bench(repo_root: Path, env: dict[str, str], name: str, *args: str) -> str:
    result = subprocess.run(
        [sys.executable, str(repo_root / "bench" / name), *args],
        cwd=repo_root,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout


def test_engine_bench_reports_overhead_and_beats_both_makespan_baselines(
    repo_root: Path, subprocess_env: dict[str, str], tmp_path: Path
) -> None:
    out = bench(repo_root, subprocess_env, "engine.py", "--quick", "--json", str(tmp_path / "engine.json"))
    assert "overhead ratio" in out and "makespan median" in out
    figures = json.loads((tmp_path / "engine.json").read_text())
    medians = figures["targets"]["makespan_median"]
    ours, fifo, levels = (medians[k] for k in ("ours", "fifo", "levels"))
    # critical-path list scheduling: close to the lower bound, and better than both baselines
    assert ours <= 1.10
    assert ours < fifo and ours < levels


def test_runners_bench_runs(repo_root: Path, subprocess_env: dict[str, str]) -> None:
    out = bench(repo_root, subprocess_env, "runners.py", "--quick")
    assert "wall/(work/4)" in out and "run_script / subprocess.run" in out


def test_plugin_bench_runs(repo_root: Path, subprocess_env: dict[str, str]) -> None:
    out = bench(repo_root, subprocess_env, "plugin.py", "--repeat", "2", "--tests", "200", "--flat", "200")
    assert "inactive: pytest --co -q" in out and "active: pytest -q --orchestrate" in out
    assert "flat 200 tests, serial: CPU" in out and "flat 200 tests, -n 2: CPU" in out
    assert "start-up, one test, -n 2: wall" in out


def test_state_bench_runs(repo_root: Path, subprocess_env: dict[str, str]) -> None:
    out = bench(repo_root, subprocess_env, "state.py", "--quick")
    assert "(a) workflow of 2000 no-op tasks" in out and "random" in out and "wide" in out
    assert "(b) pytest" in out


def test_dask_bench_runs(repo_root: Path, subprocess_env: dict[str, str]) -> None:
    pytest.importorskip("distributed")
    out = bench(repo_root, subprocess_env, "dask.py", "--repeats", "1")
    assert "bare submit" in out and "makespan ratio" in out and "per-task overhead ratio" in out
