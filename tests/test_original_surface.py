"""The original module's surface: its command line in ``run_orchestrator``, its config files, its submodule names
(``engines``, ``schedulers``) and the selectable ready-queue strategies."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
import sys
import textwrap
from typing import Any
import warnings

import pytest

from pytest_orchestrator.core.workflow import Workflow
from pytest_orchestrator.errors import WorkflowError
from pytest_orchestrator.orchestrator import run_orchestrator
from pytest_orchestrator.scripts import ConfigError
from pytest_orchestrator.scripts import get_script_config
from pytest_orchestrator.scripts import load_config


pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="needs Linux and bash")


def write(path: Path, text: str = "") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    return path


def marker_script(folder: Path, rel: str, depends: list[str] | None = None, doc: str | None = None) -> Path:
    """A script that leaves ``<folder>/../ran/<stem>`` behind when it runs."""
    head = f'"""{doc}"""\n' if doc else ""
    meta = ""
    if depends is not None:
        meta = f"# /// script\n# [tool.orchestrate]\n# depends = {json.dumps(depends)}\n# ///\n"
    body = (
        "import pathlib\n"
        f"d = pathlib.Path({str(folder.parent / 'ran')!r}); d.mkdir(exist_ok=True)\n"
        f"(d / {Path(rel).stem!r}).write_text('x')\n"
        "print('hello from', __file__)\n"
    )
    return write(folder / rel, meta + head + body)


@pytest.fixture
def scripts(tmp_path: Path) -> Path:
    """extract -> clean_users, clean_orders (etl/) -> report; tools/lint.py; deep/a/b/nested.py."""
    s = tmp_path / "scripts"
    (tmp_path / ".git").mkdir()
    marker_script(s, "extract.py", doc="Pull the raw data.")
    marker_script(s, "etl/clean_users.py", ["extract"], doc="Clean the users.\n\nDrops duplicates.")
    marker_script(s, "etl/clean_orders.py", ["extract"])
    marker_script(s, "report.py", ["clean_users", "clean_orders"])
    marker_script(s, "tools/lint.py")
    marker_script(s, "deep/a/b/nested.py")
    return s


def ran(tmp_path: Path) -> set[str]:
    folder = tmp_path / "ran"
    return {p.name for p in folder.iterdir()} if folder.is_dir() else set()


def orchestrate(*argv: str) -> int:
    return run_orchestrator(["--no-state", "-q", *argv])


def summary(output: Path) -> dict[str, Any]:
    [folder] = [p for p in output.iterdir() if p.is_dir()]
    data: dict[str, Any] = json.loads((folder / "summary.json").read_text())
    return data


# -- the original command line -----------------------------------------------------------------------------------
def test_original_flags_filter_with_dependencies_output_dir_and_timeout(tmp_path: Path, scripts: Path) -> None:
    out = tmp_path / "output" / "script_logs"
    assert orchestrate("--scripts-dir", str(scripts), "-f", "clean_users", "-o", str(out), "-t", "30") == 0
    assert ran(tmp_path) == {"extract", "clean_users"}
    data = summary(out)  # one folder per run, summary.json inside
    assert set(data["scripts"]) == {"extract", "clean_users"}
    assert data["scripts"]["clean_users"]["timeout"] == 30


@pytest.mark.parametrize(
    ("pattern", "selected"),
    [
        ("clean_*", {"extract", "clean_users", "clean_orders"}),  # a glob on the name
        ("etl/*", {"extract", "clean_users", "clean_orders"}),  # a glob on the relative path
        ("rep", {"extract", "clean_users", "clean_orders", "report"}),  # a substring, dependencies pulled in
        ("tools/", {"lint"}),  # a substring of the path
    ],
)
def test_filter_by_substring_or_glob(tmp_path: Path, scripts: Path, pattern: str, selected: set[str]) -> None:
    assert orchestrate(str(scripts), "--filter", pattern, "-o", str(tmp_path / "o")) == 0
    assert ran(tmp_path) == selected


def test_filter_that_selects_nothing_is_a_usage_error(
    tmp_path: Path, scripts: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert orchestrate(str(scripts), "-f", "nope", "-o", str(tmp_path / "o")) == 2
    assert "no scripts matching 'nope'" in capsys.readouterr().err
    assert ran(tmp_path) == set()


def test_subdirs_and_max_depth(tmp_path: Path, scripts: Path) -> None:
    assert orchestrate(str(scripts), "-s", "etl", "tools", "-o", str(tmp_path / "o")) == 0
    assert ran(tmp_path) == {"extract", "clean_users", "clean_orders", "lint"}
    for marker in (tmp_path / "ran").iterdir():
        marker.unlink()
    assert orchestrate(str(scripts), "--max-depth", "1", "-o", str(tmp_path / "o2")) == 0
    assert "nested" not in ran(tmp_path) and "lint" in ran(tmp_path)


def test_dash_n_is_dry_run(tmp_path: Path, scripts: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "o"
    assert orchestrate(str(scripts), "-n", "-o", str(out)) == 0
    assert "nothing is run" in capsys.readouterr().out
    assert ran(tmp_path) == set() and not out.exists()


def test_verbose_prints_each_scripts_output(tmp_path: Path, scripts: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert run_orchestrator(["--no-state", str(scripts), "-v", "-f", "extract", "-o", str(tmp_path / "o")]) == 0
    err = capsys.readouterr().err
    assert "output of extract:" in err and "| hello from" in err


def test_quiet_and_verbose_together_is_a_usage_error(scripts: Path) -> None:
    assert run_orchestrator([str(scripts), "-q", "-v"]) == 2


def test_path_and_scripts_dir_must_agree(tmp_path: Path, scripts: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert orchestrate(str(scripts), "--scripts-dir", str(tmp_path)) == 2
    assert "name different folders" in capsys.readouterr().err
    assert orchestrate(str(scripts), "--scripts-dir", str(scripts), "-n") == 0


def test_generate_docs_writes_a_reference_without_running_anything(tmp_path: Path, scripts: Path) -> None:
    write(scripts / "notify.sh", "#!/bin/bash\n# Tell the team.\n# Uses $WEBHOOK.\ntouch ran-notify\n")
    target = tmp_path / "docs" / "scripts.md"
    assert orchestrate(str(scripts), "--generate-docs", str(target)) == 0
    text = target.read_text()
    assert ran(tmp_path) == set() and not (tmp_path / "ran-notify").exists()
    assert text.startswith("# Scripts in ")
    assert "## clean_users\n\n`etl/clean_users.py`\n\nClean the users.\n\nDrops duplicates." in text
    assert "Pull the raw data." in text and "Tell the team.\nUses $WEBHOOK." in text
    assert "- **depends on**: `clean_users`, `clean_orders`" in text or "- **depends on**: `clean_orders`, " in text
    assert "*(no description)*" in text  # clean_orders has none
    # dependency order: extract is documented before the scripts that need it
    assert text.index("## extract") < text.index("## clean_users") < text.index("## report")


def test_scripts_only_flags_are_refused_for_a_pipeline(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    pipeline = write(tmp_path / "ci.yaml", "stages:\n  - name: a\n    commands: [true]\n")
    assert orchestrate(str(pipeline), "-f", "a") == 2
    assert "--filter: only for a folder of scripts" in capsys.readouterr().err


# -- the original's config files ---------------------------------------------------------------------------------
def test_original_config_yaml_is_read_with_a_deprecation_note(tmp_path: Path) -> None:
    (tmp_path / ".git").mkdir()
    s = tmp_path / "scripts"
    for name in ("a.py", "b.py", "c.py", "sub/d.py"):
        write(s / name, "print(1)\n")
    write(
        s / "config.yaml",
        """\
        default:
          timeout: 40
        skip: [b.py]
        timeout_override:
          c.py: 7
          sub/d.py: 9
        scripts:
          sub/d.py:
            timeout: 3
            args: ["--x"]
            skip_reason: the original's, dropped
        """,
    )
    with pytest.warns(DeprecationWarning, match="move its settings to orchestrate.yaml"):
        config = load_config(s)
    assert config.deprecation is not None
    for equivalent in ("`default` -> `defaults`", "`timeout_override: {script: S}` -> `scripts: {script: "):
        assert equivalent in config.deprecation
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        settings = {n: get_script_config(s / n, config=config) for n in ("a.py", "b.py", "c.py", "sub/d.py")}
    assert settings["a.py"]["timeout"] == 40 and not settings["a.py"]["skip"]
    assert settings["b.py"]["skip"]
    assert settings["c.py"]["timeout"] == 7
    assert settings["sub/d.py"]["timeout"] == 3 and settings["sub/d.py"]["args"] == ["--x"]  # scripts wins, as it did


def test_scripts_config_json_and_its_errors_name_the_line(tmp_path: Path) -> None:
    (tmp_path / ".git").mkdir()
    write(tmp_path / "a.py", "print(1)\n")
    write(tmp_path / "scripts_config.json", '{\n  "timeout_override": {"a.py": 5}\n}\n')
    with pytest.warns(DeprecationWarning):
        config = load_config(tmp_path)
    assert config.scripts == {"a.py": {"timeout": 5.0}}
    write(tmp_path / "scripts_config.json", '{\n  "scripts": {\n    "a.py": {"timeoutt": 5}\n  }\n}\n')
    with pytest.raises(ConfigError) as info, warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        load_config(tmp_path)
    assert info.value.context["line"] == 3 and "did you mean 'timeout'" in info.value.message
    write(tmp_path / "scripts_config.json", '{\n  "skip": [\n}\n')
    with pytest.raises(ConfigError, match="invalid JSON") as info:
        load_config(tmp_path)
    assert info.value.context["line"] == 3


def test_a_timeout_override_error_points_at_its_line_in_the_original_file(tmp_path: Path) -> None:
    (tmp_path / ".git").mkdir()
    write(tmp_path / "config.yml", "skip: []\ntimeout_override:\n  a.py: -1\n")
    with pytest.raises(ConfigError) as info:
        load_config(tmp_path)
    assert str(info.value.context["path"]) == str(tmp_path / "config.yml") and info.value.context["line"] == 3


def test_orchestrate_yaml_wins_and_an_unrelated_config_yaml_is_ignored(tmp_path: Path) -> None:
    (tmp_path / ".git").mkdir()
    s = tmp_path / "scripts"
    write(s / "config.yaml", "skip: [a.py]\n")
    write(tmp_path / "orchestrate.yaml", "timeout_override: 11\n")
    config = load_config(s)
    assert config.path == tmp_path / "orchestrate.yaml" and config.deprecation is None
    (tmp_path / "orchestrate.yaml").unlink()
    write(s / "config.yaml", "database: {host: db}\n")  # somebody else's config.yaml
    assert load_config(s).path is None


def test_the_command_prints_the_deprecation_note(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], recwarn: pytest.WarningsRecorder
) -> None:
    (tmp_path / ".git").mkdir()
    s = tmp_path / "scripts"
    write(s / "a.py", "print(1)\n")
    write(s / "b.py", "raise SystemExit(1)\n")
    write(s / "config.yaml", "skip: [b.py]\n")
    assert orchestrate(str(s), "-o", str(tmp_path / "o")) == 0
    assert "config.yaml is deprecated; move its settings to orchestrate.yaml" in capsys.readouterr().err


# -- submodule names and strategies --------------------------------------------------------------------------------
def test_original_submodule_names_resolve_to_the_real_code() -> None:
    from pytest_orchestrator.core.engine import Engine
    from pytest_orchestrator.core.scheduler import DagScheduler
    import pytest_orchestrator.engines as engines
    import pytest_orchestrator.pipelines as pipelines
    import pytest_orchestrator.schedulers as schedulers
    import pytest_orchestrator.state as state

    assert engines.Engine is Engine and callable(engines.open_executor)
    assert schedulers.DagScheduler is DagScheduler
    assert schedulers.STRATEGIES == ("critical_path", "priority", "fifo")
    assert schedulers.DEFAULT_STRATEGY == Workflow().strategy == "critical_path"
    assert callable(pipelines.load_pipeline) and state.StateStore is not None
    for module in (engines, schedulers):
        assert module.__doc__ and "original module's name" in module.__doc__.splitlines()[0]


def _start_order(strategy: str) -> list[str]:
    order: list[str] = []

    def action(name: str) -> Any:
        async def run() -> None:
            order.append(name)

        return run

    wf = Workflow("s", max_concurrency=1, strategy=strategy)
    # "short" is ready first and defined first; "long" has the most work behind it; "urgent" has priority
    wf.add_task("short", action("short"), metadata={"estimated_duration": 0.1})
    wf.add_task("long", action("long"), metadata={"estimated_duration": 5.0})
    wf.add_task("after_long", action("after_long"), dependencies=["long"], metadata={"estimated_duration": 5.0})
    wf.add_task("urgent", action("urgent"), priority=1)
    asyncio.run(wf.run())
    return order


def test_strategies_order_the_ready_queue() -> None:
    assert _start_order("critical_path")[:3] == ["urgent", "long", "after_long"]
    assert _start_order("priority")[:3] == ["urgent", "short", "long"]
    assert _start_order("fifo")[:3] == ["short", "long", "urgent"]


def test_an_unknown_strategy_is_refused() -> None:
    with pytest.raises(WorkflowError, match="unknown strategy 'lifo'"):
        Workflow("w", strategy="lifo")
