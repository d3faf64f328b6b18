"""Faults on the real local stack, each ending with the accounting check: nothing lost, nothing double
counted, the DLQ complete. Long: marked slow (the README's test command runs them as their own step)."""

import pytest

from labkit import faults, jobs
from labkit.produce import produce
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


def _assert_exact(summary, settings):
    acc = verify(summary.ledger, settings=settings, wait_s=240)
    assert acc.exact, f"{acc}\n{acc.mismatches}"
    assert summary.acknowledged == N
    return acc


def test_taskmanager_killed_mid_stream_job_restarts_from_checkpoint(settings, stack, pipeline):
    topic, job = pipeline
    t = faults.in_background(faults.kill_taskmanager, stack, job, delay_s=8)
    summary = _produce(settings, topic)
    t.join(timeout=180)
    _assert_exact(summary, settings)
    assert job.state == "RUNNING"
    assert job.info().get("status-counts", {}) is not None


def test_kafka_restarted_while_producing_no_acknowledged_event_lost(settings, stack, pipeline):
    topic, job = pipeline
    t = faults.in_background(faults.restart_kafka, stack, delay_s=6)
    summary = _produce(settings, topic)
    t.join(timeout=180)
    _assert_exact(summary, settings)
    job.wait_running(timeout=120)


def test_influxdb_stopped_for_30s_sink_retries_no_window_lost(settings, stack, pipeline):
    topic, job = pipeline
    t = faults.in_background(faults.pause_influxdb, stack, 30.0, delay_s=5)
    summary = _produce(settings, topic)
    t.join(timeout=180)
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
