"""The job's on-time filter (labkit.jobs.sql.on_time_view), on events another client wrote.

A plain kafka-python producer writes two partitions by hand, in an order chosen so that the two possible rules
disagree: partition 0 runs 30 s ahead of partition 1. An event 20 s behind its own partition is late, though
the watermark over both partitions (held back by partition 1) has not reached it; `CURRENT_WATERMARK` would
have let it through or not depending on how the reads of the two partitions interleaved. The job's rule reads
only the partition's own order, so every replay (this bounded preview included) decides the same way."""

from __future__ import annotations

import json
import time

import pytest

from labkit.jobs.custom import explore

pytestmark = pytest.mark.stack


def _event(user: str, event_ms: int) -> bytes:
    return json.dumps({
        "user_id": user, "session_id": "s", "event_timestamp": event_ms, "url": "/late/test",
        "http_method": "GET", "http_status": 200, "latency_ms": 12.5, "country": "DE", "device": "desktop",
        "user_agent": "kafka-python test",
    }).encode()  # fmt: skip


def test_late_is_decided_in_the_events_own_partition(settings, stack, unique_topic):
    from kafka import KafkaProducer

    t0 = int(time.time() * 1000) - 200_000  # event times in the past: Kafka timestamps are the send time
    plan = [(0, f"p0_{s:02d}", s) for s in range(31)] + [(1, f"p1_{s:02d}", s) for s in range(6)]
    plan += [
        (0, "p0_late_20s", 10),  # 20 s behind partition 0's newest (30 s): late
        (0, "p0_within_3s", 27),  # 3 s behind: within the 5 s delay, on time
        (1, "p1_within_2s", 3),  # partition 1's newest is 5 s: on time
        (1, "p1_at_watermark", 0),  # exactly at partition 1's watermark (5 s - 5 s): late
    ]
    # an end marker moves partition 1's newest time to 60 s (the job counts it nowhere), so 50 s is late there
    plan += [(1, "__marker__", 60), (1, "p1_after_marker", 50)]
    producer = KafkaProducer(bootstrap_servers=settings.kafka, acks="all")
    for partition, user, s in plan:
        if user == "__marker__":
            value = json.dumps({"event_type": "watermark", "event_timestamp": t0 + s * 1000}).encode()
        else:
            value = _event(user, t0 + s * 1000)
        producer.send(unique_topic, value=value, partition=partition).get(timeout=30)  # one at a time: in order
    producer.close()

    df = explore("SELECT user_id FROM events", topic=unique_topic, seconds=300, limit=100)
    seen = set(df["user_id"])
    late = {"p0_late_20s", "p1_at_watermark", "p1_after_marker"}
    sent = {user for _, user, _ in plan if user != "__marker__"}
    assert seen == sent - late, f"missing: {sorted(sent - late - seen)}, let through: {sorted(seen & late)}"
