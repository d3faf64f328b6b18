"""One warm PyFlink client per Python process: previews and submissions without a JVM start each.

Every preview used to start a Python runner and its JVM (PyFlink's gateway, the planner, the Kafka connector),
and every submission `flink run`, a JVM of its own: ~10-15 s of CPU before the first line of a plan, for a run
whose own work takes a second or two. A notebook or a test module runs dozens, and on CI's 2 cores that start-up
was the largest single cost (docs/benchmarks.md, "Where CI's time goes"). A warm client keeps one runner
(`runner.py --serve`) and its JVM for the life of the process and hands it one spec at a time. Each spec gets a
fresh TableEnvironment (runner.table_env), so nothing carries over from one run to the next but loaded classes.

* **Bounded like the one-shot run:** a request that does not answer by its deadline kills the client (the next
  request starts a new one) and raises `subprocess.TimeoutExpired`, as `subprocess.run` did; a client that dies
  (a JVM crash, SIGKILL) answers with its return code and what it printed, as a finished process would.
* **One request at a time** per client (a lock): a second thread waits its turn.
* **Dies with its parent:** it reads requests from a pipe, so when this process ends (even by SIGKILL) it sees the
  end of its input once its current run ends, and exits, halting and reaping its JVM (PyFlink's gateway also exits
  when its own stdin closes). At a normal exit, `close` ends it and waits. A JVM that died under it (Py4J lost
  its connection) ends the runner too, so the next request starts a new one.
* **One per environment:** previews run in the caller's environment, submissions in `flink run`'s
  (control.client_env: the cluster's conf and lib); a process keeps at most `KEPT` clients, the oldest closed.

`LABKIT_WARM_CLIENT=0` turns it off: each run then starts its own process, as before.
"""

from __future__ import annotations

import atexit
import contextlib
import json
import os
import queue
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import psutil

from labkit.credentials import write_secret
from labkit.stack.flink import CLIENT_JAVA_OPTS

RUNNER = Path(__file__).with_name("runner.py")
KEPT = 2
_START_TIMEOUT_S = 120


def enabled() -> bool:
    return os.environ.get("LABKIT_WARM_CLIENT", "1") not in ("0", "false", "no", "off")


class _Client:
    """A `runner.py --serve` process and the thread reading its output."""

    def __init__(self, env: dict[str, str], log: Path) -> None:
        self.log = log
        write_secret(log, "")  # the runner's tracebacks may quote a DDL: 0600 like the specs
        with open(log, "a") as err:
            self.proc = subprocess.Popen(
                [sys.executable, str(RUNNER), "--serve", str(log)],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=err,
                text=True,
                bufsize=1,
                env=env,
                start_new_session=True,  # its JVM joins its process group: `kill` takes both
            )
        self.lines: queue.Queue[str | None] = queue.Queue()
        threading.Thread(target=self._read, name="labkit-warm-client", daemon=True).start()
        self.ready = False

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.put(line.rstrip("\n"))
        self.lines.put(None)

    def alive(self) -> bool:
        return self.proc.poll() is None

    def request(self, req: dict, timeout: float) -> subprocess.CompletedProcess:
        """Send one request and read its answer. Anything that stops the reading before the answer's last line (the
        deadline, a KeyboardInterrupt from a notebook's stop button, an error) kills the client: an answer left
        half-read would be taken for the next request's (as `subprocess.run` killed its child on any exception)."""
        try:
            return self._request(req, timeout)
        except BaseException:
            self.kill()
            raise

    def _request(self, req: dict, timeout: float) -> subprocess.CompletedProcess:
        cmd = [sys.executable, str(RUNNER), "--serve"]
        deadline = time.monotonic() + timeout + (0 if self.ready else _START_TIMEOUT_S)
        out: list[str] = []
        err = ""
        try:
            assert self.proc.stdin is not None
            self.proc.stdin.write(json.dumps(req) + "\n")
            self.proc.stdin.flush()
        except (OSError, ValueError):
            pass  # it died (or was closed): its output so far and its return code follow
        while True:
            try:
                line = self.lines.get(timeout=max(0.0, deadline - time.monotonic()))
            except queue.Empty:
                tail = self._log_tail()  # before kill() deletes the log
                raise subprocess.TimeoutExpired(cmd, timeout, output="\n".join(out), stderr=tail) from None
            if line is None:  # the client died mid-request
                rc = self.proc.wait()
                return subprocess.CompletedProcess(cmd, rc or 1, "\n".join(out), err + self._log_tail())
            if line == "LABKIT_READY":
                self.ready = True
                deadline = min(deadline, time.monotonic() + timeout)
            elif line.startswith("LABKIT_DONE "):
                return subprocess.CompletedProcess(cmd, int(line.split()[1]), "\n".join(out), err)
            elif line.startswith("LABKIT_ERROR "):
                err += json.loads(line.partition(" ")[2])
            else:
                out.append(line)

    def _log_tail(self, chars: int = 20_000) -> str:
        with contextlib.suppress(OSError):
            return self.log.read_text(errors="replace")[-chars:]
        return ""

    def kill(self) -> None:
        """SIGKILL its process group (the runner and its JVM) and wait until both are gone: a kill is delivered
        asynchronously, and whoever counts processes next (a test, `labkit.leftovers`) must not find the JVM."""
        try:
            group = [psutil.Process(self.proc.pid), *psutil.Process(self.proc.pid).children(recursive=True)]
        except psutil.Error:
            group = []
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.proc.pid, signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.proc.wait(timeout=10)
        deadline = time.monotonic() + 10
        for p in group:
            while time.monotonic() < deadline:
                try:
                    if p.status() == psutil.STATUS_ZOMBIE:
                        break  # dead; its new parent reaps it
                except psutil.NoSuchProcess:
                    break
                time.sleep(0.02)
        self.log.unlink(missing_ok=True)

    def close(self, wait_s: float = 10) -> None:
        """End it: close its input (it exits, and its JVM with it), then kill what is left after `wait_s`."""
        with contextlib.suppress(OSError):
            if self.proc.stdin:
                self.proc.stdin.close()
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.proc.wait(timeout=wait_s)
        self.kill()  # the group: a JVM still winding down goes too


