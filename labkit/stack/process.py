"""Processes the local stack starts: pid files with start times, so `down` stops exactly what `up` started."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import time
from collections.abc import Mapping, Sequence
from pathlib import Path

import psutil


class ManagedProcess:
    def __init__(self, name: str, home: Path) -> None:
        self.name = name
        self.pidfile = home / "run" / f"{name}.pid"
        self.logfile = home / "logs" / f"{name}.log"

    def _record(self) -> dict | None:
        try:
            return json.loads(self.pidfile.read_text())
        except (FileNotFoundError, ValueError):
            return None

    def process(self) -> psutil.Process | None:
        """Our process if it is alive; a reused pid with another start time is not ours."""
        rec = self._record()
        if not rec:
            return None
        try:
            p = psutil.Process(rec["pid"])
            if abs(p.create_time() - rec["started"]) > 1 or p.status() == psutil.STATUS_ZOMBIE:
                return None
            return p
        except psutil.Error:
            return None

    @property
    def pid(self) -> int | None:
        p = self.process()
        return p.pid if p else None

    def state(self) -> str:
        if self.process():
            return "running"
        return "crashed" if self._record() else "stopped"

    def start(
        self,
        cmd: Sequence[str],
        *,
        env: Mapping[str, str] | None = None,
        cwd: Path | None = None,
        user: str | None = None,
        test_owned: bool = False,
    ) -> int:
        """Start `cmd` in a process group of its own; as the Unix `user` (and that user's group only) if given,
        which needs root: a workshop attendee's own Flink runs so (labkit.workshop_flink).

        The lab's stack is never a test run's leftover, whoever started it, so the test run's mark
        (labkit.leftovers) is dropped, unless `test_owned`: what a test's workshop starts is that test's."""
        self.pidfile.parent.mkdir(parents=True, exist_ok=True)
        self.logfile.parent.mkdir(parents=True, exist_ok=True)
        rotate(self.logfile)
        with self.logfile.open("ab") as log:
            log.write(f"\n=== labkit started {self.name} at {time.strftime('%Y-%m-%d %H:%M:%S')} ===\n".encode())
            log.flush()
            proc = subprocess.Popen(
                list(cmd),
                env=_environment(env, user, test_owned),
                cwd=cwd,
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,  # own process group: stop it whole, and Ctrl-C in a shell leaves it be
                **_as_user(user),
            )
        self.pidfile.write_text(json.dumps({"pid": proc.pid, "started": psutil.Process(proc.pid).create_time()}))
        return proc.pid

    def stop(self, timeout: float = 30) -> None:
        p = self.process()
        if p is not None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(p.pid, signal.SIGTERM)
            _, alive = psutil.wait_procs([p], timeout=timeout)
            if alive:
                os.killpg(p.pid, signal.SIGKILL)
                psutil.wait_procs(alive, timeout=5)
        self.pidfile.unlink(missing_ok=True)

    def kill(self) -> None:
        """SIGKILL without cleaning up, as a crash would (fault drills)."""
        p = self.process()
        if p is not None:
            os.killpg(p.pid, signal.SIGKILL)
            psutil.wait_procs([p], timeout=10)

    def tail(self, lines: int = 50) -> str:
        if not self.logfile.exists():
            return f"(no log yet at {self.logfile})"
        with self.logfile.open("rb") as f:
            f.seek(0, os.SEEK_END)
            f.seek(max(0, f.tell() - 256 * 1024))
            return "\n".join(f.read().decode(errors="replace").splitlines()[-lines:])


#: what a process started as another user inherits from ours: nothing that could hold a secret (an admin token or
#: a password exported in the instructor's shell would be readable in /proc/<pid>/environ by that user)
PASSED_TO_OTHER_USERS = ("PATH", "LANG", "LC_ALL", "TZ", "JAVA_HOME")


def _environment(extra: Mapping[str, str] | None, user: str | None, test_owned: bool) -> dict[str, str]:
    base = os.environ if user is None else {k: v for k, v in os.environ.items() if k in PASSED_TO_OTHER_USERS}
    env = {**base, **(extra or {})}
    if test_owned and "LABKIT_TEST_OWNER" in os.environ:
        env["LABKIT_TEST_OWNER"] = os.environ["LABKIT_TEST_OWNER"]
    elif not test_owned:
        env.pop("LABKIT_TEST_OWNER", None)  # the lab's stack is never a test run's leftover (labkit.leftovers)
    return env


def _as_user(user: str | None) -> dict:
    if user is None:
        return {}
    import pwd

    entry = pwd.getpwnam(user)
    return {"user": entry.pw_uid, "group": entry.pw_gid, "extra_groups": []}


LOG_MAX_BYTES = 50 * 1024 * 1024


def rotate(logfile: Path, max_bytes: int = LOG_MAX_BYTES) -> bool:
    """Move a log past `max_bytes` to `<name>.1` (replacing the previous one) before a service starts writing
    to it again. A service's console log is appended to across restarts (so a crash's last lines survive the
    restart), which grew it without bound on a machine that keeps its lab for weeks; two files of at most
    ~`max_bytes` each is the bound. Returns whether it rotated."""
    try:
        if logfile.stat().st_size <= max_bytes:
            return False
    except FileNotFoundError:
        return False
    logfile.replace(logfile.with_name(logfile.name + ".1"))
    return True
