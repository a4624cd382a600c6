"""Benchmark of the workflow engine against minimal baselines measured in the same run.

(a) Overhead: 10,000 no-op async tasks as a chain, a fan-out (one root -> 9,999 leaves) and a seeded random DAG
    (each task depends on up to 3 random earlier tasks). Microseconds per task for ``await wf.run()`` (and for
    building the workflow plus running it) beside a ``graphlib.TopologicalSorter`` + asyncio loop written here.
    Repeats alternate baseline and ours; min and median are reported, and the ratios of both.

(b) Makespan: seeded random DAGs of 40 ``asyncio.sleep`` tasks (10-100 ms) at ``max_concurrency=4``, durations
    given to the engine as ``metadata["estimated_duration"]``. Each run's makespan is divided by the lower bound
    ``max(critical path, total work / 4)``; ours (strategy ``critical_path``) is compared with a greedy FIFO
    executor and a level-by-level one run on the same DAGs, and with the engine's other ready-queue strategies
    (``ours:priority``, ``ours:fifo``).

(c) Graph core: validating and ordering the random 10,000-task DAG with the hand-written core (which the engine
    uses) and with networkx (which ``analyze_workflow_dependencies`` and ``Workflow.to_networkx`` use).

Usage::

    python bench/engine.py [--quick] [--json PATH] [--check] [--profile {chain,fanout,random}]

The exit code is 0 (this is a report) unless ``--check`` is given and a target fails.
"""

from __future__ import annotations

import argparse
import asyncio
from collections import deque
from collections.abc import Awaitable
from collections.abc import Callable
from collections.abc import Coroutine
import cProfile
import dataclasses
import functools
import gc
import graphlib
import io
import json
import os
import pstats
import random
import statistics
import sys
import time
from typing import Any

from pytest_orchestrator.core.workflow import Workflow


OVERHEAD_TASKS = 10_000
OVERHEAD_TARGET = 1.5
MAKESPAN_TASKS = 40
MAKESPAN_LIMIT = 4
MAKESPAN_TARGET = 1.10
SEED = 20240601

Graph = dict[str, list[str]]


async def noop() -> None:
    return None


async def sleep_for(d: float) -> None:
    await asyncio.sleep(d)


# -- graphs ----------------------------------------------------------------------------------------------------
def random_deps(rng: random.Random, n: int, max_deps: int = 3) -> list[list[int]]:
    """For each task ``i``, 0..max_deps distinct random earlier tasks (sorted)."""
    return [sorted(rng.sample(range(i), rng.randint(0, min(max_deps, i)))) for i in range(n)]


def overhead_shapes(n: int) -> dict[str, Graph]:
    names = [f"t{i}" for i in range(n)]
    rng = random.Random(SEED)
    return {
        "chain": {name: ([names[i - 1]] if i else []) for i, name in enumerate(names)},
        "fanout": {name: ([names[0]] if i else []) for i, name in enumerate(names)},
        "random": {names[i]: [names[d] for d in deps] for i, deps in enumerate(random_deps(rng, n))},
    }


@dataclasses.dataclass(frozen=True)
class SleepDag:
    deps: list[list[int]]
    durations: list[float]

    @property
    def n(self) -> int:
        return len(self.durations)

    def children(self) -> list[list[int]]:
        out: list[list[int]] = [[] for _ in range(self.n)]
        for i, deps in enumerate(self.deps):
            for d in deps:
                out[d].append(i)
        return out

    def critical_path(self) -> float:
        finish: list[float] = []
        for i, deps in enumerate(self.deps):  # deps point to earlier tasks: index order is topological
            finish.append(self.durations[i] + max((finish[d] for d in deps), default=0.0))
        return max(finish)

    def lower_bound(self, limit: int) -> float:
        return max(self.critical_path(), sum(self.durations) / limit)

    def levels(self) -> list[list[int]]:
        level: list[int] = []
        for deps in self.deps:
            level.append(1 + max((level[d] for d in deps), default=-1))
        out: list[list[int]] = [[] for _ in range(max(level) + 1)]
        for i, lv in enumerate(level):
            out[lv].append(i)
        return out


def sleep_dags(count: int, n: int) -> list[SleepDag]:
    rng = random.Random(SEED + 1)
    dags = []
    for _ in range(count):
        deps = random_deps(rng, n)
        durations = [rng.uniform(0.010, 0.100) for _ in range(n)]
        dags.append(SleepDag(deps, durations))
    return dags


# -- (a) overhead ----------------------------------------------------------------------------------------------
def build_workflow(graph: Graph, action: Callable[[], Awaitable[None]] = noop) -> Workflow:
    wf = Workflow("bench")
    for name, deps in graph.items():
        wf.add_task(name, action, dependencies=deps)
    return wf


