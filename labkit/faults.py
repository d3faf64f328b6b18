"""Fault drills on the local or docker stack, for the failure notebook and the fault tests. Each returns what
it did and how long things took, so the accounting afterwards can show nothing was lost or double counted.
Locally a service is a process; in docker mode, a container (`docker compose kill/stop/start`)."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from labkit.console import say
from labkit.errors import LabkitError
from labkit.jobs.control import Job
from labkit.stack.base import Stack


@dataclass
class Drill:
    fault: str
    downtime_s: float
    detail: str = ""
    pid_before: int | None = None
    pid_after: int | None = None
    confirmed_down: bool = False  # the service was seen down (not ready) while the fault lasted

    def __str__(self) -> str:
        return f"{self.fault}: {self.detail} ({self.downtime_s:.1f}s)"


def _drillable(stack: Stack):
    from labkit.stack.base import Operable

    if not isinstance(stack, Operable):
        raise LabkitError(
            f"fault drills take services down on a stack labkit runs, not in {stack.mode} mode.",
            "use LABKIT_MODE=local or docker: an external cluster's services belong to its operators",
        )
    return stack


def cannot_drill(stack: Stack, service: str = "influxdb") -> str | None:
    """Why this process cannot take `service` down (None: it can). An external cluster is not labkit's to break;
    in docker mode the kernel may have no Docker engine to talk to (JupyterLab in the compose `jupyter` profile
    runs in a container without the Docker CLI), and then the attendee injects the fault from a terminal."""
    try:
        _drillable(stack)
        if stack.pid(service) is None:
            return f"{service} is not running"
    except LabkitError as e:
        return e.message
    return None


def _outage(
    stack: Stack, service: str, how: str, down_s: float, what: str, detail: str, mark: Callable | None = None
) -> Drill:
    """Take `service` down (`how`: "kill" = SIGKILL like a crash, "stop" = clean), wait, bring it back.
    `mark(text)` is called at each moment worth drawing on a timeline (e.g. LagRecorder.mark). The stack does
    the work (a process locally, a container in docker mode): pid, take_down, bring_back, host_ports."""
    stack = _drillable(stack)
    mark = mark or (lambda _text: None)
    t0 = time.monotonic()
    before = stack.pid(service)
    stack.take_down(service, how)
    mark(f"{service} {'killed' if how == 'kill' else 'stopped'}")
    say(f"{service}: {how} for {down_s:.0f}s")
    # a drill must prove its fault happened: the process is gone and its ports refuse connections. (Not the
    # readiness check: the JobManager keeps listing a killed TaskManager's slots until its heartbeat times out.)
    confirmed = stack.pid(service) is None and not any(
        _accepts(stack.settings.bind_host, port) for port in stack.host_ports(service)
    )
    time.sleep(down_s)
    stack.bring_back(service)
    mark(f"{service} back")
    return Drill(what, time.monotonic() - t0, detail, before, stack.pid(service), confirmed)


def _accepts(host: str, port: int) -> bool:
    import socket

    with socket.socket() as s:
        s.settimeout(1)
        return s.connect_ex((host, port)) == 0


def kill_taskmanager(
    stack: Stack, job: Job | None = None, down_s: float = 3.0, timeout: float = 120, mark: Callable | None = None
) -> Drill:
    """SIGKILL the TaskManager (a crash, no clean shutdown), start a new one; the job restarts from its
    last checkpoint once the new TaskManager offers slots."""
    drill = _outage(
        stack,
        "taskmanager",
        "kill",
        down_s,
        "TaskManager killed",
        "restarted; job recovered from its last checkpoint",
        mark,
    )
    if job is not None:
        job.wait_running(timeout=timeout)
        if mark:
            mark("job running again")
    return drill


def restart_kafka(stack: Stack, down_s: float = 2.0) -> Drill:
    """Stop the broker (clean shutdown), wait, start it again."""
    return _outage(stack, "kafka", "stop", down_s, "Kafka broker restarted", "producer retried; source reconnected")


def pause_influxdb(stack: Stack, down_s: float = 30.0, mark: Callable | None = None) -> Drill:
    """Stop InfluxDB for `down_s` seconds; the job's sink blocks and retries meanwhile."""
    return _outage(stack, "influxdb", "stop", down_s, "InfluxDB stopped", "sink retried until it was back", mark)


def savepoint_and_resume(job: Job, resubmit) -> tuple[Drill, Job]:
    """Stop `job` with a savepoint and start it again from there with `resubmit(savepoint=...)`."""
    t0 = time.monotonic()
    location = job.stop()
    say(f"savepoint: {location}")
    new = resubmit(savepoint=location)
    return Drill("stop with savepoint, resume", time.monotonic() - t0, location), new


class Background(threading.Thread):
    """A drill on a thread; `join()` returns its result and re-raises what it raised, so a failed drill
    cannot pass unnoticed."""

    def __init__(self, fn, args, kwargs, delay_s: float) -> None:
        super().__init__(daemon=True)
        self.fn, self.args_, self.kwargs_, self.delay_s = fn, args, kwargs, delay_s
        self.result, self.error = None, None

    def run(self) -> None:
        time.sleep(self.delay_s)
        try:
            self.result = self.fn(*self.args_, **self.kwargs_)
        except BaseException as e:  # handed to join()
            self.error = e

    def join(self, timeout: float | None = None):
        super().join(timeout)
        if self.error is not None:
            raise self.error
        return self.result


def in_background(fn, *args, delay_s: float = 0.0, **kwargs) -> Background:
    """Run a drill after `delay_s` seconds on a thread, e.g. while the producer is sending."""
    t = Background(fn, args, kwargs, delay_s)
    t.start()
    return t
