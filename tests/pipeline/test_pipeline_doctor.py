"""The pipeline doctor names the link where the events stop. Each link is broken for real, one at a time, on the
real stack, and each time the links before it must hold and the ones after it are not checked.

Traffic comes from labkit's producer with explicit event times (an hour back, ten minutes back) and from a
plain kafka-python producer that writes JSON no parser accepts: inputs the doctor's own code did not shape.
"""

from __future__ import annotations

import time
import uuid

import pytest
from kafka import KafkaProducer

from labkit import kafka_info
from labkit.pipeline_doctor import LINKS, diagnose
from labkit.produce import produce
from labkit.verify import verify

pytestmark = pytest.mark.stack


def _until(topic, settings, word: str, wait_s: float = 90):
    """The doctor's walk once the job has processed what was just sent (its counts are written as it reads)."""
    deadline = time.monotonic() + wait_s
    while True:
        d = diagnose(topic, settings=settings)
        if (d.broken is not None and word in d.broken.saw) or time.monotonic() > deadline:
            return d
        time.sleep(3)


def _stops_at(d, link: str) -> None:
    """`d` names `link` as the first broken one; every link before it holds, none after it was checked."""
    at = LINKS.index(link)
    assert d.broken is not None and d.broken.name == link, str(d)
    assert all(x.ok is True for x in d.links[:at]), str(d)
    assert all(x.ok is None for x in d.links[at + 1 :]), str(d)
    assert d.broken.fix, str(d)


def test_a_topic_without_records_stops_at_the_producer_and_names_where_labkit_wrote(settings, stack):
    elsewhere = kafka_info.fresh_topic(f"doc_else_{uuid.uuid4().hex[:6]}", settings)
    produce(300, topic=elsewhere, seed=1, progress=False, settings=settings)
    empty = kafka_info.fresh_topic(f"doc_empty_{uuid.uuid4().hex[:6]}", settings)
    d = diagnose(empty, settings=settings)
    _stops_at(d, "producer")
    assert "no records" in d.broken.saw and elsewhere in d.broken.saw
    _stops_at(diagnose(f"doc_missing_{uuid.uuid4().hex[:6]}", settings=settings), "producer")


def test_events_an_hour_in_the_past_stop_at_event_time(settings, stack):
    topic = kafka_info.fresh_topic(f"doc_past_{uuid.uuid4().hex[:6]}", settings)
    hour_ago = int(time.time() * 1000) - 3_600_000
    produce(500, topic=topic, seed=2, start_ms=hour_ago, progress=False, settings=settings)
    d = diagnose(topic, settings=settings)
    _stops_at(d, "event time")
    assert "behind the wall clock" in d.broken.saw


def test_records_no_job_reads_stop_at_the_job(settings, stack):
    topic = kafka_info.fresh_topic(f"doc_nojob_{uuid.uuid4().hex[:6]}", settings)
    produce(500, topic=topic, seed=3, progress=False, settings=settings)
    d = diagnose(topic, settings=settings)
    _stops_at(d, "job")
    assert "no job reads" in d.broken.saw and "--topic" in d.broken.fix


def test_one_running_pipeline_broken_link_by_link(settings, stack, pipeline):
    """One job on a topic of its own: healthy first; then the reader's token and bucket are wrong; then most
    events arrive late; then most are malformed. Every phase's accounts are exact: the job is fine, the doctor
    must say where the panel's data went."""
    topic, _job = pipeline
    ok = produce(2_000, topic=topic, seed=4, close_windows=True, progress=False, settings=settings)
    assert verify(ok.ledger, wait_s=120, settings=settings).exact
    t0 = time.monotonic()
    d = diagnose(topic, settings=settings)
    print(f"healthy walk: {time.monotonic() - t0:.1f} s")  # the guide's "within 10 s": measured, not asserted
    assert d.ok and d.broken is None, str(d)
    assert [x.name for x in d.links] == list(LINKS)

    _stops_at(diagnose(topic, settings=settings, token="not-the-lab-token"), "InfluxDB")
    wrong_bucket = diagnose(topic, settings=settings.model_copy(update={"influx_bucket": "no_such_bucket"}))
    _stops_at(wrong_bucket, "InfluxDB")
    assert "no_such_bucket" in wrong_bucket.broken.saw

    # 6,000 events ten minutes behind what the job has seen: every one of them late
    behind = ok.ledger.first_event_ms - 600_000
    produce(6_000, topic=topic, seed=5, start_ms=behind, progress=False, settings=settings)
    d = _until(topic, settings, "late")
    _stops_at(d, "counted")
    assert "late" in d.broken.saw

    # 20,000 records no parser accepts, from a plain kafka-python producer
    p = KafkaProducer(bootstrap_servers=settings.kafka)
    for i in range(20_000):
        p.send(topic, value=b'{"url": "/x", "http_status": "two hundred", "event_timestamp": "soon"}', key=b"k%d" % i)
    p.flush()
    p.close()
    d = _until(topic, settings, "malformed")
    _stops_at(d, "counted")
    assert "malformed" in d.broken.saw
