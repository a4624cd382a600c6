#!/usr/bin/env python3
"""Clean orders: parse amounts, drop invalid or negative ones.

This is the example's *flaky* script: the first attempt of each pipeline run fails with a "transient" error and
the retry passes. It remembers the attempt with a marker file (``.attempt-clean_orders``) in the work folder;
``extract`` removes the marker when a run starts, so every run shows exactly one failed attempt.
"""

# /// script
# requires-python = ">=3.11"
# [tool.orchestrate]
# depends = ["extract.py"]
# stage = "transform"
# retry = {max_attempts = 3, initial_delay = 0.1}
# ///

from __future__ import annotations

import json
import os
from pathlib import Path
import sys


WORK = Path(os.environ.get("ETL_WORKDIR") or Path(__file__).resolve().parent.parent / ".etl-work")
MARKER = WORK / ".attempt-clean_orders"


def main() -> int:
    if not MARKER.exists():
        MARKER.write_text("1\n")
        print("transient error: the order service did not answer (first attempt); try again", file=sys.stderr)
        return 1
    raw = json.loads((WORK / "orders_raw.json").read_text())
    orders = []
    for order in raw:
        try:
            amount = float(order["amount"])
        except ValueError:
            print(f"dropped order {order['order']}: amount {order['amount']!r} is not a number", file=sys.stderr)
            continue
        if amount <= 0:
            print(f"dropped order {order['order']}: amount {amount} is not positive", file=sys.stderr)
            continue
        orders.append({"order": order["order"], "user": order["user"], "amount": round(amount, 2)})
    (WORK / "orders_clean.json").write_text(json.dumps(orders, indent=1))
    print(f"{len(orders)} clean orders of {len(raw)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
