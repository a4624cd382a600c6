"""``orchestrate run --json`` / ``--report PATH`` and ``orchestrate report RUN_ID``: versioned reports that
validate against the published schema, for scripts, pipelines and stored runs."""

from __future__ import annotations

import json
import os
from pathlib import Path
import subprocess
import sys
import textwrap

from pytest_orchestrator.reporting.schema import validate_report


def _orchestrate(cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    root = str(Path(__file__).resolve().parents[1])
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in (root, os.environ.get("PYTHONPATH")) if p)}
    return subprocess.run(
        [sys.executable, "-m", "pytest_orchestrator.cli", *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def _project(tmp_path: Path) -> Path:
    scripts = tmp_path / "scripts"
    scripts.mkdir()
    (scripts / "a.py").write_text("print('a')\n")
    (scripts / "b.py").write_text(
        "# /// script\n# [tool.orchestrate]\n# depends = ['a']\n# ///\nimport sys\nprint('boom', file=sys.stderr)\n"
        "sys.exit(3)\n"
    )
    (scripts / "c.py").write_text("# /// script\n# [tool.orchestrate]\n# depends = ['b']\n# ///\n")
    return tmp_path


def test_json_puts_the_report_and_nothing_else_on_stdout(tmp_path: Path) -> None:
    result = _orchestrate(_project(tmp_path), "run", "scripts", "--json")
    assert result.returncode == 1
    report = json.loads(result.stdout)  # the whole of stdout is the report
    validate_report(report)
    assert report["kind"] == "scripts"
    assert {i["id"]: i["status"] for i in report["items"]} == {"a": "passed", "b": "failed", "c": "skipped"}
    assert {(e["from"], e["to"]) for e in report["edges"]} == {("a", "b"), ("b", "c")}
    assert "PASS a" in result.stderr  # progress still goes to stderr


def test_report_path_writes_json_or_html(tmp_path: Path) -> None:
    project = _project(tmp_path)
    assert _orchestrate(project, "run", "scripts", "-q", "--report", "out/run.json").returncode == 1
    validate_report(json.loads((project / "out" / "run.json").read_text()))
    assert _orchestrate(project, "run", "scripts", "-q", "--report", "run.html").returncode == 1
    page = (project / "run.html").read_text()
    assert page.startswith("<!DOCTYPE html>") and "<svg" in page
    assert "https://" not in page and "http://" not in page.replace("http://www.w3.org/2000/svg", "")  # offline


def test_pipeline_report(tmp_path: Path) -> None:
    (tmp_path / "p.yaml").write_text(
        textwrap.dedent(
            """
            name: p
            stages:
              - name: one
                commands: ["echo one"]
              - name: two
                commands: ["exit 2"]
            """
        )
    )
    result = _orchestrate(tmp_path, "run", "p.yaml", "--json", "--no-state")
    report = json.loads(result.stdout)
    validate_report(report)
    assert report["kind"] == "pipeline" and report["name"] == "p"
    assert {i["id"]: (i["kind"], i["status"]) for i in report["items"]} == {
        "one": ("stage", "passed"),
        "two": ("stage", "failed"),
    }


def test_report_of_a_stored_run(tmp_path: Path) -> None:
    project = _project(tmp_path)
    _orchestrate(project, "run", "scripts", "-q")
    run_id = json.loads(_orchestrate(project, "runs", "--json").stdout)[0]["run_id"]
    result = _orchestrate(project, "report", run_id)
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    validate_report(report)
    assert report["run_id"] == run_id and report["kind"] == "scripts"
    html = _orchestrate(project, "report", run_id, "--html", "stored.html")
    assert html.returncode == 0 and (project / "stored.html").read_text().startswith("<!DOCTYPE html>")
    missing = _orchestrate(project, "report", "nope")
    assert missing.returncode == 2 and "no run 'nope'" in missing.stderr
