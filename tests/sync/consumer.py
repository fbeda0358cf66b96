"""A change-stream consumer process for the kill-and-resume test.

``python -m tests.sync.consumer URL NAMESPACE OUT [WAIT_MS]``: resumes from the cursor of
the last complete line of OUT (or 0), reads ``/v1/changes`` as NDJSON and appends one
line per change event — the event and its cursor together, in one ``write`` followed
by ``fsync`` — so the cursor it resumes from is always that of the last change it
recorded. The test kills it with SIGKILL at arbitrary moments.
"""

from __future__ import annotations

import json
import os
import sys

import httpx


def last_cursor(path: str) -> str:
    if not os.path.exists(path):
        return "0"
    with open(path, "rb") as handle:
        lines = handle.read().split(b"\n")
    complete = [line for line in lines[:-1] if line]  # a torn last line has no newline
    return json.loads(complete[-1])["cursor"] if complete else "0"


def main(url: str, namespace: str, out: str, wait_ms: str = "60000") -> None:
    cursor = last_cursor(out)
    fd = os.open(out, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    params = {"since": cursor, "wait_ms": wait_ms, "heartbeat_ms": "200"}
    with httpx.stream("GET", url + "/v1/changes", params=params, timeout=120,
                      headers={"x-namespace": namespace}) as response:
        response.raise_for_status()
        for line in response.iter_lines():
            event = json.loads(line)
            if event["type"] == "change":
                os.write(fd, (json.dumps(event) + "\n").encode())
                os.fsync(fd)
            elif event["type"] in ("end", "error"):
                print(line, flush=True)
                break
    os.close(fd)


if __name__ == "__main__":
    main(*sys.argv[1:])
