"""The published JSON Schema of a run report (``report-1.json``) and the function that checks a report against it.

``validate_report`` uses ``jsonschema`` when it is installed (the ``test`` extra installs it); without it, only the
envelope is checked (the schema tag and the required top-level keys).
"""

from __future__ import annotations

import functools
import importlib.resources
import json
from typing import Any


__all__ = ["SCHEMA_FILE", "SCHEMA_ID", "ReportValidationError", "load_schema", "validate_report"]

#: the value of a report's ``"schema"`` key
SCHEMA_ID = "pytest-orchestrator/report/1"
#: the schema's file name inside this package
SCHEMA_FILE = "report-1.json"


class ReportValidationError(ValueError):
    """A report does not match the schema; the message says where (a JSON path) and what."""

    def __init__(self, message: str, path: str = "$") -> None:
        super().__init__(f"{path}: {message}")
        self.message = message
        self.path = path


@functools.cache
def _schema_text() -> str:
    return importlib.resources.files(__name__).joinpath(SCHEMA_FILE).read_text(encoding="utf-8")


def load_schema() -> dict[str, Any]:
    """The report schema as a dict (a fresh copy each call)."""
    schema: dict[str, Any] = json.loads(_schema_text())
    return schema


def validate_report(report: Any) -> None:
    """Raise :class:`ReportValidationError` unless ``report`` is a valid ``pytest-orchestrator/report/1`` report."""
    schema = load_schema()
    try:
        import jsonschema
    except ImportError:  # pragma: no cover - the test extra installs it
        _check_envelope(report, schema)
        return
    validator = jsonschema.Draft202012Validator(schema)
    errors = sorted(validator.iter_errors(report), key=lambda e: list(e.absolute_path))
    if errors:
        first = errors[0]
        path = "$" + "".join(f"[{p!r}]" if isinstance(p, int) else f".{p}" for p in first.absolute_path)
        more = f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""
        raise ReportValidationError(f"{first.message}{more}", path)


def _check_envelope(report: Any, schema: dict[str, Any]) -> None:
    if not isinstance(report, dict):
        raise ReportValidationError(f"a report is a JSON object, not {type(report).__name__}")
    if report.get("schema") != SCHEMA_ID:
        raise ReportValidationError(f"schema must be {SCHEMA_ID!r}, got {report.get('schema')!r}", "$.schema")
    missing = [key for key in schema["required"] if key not in report]
    if missing:
        raise ReportValidationError(f"missing keys: {', '.join(missing)}")
