#!/usr/bin/env python3
"""Extract: the root of the ETL example. Starts a fresh run and writes the raw users and orders.

Every script exchanges data through a work folder: ``$ETL_WORKDIR``, or ``examples/etl/.etl-work`` by default.
This script clears the files the pipeline leaves there (the JSON outputs, the report and the flaky script's
attempt marker), so each run of the pipeline starts clean and ``clean_orders`` fails exactly once per run.
"""

# /// script
# requires-python = ">=3.11"
# [tool.orchestrate]
# stage = "extract"
# timeout = 10
# ///

from __future__ import annotations

import json
import os
from pathlib import Path
import sys


WORK = Path(os.environ.get("ETL_WORKDIR") or Path(__file__).resolve().parent.parent / ".etl-work")

USERS = [
    {"id": 1, "name": "  Ada Lovelace ", "email": "ADA@example.org", "country": "gb"},
    {"id": 2, "name": "Grace Hopper", "email": "grace@example.org", "country": "US"},
    {"id": 3, "name": "Alan Turing", "email": "alan(at)example.org", "country": "GB"},
    {"id": 4, "name": "Katherine Johnson", "email": "katherine@example.org", "country": "us"},
    {"id": 2, "name": "Grace Hopper", "email": "grace@example.org", "country": "US"},
    {"id": 5, "name": "Hedy Lamarr", "email": "hedy@example.org", "country": "AT"},
    {"id": 6, "name": "Tu Youyou", "email": "tu@example.org", "country": "CN"},
]

ORDERS = [
    {"order": 101, "user": 1, "amount": "12.50"},
    {"order": 102, "user": 2, "amount": "99.99"},
    {"order": 103, "user": 2, "amount": "-5"},
    {"order": 104, "user": 4, "amount": "20"},
    {"order": 105, "user": 5, "amount": "7.25"},
    {"order": 106, "user": 6, "amount": "n/a"},
    {"order": 107, "user": 9, "amount": "3.00"},
    {"order": 108, "user": 6, "amount": "41.00"},
]


def reset(work: Path) -> None:
    """Remove what an earlier run left (only the pipeline's own files)."""
    work.mkdir(parents=True, exist_ok=True)
    for entry in work.iterdir():
        if entry.is_file() and (entry.suffix in (".json", ".txt") or entry.name.startswith(".attempt-")):
            entry.unlink()


def main() -> int:
    reset(WORK)
    (WORK / "users_raw.json").write_text(json.dumps(USERS, indent=1))
    (WORK / "orders_raw.json").write_text(json.dumps(ORDERS, indent=1))
    print(f"extracted {len(USERS)} users and {len(ORDERS)} orders into {WORK}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
