"""The generator's pattern options (notebook 10) through a real broker: what `produce` puts on the click topic and
the orders topic, read back with a plain kafka-python consumer (not labkit's readers)."""

import json
import uuid

import pytest
from kafka import KafkaConsumer, TopicPartition

from labkit.events import EventGenerator
from labkit.produce import produce

pytestmark = pytest.mark.stack

START = 1_767_225_600_000  # 2026-01-01T00:00:00Z: a fixed event-time start, so the stream is the seed's own


def _read_all(settings, topic: str) -> list:
    consumer = KafkaConsumer(bootstrap_servers=settings.kafka, enable_auto_commit=False)
    parts = [TopicPartition(topic, p) for p in sorted(consumer.partitions_for_topic(topic) or [])]
    consumer.assign(parts)
    consumer.seek_to_beginning(*parts)
    end = consumer.end_offsets(parts)
    records = []
    while any(consumer.position(tp) < end[tp] for tp in parts):
        for batch in consumer.poll(timeout_ms=2000).values():
            records.extend(batch)
    consumer.close()
    return records


def _topics(settings):
    from kafka.admin import KafkaAdminClient

    admin = KafkaAdminClient(bootstrap_servers=settings.kafka)
    try:
        return set(admin.list_topics())
    finally:
        admin.close()


def test_without_options_the_topic_holds_the_seeds_plain_stream_and_no_orders_topic_is_made(settings, unique_topic):
    orders_topic = f"o_{uuid.uuid4().hex[:10]}"
    summary = produce(
        2000, seed=5, sim_rate=20, start_ms=START, topic=unique_topic, orders_topic=orders_topic,
        settings=settings, progress=False, wake_partitions=False,
    )  # fmt: skip
    got = sorted((r.timestamp, r.key, r.value) for r in _read_all(settings, unique_topic))
    plain = EventGenerator(seed=5, rate=20, start_ms=START)
    want = sorted((e.timestamp_ms, e.key, e.value) for e in (next(plain) for _ in range(2000)))
    assert got == want
    assert orders_topic not in _topics(settings)
    assert "orders" not in summary.as_dict() and "orders" not in str(summary)


def test_orders_and_retries_reach_their_topics_as_the_generator_made_them(settings, unique_topic):
    orders_topic = f"o_{uuid.uuid4().hex[:10]}"
    summary = produce(
        3000, seed=5, sim_rate=20, start_ms=START, topic=unique_topic, orders_topic=orders_topic,
        orders=1.0, duplicates=0.05, settings=settings, progress=False, wake_partitions=False,
    )  # fmt: skip
    clicks = _read_all(settings, unique_topic)
    orders = _read_all(settings, orders_topic)
    assert len(clicks) == 3000 == summary.produced
    assert summary.orders == len(orders) > 0 and summary.as_dict()["orders_topic"] == orders_topic
    # retries: the same bytes twice, with the same event id and Kafka timestamp
    by_id: dict[str, list] = {}
    for r in clicks:
        if r.value.startswith(b'{"event_id"'):
            by_id.setdefault(json.loads(r.value)["event_id"], []).append((r.timestamp, r.value))
    twice = [v for v in by_id.values() if len(v) == 2]
    assert twice and all(a == b for a, b in twice) and max(len(v) for v in by_id.values()) == 2
    # every order belongs to a session that paid at checkout, keyed by that session, after its checkout
    checkouts: dict[str, int] = {}
    for r in clicks:
        d = json.loads(r.value) if r.value.startswith(b"{") else {}
        if d.get("url") == "/checkout" and 200 <= int(d.get("http_status", 0)) < 300:
            checkouts.setdefault(d["session_id"], d["event_timestamp"])
    for r in orders:
        o = json.loads(r.value)
        assert o["session_id"].encode() == r.key and o["session_id"] in checkouts
        assert o["event_timestamp"] > checkouts[o["session_id"]] and r.timestamp >= o["event_timestamp"]
