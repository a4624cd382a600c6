"""Serial ``--orchestrate`` and ``--orchestrate -n 2`` give every item the same outcome, on random DAG suites.

Each suite (seeded) mixes Python tests in several modules and scripts under ``scripts/`` (PEP 723
``[tool.orchestrate]`` metadata), some failing, some skipping (``pytest.skip``, exit status 77), some xfailing,
with dependencies in both directions between tests and scripts. The JUnit XML of both runs is compared testcase by
testcase: outcome, message and text. Extra seeds are marked ``slow``. The same holds under ``--dist loadfile``,
``loadscope`` and ``loadgroup`` (some tests then carry ``xdist_group`` markers).
"""

from __future__ import annotations

from pathlib import Path
import random
import xml.etree.ElementTree as ET

from plugin_helpers import lean_xdist_inner_runs
import pytest


@pytest.fixture(autouse=True)
def _inner_env(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> None:
    lean_xdist_inner_runs(monkeypatch)


def generate(pytester: pytest.Pytester, seed: int, size: int = 30, *, groups: bool = False) -> int:
    """Write a random suite (some tests in ``xdist_group``s when ``groups``); return its number of items."""
    rng = random.Random(seed)
    grouping = random.Random(-seed)  # its own generator: the suite is the same with or without groups
    pytester.makeini("[pytest]\norchestrate_scripts = scripts/*.py\n")
    modules: dict[str, list[str]] = {}
    scripts: dict[str, str] = {}
    ids: list[tuple[str, str]] = []  # (node id, how another item names it)
    for i in range(size):
        behaviour = rng.choice(["pass"] * 9 + ["fail", "fail", "skip", "xfail"])
        chosen = rng.sample(ids, k=min(len(ids), rng.choice((0, 0, 1, 1, 2, 3))))
        targets = [target for _, target in chosen]
        sleep = rng.choice((0, 0, 0.01, 0.03))
        if rng.random() < 0.2:
            name = f"s{i}"
            exit_code = {"pass": 0, "fail": 1, "skip": 77, "xfail": 0}[behaviour]
            meta = ""
            if targets:
                meta = f"# /// script\n# [tool.orchestrate]\n# depends = {targets!r}\n# ///\n".replace("'", '"')
            body = f"import sys, time\ntime.sleep({sleep})\n"
            if exit_code == 77:
                body += 'print("nothing to do", file=sys.stderr)\n'
            scripts[f"scripts/{name}.py"] = meta + body + f"sys.exit({exit_code})\n"
            ids.append((f"scripts/{name}.py::{name}", rng.choice([f"scripts/{name}.py", name])))
            continue
        module = f"test_r{rng.randrange(3)}"
        lines = modules.setdefault(module, ["import time", "import pytest", ""])
        if targets:
            lines.append(f"@pytest.mark.depends(on={targets!r})")
        if behaviour == "xfail":
            lines.append('@pytest.mark.xfail(reason="known")')
        if groups and grouping.random() < 0.5:
            lines.append(f"@pytest.mark.xdist_group({grouping.choice(['db', 'net'])!r})")
        lines.append(f"def test_{i}():")
        lines.append(f"    time.sleep({sleep})")
        lines.append(
            {
                "pass": "    pass",
                "fail": "    assert False",
                "skip": '    pytest.skip("skipped inside")',
                "xfail": "    assert 0",
            }[behaviour]
        )
        lines.append("")
        ids.append((f"{module}.py::test_{i}", f"{module}.py::test_{i}"))
    for module, lines in modules.items():
        pytester.makepyfile(**{module: "\n".join(lines)})
    for relpath, text in scripts.items():
        path = pytester.path / relpath
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return len(ids)


def junit(path: Path) -> dict[str, tuple[str, str, str]]:
    out = {}
    for case in ET.parse(path).getroot().iter("testcase"):
        result = ("passed", "", "")
        for child in case:
            if child.tag in ("failure", "error", "skipped"):
                text = (child.text or "") if child.tag == "skipped" else ""
                result = (child.tag, child.get("message", "") if child.tag == "skipped" else "", text)
                break
        key = f"{case.get('classname')}::{case.get('name')}"
        assert key not in out, key
        out[key] = result
    return out


def compare(pytester: pytest.Pytester, seed: int, workers: int = 2, dist: str = "load") -> None:
    count = generate(pytester, seed, groups=dist == "loadgroup")
    serial = pytester.runpytest_subprocess(
        "-p", "no:cacheprovider", "--orchestrate", "--junitxml=serial.xml", timeout=120
    )
    parallel = pytester.runpytest_subprocess(
        "-p", "no:cacheprovider", "--orchestrate", "-n", str(workers), "--dist", dist, "--junitxml=parallel.xml",
        timeout=120,
    )  # fmt: skip
    a, b = junit(pytester.path / "serial.xml"), junit(pytester.path / "parallel.xml")
    assert len(a) == count, serial.stdout.str()
    differing = {k: (a.get(k), b.get(k)) for k in a.keys() | b.keys() if a.get(k) != b.get(k)}
    assert not differing, parallel.stdout.str()
    assert serial.parseoutcomes() == parallel.parseoutcomes()
    assert serial.ret == parallel.ret


@pytest.mark.parametrize("workers", [2, 4])
@pytest.mark.parametrize("seed", [1, 2])
def test_same_outcomes_as_serial(pytester: pytest.Pytester, seed: int, workers: int) -> None:
    compare(pytester, seed, workers)


@pytest.mark.parametrize("dist", ["loadfile", "loadscope", "loadgroup"])
def test_same_outcomes_as_serial_under_dist_modes(pytester: pytest.Pytester, dist: str) -> None:
    compare(pytester, 1, 2, dist)


@pytest.mark.slow
@pytest.mark.parametrize("seed", [3, 4, 5, 6, 7, 8])
def test_same_outcomes_as_serial_more_seeds(pytester: pytest.Pytester, seed: int) -> None:
    compare(pytester, seed)