async def baseline_overhead(graph: Graph) -> None:
    """The minimal event loop: graphlib decides, a done callback reports into a queue."""
    ts: graphlib.TopologicalSorter[str] = graphlib.TopologicalSorter(graph)
    ts.prepare()
    queue: asyncio.Queue[str] = asyncio.Queue()
    while ts.is_active():
        for node in ts.get_ready():
            task = asyncio.create_task(noop())
            task.add_done_callback(functools.partial(lambda node, _t: queue.put_nowait(node), node))
        ts.done(await queue.get())


def time_baseline(graph: Graph) -> tuple[float, float]:
    """(run, build+run) seconds. The baseline has no build step beyond the graph itself: both are the same."""

    async def main() -> float:
        gc.collect()
        t0 = time.perf_counter()
        await baseline_overhead(graph)
        return time.perf_counter() - t0

    elapsed = asyncio.run(main())
    return elapsed, elapsed


def time_ours(graph: Graph) -> tuple[float, float]:
    """(run, build+run) seconds: ``await wf.run()`` alone, and building the workflow plus running it."""

    async def main() -> tuple[float, float]:
        gc.collect()
        t0 = time.perf_counter()
        wf = build_workflow(graph)
        build = time.perf_counter() - t0
        gc.collect()
        t1 = time.perf_counter()
        await wf.run()
        run = time.perf_counter() - t1
        assert wf.get_summary()["completed"] == len(graph)
        return run, build + run

    return asyncio.run(main())


def overhead(repeats: int, n: int) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for shape, graph in overhead_shapes(n).items():
        samples: dict[str, dict[str, list[float]]] = {
            "baseline": {"run": [], "build_run": []},
            "ours": {"run": [], "build_run": []},
        }
        time_ours(graph)  # warm-up: imports, signature cache, code paths
        time_baseline(graph)
        for rep in range(repeats):
            order = (("baseline", time_baseline), ("ours", time_ours))
            for who, fn in order if rep % 2 == 0 else order[::-1]:
                run, build_run = fn(graph)
                samples[who]["run"].append(run / n * 1e6)
                samples[who]["build_run"].append(build_run / n * 1e6)
        stats: dict[str, Any] = {}
        for who, kinds in samples.items():
            stats[who] = {
                kind: {"min": min(v), "median": statistics.median(v), "samples": v} for kind, v in kinds.items()
            }
        stats["ratio"] = {
            kind: {
                "median": stats["ours"][kind]["median"] / stats["baseline"][kind]["median"],
                "min": stats["ours"][kind]["min"] / stats["baseline"][kind]["min"],
            }
            for kind in ("run", "build_run")
        }
        out[shape] = stats
    return out


def print_overhead(res: dict[str, Any], repeats: int, n: int) -> None:
    print(f"(a) overhead: {n:,} no-op async tasks, {repeats} repeats alternating baseline/ours; us per task")
    print(f"{'shape':<8} {'executor':<10} {'run min':>9} {'run med':>9} {'build+run min':>14} {'build+run med':>14}")
    for shape, st in res.items():
        for who in ("baseline", "ours"):
            r, b = st[who]["run"], st[who]["build_run"]
            print(f"{shape:<8} {who:<10} {r['min']:>9.2f} {r['median']:>9.2f} {b['min']:>14.2f} {b['median']:>14.2f}")
        r, b = st["ratio"]["run"], st["ratio"]["build_run"]
        print(
            f"{shape:<8} {'ours/base':<10} {r['min']:>8.2f}x {r['median']:>8.2f}x"
            f" {b['min']:>13.2f}x {b['median']:>13.2f}x"
        )
    print("(baseline build+run = run: graphlib.TopologicalSorter is built from the same graph inside the timed run)")
    print()


# -- (b) makespan ----------------------------------------------------------------------------------------------
async def run_ours(dag: SleepDag, limit: int, strategy: str = "critical_path") -> float:
    wf = Workflow("makespan", max_concurrency=limit, strategy=strategy)
    for i, deps in enumerate(dag.deps):
        d = dag.durations[i]
        wf.add_task(
            f"t{i}", sleep_for, dependencies=[f"t{j}" for j in deps], args=(d,), metadata={"estimated_duration": d}
        )
    t0 = time.perf_counter()
    await wf.run()
    elapsed = time.perf_counter() - t0
    assert wf.get_summary()["completed"] == dag.n
    return elapsed


