#!/usr/bin/env python3
"""Runs one SQL statement on Trino's HTTP API and prints each result row as tab-separated
values. Usage: trino.py URL SQL. Used by tests/scale/run (the standard library only)."""
import json
import sys
import time
import urllib.request


def main() -> int:
    url, sql = sys.argv[1].rstrip("/"), sys.argv[2]
    headers = {"X-Trino-User": "sluice-scale", "Content-Type": "text/plain"}
    request = urllib.request.Request(f"{url}/v1/statement", data=sql.encode(), headers=headers, method="POST")
    answer = json.load(urllib.request.urlopen(request, timeout=60))
    rows = []
    while True:
        if "error" in answer:
            print(answer["error"].get("message", "query failed"), file=sys.stderr)
            return 1
        rows.extend(answer.get("data") or [])
        next_uri = answer.get("nextUri")
        if not next_uri:
            break
        time.sleep(0.05)
        answer = json.load(urllib.request.urlopen(urllib.request.Request(next_uri, headers=headers), timeout=60))
    for row in rows:
        print("\t".join("" if v is None else str(v) for v in row))
    return 0


if __name__ == "__main__":
    sys.exit(main())
