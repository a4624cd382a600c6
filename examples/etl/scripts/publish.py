#!/usr/bin/env python3
"""Publish: copy the report to ``$ETL_PUBLISH_DIR``. Without that variable there is nowhere to publish to, so the
script skips itself: exit status 77 with the reason as its last stderr line (its dependents are skipped too)."""

# /// script
# requires-python = ">=3.11"
# [tool.orchestrate]
# depends = ["report"]
# stage = "publish"
# ///

from __future__ import annotations

import os
from pathlib import Path
import shutil
import sys


WORK = Path(os.environ.get("ETL_WORKDIR") or Path(__file__).resolve().parent.parent / ".etl-work")
SKIP = 77


def main() -> int:
    target = os.environ.get("ETL_PUBLISH_DIR")
    if not target:
        print("ETL_PUBLISH_DIR is not set: nothing to publish to", file=sys.stderr)
        return SKIP
    Path(target).mkdir(parents=True, exist_ok=True)
    shutil.copy(WORK / "report.json", Path(target) / "report.json")
    print(f"published report.json to {target}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
