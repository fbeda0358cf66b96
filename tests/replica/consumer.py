"""A change-stream consumer process for tests: ``python -m tests.replica.consumer URL
TABLE OUT_FILE``. It resumes from the cursor of the last complete line of OUT_FILE
(a partial last line, from a kill in the middle of writing it, is cut off), then
appends one JSON line per change, flushed before the next change is taken."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import edgelite


def last_cursor(path: Path) -> str | int:
    if not path.exists():
        return 0
    data = path.read_bytes()
    complete = data[:data.rfind(b"\n") + 1]
    if len(complete) != len(data):
        with open(path, "r+b") as out:  # drop the line the kill interrupted
            out.truncate(len(complete))
    lines = complete.decode().splitlines()
    return json.loads(lines[-1])["cursor"] if lines else 0


def main() -> None:
    url, table, out_name = sys.argv[1:4]
    out_path = Path(out_name)
    since = last_cursor(out_path)
    with edgelite.changes(url, since=since, tables=[table]) as stream, \
            open(out_path, "ab") as out:
        for change in stream:
            line = json.dumps({"cursor": change.cursor, "index": change.index,
                               "op": change.op, "pk": change.pk, "new": change.new})
            out.write(line.encode() + b"\n")
            out.flush()
            os.fsync(out.fileno())


if __name__ == "__main__":
    main()
