#!/usr/bin/env python3
"""Clean users: trim names, lower-case emails, upper-case countries, drop duplicates and invalid emails."""

# /// script
# requires-python = ">=3.11"
# [tool.orchestrate]
# depends = ["extract"]
# stage = "transform"
# ///

from __future__ import annotations

import json
import os
from pathlib import Path
import re
import sys


WORK = Path(os.environ.get("ETL_WORKDIR") or Path(__file__).resolve().parent.parent / ".etl-work")
EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[a-z]+$")


def main() -> int:
    raw = json.loads((WORK / "users_raw.json").read_text())
    users: dict[int, dict[str, object]] = {}
    rejected = 0
    for user in raw:
        email = str(user["email"]).strip().lower()
        if not EMAIL.match(email):
            rejected += 1
            print(f"rejected user {user['id']}: invalid email {email!r}", file=sys.stderr)
            continue
        users[int(user["id"])] = {
            "id": int(user["id"]),
            "name": " ".join(str(user["name"]).split()),
            "email": email,
            "country": str(user["country"]).strip().upper(),
        }
    (WORK / "users_clean.json").write_text(json.dumps(list(users.values()), indent=1))
    print(f"{len(users)} clean users ({len(raw) - len(users) - rejected} duplicates, {rejected} rejected)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
