#!/usr/bin/env python3
"""Report: revenue per region, as report.json and a small text table (also printed)."""

# /// script
# requires-python = ">=3.11"
# [tool.orchestrate]
# depends = ["join"]
# stage = "report"
# ///

from __future__ import annotations

from collections import defaultdict
import json
import os
from pathlib import Path
import sys


WORK = Path(os.environ.get("ETL_WORKDIR") or Path(__file__).resolve().parent.parent / ".etl-work")


def main() -> int:
    currency = os.environ.get("REPORT_CURRENCY", "USD")
    joined = json.loads((WORK / "joined.json").read_text())
    revenue: dict[str, float] = defaultdict(float)
    for row in joined:
        revenue[row["region"]] += row["amount"]
    by_region = {region: round(amount, 2) for region, amount in sorted(revenue.items())}
    summary = {"currency": currency, "orders": len(joined), "revenue": by_region}
    (WORK / "report.json").write_text(json.dumps(summary, indent=1))
    lines = [f"revenue by region ({currency}, {len(joined)} orders)"]
    lines += [f"  {region:<6} {amount:>9.2f}" for region, amount in by_region.items()]
    (WORK / "report.txt").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
