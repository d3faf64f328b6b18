"""Faults on the real local stack, each ending with the accounting check: nothing lost, nothing double
counted, the DLQ complete (an outage longer than the source's idle timeout: nothing vanishes, see its test).
Long: marked slow (the README's test command runs them as their own step)."""

import threading
import time

import pytest

from labkit import faults, jobs
from labkit.produce import produce
from labkit.timing import IDLE_TIMEOUT_S
from labkit.verify import verify

pytestmark = [pytest.mark.stack, pytest.mark.slow]

N, RATE = 60_000, 3_000  # 20 s of sending: the fault lands mid-stream


def _produce(settings, topic, **kw):
    return produce(
        N,
        rate=RATE,
        sim_rate=500,
        topic=topic,
        seed=17,
        late_fraction=0.005,
        malformed_fraction=0.005,
        close_windows=True,
        settings=settings,
        **kw,
    )


def _assert_exact(summary, settings, why: str = ""):
    acc = verify(summary.ledger, settings=settings, wait_s=240)
    assert acc.exact, f"{why}\n{acc}\n{acc.mismatches}"
    assert summary.acknowledged == N
    return acc


def test_taskmanager_killed_mid_stream_job_restarts_from_checkpoint(settings, stack, pipeline):
    topic, job = pipeline
    restarts = job.restarts()
    t = faults.in_background(faults.kill_taskmanager, stack, job, delay_s=8)
    summary = _produce(settings, topic)
    drill = t.join(timeout=180)  # re-raises whatever the drill's thread raised
    assert not t.is_alive() and drill.confirmed_down and drill.pid_after != drill.pid_before
    _assert_exact(summary, settings)
    assert job.state == "RUNNING" and job.restarts() > restarts


def test_kafka_restarted_while_producing_no_acknowledged_event_lost(settings, stack, pipeline):
    topic, job = pipeline
    t = faults.in_background(faults.restart_kafka, stack, delay_s=6)
    summary = _produce(settings, topic)
    drill = t.join(timeout=180)
    assert not t.is_alive() and drill.confirmed_down and drill.pid_after != drill.pid_before
    # exact only while the outage is shorter than the source's idle timeout (labkit.timing): say which it was
    _assert_exact(summary, settings, f"the Kafka drill took {drill.downtime_s:.0f} s; idle timeout {IDLE_TIMEOUT_S} s")
    job.wait_running(timeout=120)


def test_kafka_down_longer_than_the_idle_timeout_no_event_vanishes(settings, stack, pipeline):
    """Longer than the idle timeout, a broker outage marks every partition idle, and the partitions read first
    after it may move the watermark past the others' backlog: those on-time events land behind their windows
    (labkit.timing says why the timeout is what it is). The lab's promise then is the accounting's: every
    acknowledged event is read once and counted, in its window or as late, none twice, none refused by InfluxDB,
    and the dead letters are complete."""
    topic, job = pipeline
    # held down 10 s past the timeout; stopping and starting the broker add more on top
    t = faults.in_background(faults.restart_kafka, stack, IDLE_TIMEOUT_S + 10.0, delay_s=6)
    summary = _produce(settings, topic)
    drill = t.join(timeout=IDLE_TIMEOUT_S + 240)
    assert not t.is_alive() and drill.confirmed_down
    assert summary.acknowledged == N  # the producer's retries outlasted the outage (delivery timeout 300 s)
    # verify() waits its whole wait_s unless the run is EXACT, which this one need not be: poll until the
    # on-time events verify calls lost are all in the late count and the counts stop moving (windows written)
    deadline, before = time.monotonic() + 240, None
    while True:
        acc = verify(summary.ledger, settings=settings, wait_s=0)
        now = (acc.counted, acc.late_counted)
        settled = acc.complete and acc.missed_are_late and now == before
        if acc.exact or settled or time.monotonic() > deadline:
            break
        before = now
        time.sleep(10)
    assert acc.complete and acc.duplicated == 0 and acc.refused == 0, f"{acc}"
    assert acc.dlq_expected == acc.dlq_found, f"{acc}"
    # what the windows missed is in the late count (read minus counted): read once, never gone
    assert acc.lost == acc.late_counted - acc.late_expected, f"{acc}\n{acc.mismatches}"
    assert acc.missed_are_late
    job.wait_running(timeout=120)


def test_influxdb_stopped_for_30s_sink_retries_no_window_lost(settings, stack, pipeline):
    topic, job = pipeline
    t = faults.in_background(faults.pause_influxdb, stack, 30.0, delay_s=5)
    summary = _produce(settings, topic)
    drill = t.join(timeout=180)
    assert not t.is_alive() and drill.confirmed_down  # writes could not succeed meanwhile
    _assert_exact(summary, settings)
    assert job.state == "RUNNING"


def test_stop_with_savepoint_and_resume(settings, stack, pipeline):
    topic, job = pipeline
    first = produce(20_000, topic=topic, seed=1, sim_rate=500, settings=settings)
    drill, resumed = faults.savepoint_and_resume(
        job, lambda savepoint: jobs.submit_pipeline(settings, topic=topic, savepoint=savepoint)
    )
    try:
        second = produce(20_000, topic=topic, seed=2, sim_rate=500, close_windows=True, settings=settings)
        ledger = first.ledger.merge(second.ledger)
        acc = verify(ledger, settings=settings, wait_s=180)
        assert acc.exact, f"{acc}\n{acc.mismatches}"
        assert "savepoint" in drill.detail
    finally:
        resumed.cancel()


def test_taskmanager_down_for_over_two_minutes_the_job_waits_and_resumes(settings, stack, pipeline):
    """Longer than any fixed retry budget: the job's exponential-delay restart strategy keeps waiting for
    slots (RESTARTING, never FAILED) and resumes from its checkpoint once a TaskManager is back."""
    topic, job = pipeline
    restarts = job.restarts()
    t = faults.in_background(faults.kill_taskmanager, stack, job, down_s=130, timeout=180, delay_s=8)
    summary = _produce(settings, topic)
    time.sleep(60)  # well into the outage: the job must still be waiting, not failed
    assert job.state in ("RESTARTING", "RUNNING", "INITIALIZING", "CREATED"), job.state
    drill = t.join(timeout=400)
    assert not t.is_alive() and drill.downtime_s >= 130
    assert drill.confirmed_down and drill.pid_after != drill.pid_before
    assert job.restarts() > restarts
    _assert_exact(summary, settings)


def test_cancel_and_resubmit_mid_stream_resumes_from_the_checkpoint(settings, stack, pipeline):
    """Submitting again after a cancel resumes from the latest retained checkpoint (state and offsets
    together): windows open at the cancel are completed, not overwritten with a partial count."""
    topic, job = pipeline
    holder = {}

    def cancel_and_resubmit():
        time.sleep(7)
        job.cancel()
        time.sleep(3)
        holder["job"] = jobs.submit_pipeline(settings, topic=topic)

    t = threading.Thread(target=cancel_and_resubmit)
    t.start()
    summary = _produce(settings, topic)
    t.join(timeout=180)
    new = holder["job"]
    try:
        assert new.id != job.id
        _assert_exact(summary, settings)
    finally:
        new.cancel()
