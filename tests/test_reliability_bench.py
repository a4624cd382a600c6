"""``bench/scale.py`` runs (quick form) and prints both figures against their baselines (slow suite)."""

from __future__ import annotations

from pathlib import Path
import subprocess
import sys

import pytest


pytestmark = pytest.mark.slow


def test_scale_bench_runs_and_meets_its_targets(repo_root: Path, subprocess_env: dict[str, str]) -> None:
    result = subprocess.run(
        [sys.executable, str(repo_root / "bench" / "scale.py"), "--quick", "--check"],
        cwd=repo_root,
        env=subprocess_env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    out = result.stdout
    assert result.returncode == 0, out + result.stderr
    assert "plain collection" in out and "with --orchestrate" in out
    assert "plain coroutines in graphlib order" in out and "Workflow.run()" in out and "peak" in out
