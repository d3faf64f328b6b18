"""kafka-python keeps refreshing its metadata after a refresh fails the way a dying broker makes it fail.

kafka-python 3.0's metadata loop ended for good on a refresh that raised `ConnectionResetError` (a broker killed
mid-request): the client never learned a partition's new leader, and CI's producer waited out its 300 s flush
deadline with a broker of three killed (`tests/cluster/test_three_brokers.py`). `labkit.kafka_clients` runs the loop
again when it ends that way. Here a real client on the running broker has one refresh fail with exactly that error:
with labkit's loop it still finds a topic it had never seen; with kafka-python's own loop it does not (shown on the
same client code, so the test proves the fix is needed and works, and says so when kafka-python no longer needs it)."""

from __future__ import annotations

import time
import uuid

import pytest
from kafka import KafkaProducer
from kafka.cluster import ClusterMetadata
from kafka.errors import KafkaTimeoutError

from labkit import kafka_clients, kafka_info

pytestmark = pytest.mark.stack

HAS_LOOP = hasattr(ClusterMetadata, "_refresh_loop")  # kafka-python 3.0's loop; 2.x refreshes another way
ORIGINAL = getattr(getattr(ClusterMetadata, "_refresh_loop", None), "_labkit_original", None)


@pytest.mark.skipif(not HAS_LOOP, reason="kafka-python without the 3.0 metadata loop: nothing to keep going")
def test_labkit_keeps_kafka_pythons_metadata_loop_going():
    assert getattr(ClusterMetadata._refresh_loop, "_labkit_keeps_going", False), "kafka_clients' patch is not installed"
    assert ORIGINAL is not None


def _one_refresh_fails(monkeypatch, times: int = 1) -> dict:
    calls = {"n": 0}
    real = ClusterMetadata._do_refresh_metadata

    async def failing_once(self, node_id):
        calls["n"] += 1
        if calls["n"] <= times:
            raise ConnectionResetError(104, "Connection reset by peer")  # what a broker killed mid-request gives
        return await real(self, node_id)

    monkeypatch.setattr(ClusterMetadata, "_do_refresh_metadata", failing_once)
    return calls


def _new_topic_after_a_failed_refresh(settings, monkeypatch, times: int = 1) -> tuple[bool, dict]:
    known = kafka_info.fresh_topic(f"t_meta_{uuid.uuid4().hex[:8]}", settings)
    unseen = kafka_info.fresh_topic(f"t_meta_{uuid.uuid4().hex[:8]}", settings)
    p = KafkaProducer(**kafka_clients.python_config(settings), max_block_ms=8_000)
    try:
        p.send(known, b"x").get(timeout=30)
        calls = _one_refresh_fails(monkeypatch, times)
        p._metadata.request_update()
        deadline = time.monotonic() + 10
        while calls["n"] == 0 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert calls["n"] >= 1, "no refresh was attempted: the test did not test anything"
        try:
            p.send(unseen, b"y").get(timeout=30)  # needs a refresh that names the new topic
            return True, calls
        except KafkaTimeoutError:
            return False, calls
    finally:
        p.close(timeout=5)


@pytest.mark.skipif(not HAS_LOOP, reason="kafka-python without the 3.0 metadata loop: nothing to keep going")
def test_a_refresh_failing_with_a_reset_connection_does_not_end_metadata_refreshing(settings, monkeypatch):
    found, calls = _new_topic_after_a_failed_refresh(settings, monkeypatch)
    assert found, f"metadata stopped after one failed refresh ({calls['n']} attempt(s))"
    assert calls["n"] >= 2


@pytest.mark.skipif(not HAS_LOOP, reason="kafka-python without the 3.0 metadata loop: nothing to keep going")
def test_kafka_pythons_own_loop_still_needs_it(settings, monkeypatch):
    monkeypatch.setattr(ClusterMetadata, "_refresh_loop", ORIGINAL)
    found, calls = _new_topic_after_a_failed_refresh(settings, monkeypatch)
    if found:
        pytest.skip(
            "kafka-python's own loop survives a failed refresh now: drop kafka_clients._keep_metadata_refreshing"
        )
    assert calls["n"] == 1  # its loop ended at the first failure and never asked again


@pytest.mark.skipif(not HAS_LOOP, reason="kafka-python without the 3.0 metadata loop: nothing to keep going")
def test_refreshes_that_keep_failing_are_retried_at_the_backoff_not_in_a_tight_loop(settings, monkeypatch):
    started = time.monotonic()
    found, calls = _new_topic_after_a_failed_refresh(settings, monkeypatch, times=10)
    took = time.monotonic() - started
    assert found, f"metadata stopped after {calls['n']} failed refreshes"
    # ten failures at >= 100 ms each: at least a second, and 11 attempts, not thousands
    assert 11 <= calls["n"] <= 14 and took >= 1.0, (calls, took)