_lock = threading.Lock()
_clients: dict[tuple, tuple[_Client, threading.Lock]] = {}


def run(
    spec_path: Path,
    *,
    timeout: float,
    log_dir: Path,
    env: dict[str, str] | None = None,
    remote: dict | None = None,
    savepoint: str | None = None,
    retry: bool = True,
) -> subprocess.CompletedProcess:
    """Run the spec at `spec_path` in this process's warm client for `env` (added to this process's environment):
    a preview (its rows as tagged lines) or, with `remote` ({"host", "port"}), a submission to that cluster,
    restored from `savepoint`. Returns what `subprocess.run` would have; raises `subprocess.TimeoutExpired` when no
    answer came within `timeout` seconds (plus the JVM's start, the first time)."""
    key = tuple(sorted((env or {}).items()))
    req = {
        "spec": str(spec_path),
        **({"remote": remote} if remote else {}),
        **({"savepoint": savepoint} if savepoint else {}),
    }
    evicted = None
    with _lock:
        entry = _clients.get(key)
        if entry is None or not entry[0].alive():
            if entry is not None:
                entry[0].kill()  # died (or was killed at a deadline): its group and log go
            if entry is None and len(_clients) >= KEPT:
                evicted = _clients.pop(next(iter(_clients)))
            log_dir.mkdir(parents=True, exist_ok=True)
            _prune_logs(log_dir)
            log = log_dir / f"warm-client-{os.getpid()}-{time.monotonic_ns()}.log"
            entry = (_Client(_client_env(env), log), entry[1] if entry else threading.Lock())
        _clients.pop(key, None)
        _clients[key] = entry  # newest last: the first is the one closed when a third is needed
    if evicted is not None:  # closed outside the global lock: a request running on it must not hold up every other
        with evicted[1]:
            evicted[0].close()
    client, lock = entry
    with lock:
        r = client.request(req, timeout)
        lost = "LABKIT_JVM_LOST" in r.stdout.splitlines() and "LABKIT_ROW" not in r.stdout
        if lost:
            client.kill()  # it is ending anyway (runner.serve): gone before the next request looks for a client
    if lost and remote is None and retry:
        # its JVM was gone before the run began (killed, out of memory): a preview is safe to run again in a new
        # client; a submission is not (it may have reached Flink), so its failure is said as it is
        return run(
            spec_path, timeout=timeout, log_dir=log_dir, env=env, remote=remote, savepoint=savepoint, retry=False
        )
    return r


def _client_env(env: dict[str, str] | None) -> dict[str, str]:
    """The runner's environment: this process's, `env` over it, and the client JVM's options (C1 only, a serial
    collector: `labkit.stack.flink.CLIENT_JAVA_OPTS`, as `flink run` gets them) unless JVM_ARGS says otherwise.
    A client compiles plans and runs small previews: C2's compiler threads cost more CPU than they win back on a
    laptop's cores shared with the whole stack (a process submitting one job: 17-25 -> 10 s of CPU; four previews:
    44 -> 30 s). PyFlink's gateway reads JVM_ARGS, not Flink's env.java.opts.client."""
    return {"JVM_ARGS": CLIENT_JAVA_OPTS, **os.environ, **(env or {})}


def _prune_logs(log_dir: Path) -> None:
    """Delete the logs of warm clients whose process is gone: a client deletes its own when it is closed or killed,
    but not when its parent was killed (a notebook kernel restarted), and a lab kept for weeks must not collect
    them (docs/architecture.md, "Bounded growth")."""
    for log in log_dir.glob("warm-client-*-*.log"):
        pid = log.name.split("-")[2]
        if pid.isdigit() and int(pid) != os.getpid():
            try:
                os.kill(int(pid), 0)
            except ProcessLookupError:
                log.unlink(missing_ok=True)
            except PermissionError:
                pass  # another user's live process


@atexit.register
def close_all() -> None:
    """End every warm client of this process (at exit, and for tests that count processes)."""
    with _lock:
        entries = list(_clients.values())
        _clients.clear()
    for client, lock in entries:
        with lock:
            client.close()
