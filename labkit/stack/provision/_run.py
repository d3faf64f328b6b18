"""Run long external commands with a log file and heartbeat progress lines."""

from __future__ import annotations

import os
import subprocess
import threading
import time
from collections.abc import Mapping, Sequence
from pathlib import Path

from labkit.console import say
from labkit.errors import LabkitError


def run_logged(
    cmd: Sequence[str | os.PathLike[str]],
    *,
    what: str,
    log: Path,
    cwd: Path | None = None,
    env: Mapping[str, str] | None = None,
    heartbeat_s: float = 30.0,
) -> None:
    """Run `cmd`, append its output to `log`, print a line every `heartbeat_s` so users see progress.

    On failure the error names the step and shows the log's tail instead of a traceback.
    """
    log.parent.mkdir(parents=True, exist_ok=True)
    start = time.monotonic()
    say(f"{what} (log: {log})")
    with log.open("ab") as out:
        out.write(f"\n$ {' '.join(map(str, cmd))}\n".encode())
        out.flush()
        proc = subprocess.Popen(
            [str(c) for c in cmd],
            cwd=cwd,
            env={**os.environ, **(env or {})},
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
        )
        done = threading.Event()

        def beat() -> None:
            while not done.wait(heartbeat_s):
                say(f"  ... {what}: {time.monotonic() - start:.0f}s")

        threading.Thread(target=beat, daemon=True).start()
        try:
            rc = proc.wait()
        finally:
            done.set()
    if rc != 0:
        tail = "\n".join(log.read_text(errors="replace").splitlines()[-25:])
        raise LabkitError(
            f"{what} failed (exit {rc}). Last lines of {log}:\n{tail}",
            "fix the cause shown above, then run `labkit provision` again (finished steps are kept)",
        )
    say(f"  done: {what} in {time.monotonic() - start:.0f}s")
