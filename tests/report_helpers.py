"""Synthetic runs for the report tests: a known small run and a large pytest-like run (xdist workers, stages)."""

from __future__ import annotations

import random
from typing import Any

from pytest_orchestrator.reporting.report import build_report


T0 = 1_700_000_000.0


def known_items() -> list[dict[str, Any]]:
    """Seven items, six edges: a passed chain, a flaky item (2 attempts), a failure with two dependency skips,
    a timeout, and an independent item. 7 timed attempts in all; 2 items never ran."""
    return [
        {
            "id": "build",
            "status": "completed",
            "stage": "build",
            "worker": "gw0",
            "attempts": [{"start": T0, "end": T0 + 2.0, "outcome": "passed"}],
            "output_tail": "compiled 12 modules",
        },
        {
            "id": "unit",
            "status": "completed",
            "stage": "test",
            "worker": "gw0",
            "dependencies": ["build"],
            "attempts": [
                {"start": T0 + 2.1, "end": T0 + 3.0, "outcome": "failed", "error": "AssertionError: flaky"},
                {"start": T0 + 3.2, "end": T0 + 4.0, "outcome": "passed"},
            ],
        },
        {
            "id": "integration",
            "status": "failed",
            "stage": "test",
            "worker": "gw1",
            "dependencies": ["build"],
            "error": "ConnectionError: db down",
            "attempts": [
                {"start": T0 + 2.1, "end": T0 + 3.5, "outcome": "failed", "error": "ConnectionError: db down"},
                {"start": T0 + 3.6, "end": T0 + 5.0, "outcome": "failed", "error": "ConnectionError: db down"},
            ],
        },
        {
            "id": "package",
            "status": "skipped",
            "stage": "deploy",
            "dependencies": ["unit", "integration"],
            "skip_cause": "dependency 'integration' failed",
            "finished_at": T0 + 5.0,
        },
        {
            "id": "publish",
            "status": "skipped",
            "stage": "deploy",
            "dependencies": ["package"],
            "skip_cause": "dependency 'package' was skipped",
            "finished_at": T0 + 5.0,
        },
        {
            "id": "lint",
            "status": "failed",
            "stage": "build",
            "worker": "gw1",
            "attempts": [{"start": T0, "end": T0 + 1.0, "outcome": "timeout", "error": "timed out after 1 s"}],
            "error": "timed out after 1 s",
        },
        {
            "id": "docs",
            "status": "completed",
            "worker": "gw1",
            "dependencies": ["build"],
            "attempts": [{"start": T0 + 5.0, "end": T0 + 5.5, "outcome": "passed"}],
        },
    ]


def known_report() -> dict[str, Any]:
    return build_report(
        kind="pipeline", name="known run", run_id="run-1", items=known_items(), edges=[("lint", "package")]
    )


def large_items(n: int = 2000, workers: int = 8, seed: int = 16) -> list[dict[str, Any]]:
    """``n`` pytest-like items over ``workers`` xdist workers: modules of tests, some chains of dependencies,
    retries, timeouts, failures and the dependency skips they cause."""
    rng = random.Random(seed)
    free = [T0] * workers
    items: list[dict[str, Any]] = []
    status_of: dict[str, str] = {}
    end_of: dict[str, float] = {}
    for i in range(n):
        module = f"tests/test_mod{i // 40:02d}.py"
        node = f"{module}::test_case_{i:04d}"
        deps = []
        if i % 40 and rng.random() < 0.3:
            deps = [items[i - rng.randint(1, min(i % 40, 5))]["id"]]
        stage = ("unit", "integration", "e2e")[min(2, i * 3 // n)]
        if deps and status_of[deps[0]] in ("failed", "skipped"):
            items.append(
                {
                    "id": node,
                    "name": node,
                    "kind": "test",
                    "status": "skipped",
                    "stage": stage,
                    "dependencies": deps,
                    "skip_cause": f"dependency {deps[0]} did not pass",
                    "finished_at": max(free),
                }
            )
            status_of[node] = "skipped"
            continue
        w = min(range(workers), key=lambda k: free[k])
        start = max([free[w]] + [end_of[d] for d in deps])
        attempts = []
        roll = rng.random()
        tries = 2 if roll < 0.03 else 1
        outcome = "failed" if roll > 0.985 else "timeout" if roll > 0.98 else "passed"
        for t in range(tries):
            d = rng.expovariate(1 / 0.08)
            o = "failed" if t < tries - 1 else outcome
            attempts.append(
                {
                    "start": start,
                    "end": start + d,
                    "outcome": o,
                    "error": None if o == "passed" else f"AssertionError: case {i} attempt {t + 1}",
                }
            )
            start += d + 0.005
        free[w] = start
        end_of[node] = float(attempts[-1]["end"])  # type: ignore[arg-type]
        status = "passed" if outcome == "passed" else outcome if outcome == "failed" else "failed"
        status_of[node] = "failed" if status != "passed" else "passed"
        items.append(
            {
                "id": node,
                "name": node,
                "kind": "test",
                "status": status,
                "worker": f"gw{w}",
                "stage": stage,
                "dependencies": deps,
                "attempts": attempts,
                "error": attempts[-1]["error"],
                "output_tail": "collected\nrunning\n" * 3,
            }
        )
    return items


def large_report(n: int = 2000) -> dict[str, Any]:
    return build_report(kind="pytest", name=f"pytest session ({n} items, -n 8)", run_id="big", items=large_items(n))
