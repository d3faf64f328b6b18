"""The shared table of event-rule cases (tests/cases/click_rules.py) through the job itself: a plain kafka-python
producer sends every case to one partition with its own Kafka timestamp, and the job must dead-letter exactly the
"bad" ones (by source offset), count exactly the "valid" ones as read, and do neither with an end marker. The same
table runs through labkit's Python reading of the rules in tests/unit/test_click_rules.py."""

from __future__ import annotations

import json
import time

import pytest
from kafka import KafkaConsumer, KafkaProducer, TopicPartition

from labkit.influx import Influx
from tests.cases.click_rules import cases

pytestmark = pytest.mark.stack


def _dead_lettered(settings, topic: str) -> set[int]:
    """Source offsets (partition 0) of the dead letters the job wrote for `topic`."""
    dlq = settings.dlq_topic_for(topic)
    c = KafkaConsumer(bootstrap_servers=settings.kafka, enable_auto_commit=False, consumer_timeout_ms=2000)
    try:
        parts = [TopicPartition(dlq, p) for p in (c.partitions_for_topic(dlq) or [])]
        c.assign(parts)
        c.seek_to_beginning(*parts)
        out = set()
        for rec in c:
            d = json.loads(rec.value)
            if d.get("source_topic") == topic and d.get("source_partition") == 0:
                out.add(int(d["source_offset"]))
        return out
    finally:
        c.close()


def test_the_job_follows_the_table(settings, pipeline):
    topic, job = pipeline
    base = int(time.time() * 1000)
    table = cases(base)
    p = KafkaProducer(bootstrap_servers=settings.kafka, acks="all")
    offsets = {}
    for case in table:
        md = p.send(topic, value=case.payload, key=b"k", partition=0, timestamp_ms=case.kafka_ms).get(timeout=30)
        offsets[md.offset] = case
    p.flush()
    p.close()
    bad = {o for o, c in offsets.items() if c.verdict == "bad"}
    valid = sum(c.verdict == "valid" for c in table)
    deadline = time.monotonic() + 90
    while True:
        dead = _dead_lettered(settings, topic)
        with Influx(settings) as db:
            read = db.flux(
                f'from(bucket: "{settings.influx_bucket}") |> range(start: 0, stop: 2100-01-01T00:00:00Z) '
                f'|> filter(fn: (r) => r._measurement == "valid_events" and r.stream == "{topic}" '
                'and r._field == "count") |> group() |> sum()'
            )
        n_read = int(read["_value"].iloc[0]) if not read.empty else 0
        if (dead == bad and n_read == valid) or time.monotonic() > deadline:
            break
        time.sleep(2)
    wrong_dead = sorted(offsets[o].name for o in dead ^ bad)
    assert not wrong_dead, f"dead-lettered against the table (or not): {wrong_dead}"
    assert n_read == valid, f"the job read {n_read} valid events; the table has {valid}"
    assert job.state == "RUNNING"
