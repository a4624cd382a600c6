#!/usr/bin/env python3
"""Join: orders with their (clean) users and the users' regions. The fan-in of the example."""

# /// script
# requires-python = ">=3.11"
# [tool.orchestrate]
# depends = ["clean_users", "clean_orders", "geo_lookup.sh"]
# stage = "load"
# ///

from __future__ import annotations

import json
import os
from pathlib import Path
import sys


WORK = Path(os.environ.get("ETL_WORKDIR") or Path(__file__).resolve().parent.parent / ".etl-work")


def main() -> int:
    users = {u["id"]: u for u in json.loads((WORK / "users_clean.json").read_text())}
    orders = json.loads((WORK / "orders_clean.json").read_text())
    regions = json.loads((WORK / "geo.json").read_text())
    joined = []
    for order in orders:
        user = users.get(order["user"])
        if user is None:
            print(f"order {order['order']}: unknown user {order['user']}, left out", file=sys.stderr)
            continue
        joined.append({**order, "name": user["name"], "country": user["country"], "region": regions[user["country"]]})
    (WORK / "joined.json").write_text(json.dumps(joined, indent=1))
    print(f"joined {len(joined)} orders")
    return 0


if __name__ == "__main__":
    sys.exit(main())
