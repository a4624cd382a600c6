"""Checks on what the ETL scripts produced. Each test depends on the script whose output it reads, so under
``pytest --orchestrate`` it runs after that script (and is skipped, with the reason, if the script did not pass)."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest


WORK = Path(os.environ.get("ETL_WORKDIR") or Path(__file__).resolve().parent.parent / ".etl-work")


def load(name: str) -> object:
    return json.loads((WORK / name).read_text())


@pytest.mark.depends("clean_users")
def test_users_are_cleaned() -> None:
    users = load("users_clean.json")
    assert isinstance(users, list) and users
    assert all(user["email"] == user["email"].strip().lower() for user in users)


@pytest.mark.depends("join", name="joined")
def test_every_order_found_its_user() -> None:
    joined = load("joined.json")
    assert isinstance(joined, list) and joined
    assert all(row["region"] for row in joined)


@pytest.mark.depends("report", "joined")
def test_report_adds_up() -> None:
    report = load("report.json")
    joined = load("joined.json")
    assert isinstance(report, dict) and isinstance(joined, list)
    assert report["currency"] == "EUR"  # set for report.py in orchestrate.yaml
    assert report["orders"] == len(joined)
    assert round(sum(report["revenue"].values()), 2) == round(sum(row["amount"] for row in joined), 2)


@pytest.mark.depends("publish")
def test_published_report_is_readable() -> None:
    published = Path(os.environ["ETL_PUBLISH_DIR"]) / "report.json"
    assert json.loads(published.read_text())["orders"] > 0
