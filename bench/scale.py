"""Benchmark of scale, each figure against its plain baseline measured in the same run.

(a) pytest: a generated suite of ``--tests`` tests (default 10,000; 100 per module) with a seeded random dependency
    DAG (each test depends on 0 to 6 earlier tests, 3 on average, named by node id across modules). Wall time of
    ``pytest --co -q --orchestrate`` (collection, marker parsing, target resolution, the graph, its checks and the
    order) against plain ``pytest --co -q`` of the same files, each in a fresh process, median of ``--repeat``
    runs alternating (target: at most 2 s more).
(b) workflow: a ``Workflow`` of ``--tasks`` no-op tasks (default 100,000; a seeded random DAG, 0 to 3 earlier
    dependencies each) built and run (``await wf.run()``), against the same graph run as plain coroutines in
    ``graphlib`` order; each in a fresh process, peak RSS (``ru_maxrss``) and wall time (target: peak under 500 MB).

Usage::

    python bench/scale.py [--tests N] [--tasks N] [--repeat N] [--quick] [--check]
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
import os
from pathlib import Path
import random
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time


# run as a script, this file's folder comes first on sys.path: keep it from shadowing anything
_HERE = os.path.dirname(os.path.abspath(__file__))
sys.path[:] = [p for p in sys.path if os.path.abspath(p or ".") != _HERE]

TESTS = 10_000
PER_MODULE = 100
TASKS = 100_000
COLLECT_TARGET = 2.0  # seconds more than plain collection
MEMORY_TARGET_MB = 500.0


# -- (a) collection and ordering -------------------------------------------------------------------------------------


def write_suite(root: Path, tests: int, seed: int = 13) -> int:
    """A suite of ``tests`` tests in modules of :data:`PER_MODULE`, with a random DAG; returns the edge count."""
    rng = random.Random(seed)
    (root / "pytest.ini").write_text("[pytest]\n")
    ids: list[str] = []
    edges = 0
    modules = (tests + PER_MODULE - 1) // PER_MODULE
    for m in range(modules):
        name = f"test_m{m:04d}.py"
        lines = ["import pytest", ""]
        for t in range(m * PER_MODULE, min(tests, (m + 1) * PER_MODULE)):
            nodeid = f"{name}::test_t{t:05d}"
            deps = sorted(set(rng.sample(ids, min(len(ids), rng.randint(0, 6)))))
            edges += len(deps)
            if deps:
                lines.append(f"@pytest.mark.depends({', '.join(repr(d) for d in deps)})")
            lines += [f"def test_t{t:05d}():", "    pass", ""]
            ids.append(nodeid)
        (root / name).write_text("\n".join(lines))
    return edges


def _collect(root: Path, env: dict[str, str], orchestrate: bool) -> float:
    command = [sys.executable, "-m", "pytest", "--co", "-q", "-p", "no:cacheprovider", "-p", "no:randomly"]
    if orchestrate:
        command.append("--orchestrate")
    start = time.perf_counter()
    result = subprocess.run(command, cwd=root, env=env, capture_output=True, text=True, check=False)
    elapsed = time.perf_counter() - start
    if result.returncode != 0:
        raise SystemExit(f"{' '.join(command)} failed:\n{result.stdout[-2000:]}{result.stderr[-2000:]}")
    return elapsed


def bench_collection(tests: int, repeat: int) -> tuple[float, float, int]:
    """(median seconds plain, median seconds with --orchestrate, edges)."""
    env = dict(os.environ)
    repo = os.path.dirname(_HERE)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (repo, env.get("PYTHONPATH", "")) if p)
    env.pop("PYTEST_ADDOPTS", None)
    plain: list[float] = []
    ours: list[float] = []
    with tempfile.TemporaryDirectory(prefix="orchestrate-bench-scale-") as tmp:
        root = Path(tmp)
        edges = write_suite(root, tests)
        _collect(root, env, orchestrate=True)  # warm the file cache and the bytecode of both
        for _ in range(repeat):
            plain.append(_collect(root, env, orchestrate=False))
            ours.append(_collect(root, env, orchestrate=True))
    return statistics.median(plain), statistics.median(ours), edges


# -- (b) a large workflow ---------------------------------------------------------------------------------------------

_WORKFLOW_CHILD = textwrap.dedent(
    """
    import asyncio, graphlib, random, resource, sys, time
    mode, tasks = sys.argv[1], int(sys.argv[2])
    rng = random.Random(11)
    graph = {}
    for i in range(tasks):
        graph[f"t{i}"] = sorted({f"t{rng.randrange(i)}" for _ in range(rng.randint(0, 3))}) if i else []

    async def noop():
        return None

    start = time.perf_counter()
    if mode == "plain":
        async def main():
            for name in graphlib.TopologicalSorter(graph).static_order():
                await noop()
        asyncio.run(main())
    else:
        from pytest_orchestrator import Workflow
        wf = Workflow("scale", fail_fast=False)
        for name, deps in graph.items():
            wf.add_task(name, noop, dependencies=deps)
        results = asyncio.run(wf.run())
        assert len(results) == tasks, len(results)
    elapsed = time.perf_counter() - start
    peak_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(f"{elapsed:.6f} {peak_kb / 1024:.1f}")
    """
)


def bench_workflow(tasks: int) -> dict[str, tuple[float, float]]:
    """``{"plain": (seconds, peak MB), "workflow": (seconds, peak MB)}``, each in a fresh process."""
    env = dict(os.environ)
    repo = os.path.dirname(_HERE)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (repo, env.get("PYTHONPATH", "")) if p)
    out: dict[str, tuple[float, float]] = {}
    for mode in ("plain", "workflow"):
        result = subprocess.run(
            [sys.executable, "-c", _WORKFLOW_CHILD, mode, str(tasks)],
            env=env,
            capture_output=True,
            text=True,
            check=False,
        )
        if result.returncode != 0:
            raise SystemExit(f"{mode} run failed:\n{result.stdout[-2000:]}{result.stderr[-2000:]}")
        seconds, peak = result.stdout.split()[-2:]
        out[mode] = (float(seconds), float(peak))
    return out


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--tests", type=int, default=TESTS, help="tests in the generated suite (a)")
    parser.add_argument("--tasks", type=int, default=TASKS, help="tasks in the workflow (b)")
    parser.add_argument("--repeat", type=int, default=3, help="runs of each collection, alternating")
    parser.add_argument("--quick", action="store_true", help="1,000 tests, 10,000 tasks, one repeat")
    parser.add_argument("--check", action="store_true", help="exit 1 if a target is missed")
    args = parser.parse_args(argv)
    if args.quick:
        args.tests, args.tasks, args.repeat = 1000, 10_000, 1
    ok = True

    plain, ours, edges = bench_collection(args.tests, args.repeat)
    extra = ours - plain
    print(f"(a) pytest --co of {args.tests:,} tests, {edges:,} dependencies ({edges / args.tests:.1f} per test)")
    print(f"    plain collection    {plain:7.2f} s")
    print(f"    with --orchestrate  {ours:7.2f} s  (+{extra:.2f} s; target: at most +{COLLECT_TARGET:g} s)")
    ok &= extra <= COLLECT_TARGET

    runs = bench_workflow(args.tasks)
    (p_time, p_peak), (w_time, w_peak) = runs["plain"], runs["workflow"]
    print(f"(b) workflow of {args.tasks:,} no-op tasks (random DAG)")
    print(f"    plain coroutines in graphlib order  {p_time:7.2f} s  peak {p_peak:7.1f} MB")
    print(
        f"    Workflow.run()                      {w_time:7.2f} s  peak {w_peak:7.1f} MB"
        f"  (target: under {MEMORY_TARGET_MB:g} MB)"
    )
    ok &= w_peak < MEMORY_TARGET_MB
    if args.check and not ok:
        print("a target was missed")
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
