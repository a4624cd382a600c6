"""Secrets masking: the values of ``*TOKEN*``, ``*SECRET*``, ``*PASSWORD*``, ``*_KEY`` variables (and of names given
in configuration) never appear in a report, JSON or HTML."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from pytest_orchestrator import Workflow
from pytest_orchestrator.reporting.recorder import ReportRecorder
from pytest_orchestrator.reporting.report import build_report
from pytest_orchestrator.reporting.report import report_from_workflow
from pytest_orchestrator.reporting.report import write_report
from pytest_orchestrator.reporting.secrets import MASK
from pytest_orchestrator.reporting.secrets import is_secret_name
from pytest_orchestrator.reporting.secrets import mask_secrets


ENV = {
    "GH_TOKEN": "ghp_abcdef123456",
    "MY_SECRET_VALUE": "hunter2-secret",
    "db_password": "pa55w0rd!",
    "AWS_ACCESS_KEY": "AKIAEXAMPLE",
    "DEPLOY_CONN": "postgres://u:pw@db",
    "KEYBOARD": "us-intl",
    "SHORT_TOKEN": "abc",
}


@pytest.mark.parametrize(
    ("name", "secret"),
    [
        ("GH_TOKEN", True),
        ("TOKENIZER_PATH", True),
        ("client_secret", True),
        ("DB_PASSWORD", True),
        ("AWS_SECRET_ACCESS_KEY", True),
        ("SSH_KEY", True),
        ("KEYBOARD", False),
        ("KEY_FILE", False),
        ("PATH", False),
    ],
)
def test_secret_names(name: str, secret: bool) -> None:
    assert is_secret_name(name) is secret


def test_mask_secrets_in_text_and_nested_objects() -> None:
    text = "token=ghp_abcdef123456 pw=pa55w0rd! kb=us-intl"
    assert mask_secrets(text, env=ENV) == f"token={MASK} pw={MASK} kb=us-intl"
    obj = {"a": ["x hunter2-secret y", ("AKIAEXAMPLE",)], "AKIAEXAMPLE": 3, "n": 1.5}
    assert mask_secrets(obj, env=ENV) == {"a": [f"x {MASK} y", (MASK,)], MASK: 3, "n": 1.5}


def test_extra_names_and_patterns_are_secret_too() -> None:
    assert "postgres://u:pw@db" in mask_secrets("conn postgres://u:pw@db", env=ENV)
    assert mask_secrets("conn postgres://u:pw@db", env=ENV, extra=["DEPLOY_CONN"]) == f"conn {MASK}"
    assert mask_secrets("conn postgres://u:pw@db", env=ENV, extra=["deploy_*"]) == f"conn {MASK}"


def test_very_short_values_are_left_alone() -> None:
    assert mask_secrets("abc", env=ENV) == "abc"


def test_no_secret_reaches_the_json_or_the_html(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for k, v in ENV.items():
        monkeypatch.setenv(k, v)
    leak = "ghp_abcdef123456 hunter2-secret pa55w0rd! AKIAEXAMPLE postgres://u:pw@db"
    wf = Workflow("leaky", fail_fast=False)
    wf.add_task("print", f"echo {leak!r}; exit 3", shell=True)
    wf.add_task("after", "true", dependencies=["print"])
    ReportRecorder.attach(wf)
    with pytest.raises(Exception, match="failed"):
        asyncio.run(wf.run())
    report = report_from_workflow(wf, extra_secrets=["DEPLOY_CONN"], metadata={"argv": leak})
    item = report["items"][0]
    assert MASK in item["error"]
    for path in (write_report(report, tmp_path / "r.json"), write_report(report, tmp_path / "r.html")):
        text = path.read_text()
        for value in ("ghp_abcdef123456", "hunter2-secret", "pa55w0rd!", "AKIAEXAMPLE", "postgres://u:pw@db"):
            assert value not in text, (path.name, value)


def test_the_page_masks_a_report_assembled_by_hand(monkeypatch: pytest.MonkeyPatch) -> None:
    from pytest_orchestrator.reporting.html import render_html

    report = build_report(kind="scripts", name="n", items=[{"id": "s", "status": "failed"}])
    report["items"][0]["error"] = "leaked ghp_abcdef123456"  # put back after build_report masked nothing
    monkeypatch.setenv("GH_TOKEN", "ghp_abcdef123456")
    assert "ghp_abcdef123456" not in render_html(report)
