"""Benchmark of the DAG-aware xdist scheduler (``pytest --orchestrate -n 2``) against bounds measured in the same run.

(a) DAG makespan: 60 tests sleeping 0.05 to 0.3 s in a random DAG (seeded; spread over 4 modules, dependencies by
    node id on earlier tests), generated in a temporary folder. The durations cache is warmed first by one serial
    ``pytest --orchestrate`` run in that folder (the scheduler orders ready items by the remembered durations), then
    the suite runs serially and with ``-n 2``. The ``-n 2`` wall time is compared with the lower bound
    ``max(critical path, total / 2)`` computed from the generated durations, plus the worker start-up: the wall time
    of ``--orchestrate -n 2`` on a suite of one trivial test, measured in the same run (target: wall at most
    1.25 x bound + start-up). Each test logs its start and end, so the run also checks that no test started before
    all its dependencies ended.

(b) Overhead: 400 empty independent tests with ``--orchestrate -n 2`` against stock ``-n 2`` (both with
    ``-p no:cacheprovider``; target: at most 1.5x the wall time). Repeats alternate; the minimum is reported.

(c) Against the ceiling: 120 tests sleeping 0.01 to 0.2 s over 6 modules, a seeded sparse DAG across modules.
    ``--orchestrate -n N`` (the dependencies kept) against plain ``-n N`` on the same files (the markers ignored:
    no order kept, the most xdist can do), at ``-n 2`` and ``-n 4``, wall time of the whole session, pairs
    alternating (after a warm-up of each, which also fills the durations cache); the median of the pair ratios
    (target: at most 1.05x).

Usage::

    python bench/xdist_dag.py [--quick] [--check] [--seed N]

Inner runs are ``sys.executable -m pytest`` subprocesses with this checkout first on ``PYTHONPATH``. The exit code
is 0 (this is a report) unless ``--check`` is given and a target fails.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
from pathlib import Path
import random
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time


REPO = Path(__file__).resolve().parents[1]
DAG_TESTS = 60
MODULES = 4
SHORTEST, LONGEST = 0.05, 0.3
WORKERS = 2
DAG_TARGET = 1.25
EMPTY_TESTS = 400
OVERHEAD_TARGET = 1.5
CEILING_TESTS = 120
CEILING_MODULES = 6
CEILING_SHORTEST, CEILING_LONGEST = 0.01, 0.2
CEILING_TARGET = 1.05
#: plugins irrelevant here that cost start-up time in every inner run
LEAN = ["-p", "no:hypothesispytest", "-p", "no:benchmark", "-p", "no:randomly"]


@dataclasses.dataclass
class Spec:
    name: str
    module: int
    duration: float
    deps: list[str]

    @property
    def nodeid(self) -> str:
        return f"test_dag{self.module}.py::{self.name}"


def generate_wide(seed: int, count: int = CEILING_TESTS) -> list[Spec]:
    """(c)'s DAG: every other test depends on one or two earlier tests of other modules."""
    rng = random.Random(seed)
    specs: list[Spec] = []
    for i in range(count):
        module = i % CEILING_MODULES
        deps: list[str] = []
        if i and rng.random() < 0.5:
            others = [s for s in specs[-30:] if s.module != module]
            for spec in rng.sample(others, min(len(others), rng.choice((1, 1, 2)))):
                deps.append(spec.nodeid)
        duration = round(rng.uniform(CEILING_SHORTEST, CEILING_LONGEST), 3)
        specs.append(Spec(f"test_{i:03d}", module, duration, deps))
    return specs


def generate(seed: int, count: int = DAG_TESTS) -> list[Spec]:
    """A random DAG: each test depends on 0 to 3 earlier tests (more often on recent ones), dense enough that the
    critical path is close to the load bound (both matter)."""
    rng = random.Random(seed)
    specs: list[Spec] = []
    for i in range(count):
        deps: list[str] = []
        if i:
            for _ in range(rng.choice((0, 1, 1, 2, 2, 3))):
                j = max(0, i - 1 - int(rng.expovariate(1 / 3)))
                if specs[j].nodeid not in deps:
                    deps.append(specs[j].nodeid)
        specs.append(Spec(f"test_{i:02d}", rng.randrange(MODULES), round(rng.uniform(SHORTEST, LONGEST), 3), deps))
    return specs


def bounds(specs: list[Spec], workers: int = WORKERS) -> tuple[float, float, float]:
    """(critical path, total, max(critical path, total / workers)) in seconds."""
    finish: dict[str, float] = {}
    for spec in specs:  # already in a topological order
        finish[spec.nodeid] = spec.duration + max((finish[d] for d in spec.deps), default=0.0)
    critical = max(finish.values(), default=0.0)
    total = sum(s.duration for s in specs)
    return critical, total, max(critical, total / workers)