async def run_fifo(dag: SleepDag, limit: int) -> float:
    """Greedy FIFO list scheduling: a task starts as soon as its deps are done and a slot is free."""
    children = dag.children()
    missing = [len(d) for d in dag.deps]
    ready = deque(i for i in range(dag.n) if not missing[i])
    loop = asyncio.get_running_loop()
    finished = loop.create_future()
    state = {"running": 0, "done": 0}

    def fill() -> None:
        while ready and state["running"] < limit:
            i = ready.popleft()
            state["running"] += 1
            task = loop.create_task(sleep_for(dag.durations[i]))
            task.add_done_callback(functools.partial(on_done, i))

    def on_done(i: int, task: asyncio.Task[None]) -> None:
        task.result()
        state["running"] -= 1
        state["done"] += 1
        for c in children[i]:
            missing[c] -= 1
            if not missing[c]:
                ready.append(c)
        if state["done"] == dag.n:
            finished.set_result(None)
        else:
            fill()

    t0 = time.perf_counter()
    fill()
    await finished
    return time.perf_counter() - t0


async def run_levels(dag: SleepDag, limit: int) -> float:
    """Level by level: each generation runs under a semaphore of ``limit``; the next waits for all of it."""
    levels = dag.levels()
    sem = asyncio.Semaphore(limit)

    async def one(i: int) -> None:
        async with sem:
            await sleep_for(dag.durations[i])

    t0 = time.perf_counter()
    for level in levels:
        await asyncio.gather(*(one(i) for i in level))
    return time.perf_counter() - t0


EXECUTORS: dict[str, Callable[[SleepDag, int], Coroutine[Any, Any, float]]] = {
    "ours": run_ours,  # strategy="critical_path", the default
    "fifo": run_fifo,
    "levels": run_levels,
    # the engine's other ready-queue strategies (Workflow(strategy=...)), on the same DAGs
    "ours:priority": functools.partial(run_ours, strategy="priority"),
    "ours:fifo": functools.partial(run_ours, strategy="fifo"),
}


def makespan(count: int) -> dict[str, Any]:
    dags = sleep_dags(count, MAKESPAN_TASKS)
    names = list(EXECUTORS)
    ratios: dict[str, list[float]] = {name: [] for name in names}
    for k, dag in enumerate(dags):
        bound = dag.lower_bound(MAKESPAN_LIMIT)
        rot = names[k % len(names) :] + names[: k % len(names)]  # rotate who goes first
        for name in rot:
            gc.collect()
            elapsed = asyncio.run(EXECUTORS[name](dag, MAKESPAN_LIMIT))
            ratios[name].append(elapsed / bound)
    out: dict[str, Any] = {}
    for name, rs in ratios.items():
        out[name] = {
            "median": statistics.median(rs),
            "mean": statistics.fmean(rs),
            "max": max(rs),
            "min": min(rs),
            "ratios": rs,
        }
    for other in names[1:]:
        out["ours"][f"wins_vs_{other}"] = sum(a < b for a, b in zip(ratios["ours"], ratios[other], strict=True))
    out["lower_bounds"] = [d.lower_bound(MAKESPAN_LIMIT) for d in dags]
    return out


def print_makespan(res: dict[str, Any], count: int) -> None:
    mean_bound = statistics.fmean(res["lower_bounds"])
    print(
        f"(b) makespan / lower bound: {count} random DAGs x {MAKESPAN_TASKS} sleep tasks (10-100 ms), "
        f"max_concurrency={MAKESPAN_LIMIT}; mean lower bound {mean_bound * 1e3:.0f} ms"
    )
    print(f"{'executor':<14} {'median':>8} {'mean':>8} {'max':>8} {'min':>8}")
    for name in EXECUTORS:
        st = res[name]
        print(f"{name:<14} {st['median']:>8.3f} {st['mean']:>8.3f} {st['max']:>8.3f} {st['min']:>8.3f}")
    ours = res["ours"]
    print(
        f"ours strictly better per DAG: vs fifo {ours['wins_vs_fifo']}/{count},"
        f" vs levels {ours['wins_vs_levels']}/{count}"
    )
    print()


# -- profiling -------------------------------------------------------------------------------------------------
def profile(shape: str, n: int, top: int = 15) -> str:
    graph = overhead_shapes(n)[shape]
    time_ours(graph)  # warm-up
    prof = cProfile.Profile()

    async def main() -> None:
        wf = build_workflow(graph)
        gc.collect()
        prof.enable()
        await wf.run()
        prof.disable()

    asyncio.run(main())
    buf = io.StringIO()
    pstats.Stats(prof, stream=buf).sort_stats("tottime").print_stats(top)
    return buf.getvalue()


