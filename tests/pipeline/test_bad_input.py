"""Every bad-input class, mixed into valid traffic, lands in the DLQ with its specific reason; the job stays
up and the valid counts stay exact."""

import json
import random
from collections import Counter

import pytest

from labkit import badinput
from labkit.events import EventGenerator
from labkit.produce import produce
from labkit.verify import dead_letters, verify

pytestmark = pytest.mark.stack


class _Mixed(EventGenerator):
    """Valid traffic with every bad class injected `per_class` times at random positions."""

    def __init__(self, per_class: int, total: int, **kw):
        super().__init__(**kw)
        rng = random.Random(99)
        slots = rng.sample(range(100, total), per_class * len(badinput.CLASSES))
        self._inject = {pos: badinput.CLASSES[i % len(badinput.CLASSES)] for i, pos in enumerate(slots)}

    def __next__(self):
        e = super().__next__()
        bad = self._inject.get(self.count)
        if bad is not None and e.kind == "valid":
            e.value, e.kind, e.reason, e.status = bad.make(self.rng, json.loads(e.value)), "malformed", bad.reason, 0
        return e


def test_every_bad_class_gets_its_reason_and_valid_counts_stay_exact(settings, pipeline):
    topic, job = pipeline
    total, per_class = 20_000, 10
    import time

    gen = _Mixed(per_class, total, seed=5, rate=500, start_ms=int(time.time() * 1000) - total * 2)
    summary = produce(total, topic=topic, generator=gen, close_windows=True, settings=settings)
    acc = verify(summary.ledger, settings=settings, wait_s=120)
    assert acc.exact, f"{acc}\n{acc.mismatches}\nmissing: {acc.dlq_expected - acc.dlq_found}"
    expected = Counter()
    for c in badinput.CLASSES:
        expected[c.reason] += per_class
    found = dead_letters(topic, settings.dlq_topic_for(topic), settings)
    assert found == expected
    assert job.state == "RUNNING"


def test_bad_messages_never_move_the_watermark_of_another_clients_traffic(settings, pipeline):
    """A plain kafka-python client: its records' Kafka timestamps are send times (now), its events' own times
    trail them by 80 to 40 s, in order, with bad messages among them. Before the fix a bad message's row time
    fell back to the Kafka timestamp, pushed its partition's watermark to the present, and the valid events
    after it were dropped as late (11% of the first window, 100% of the fourth). Now every valid one counts."""
    import time

    from kafka import KafkaProducer

    from labkit.ledger import Ledger

    topic, job = pipeline
    n, bad_every = 20_000, 1_800
    start_ms = int(time.time() * 1000) - 80_000
    bad = [
        badinput.BY_NAME[x] for x in ("truncated_json", "status_out_of_range", "timestamp_ahead", "non_integer_status")
    ]
    rng = random.Random(3)
    ledger = Ledger(topic)
    producer = KafkaProducer(bootstrap_servers=settings.kafka, acks="all", linger_ms=5)
    sent_at = []
    for i in range(n):
        event_ms = start_ms + i * 2  # 40 s of event time, in order
        ev = {
            "user_id": f"u_{i % 500}",
            "session_id": f"s_{i % 700}",
            "url": "/",
            "http_method": "GET",
            "http_status": 200 if i % 7 else 404,
            "latency_ms": 12.5,
            "event_timestamp": event_ms,
        }
        now = int(time.time() * 1000)
        if i % bad_every == 900:
            c = bad[(i // bad_every) % len(bad)]
            # timestamp_ahead must be ahead of the Kafka timestamp (now), not of the event's own time
            ev_for_bad = {**ev, "event_timestamp": now} if c.name == "timestamp_ahead" else ev
            value = c.make(rng, ev_for_bad)
            ledger.add("malformed", event_ms, 0, c.reason, now)
        else:
            value = json.dumps(ev).encode()
            ledger.add("valid", event_ms, ev["http_status"], "", now)
        producer.send(topic, key=ev["session_id"].encode(), value=value)  # timestamp: the send time
        sent_at.append(now)
    end = ledger.last_event_ms + 5_000 + 10_000 + 1_000  # end markers: the last windows fire
    for p in producer.partitions_for(topic):
        producer.send(
            topic,
            key=b"__watermark__",
            partition=p,
            value=json.dumps({"event_type": "watermark", "event_timestamp": end}).encode(),
        )
    producer.flush()
    producer.close()
    ledger.closed_until_ms = end - 5_000
    assert max(sent_at) - ledger.last_event_ms > 30_000  # the scenario holds: event times trail send times
    acc = verify(ledger, settings=settings, wait_s=120)
    assert sum(ledger.malformed.values()) >= 11
    assert acc.exact, f"{acc}\n{acc.mismatches}"
    assert acc.late_counted == 0
