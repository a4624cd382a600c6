"""Benchmark of the scripts-run path (``orchestrate run``) against minimal baselines measured in the same run.

(a) Parallel makespan: 40 independent scripts that each sleep 0.2 s, generated in a temporary folder, run
    through the orchestrator (``build_plan`` + ``run_plan``, the machinery behind ``orchestrate run``) at ``-j 4``,
    once as Python scripts and once as shell scripts. Reported for each: the wall time over the nominal ideal
    ``40 * 0.2 s / 4`` and over the measured work ``sum of the scripts' own run times / 4`` (target: at most 1.25,
    checked on the measured work: the nominal ratio also counts each interpreter's start-up, which no scheduler
    can hide), beside a bare baseline: a ``ThreadPoolExecutor(4)`` mapping ``subprocess.run`` over the same files.

(b) Per-script overhead, sequential: N scripts of ``pass`` run one after another by a bare ``subprocess.run`` loop
    (the baseline), by ``run_script`` (own process group, bounded capture, timeout machinery), and by the whole
    orchestrator at ``-j 1`` (DAG, engine, threads, logs and summary.json). Reported in ms per script and as a
    ratio to the baseline (target for ``run_script``: at most 1.5). Repeats alternate; the minimum is reported.

Usage::

    python bench/runners.py [--quick] [--check]

The exit code is 0 (this is a report) unless ``--check`` is given and a target fails.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import dataclasses
from pathlib import Path
import subprocess
import sys
import tempfile
import time

from pytest_orchestrator.orchestrator import RunOptions
from pytest_orchestrator.orchestrator import build_plan
from pytest_orchestrator.orchestrator import run_plan
from pytest_orchestrator.runners import run_script
from pytest_orchestrator.runners import script_command


SLEEP_SCRIPTS = 40
SLEEP = 0.2
JOBS = 4
MAKESPAN_TARGET = 1.25
OVERHEAD_SCRIPTS = 30
OVERHEAD_TARGET = 1.5  # run_script at most 1.5x a bare subprocess.run per script


def _write_scripts(folder: Path, count: int, body: str, suffix: str = ".py") -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for i in range(count):
        path = folder / f"s{i:03d}{suffix}"
        path.write_text(body)
        paths.append(path)
    return paths


@dataclasses.dataclass
class Makespan:
    kind: str
    wall: float  # best of the repeats
    work: float  # the scripts' summed run times in that run
    baseline: float  # best wall time of the bare thread pool

    @property
    def nominal_ratio(self) -> float:
        return self.wall / (SLEEP_SCRIPTS * SLEEP / JOBS)

    @property
    def work_ratio(self) -> float:
        return self.wall / (self.work / JOBS)


def makespan(tmp: Path, kind: str, repeats: int) -> Makespan:
    """The 40-script run at -j 4 through the orchestrator, and the bare thread-pool baseline, alternating."""
    folder = tmp / f"sleepers-{kind}"
    if kind == "python":
        scripts = _write_scripts(folder, SLEEP_SCRIPTS, f"import time\ntime.sleep({SLEEP})\n")
    else:
        scripts = _write_scripts(folder, SLEEP_SCRIPTS, f"sleep {SLEEP}\n", ".sh")
    plan = build_plan(folder)
    assert plan.ok, plan.problems
    best = Makespan(kind, float("inf"), 0.0, float("inf"))
    for i in range(repeats):
        t0 = time.perf_counter()
        with concurrent.futures.ThreadPoolExecutor(JOBS) as pool:
            done = list(pool.map(lambda p: subprocess.run(script_command(p), capture_output=True, check=True), scripts))
        best.baseline = min(best.baseline, time.perf_counter() - t0)
        assert len(done) == len(scripts)

        options = RunOptions(jobs=JOBS, quiet=True, runs_dir=tmp / f"runs-{kind}-{i}")
        t0 = time.perf_counter()
        report = run_plan(plan, options)
        wall = time.perf_counter() - t0
        assert report.success, report.counts
        if wall < best.wall:
            best.wall, best.work = wall, report.total_script_time
    return best


def overhead(tmp: Path, count: int, repeats: int) -> dict[str, float]:
    """Minimum seconds per script of each way to run ``count`` trivial scripts one after another."""
    folder = tmp / "noop"
    scripts = _write_scripts(folder, count, "pass\n")
    plan = build_plan(folder)
    assert plan.ok, plan.problems
    best = {"subprocess.run": float("inf"), "run_script": float("inf"), "orchestrator -j 1": float("inf")}
    for i in range(repeats):
        t0 = time.perf_counter()
        for path in scripts:
            subprocess.run([sys.executable, str(path)], check=True, capture_output=True, stdin=subprocess.DEVNULL)
        best["subprocess.run"] = min(best["subprocess.run"], (time.perf_counter() - t0) / count)

        t0 = time.perf_counter()
        for path in scripts:
            result = run_script(path)
            assert result.status == "passed", result
        best["run_script"] = min(best["run_script"], (time.perf_counter() - t0) / count)

        t0 = time.perf_counter()
        report = run_plan(plan, RunOptions(jobs=1, quiet=True, runs_dir=tmp / f"runs-overhead-{i}"))
        assert report.success
        best["orchestrator -j 1"] = min(best["orchestrator -j 1"], (time.perf_counter() - t0) / count)
    return best


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--quick", action="store_true", help="fewer repeats")
    parser.add_argument("--check", action="store_true", help="exit 1 if a target is missed")
    args = parser.parse_args(argv)
    repeats = 2 if args.quick else 3
    with tempfile.TemporaryDirectory(prefix="orchestrate-bench-") as name:
        tmp = Path(name)
        runs = [makespan(tmp, kind, repeats) for kind in ("python", "shell")]
        per_script = overhead(tmp, OVERHEAD_SCRIPTS, repeats)

    ideal = SLEEP_SCRIPTS * SLEEP / JOBS
    base = per_script["subprocess.run"]
    run_ratio = per_script["run_script"] / base
    ok_makespan = all(m.work_ratio <= MAKESPAN_TARGET for m in runs)
    ok_overhead = run_ratio <= OVERHEAD_TARGET

    print(
        f"(a) makespan: {SLEEP_SCRIPTS} scripts sleeping {SLEEP}s at -j {JOBS}, "
        f"nominal ideal {ideal:.2f}s (best of {repeats})"
    )
    print(f"    {'scripts':<8}{'wall':>8}{'bare pool':>11}{'work/4':>9}{'wall/ideal':>12}{'wall/(work/4)':>15}")
    for m in runs:
        verdict = "PASS" if m.work_ratio <= MAKESPAN_TARGET else "FAIL"
        print(
            f"    {m.kind:<8}{m.wall:>7.3f}s{m.baseline:>10.3f}s{m.work / JOBS:>8.3f}s{m.nominal_ratio:>12.3f}"
            f"{m.work_ratio:>15.3f}   target <= {MAKESPAN_TARGET}  {verdict}"
        )
    print(f"(b) per-script overhead: {OVERHEAD_SCRIPTS} scripts of 'pass', sequential (min of {repeats})")
    print(f"    {'runner':<22}{'ms/script':>10}{'ratio':>8}{'extra ms':>10}")
    for label, seconds in per_script.items():
        print(f"    {label:<22}{seconds * 1000:>10.2f}{seconds / base:>8.2f}{(seconds - base) * 1000:>10.2f}")
    verdict = "PASS" if ok_overhead else "FAIL"
    print(f"    run_script / subprocess.run = {run_ratio:.2f}   target <= {OVERHEAD_TARGET}  {verdict}")
    passed = ok_makespan and ok_overhead
    print("PASS" if passed else "FAIL")
    return 1 if args.check and not passed else 0


if __name__ == "__main__":
    sys.exit(main())
