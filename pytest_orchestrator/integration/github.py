"""GitHub Actions workflow commands: annotations, log groups and the job summary.

Pure helpers (strings in, strings out; ``write_step_summary`` appends to a file), usable by pipelines and by the
pytest plugin::

    print(github_error("assert 1 == 2", file="tests/test_x.py", line=12, title="test_x failed"))
    # ::error file=tests/test_x.py,line=12,title=test_x failed::assert 1 == 2
    for line in github_annotations_for_junit("report.xml"):
        print(line)

Escaping follows the runner's rules: in a message ``%``, ``\\r`` and ``\\n`` are percent-encoded; in a property
value ``:`` and ``,`` are as well.
"""

from __future__ import annotations

from collections.abc import Mapping
from collections.abc import Sequence
import os
from pathlib import Path
import re
from typing import Any


__all__ = [
    "escape_data",
    "escape_property",
    "github_annotations_for_junit",
    "github_command",
    "github_error",
    "github_warning",
    "group_end",
    "group_start",
    "markdown_table",
    "relative_path",
    "write_step_summary",
]

#: ``path/to/file.py:12: SomeError`` lines of a pytest traceback (the last one is where the test failed)
_LOCATION_RE = re.compile(r"^(?P<file>[^\s:][^:\n]*\.py):(?P<line>\d+):", re.MULTILINE)


def escape_data(value: Any) -> str:
    """Escape a workflow command's message."""
    return str(value).replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def escape_property(value: Any) -> str:
    """Escape a workflow command's property value (``file=...``, ``title=...``)."""
    return escape_data(value).replace(":", "%3A").replace(",", "%2C")


def github_command(command: str, message: Any = "", **properties: Any) -> str:
    """``::command prop=value,...::message``; properties that are ``None`` are left out."""
    props = ",".join(f"{k}={escape_property(v)}" for k, v in properties.items() if v is not None)
    return f"::{command}{' ' + props if props else ''}::{escape_data(message)}"


def github_error(message: str, file: str | None = None, line: int | None = None, title: str | None = None) -> str:
    """An ``::error`` annotation (shown on the run and, with ``file``/``line``, on the file)."""
    return github_command("error", message, file=file, line=line, title=title)


def github_warning(message: str, file: str | None = None, line: int | None = None, title: str | None = None) -> str:
    """A ``::warning`` annotation."""
    return github_command("warning", message, file=file, line=line, title=title)


def group_start(name: str) -> str:
    """Start a collapsible log group (GitHub takes the title literally)."""
    return f"::group::{name}"


def group_end() -> str:
    return "::endgroup::"


def relative_path(path: str) -> str:
    """A path relative to the workspace if it is inside it (annotations need repository-relative paths)."""
    root = os.environ.get("GITHUB_WORKSPACE") or os.getcwd()
    try:
        return os.path.relpath(path, root) if os.path.isabs(path) else path
    except ValueError:
        return path


def _file_of(classname: str) -> str | None:
    """``tests.test_x.TestA`` -> ``tests/test_x.py`` if such a file exists (the xunit2 format has no file)."""
    parts = classname.split(".")
    for end in range(len(parts), 0, -1):
        candidate = Path(*parts[:end]).with_suffix(".py")
        if candidate.is_file():
            return candidate.as_posix()
    return None


def github_annotations_for_junit(xml_path: str | os.PathLike[str]) -> list[str]:
    """One ``::error`` annotation per failed or errored test case in a JUnit XML report.

    The location is the last ``file.py:line:`` of the failure's traceback (pytest prints where the test failed
    there), else the test case's ``file``/``line`` attributes, else the file its ``classname`` names. A missing or
    malformed file gives no annotations.
    """
    import xml.etree.ElementTree as ET

    try:
        root = ET.parse(xml_path).getroot()
    except (OSError, ET.ParseError):
        return []
    out: list[str] = []
    for case in root.iter("testcase"):
        problem = next((child for child in case if child.tag in ("failure", "error")), None)
        if problem is None:
            continue
        classname = case.get("classname", "")
        name = case.get("name", "")
        test = f"{classname}.{name}" if classname else name
        lines = (problem.text or "").strip().splitlines()
        message = problem.get("message") or (lines[-1] if lines else problem.tag)
        file: str | None = case.get("file")
        line: int | None = int(case.get("line", "0")) + 1 if case.get("line", "").isdigit() else None
        matches = list(_LOCATION_RE.finditer(problem.text or ""))
        if matches:
            file, line = matches[-1].group("file"), int(matches[-1].group("line"))
        elif file is None and classname:
            file = _file_of(classname)
        what = "failed" if problem.tag == "failure" else "errored"
        out.append(github_error(message, file=relative_path(file) if file else None, line=line, title=f"{test} {what}"))
    return out


def markdown_table(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    """A GitHub-flavoured Markdown table (``|`` in cells escaped)."""

    def cell(value: Any) -> str:
        return str(value).replace("|", "\\|").replace("\n", " ")

    lines = ["| " + " | ".join(cell(h) for h in headers) + " |", "|" + "---|" * len(headers)]
    lines += ["| " + " | ".join(cell(v) for v in row) + " |" for row in rows]
    return "\n".join(lines) + "\n"


def write_step_summary(markdown: str, env: Mapping[str, str] | None = None) -> bool:
    """Append ``markdown`` to the file named by ``$GITHUB_STEP_SUMMARY``; False if there is none."""
    target = (os.environ if env is None else env).get("GITHUB_STEP_SUMMARY")
    if not target:
        return False
    with open(target, "a", encoding="utf-8") as fh:
        fh.write(markdown if markdown.endswith("\n") else markdown + "\n")
    return True
