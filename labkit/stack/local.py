"""The local backend: Kafka, Flink and InfluxDB as plain processes on this machine."""

from __future__ import annotations

import contextlib
import shutil
import socket
import time

import psutil

from labkit import credentials
from labkit.console import say
from labkit.errors import ConfigError, LabkitError
from labkit.settings import Settings
from labkit.stack import provision
from labkit.stack.base import JobSide, ServiceStatus, Stack, StackStatus
from labkit.stack.flink import LocalJobManager, LocalTaskManager
from labkit.stack.influxdb import LocalInfluxDB
from labkit.stack.kafka import LocalKafka
from labkit.stack.local_service import LocalService
from labkit.tls import tls


def port_holder(host: str, port: int) -> str | None:
    """None if `port` can be bound on `host`, else a description of who holds it."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((host, port))
            return None
        except OSError:
            pass
    try:
        for c in psutil.net_connections("tcp"):
            if c.laddr and c.laddr.port == port and c.status == psutil.CONN_LISTEN and c.pid:
                p = psutil.Process(c.pid)
                return f"{p.name()} (pid {c.pid})"
    except psutil.Error:
        pass
    return "another program"


_WORKER_MARKS = ("pyflink-udf-runner.sh", "pyflink.fn_execution.beam.beam_boot")


def _is_worker(p: psutil.Process) -> bool:
    try:
        return any(m in " ".join(p.cmdline()) for m in _WORKER_MARKS)
    except psutil.Error:
        return False


def orphaned_python_workers() -> list[psutil.Process]:
    """PyFlink Python workers of this venv whose TaskManager is gone.

    A TaskManager starts each worker through a shell runner; killed with SIGKILL, it cannot stop them, and
    they live on (about 200 MB each), adopted by init. A worker chain whose top is no longer a child of a
    JVM or of a Python process (a local preview) is an orphan."""
    import sys

    prefix = sys.prefix
    out = []
    for p in psutil.process_iter(["pid", "cmdline"]):
        if not _is_worker(p) or not any(prefix in part for part in (p.info["cmdline"] or [])):
            continue
        top = p
        try:
            while (parent := top.parent()) is not None and _is_worker(parent):
                top = parent
            name = parent.name() if parent is not None else ""
        except psutil.Error:
            continue
        if not (name.startswith("java") or name.startswith("python")):
            out.append(p)
    return out


def reap_orphaned_python_workers() -> int:
    procs = orphaned_python_workers()
    for p in procs:
        with contextlib.suppress(psutil.Error):
            p.kill()
    psutil.wait_procs(procs, timeout=5)
    if procs:
        say(f"stopped {len(procs)} Python worker process(es) left behind by a crashed TaskManager")
    return len(procs)


class LocalStack(Stack):
    mode = "local"

    def __init__(self, settings: Settings) -> None:
        super().__init__(settings)
        self.creds = credentials.load_or_create(settings.home)
        self.services: list[LocalService] = [
            LocalKafka(settings, self.creds),
            LocalJobManager(settings, self.creds),
            LocalTaskManager(settings, self.creds),
            LocalInfluxDB(settings, self.creds),
        ]
        # TaskManagers added with `labkit taskmanager add` (still running, or crashed: `down` must see them)
        for pidfile in sorted((settings.home / "run").glob("taskmanager-*.pid")):
            index = pidfile.stem.removeprefix("taskmanager-")
            if index.isdigit():
                self.services.append(LocalTaskManager(settings, self.creds, int(index)))

    def service(self, name: str) -> LocalService:
        for s in self.services:
            if s.name == name:
                return s
        raise LabkitError(f"there is no service {name!r}.", f"use one of: {', '.join(s.name for s in self.services)}")

    # Fault drills (labkit.faults): the same four operations as the docker backend, on processes.
    def pid(self, service: str) -> int | None:
        return self.service(service).process.pid

    def take_down(self, service: str, how: str) -> None:
        """`kill`: SIGKILL, like a crash; `stop`: a clean shutdown."""
        proc = self.service(service).process
        proc.kill() if how == "kill" else proc.stop()

    def bring_back(self, service: str) -> None:
        self.up()  # starts what is not running and waits until every service is ready

    def host_ports(self, service: str) -> list[int]:
        return list(self.service(service).ports().values())

    def taskmanagers(self) -> list[str]:
        return [s.name for s in self.services if isinstance(s, LocalTaskManager) and s.process.state() == "running"]

    def add_taskmanager(self, timeout: float = 120) -> str:
        """Start one more TaskManager (its `flink_taskmanager_slots` more slots) and wait until the JobManager
        has registered it: the way out of a slot shortage, in local mode, as adding a machine would be."""
        import httpx

        flink = self.settings.flink
        before = httpx.get(f"{flink}/overview", timeout=5, verify=tls()).json().get("taskmanagers", 0)
        used = {s.index for s in self.services if isinstance(s, LocalTaskManager)}
        tm = LocalTaskManager(self.settings, self.creds, next(i for i in range(2, 100) if i not in used))
        tm.prepare()
        cmd, env = tm.command()
        tm.process.start(cmd, env=env)
        self.services.append(tm)
        deadline = time.monotonic() + timeout
        while (now := httpx.get(f"{flink}/overview", timeout=5, verify=tls()).json()).get("taskmanagers", 0) <= before:
            if tm.process.pid is None:
                raise LabkitError(f"{tm.name} exited while starting.", f"see `labkit logs {tm.name}`")
            if time.monotonic() > deadline:
                raise LabkitError(f"{tm.name} did not register within {timeout:.0f}s.", f"see `labkit logs {tm.name}`")
            time.sleep(0.5)
        say(
            f"started {tm.name} (pid {tm.process.pid}): {now.get('slots-total')} slots, {now.get('slots-available')} free"
        )
        return tm.name

    def remove_taskmanager(self, name: str | None = None) -> str:
        """Stop an added TaskManager (the newest if `name` is None); the stack's first one stays. Its running
        tasks fail over like a lost machine's: the jobs restart from their last checkpoint."""
        added = [s for s in self.services if isinstance(s, LocalTaskManager) and s.index > 1]
        chosen = [s for s in added if name in (None, s.name)]
        if not chosen:
            raise LabkitError(
                f"no added TaskManager {name or ''} to remove".replace("  ", " ") + ".",
                f"added: {', '.join(s.name for s in added) or 'none'}; `labkit taskmanager add` adds one",
            )
        tm = chosen[-1]
        tm.process.stop()
        self.services.remove(tm)
        say(f"stopped {tm.name}")
        return tm.name

    def influx_token(self, role: str = "admin") -> str:
        token = {
            "admin": self.creds.influx_admin_token,
            "write": self.creds.influx_write_token,
            "read": self.creds.influx_read_token,
        }[role]
        if token is None:
            raise LabkitError("InfluxDB has not been onboarded yet.", "run `labkit up` first")
        return token

    def secrets(self) -> list[str]:
        """The base's tokens, and the InfluxDB admin's password."""
        extra = [self.creds.influx_password] if self.creds.influx_password else []
        return sorted({*super().secrets(), *extra})

    def job_side(self) -> JobSide:
        """Local jobs read the write-only token from a 0600 file (kept out of the job graph and its logs)."""
        from labkit.credentials import write_secret

        side = super().job_side()
        if side.token_file:
            return side
        path = self.settings.home / "jobs" / "influx-write.token"
        # 0600 from creation and never through a symlink planted at the path (see write_secret)
        write_secret(path, self.influx_token("write"))
        return JobSide(side.kafka, side.influx_url, str(path))

    def check_ports(self, services: list[LocalService]) -> None:
        for svc in services:
            for setting, port in svc.ports().items():
                holder = port_holder(self.settings.bind_host, port)
                if holder:
                    raise ConfigError(
                        f"port {port} for {svc.name} ({setting}) is already in use by {holder}.",
                        f"stop that program, or choose another port: export {setting}=<free port>",
                    )

    def up(self, *, timeout: float = 120) -> StackStatus:
        if not provision.is_provisioned():
            provision.provision_all()
        t0 = time.monotonic()  # the readiness budget starts after provisioning
        reap_orphaned_python_workers()
        to_start = [s for s in self.services if s.process.state() != "running"]
        self.check_ports(to_start)
        for svc in to_start:
            svc.prepare()
            cmd, env = svc.command()
            svc.process.start(cmd, env=env)
            say(f"started {svc.name} (pid {svc.process.pid})")
        for svc in self.services:
            remaining = max(5.0, timeout - (time.monotonic() - t0))
            svc.readiness().wait_until_ready(remaining, service=svc.name, alive=lambda p=svc.process: p.pid is not None)
            svc.after_ready()
        if to_start:
            say(f"stack ready in {time.monotonic() - t0:.1f}s")
        return self.status()

    def down(self, *, wipe: bool = False) -> StackStatus:
        for svc in reversed(self.services):
            if svc.process.state() != "stopped":
                say(f"stopping {svc.name}")
            svc.process.stop()
        reap_orphaned_python_workers()
        if wipe:
            from labkit import restore_points as resume

            resume.forget_cluster(self.settings)  # only this cluster's: a docker stack keeps its volumes
            # the jobs' write token goes with the InfluxDB that issued it (a wiped lab keeps no secret behind)
            for name in ("kafka", "influxdb", "flink", "logs", "run", "secrets.json", "jobs/influx-write.token"):
                p = self.settings.home / name
                if p.is_dir():
                    shutil.rmtree(p)
                else:
                    p.unlink(missing_ok=True)
            say(f"wiped data in {self.settings.home}")
        return self.status()

    def status(self) -> StackStatus:
        out = StackStatus(self.mode)
        for svc in self.services:
            state = svc.process.state()
            detail = ""
            if state == "running":
                check = svc.readiness().safe_check()
                detail = "ready" if check.ok else f"not ready: {check.detail}"
            elif state == "crashed":
                detail = f"exited unexpectedly; see `labkit logs {svc.name}`"
            out.services.append(ServiceStatus(svc.name, state, svc.address, svc.process.pid, detail))
        return out

    def logs(self, service: str, lines: int = 50) -> str:
        return self.service(service).process.tail(lines)
