"""What labkit tells its user while it works: one-line progress and status messages, each `[labkit] ...`,
flushed at once so they show in a terminal, a notebook and a CI log as they happen."""

from __future__ import annotations


def say(msg: str) -> None:
    print(f"[labkit] {msg}", flush=True)
