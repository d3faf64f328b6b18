"""An interrupted test run leaves nothing behind: the cluster suite is started for real, stopped mid-run with
SIGTERM (as `timeout` or a cancelled CI job stops it), and then no process or network namespace of it remains.
A run killed outright (SIGKILL, no teardown at all) is cleaned up by the next run, which says what it removed.

Run on its own (`make test-cluster` does, after the cluster suite): the cluster suite's hosts share one bridge,
so two runs of it cannot overlap."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest

from labkit import leftovers

ROOT = Path(__file__).resolve().parents[2]
# the three-broker suite: three real KRaft brokers, each in a network namespace of its own
TARGET = "tests/cluster/test_three_brokers.py"

if os.geteuid() != 0 or not shutil.which("ip"):
    if os.environ.get("CI"):
        pytest.fail("this suite needs root and iproute2 (network namespaces); CI must provide them", pytrace=False)
    pytest.skip("network namespaces need root and iproute2", allow_module_level=True)


def _start_cluster_run() -> subprocess.Popen:
    env = {k: v for k, v in os.environ.items() if k != leftovers.MARK}
    return subprocess.Popen(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", TARGET],
        cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        start_new_session=True,
    )  # fmt: skip


def _cmdline(p: psutil.Process) -> str:
    """A process's command line, or "" once it has ended: the run starts short-lived helpers (a storage format, a
    JVM that reads Flink's config) that can end between the listing and the reading (a CI dry run failed so)."""
    try:
        return " ".join(p.cmdline())
    except psutil.Error:
        return ""


def _wait_for_brokers(run: subprocess.Popen, timeout: float = 240) -> list[int]:
    """The pids of the run's brokers, once all three are up (a java process each, inside a namespace)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert run.poll() is None, f"the cluster run ended before it was interrupted:\n{run.stdout.read()[-3000:]}"
        brokers = [p for p in leftovers.marked(run.pid) if "kafka.Kafka" in _cmdline(p)]
        if len(brokers) >= 3 and len([n for n in leftovers.namespaces() if n.startswith("lk-kafka")]) >= 3:
            return [p.pid for p in brokers]
        time.sleep(1)
    pytest.fail("the cluster run's three brokers did not start in time")


def test_a_sigterm_mid_run_leaves_nothing_behind():
    run = _start_cluster_run()
    try:
        brokers = _wait_for_brokers(run)
        run.send_signal(signal.SIGTERM)
        out, _ = run.communicate(timeout=120)
    finally:
        if run.poll() is None:
            os.killpg(run.pid, signal.SIGKILL)
    assert run.returncode != 0, out[-2000:]  # it was interrupted, not finished
    left = [p for p in brokers if leftovers._alive(p)]
    assert not left, f"brokers {left} outlived the interrupted run:\n{out[-2000:]}"
    assert leftovers.marked(run.pid) == [], out[-2000:]
    assert leftovers.namespaces() == [], f"namespaces left: {leftovers.namespaces()}\n{out[-2000:]}"


def test_what_a_killed_run_left_is_removed_by_the_next_and_said():
    run = _start_cluster_run()
    try:
        brokers = _wait_for_brokers(run)
    finally:
        os.killpg(run.pid, signal.SIGKILL)  # no teardown at all: the brokers and namespaces stay
        run.wait(30)
    assert all(leftovers._alive(p) for p in brokers)  # a SIGKILLed run leaves them: that is what is cleaned
    assert leftovers.namespaces()
    # the check at the end of `make test` sees them and fails
    check = subprocess.run([sys.executable, "-m", "labkit.leftovers"], capture_output=True, text=True, cwd=ROOT)
    assert check.returncode == 1 and all(str(b) in check.stdout for b in brokers), check.stdout
    # the next run removes them before it starts, and says so
    cleaned = leftovers.clean_stale()
    assert {int(line.split()[0]) for line in cleaned.processes} >= set(brokers), cleaned.processes
    assert any(n.startswith("lk-kafka") for n in cleaned.namespaces), cleaned
    assert not any(leftovers._alive(p) for p in brokers)
    assert leftovers.namespaces() == []
    check = subprocess.run([sys.executable, "-m", "labkit.leftovers"], capture_output=True, text=True, cwd=ROOT)
    assert check.returncode == 0, check.stdout