def write_dag(folder: Path, specs: list[Spec], modules: int = MODULES) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "pytest.ini").write_text("[pytest]\n")
    (folder / "conftest.py").write_text(
        textwrap.dedent(
            """
            import json, os, time
            import pytest

            @pytest.fixture(autouse=True)
            def _timeline(request):
                start = time.time()
                yield
                line = json.dumps([request.node.nodeid, start, time.time()])
                with open(os.path.join(str(request.config.rootpath), "timeline.jsonl"), "a") as stream:
                    stream.write(line + "\\n")
            """
        )
    )
    for module in range(modules):
        lines = ["import time", "import pytest", ""]
        for spec in specs:
            if spec.module != module:
                continue
            if spec.deps:
                lines.append(f"@pytest.mark.depends(on={spec.deps!r})")
            lines += [f"def {spec.name}():", f"    time.sleep({spec.duration})", ""]
        (folder / f"test_dag{module}.py").write_text("\n".join(lines))


def write_empty(folder: Path, count: int) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "pytest.ini").write_text("[pytest]\n")
    per = 100
    for module in range((count + per - 1) // per):
        names = range(module * per, min(count, (module + 1) * per))
        (folder / f"test_e{module}.py").write_text("".join(f"def test_{i}():\n    pass\n\n" for i in names))


def env() -> dict[str, str]:
    out = dict(os.environ)
    out["PYTHONPATH"] = os.pathsep.join(p for p in (str(REPO), out.get("PYTHONPATH", "")) if p)
    out.pop("PYTEST_ADDOPTS", None)
    out.pop("PYTEST_XDIST_WORKER", None)
    return out


def run_pytest(folder: Path, *args: str) -> tuple[float, subprocess.CompletedProcess[str]]:
    command = [sys.executable, "-m", "pytest", "-q", *LEAN, *args]
    start = time.perf_counter()
    proc = subprocess.run(command, cwd=folder, env=env(), capture_output=True, text=True, timeout=600, check=False)
    return time.perf_counter() - start, proc


def last_line(proc: subprocess.CompletedProcess[str]) -> str:
    lines = [line for line in proc.stdout.splitlines() if line.strip()]
    return lines[-1].strip("= ") if lines else f"(no output; rc {proc.returncode})"


def order_violations(folder: Path, specs: list[Spec]) -> list[str]:
    path = folder / "timeline.jsonl"
    if not path.exists():
        return ["no timeline written"]
    spans = {}
    for line in path.read_text().splitlines():
        nodeid, start, end = json.loads(line)
        spans[nodeid] = (start, end)
    bad = []
    for spec in specs:
        if spec.nodeid not in spans:
            bad.append(f"{spec.nodeid} did not run")
            continue
        for dep in spec.deps:
            if dep in spans and spans[dep][1] > spans[spec.nodeid][0] + 1e-3:
                bad.append(f"{spec.nodeid} started before {dep} ended")
    return bad


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--check", action="store_true", help="exit 1 if a target fails")
    parser.add_argument("--quick", action="store_true", help="one repeat of each measurement")
    parser.add_argument("--seed", type=int, default=1)
    options = parser.parse_args(argv)
    repeats = 1 if options.quick else 2
    failures: list[str] = []

    specs = generate(options.seed)
    critical, total, bound = bounds(specs)
    with tempfile.TemporaryDirectory(prefix="bench-xdist-dag-") as tmp:
        root = Path(tmp)
        dag, trivial, empty = root / "dag", root / "trivial", root / "empty"
        write_dag(dag, specs)
        write_empty(trivial, 1)
        write_empty(empty, EMPTY_TESTS)

        warm, proc = run_pytest(dag, "--orchestrate")  # fills the durations cache the scheduler orders by
        print(f"cache warm-up (serial --orchestrate): {warm:.2f} s, {last_line(proc)}")
        serial = parallel = startup = float("inf")
        parallel_line = ""
        violations: list[str] = []
        for _ in range(repeats):
            wall, proc = run_pytest(trivial, "--orchestrate", "-n", str(WORKERS), "-p", "no:cacheprovider")
            startup = min(startup, wall)
            wall, proc = run_pytest(dag, "--orchestrate")
            serial = min(serial, wall)
            (dag / "timeline.jsonl").unlink(missing_ok=True)
            wall, proc = run_pytest(dag, "--orchestrate", "-n", str(WORKERS))
            violations += order_violations(dag, specs)
            if proc.returncode != 0:
                violations.append(f"-n {WORKERS} run failed: {last_line(proc)}")
            if wall < parallel:
                parallel, parallel_line = wall, last_line(proc)

        stock = orch = float("inf")
        for _ in range(2 * repeats + 1):
            wall, proc = run_pytest(empty, "-n", str(WORKERS), "-p", "no:cacheprovider")
            stock = min(stock, wall)
            wall, proc = run_pytest(empty, "--orchestrate", "-n", str(WORKERS), "-p", "no:cacheprovider")
            orch = min(orch, wall)
            orch_line = last_line(proc)

    edges = sum(len(s.deps) for s in specs)
    allowed = DAG_TARGET * bound + startup
    print()
    print(f"(a) DAG of {DAG_TESTS} tests, {edges} dependencies, seed {options.seed}, {MODULES} modules")
    print(f"    {'generated total':<38} {total:7.2f} s")
    print(f"    {'critical path':<38} {critical:7.2f} s")
    print(f"    {f'lower bound max(cp, total/{WORKERS})':<38} {bound:7.2f} s")
    print(f"    {f'worker start-up (-n {WORKERS}, 1 test)':<38} {startup:7.2f} s")
    print(f"    {'serial --orchestrate':<38} {serial:7.2f} s")
    print(f"    {f'--orchestrate -n {WORKERS}':<38} {parallel:7.2f} s   ({parallel_line})")
    print(f"    {'  minus start-up, over the bound':<38} {(parallel - startup) / bound:7.2f} x")
    print(f"    {f'target: {DAG_TARGET} x bound + start-up':<38} {allowed:7.2f} s")
    ok = parallel <= allowed
    print(f"    {'PASS' if ok else 'FAIL'}: DAG makespan {parallel:.2f} s <= {allowed:.2f} s")
    if not ok:
        failures.append("DAG makespan")
    if violations:
        print("    FAIL: ordering: " + "; ".join(violations[:5]))
        failures.append("ordering")
    else:
        print("    PASS: every test started after all its dependencies ended")
    ratio = orch / stock
    print()
    print(f"(b) {EMPTY_TESTS} empty independent tests, -n {WORKERS}, -p no:cacheprovider (min of {2 * repeats + 1})")
    print(f"    {'stock -n 2':<38} {stock:7.2f} s")
    print(f"    {'--orchestrate -n 2':<38} {orch:7.2f} s   ({orch_line})")
    ok = ratio <= OVERHEAD_TARGET
    print(f"    {'PASS' if ok else 'FAIL'}: ratio {ratio:.2f} <= {OVERHEAD_TARGET}")
    if not ok:
        failures.append("overhead")
    print()
    wide = generate_wide(options.seed)
    print(
        f"(c) {CEILING_TESTS} tests over {CEILING_MODULES} modules, {sum(len(w.deps) for w in wide)} dependencies, "
        f"against plain -n N (median of {3 * repeats} pairs)"
    )
    with tempfile.TemporaryDirectory(prefix="bench-xdist-ceiling-") as tmp:
        folder = Path(tmp)
        write_dag(folder, wide, CEILING_MODULES)
        for workers in (2, 4):
            critical, total, bound = bounds(wide, workers)
            plain_args, ours_args = ("-n", str(workers)), ("--orchestrate", "-n", str(workers))
            run_pytest(folder, *plain_args)
            run_pytest(folder, *ours_args)
            pairs = []
            for _ in range(3 * repeats):
                plain, _proc = run_pytest(folder, *plain_args)
                ours, proc = run_pytest(folder, *ours_args)
                if proc.returncode != 0:
                    failures.append(f"ceiling -n {workers}: {last_line(proc)}")
                pairs.append((plain, ours))
            ratio = statistics.median(o / p for p, o in pairs)
            plain_med = statistics.median(p for p, _ in pairs)
            ours_med = statistics.median(o for _, o in pairs)
            ok = ratio <= CEILING_TARGET
            print(
                f"    -n {workers}: plain {plain_med:.2f} s, --orchestrate {ours_med:.2f} s, ratio {ratio:.3f} "
                f"(critical path {critical:.2f} s, total/{workers} {total / workers:.2f} s)"
            )
            print(f"    {'PASS' if ok else 'FAIL'}: -n {workers} makespan ratio {ratio:.3f} <= {CEILING_TARGET}")
            if not ok:
                failures.append(f"ceiling -n {workers}")
    if failures and options.check:
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
