"""Helpers shared by the tests that write scripts and config files into ``tmp_path``."""

from __future__ import annotations

from pathlib import Path
import textwrap


def write(path: Path, body: str, *, executable: bool = False) -> Path:
    """Write ``body`` (dedented, leading blank lines dropped) to ``path``, creating its folder as needed."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(body).lstrip())
    if executable:
        path.chmod(0o755)
    return path


def py(directory: Path, name: str, body: str) -> Path:
    """A Python script ``<directory>/<name>.py``: ``body`` (dedented) after ``import json, os, sys, time``."""
    return write(directory / f"{name}.py", "import json, os, sys, time\n" + textwrap.dedent(body))