# -- (c) graph core: hand-written vs networkx --------------------------------------------------------------------
def graph_core(repeats: int, n: int) -> dict[str, float]:
    """Seconds (min of ``repeats``) to validate and order the random ``n``-task DAG: the hand-written core that the
    engine uses (``validate_graph`` + ``topological_order``) against networkx (build the ``DiGraph``, check it is a
    DAG, ``topological_sort``; the build counts: the engine's graph is a dict, networkx needs its own)."""
    import networkx as nx

    from pytest_orchestrator.core.graph import topological_order
    from pytest_orchestrator.core.graph import validate_graph

    graph = overhead_shapes(n)["random"]

    def ours() -> None:
        validate_graph(graph)
        topological_order(graph)

    def networkx() -> None:
        g = nx.DiGraph()
        g.add_nodes_from(graph)
        g.add_edges_from((d, node) for node, deps in graph.items() for d in deps)
        if not nx.is_directed_acyclic_graph(g):
            raise AssertionError("not a DAG")
        list(nx.topological_sort(g))

    out: dict[str, float] = {}
    for name, fn in (("hand-written", ours), ("networkx", networkx)):
        times = []
        for _ in range(repeats):
            t0 = time.perf_counter()
            fn()
            times.append(time.perf_counter() - t0)
        out[name] = min(times)
    return out


def print_graph_core(res: dict[str, float], n: int) -> None:
    print(f"(c) validate + order a {n:,}-task random DAG (min of repeats), ms")
    for name, seconds in res.items():
        print(f"{name:<13} {seconds * 1e3:>8.2f}")
    print(
        f"networkx/hand-written {res['networkx'] / res['hand-written']:.2f}x  (the engine uses the hand-written core)"
    )
    print()


# -- main ------------------------------------------------------------------------------------------------------
def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="fewer repeats and DAGs (smoke run)")
    parser.add_argument("--json", metavar="PATH", help="write the figures as JSON")
    parser.add_argument("--check", action="store_true", help="exit 1 if a target fails")
    parser.add_argument("--profile", choices=("chain", "fanout", "random"), help="also cProfile ours on a shape")
    args = parser.parse_args(argv)

    repeats = 2 if args.quick else 5
    count = 8 if args.quick else 30
    n = OVERHEAD_TASKS
    print(f"python {sys.version.split()[0]}, {os.cpu_count()} cpus, seed {SEED}" + (", --quick" if args.quick else ""))
    print()
    t_start = time.perf_counter()
    over = overhead(repeats, n)
    print_overhead(over, repeats, n)
    span = makespan(count)
    print_makespan(span, count)
    core = graph_core(repeats + 3, n)
    print_graph_core(core, n)

    ratios = [over[s]["ratio"]["run"]["median"] for s in ("chain", "fanout", "random")]
    over_ok = all(r <= OVERHEAD_TARGET for r in ratios)
    med = {name: span[name]["median"] for name in EXECUTORS}
    span_ok = med["ours"] <= MAKESPAN_TARGET and med["ours"] < med["fifo"] and med["ours"] < med["levels"]
    strategies = " / ".join(f"{med[name]:.2f}" for name in ("ours", "ours:priority", "ours:fifo"))
    print("targets")
    print(
        "  overhead ratio (median, chain/fanout/random): "
        + " / ".join(f"{r:.2f}" for r in ratios)
        + f"  target <= {OVERHEAD_TARGET}  {'PASS' if over_ok else 'FAIL'}"
    )
    print(
        f"  makespan median ours {med['ours']:.2f}, fifo {med['fifo']:.2f}, levels {med['levels']:.2f}"
        f"  target ours <= {MAKESPAN_TARGET:.2f} and best  {'PASS' if span_ok else 'FAIL'}"
    )
    print(f"  makespan median by strategy critical_path / priority / fifo: {strategies}")
    print(f"(total bench time {time.perf_counter() - t_start:.1f} s)")

    if args.profile:
        print()
        print(f"cProfile of ours, shape {args.profile}, top 15 by tottime:")
        print(profile(args.profile, n))

    if args.json:
        figures = {
            "python": sys.version.split()[0],
            "tasks": n,
            "repeats": repeats,
            "dags": count,
            "overhead_us_per_task": over,
            "makespan": span,
            "graph_core_seconds": core,
            "targets": {
                "overhead_ratio_median": dict(zip(("chain", "fanout", "random"), ratios, strict=True)),
                "overhead_pass": over_ok,
                "makespan_median": med,
                "makespan_pass": span_ok,
            },
        }
        with open(args.json, "w", encoding="utf-8") as fh:
            json.dump(figures, fh, indent=2)
    return 1 if args.check and not (over_ok and span_ok) else 0


if __name__ == "__main__":
    sys.exit(main())
