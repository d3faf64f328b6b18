"""The local stack keeps to itself: every listening socket on the bind host (the TaskManager's gRPC servers
for Python workers included), no Python worker outlives a crashed TaskManager, `labkit down` leaves nothing.
The lab's own pipeline runs no Python in the TaskManagers; a job with a Python UDF (`python_udf_job`) does."""

import time

import psutil
import pytest

from labkit.produce import produce
from labkit.stack.local import orphaned_python_workers

pytestmark = [pytest.mark.stack, pytest.mark.serial]  # stops or kills the shared stack


def _stack_pids(stack) -> set[int]:
    pids = set()
    for svc in stack.services:
        if svc.process.pid:
            try:
                p = psutil.Process(svc.process.pid)
                pids |= {p.pid, *(c.pid for c in p.children(recursive=True))}
            except psutil.Error:
                pass
    return pids


def _workers(stack) -> list[psutil.Process]:
    tm = psutil.Process(stack.service("taskmanager").process.pid)
    return [c for c in tm.children(recursive=True) if "beam_boot" in " ".join(c.cmdline())]


def test_every_listening_socket_is_on_the_bind_host_while_a_job_runs(settings, stack, python_udf_job):
    topic, job = python_udf_job
    produce(3_000, topic=topic, sim_rate=300, close_windows=True, settings=settings, progress=False)
    deadline = time.monotonic() + 60
    while not _workers(stack) and time.monotonic() < deadline:  # Python workers start with the first rows
        time.sleep(1)
    assert _workers(stack), "no Python worker started: the check below would prove nothing"
    pids = _stack_pids(stack)
    listening = [
        (c.pid, c.laddr.ip, c.laddr.port)
        for c in psutil.net_connections("inet")
        if c.status == psutil.CONN_LISTEN and c.pid in pids
    ]
    assert len(listening) > 10  # Kafka, Flink RPC/REST, InfluxDB and a dozen gRPC servers for the workers
    allowed = {settings.bind_host, "::ffff:" + settings.bind_host}
    if settings.bind_host == "127.0.0.1":
        allowed.add("::1")
    assert [x for x in listening if x[1] not in allowed] == []


def test_a_crashed_taskmanagers_python_workers_are_reaped(settings, stack, python_udf_job):
    topic, job = python_udf_job
    produce(3_000, topic=topic, sim_rate=300, close_windows=True, settings=settings, progress=False)
    deadline = time.monotonic() + 60
    while not _workers(stack) and time.monotonic() < deadline:
        time.sleep(1)
    workers = _workers(stack)
    assert workers
    stack.service("taskmanager").process.kill()  # SIGKILL: the TaskManager cannot stop its workers
    time.sleep(2)
    survivors = [w for w in workers if w.is_running() and w.status() != psutil.STATUS_ZOMBIE]
    stack.up()  # brings the TaskManager back and reaps what the crashed one left behind
    job.wait_running(timeout=180)
    assert orphaned_python_workers() == []
    assert not any(w.is_running() and w.status() != psutil.STATUS_ZOMBIE for w in survivors)


def test_a_submission_starts_a_taskmanager_that_died_on_its_own(settings, stack, unique_topic, capsys):
    # What Flink 2.2 did once in CI: a cancel took the TaskManager down (a fatal error in Beam's cleanup), and the
    # next job waited for slots forever. Here the TaskManager dies the hard way, with no job running.
    from labkit import jobs

    old = stack.service("taskmanager").process.pid
    stack.service("taskmanager").process.kill()
    assert stack.service("taskmanager").process.state() == "crashed"
    job = jobs.submit_pipeline(settings, topic=unique_topic, from_earliest=True, parallelism=1, wait=False)
    try:
        # The JobManager learns of a SIGKILLed TaskManager only at its heartbeat timeout, so the job may first
        # be placed on the dead one's slots and restart; a TaskManager that fails fatally says goodbye at once.
        job.wait_running(timeout=180)
        assert stack.service("taskmanager").process.state() == "running"
        assert stack.service("taskmanager").process.pid != old
        assert "taskmanager stopped on its own" in capsys.readouterr().out
    finally:
        job.cancel()


def test_down_leaves_no_process_of_the_stack_behind(settings, stack):
    pids = _stack_pids(stack)
    assert pids
    try:
        stack.down()
        time.sleep(1)
        alive = [p for p in pids if psutil.pid_exists(p) and psutil.Process(p).status() != psutil.STATUS_ZOMBIE]
        assert alive == [], [" ".join(psutil.Process(p).cmdline())[:120] for p in alive]
        assert orphaned_python_workers() == []
    finally:
        stack.up()
