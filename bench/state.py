"""Benchmark of durable state: the cost of recording a run in the SQLite ``StateStore``, against the same run
without state, measured in the same process run.

(a) Workflow: 2,000 no-op async tasks, as a seeded random DAG (each task depends on up to 3 random earlier tasks)
    and as a wide DAG (40 roots, each task depending on one random earlier task); ``await wf.run()`` with
    ``Workflow(state=StateStore(...))`` against ``Workflow()``, repeats alternating; the median of the per-pair
    ratios is reported (target: at most 1.5). Each run records into a state file of its own, created (schema and
    all) before the clock starts, as it is after a project's first run; the run's own rows, its lock and its
    fingerprints are inside the measurement.

(b) pytest: a generated 500-test suite with a random dependency DAG, ``pytest --orchestrate`` with state (the
    default) against ``--orchestrate-no-state``, CPU time of the pytest process, pairs alternating (target: at most
    1.05). Skipped with a note when the plugin has no ``--orchestrate-no-state`` option.

Usage::

    python bench/state.py [--quick] [--check]
"""

from __future__ import annotations

import argparse
import asyncio
from collections.abc import Sequence
import os
from pathlib import Path
import random
import resource
import statistics
import subprocess
import sys
import tempfile
import time

from pytest_orchestrator import StateStore
from pytest_orchestrator import Workflow


TASKS = 2000
WORKFLOW_TARGET = 1.5
PYTEST_TARGET = 1.05
PYTEST_TESTS = 500


async def _noop() -> None:
    return None


def _build(shape: str, store: StateStore | None, seed: int = 7) -> Workflow:
    rng = random.Random(seed)
    wf = Workflow(f"bench-{shape}", state=store, fail_fast=False)
    for i in range(TASKS):
        if shape == "random":
            deps = sorted({f"t{rng.randrange(i)}" for _ in range(rng.randint(0, 3))}) if i else []
        else:  # wide
            deps = [f"t{rng.randrange(i)}"] if i >= 40 else []
        wf.add_task(f"t{i}", _noop, dependencies=deps)
    return wf


def _time_run(shape: str, folder: Path | None) -> float:
    store = StateStore(folder / "state.db") if folder is not None else None
    if store is not None:
        store.connect()  # the file and its schema exist before the run, as they do after a project's first run
    wf = _build(shape, store)
    start = time.perf_counter()
    asyncio.run(wf.run())
    elapsed = time.perf_counter() - start
    if store is not None:
        store.close()
    return elapsed


def bench_workflow(shape: str, repeat: int) -> tuple[float, float, float]:
    """(median seconds without, median with, median pair ratio)."""
    plain: list[float] = []
    stated: list[float] = []
    ratios: list[float] = []
    with tempfile.TemporaryDirectory(prefix="orchestrate-bench-state-") as tmp:
        for i in range(repeat):
            folder = Path(tmp) / f"r{i}"
            folder.mkdir()
            base = _time_run(shape, None)
            ours = _time_run(shape, folder)
            plain.append(base)
            stated.append(ours)
            ratios.append(ours / base)
    return statistics.median(plain), statistics.median(stated), statistics.median(ratios)


def _make_suite(root: Path, tests: int, seed: int = 3) -> None:
    rng = random.Random(seed)
    (root / "pytest.ini").write_text("[pytest]\naddopts = -p no:randomly\n")
    per_file = 50
    for f in range(tests // per_file):
        lines = ["import pytest", ""]
        for t in range(per_file):
            index = f * per_file + t
            name = f"test_{index}"
            deps = [f"test_{rng.randrange(f * per_file, index)}"] if t and rng.random() < 0.5 else []
            if deps:
                lines.append(f"@pytest.mark.depends({deps[0]!r})")
            lines += [f"def {name}():", "    assert True", ""]
        (root / f"test_m{f}.py").write_text("\n".join(lines))


def _bytecode_env(root: Path) -> dict[str, str]:
    """The environment with bytecode caching on (any value of PYTHONDONTWRITEBYTECODE turns it off), in the suite's
    folder: without it every run would compile the plugin's modules afresh and measure the compiler."""
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    env["PYTHONPYCACHEPREFIX"] = str(root / ".pycache")
    return env


def _pytest_cpu(root: Path, args: Sequence[str]) -> float:
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *args],
        cwd=root,
        capture_output=True,
        text=True,
        check=False,
        env=_bytecode_env(root),
    )
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if proc.returncode != 0:
        raise SystemExit(f"pytest {' '.join(args)} failed:\n{proc.stdout[-2000:]}\n{proc.stderr[-2000:]}")
    return (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def _has_no_state_option() -> bool:
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", "--help"],
        capture_output=True,
        text=True,
        check=False,
        cwd=tempfile.gettempdir(),
    )
    return "--orchestrate-no-state" in proc.stdout


def bench_pytest(repeat: int) -> tuple[float, float, float] | None:
    if not _has_no_state_option():
        return None
    with tempfile.TemporaryDirectory(prefix="orchestrate-bench-state-pytest-") as tmp:
        root = Path(tmp)
        _make_suite(root, PYTEST_TESTS)
        _pytest_cpu(root, ["--orchestrate"])  # warm the bytecode cache
        plain: list[float] = []
        stated: list[float] = []
        ratios: list[float] = []
        for _ in range(repeat):
            base = _pytest_cpu(root, ["--orchestrate", "--orchestrate-no-state"])
            ours = _pytest_cpu(root, ["--orchestrate"])
            plain.append(base)
            stated.append(ours)
            ratios.append(ours / base)
    return statistics.median(plain), statistics.median(stated), statistics.median(ratios)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--quick", action="store_true", help="fewer repeats")
    parser.add_argument("--check", action="store_true", help="exit 1 if a target is missed")
    args = parser.parse_args(argv)
    repeat = 3 if args.quick else 9
    ok = True
    print(f"(a) workflow of {TASKS} no-op tasks, state against no state (median of {repeat} pair ratios)")
    for shape in ("random", "wide"):
        base, ours, ratio = bench_workflow(shape, repeat)
        verdict = "PASS" if ratio <= WORKFLOW_TARGET else "MISS"
        ok &= ratio <= WORKFLOW_TARGET
        print(
            f"    {shape:7s} no state {base * 1000:7.1f} ms   state {ours * 1000:7.1f} ms   "
            f"ratio {ratio:.2f} (target <= {WORKFLOW_TARGET})  {verdict}"
        )
    pytest_figures = bench_pytest(3 if args.quick else 7)
    if pytest_figures is None:
        print("(b) pytest: the plugin has no --orchestrate-no-state option here; not measured")
    else:
        base, ours, ratio = pytest_figures
        verdict = "PASS" if ratio <= PYTEST_TARGET else "MISS"
        ok &= ratio <= PYTEST_TARGET
        print(
            f"(b) pytest --orchestrate, {PYTEST_TESTS} tests: CPU without state {base:.2f} s, with {ours:.2f} s, "
            f"ratio {ratio:.3f} (target <= {PYTEST_TARGET})  {verdict}"
        )
    return 0 if ok or not args.check else 1


if __name__ == "__main__":
    sys.exit(main())
