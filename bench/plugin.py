"""Benchmark of the pytest plugin's cost, against pytest without it, measured in the same run.

A generated suite of 500 trivial tests (50 modules of 10) in a temporary folder:

(a) Inactive: ``pytest --co -q`` with the plugin installed but not turned on, versus ``pytest --co -q -p
    no:orchestrator`` (the plugin not loaded at all). Target: at most 5 % slower, or 30 ms in absolute terms.
(b) Active: ``pytest --orchestrate -q`` versus plain ``pytest -q`` on the same suite, whose tests carry a seeded
    random dependency DAG (each test depends on up to 2 random earlier tests, across modules; every test
    passes). Target: at most 15 % slower.
(c) Nothing to schedule: a flat suite of ``--flat`` (default 2,000) trivial tests without any marker,
    ``pytest -q --orchestrate`` versus ``pytest -q`` (target: at most 1.05x) and ``-n 2 --orchestrate`` versus
    stock ``-n 2`` (target: at most 1.10x), CPU of all processes (the xdist workers are the pytest process's
    children, waited for, so their CPU is counted), wall time beside.
(d) Start-up: a one-test suite under ``-n 2``, with ``--orchestrate`` against stock xdist: the median of the paired
    wall-time differences (target: at most +0.05 s), CPU beside.

Each measurement is a fresh ``python -m pytest`` process; the two sides alternate (``--repeat`` times each, after
one warm-up of each), timed in CPU seconds of the pytest process. The targets are judged on the median of the
ratios of back-to-back pairs: this machine's speed drifts by tens of percent from run to run, and a drift
cancels out of a pair's ratio. Medians of each side are shown beside it.
Bytecode caching is on for both sides (the warm-up fills it). Unrelated slow-to-load plugins (hypothesis,
pytest-benchmark) are
disabled on both sides so the comparison sees the plugin's own cost.

Usage::

    python bench/plugin.py [--repeat N] [--tests N] [--check] [--keep]

The exit code is 0 (this is a report) unless ``--check`` is given and a target fails.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
import os
from pathlib import Path
import random
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time


REPO_ROOT = Path(__file__).resolve().parents[1]
SEED = 20240607
PER_MODULE = 10
INACTIVE_TARGET = 0.05
INACTIVE_ABSOLUTE = 0.030
ACTIVE_TARGET = 0.15
FLAT_SERIAL_TARGET = 1.05
FLAT_XDIST_TARGET = 1.10
STARTUP_TARGET = 0.05
COMMON = ("-p", "no:hypothesispytest", "-p", "no:benchmark", "-p", "no:randomly", "-p", "no:cacheprovider")


def make_suite(root: Path, tests: int, *, seed: int = SEED) -> int:
    """Write the suite under ``root``; return the number of dependency edges."""
    rng = random.Random(seed)
    (root / "pytest.ini").write_text("[pytest]\ntestpaths = tests\n")
    folder = root / "tests"
    folder.mkdir()
    ids: list[str] = []
    edges = 0
    modules = (tests + PER_MODULE - 1) // PER_MODULE
    for m in range(modules):
        lines = ["import pytest", ""]
        for t in range(PER_MODULE):
            if len(ids) >= tests:
                break
            name = f"test_{t}"
            nodeid = f"tests/test_m{m:03d}.py::{name}"
            deps = sorted(set(rng.sample(ids, k=min(len(ids), rng.choice((0, 0, 1, 2))))))
            if deps:
                edges += len(deps)
                lines.append(f"@pytest.mark.depends({', '.join(repr(d) for d in deps)})")
            lines += [f"def {name}():", "    assert True", ""]
            ids.append(nodeid)
        (folder / f"test_m{m:03d}.py").write_text("\n".join(lines))
    return edges


def make_flat_suite(root: Path, tests: int) -> None:
    """``tests`` trivial tests without markers under ``root`` (modules of 100)."""
    (root / "pytest.ini").write_text("[pytest]\n")
    for m in range((tests + 99) // 100):
        count = min(100, tests - m * 100)
        (root / f"test_flat{m:03d}.py").write_text("".join(f"def test_{t}():\n    pass\n\n\n" for t in range(count)))


def run_pytest_timed(root: Path, args: Sequence[str]) -> tuple[float, float]:
    """``(CPU seconds of pytest and the processes it waited for, wall seconds)``."""
    env = dict(os.environ)
    env.pop("PYTEST_ADDOPTS", None)
    # this checkout first, whatever copy of the package is installed (the entry point imports it by name)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(REPO_ROOT), env.get("PYTHONPATH", "")) if p)
    # bytecode caching on (as for any user), in the suite's folder so the checkout is not touched: without it
    # every run would compile the plugin's modules afresh and measure the compiler
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    env["PYTHONPYCACHEPREFIX"] = str(root / ".pycache")
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", *COMMON, *args],
        cwd=root,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    # CPU seconds (user + system) of the pytest process: the work the plugin adds, steadier than wall time on a
    # shared machine, where wall time also counts waiting for a core
    elapsed = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    if proc.returncode != 0:
        raise SystemExit(f"pytest {' '.join(args)} failed ({proc.returncode}):\n{proc.stdout[-3000:]}{proc.stderr}")
    return elapsed, wall


def compare_timed(
    root: Path, base: Sequence[str], ours: Sequence[str], repeat: int
) -> tuple[list[tuple[float, float]], list[tuple[float, float]]]:
    """Alternate the two commands ``repeat`` times each, after one warm-up of each: ``(cpu, wall)`` per run."""
    run_pytest_timed(root, base)
    run_pytest_timed(root, ours)
    base_runs: list[tuple[float, float]] = []
    our_runs: list[tuple[float, float]] = []
    for _ in range(repeat):
        base_runs.append(run_pytest_timed(root, base))
        our_runs.append(run_pytest_timed(root, ours))
    return base_runs, our_runs


def xdist_rows(repeat: int, flat_tests: int) -> list[tuple[str, bool, str, str]]:
    """(c) and (d): ``(label, passed, figures, target)`` per measurement."""
    median = statistics.median
    rows: list[tuple[str, bool, str, str]] = []
    flat = Path(tempfile.mkdtemp(prefix="orchestrate-bench-flat-"))
    one = Path(tempfile.mkdtemp(prefix="orchestrate-bench-one-"))
    try:
        make_flat_suite(flat, flat_tests)
        make_flat_suite(one, 1)
        for label, extra, target in (
            (f"flat {flat_tests} tests, serial", [], FLAT_SERIAL_TARGET),
            (f"flat {flat_tests} tests, -n 2", ["-n", "2"], FLAT_XDIST_TARGET),
        ):
            base, ours = compare_timed(flat, ["-q", *extra], ["-q", *extra, "--orchestrate"], repeat)
            cpu = median(o[0] / b[0] for o, b in zip(ours, base, strict=True))
            wall = median(o[1] / b[1] for o, b in zip(ours, base, strict=True))
            figures = (
                f"CPU {cpu:.3f}x ({median(b[0] for b in base):.2f} s -> {median(o[0] for o in ours):.2f} s), "
                f"wall {wall:.3f}x"
            )
            rows.append((label, cpu <= target, figures, f"CPU <= {target:.2f}x"))
        base, ours = compare_timed(one, ["-q", "-n", "2"], ["-q", "-n", "2", "--orchestrate"], repeat)
        wall_diff = median(o[1] - b[1] for o, b in zip(ours, base, strict=True))
        cpu_diff = median(o[0] - b[0] for o, b in zip(ours, base, strict=True))
        figures = (
            f"wall {wall_diff:+.3f} s ({median(b[1] for b in base):.2f} s -> {median(o[1] for o in ours):.2f} s), "
            f"CPU {cpu_diff:+.3f} s"
        )
        rows.append(("start-up, one test, -n 2", wall_diff <= STARTUP_TARGET, figures, f"<= +{STARTUP_TARGET} s"))
    finally:
        shutil.rmtree(flat, ignore_errors=True)
        shutil.rmtree(one, ignore_errors=True)
    return rows


def compare(root: Path, base: Sequence[str], ours: Sequence[str], repeat: int) -> tuple[list[float], list[float]]:
    """Alternate the two commands ``repeat`` times each, after one warm-up of each: CPU seconds per run."""
    base_runs, our_runs = compare_timed(root, base, ours, repeat)
    return [cpu for cpu, _ in base_runs], [cpu for cpu, _ in our_runs]


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeat", type=int, default=15, help="measurements per side (default 15)")
    parser.add_argument("--tests", type=int, default=500, help="tests in the generated suite (default 500)")
    parser.add_argument("--check", action="store_true", help="exit 1 when a target is missed")
    parser.add_argument("--keep", action="store_true", help="keep the generated suite and print its folder")
    parser.add_argument("--flat", type=int, default=2000, help="tests in the flat suite of (c) (default 2000)")
    parser.add_argument("--no-xdist", action="store_true", help="skip (c) and (d)")
    options = parser.parse_args(argv)

    root = Path(tempfile.mkdtemp(prefix="orchestrate-bench-"))
    try:
        edges = make_suite(root, options.tests)
        print(f"suite: {options.tests} tests in {root} ({edges} dependency edges, seed {SEED})")
        print(f"python {sys.version.split()[0]}, {options.repeat} alternating pairs, CPU time, median of paired ratios")
        print()
        rows = []
        inactive = compare(root, ["--co", "-q", "-p", "no:orchestrator"], ["--co", "-q"], options.repeat)
        rows.append(("inactive: pytest --co -q", "-p no:orchestrator", *inactive))
        active = compare(root, ["-q"], ["-q", "--orchestrate"], options.repeat)
        rows.append(("active: pytest -q --orchestrate", "pytest -q", *active))

        header = (
            f"{'measurement':<34} {'baseline':<20} {'base med':>9} {'ours med':>9} {'pair diff':>8} {'ratio':>7}"
            f" {'pair ratio':>10}"
        )
        print(header)
        print("-" * len(header))
        verdicts = []
        for label, baseline, base_times, our_times in rows:
            base_med, our_med = statistics.median(base_times), statistics.median(our_times)
            # each pair ran back to back, so a drift in the machine's speed cancels out of its ratio
            ratio = statistics.median(o / b for o, b in zip(our_times, base_times, strict=True))
            diff = statistics.median(o - b for o, b in zip(our_times, base_times, strict=True))
            print(
                f"{label:<34} {baseline:<20} {base_med * 1000:>7.0f}ms {our_med * 1000:>7.0f}ms "
                f"{diff * 1000:>+6.0f}ms {our_med / base_med:>7.3f} {ratio:>10.3f}"
            )
            if label.startswith("inactive"):
                ok = ratio <= 1 + INACTIVE_TARGET or diff <= INACTIVE_ABSOLUTE
                target = f"<= {INACTIVE_TARGET:.0%} or <= {INACTIVE_ABSOLUTE * 1000:.0f} ms"
            else:
                ok = ratio <= 1 + ACTIVE_TARGET
                target = f"<= {ACTIVE_TARGET:.0%}"
            verdicts.append((label, ok, target, ratio - 1, diff))
        print()
        for label, ok, target, overhead, absolute in verdicts:
            word = "PASS" if ok else "FAIL"
            shown = f"overhead {overhead:+.1%} ({absolute * 1000:+.0f} ms CPU, median of paired runs)"
            print(f"{word}: {label}: {shown}, target {target}")
        if not options.no_xdist:
            print()
            print("nothing to schedule, and start-up (pairs against plain pytest and stock xdist):")
            for label, ok, figures, target in xdist_rows(options.repeat, options.flat):
                print(f"{'PASS' if ok else 'FAIL'}: {label}: {figures}, target {target}")
                verdicts.append((label, ok, target, 0.0, 0.0))
        print()
        print("raw seconds (baseline / ours):")
        for label, _, base_times, our_times in rows:
            print(f"  {label}: {[round(t, 3) for t in base_times]} / {[round(t, 3) for t in our_times]}")
        failed = not all(ok for _, ok, *_ in verdicts)
        return 1 if failed and options.check else 0
    finally:
        if options.keep:
            print(f"kept {root}")
        else:
            shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
