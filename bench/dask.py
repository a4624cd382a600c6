"""Benchmark of the Dask executor: our engine placing tasks on a 2-worker ``LocalCluster`` against bare
``client.submit`` of the same graph (dependencies passed as futures, so Dask's scheduler alone sequences them), in
the same process run, on the same cluster; the thread executor beside them.

(a) 200 independent tasks of 50 ms ``time.sleep``: makespan (target: at most 1.1x bare).
(b) a seeded random DAG of 1,000 no-op tasks (each depends on up to 3 of the 50 tasks before it): per-task overhead,
    the makespan over the number of tasks (target: at most 1.5x bare).

Each measurement is the median of ``--repeats`` runs, alternating engine and bare. The engine decides every start
itself (conditions, trigger rules, retries, fail_fast), so a dependent is submitted only once the driver has seen
its dependencies finish: one driver round trip per level of the graph that bare ``client.submit`` does not pay.

Usage::

    python bench/dask.py [--repeats N]
"""

from __future__ import annotations

import argparse
import asyncio
from collections.abc import Callable
import os
import random
import statistics
import sys
import time
from typing import Any


# run as a script, this file's folder comes first on sys.path, and this file is named like the package it measures
_HERE = os.path.dirname(os.path.abspath(__file__))
sys.path[:] = [p for p in sys.path if os.path.abspath(p or ".") != _HERE]

SLEEP_TASKS = 200
SLEEP = 0.05
DAG_TASKS = 1000
MAKESPAN_TARGET = 1.1
OVERHEAD_TARGET = 1.5


def nap() -> None:
    time.sleep(SLEEP)


def noop(*args: Any, **kwargs: Any) -> int:
    return 1


def sleep_graph() -> dict[str, list[str]]:
    return {f"t{i}": [] for i in range(SLEEP_TASKS)}


def random_dag(n: int = DAG_TASKS, seed: int = 7) -> dict[str, list[str]]:
    rng = random.Random(seed)
    graph: dict[str, list[str]] = {}
    for i in range(n):
        earlier = range(max(0, i - 50), i)
        graph[f"t{i}"] = [f"t{j}" for j in rng.sample(earlier, min(len(earlier), rng.randint(0, 3)))]
    return graph


def bare(client: Any, graph: dict[str, list[str]], fn: Callable[..., Any]) -> float:
    start = time.perf_counter()
    futures: dict[str, Any] = {}
    for name, deps in graph.items():
        futures[name] = client.submit(fn, *[futures[d] for d in deps], pure=False)
    client.gather(list(futures.values()))
    return time.perf_counter() - start


def engine(executor: Any, graph: dict[str, list[str]], fn: Callable[..., Any], limit: int | None = None) -> float:
    from pytest_orchestrator import Workflow

    wf = Workflow("bench", executor=executor, max_concurrency=limit)
    for name, deps in graph.items():
        wf.add_task(name, fn, dependencies=deps)
    start = time.perf_counter()
    asyncio.run(wf.run())
    return time.perf_counter() - start


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args(argv)

    import dask

    from pytest_orchestrator.execution.dask import DaskExecutor

    dask.config.set({"distributed.worker.profile.enabled": False})
    workloads: list[tuple[str, dict[str, list[str]], Callable[..., Any]]] = [
        ("sleep", sleep_graph(), nap),
        ("dag", random_dag(), noop),
    ]
    with DaskExecutor(None, n_workers=2, threads_per_worker=1) as executor:
        client = executor.client
        client.wait_for_workers(2)
        bare(client, random_dag(100), noop)  # warm up: workers import, connections made
        engine(executor, random_dag(100), noop)
        times: dict[tuple[str, str], list[float]] = {}
        for name, graph, fn in workloads:
            for _ in range(args.repeats):
                times.setdefault((name, "bare"), []).append(bare(client, graph, fn))
                times.setdefault((name, "engine"), []).append(engine(executor, graph, fn))
            times[(name, "threads")] = [engine(None, graph, fn)]
            times[(name, "threads x2")] = [engine(None, graph, fn, limit=2)]
    med = {key: statistics.median(values) for key, values in times.items()}

    print(f"2-worker LocalCluster (processes, 1 thread each); median of {args.repeats} runs")
    print(f"{'workload':<34} {'bare submit':>12} {'engine+dask':>12} {'ratio':>7} {'threads':>9} {'threads x2':>11}")
    for name, label, per in (
        ("sleep", f"{SLEEP_TASKS} x {SLEEP * 1000:g} ms sleep: makespan s", 1),
        ("dag", f"{DAG_TASKS}-task random DAG: ms per task", DAG_TASKS),
    ):
        scale = 1000 / per if per > 1 else 1.0
        b, e = med[(name, "bare")] * scale, med[(name, "engine")] * scale
        print(
            f"{label:<34} {b:>12.3f} {e:>12.3f} {e / b:>6.2f}x "
            f"{med[(name, 'threads')] * scale:>9.3f} {med[(name, 'threads x2')] * scale:>11.3f}"
        )
    makespan = med[("sleep", "engine")] / med[("sleep", "bare")]
    overhead = med[("dag", "engine")] / med[("dag", "bare")]
    for what, ratio, target in (
        ("makespan", makespan, MAKESPAN_TARGET),
        ("per-task overhead", overhead, OVERHEAD_TARGET),
    ):
        print(f"{what} ratio {ratio:.2f}x (target <= {target}x): {'met' if ratio <= target else 'NOT met'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
