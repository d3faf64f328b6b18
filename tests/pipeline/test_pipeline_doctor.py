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
from labkit.timing import IDLE_TIMEOUT_S
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


def test_a_healthy_run_then_a_wrong_token_or_bucket_stops_at_influxdb(settings, stack, pipeline):
    """One job on a topic of its own: healthy first, one line per link; then the reader's token and bucket are
    wrong. (Run in docker mode too: InfluxDB there is a container the host reaches on its published port.)"""
    topic, _job = pipeline
    ok = produce(2_000, topic=topic, seed=4, close_windows=True, progress=False, settings=settings)
    assert verify(ok.ledger, wait_s=120, settings=settings).exact
    t0 = time.monotonic()
    d = diagnose(topic, settings=settings)
    print(f"healthy walk: {time.monotonic() - t0:.1f} s")  # the guide's "within 10 s": measured, not asserted
    assert d.ok and d.broken is None, str(d)
    assert [x.name for x in d.links] == list(LINKS)

    # the dashboard's box names another stream (a typo): every link holds up to the panel, which is named
    typo = topic[:-1]
    d = diagnose(topic, settings=settings, shown_stream=typo)
    _stops_at(d, "panel")
    assert repr(typo) in d.broken.saw and repr(topic) in d.broken.saw and f"var-stream={topic}" in d.broken.fix
    # ...and a dashboard whose saved variable points elsewhere, read as Grafana would load it
    import json

    from labkit.paths import GRAFANA_DIR

    board = json.loads((GRAFANA_DIR / "dashboards" / "clickstream-errors.json").read_text())
    assert diagnose(topic, settings=settings, dashboard=board).ok  # its panel, pointed at this topic, shows it
    d = diagnose(topic, settings=settings, dashboard=board, shown_stream="clickstream_events_v2")
    _stops_at(d, "panel")

    _stops_at(diagnose(topic, settings=settings, token="not-the-lab-token"), "InfluxDB")
    wrong_bucket = diagnose(topic, settings=settings.model_copy(update={"influx_bucket": "no_such_bucket"}))
    _stops_at(wrong_bucket, "InfluxDB")
    assert "no_such_bucket" in wrong_bucket.broken.saw


def test_late_then_malformed_traffic_stops_at_counted(settings, stack, pipeline):
    """The same job, fine throughout (every phase's accounts are exact): first most events arrive late, then
    most are malformed. The doctor must say where the panel's data went."""
    topic, _job = pipeline
    ok = produce(2_000, topic=topic, seed=4, close_windows=True, progress=False, settings=settings)
    assert verify(ok.ledger, wait_s=120, settings=settings).exact

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


def test_a_job_that_keeps_restarting_stops_at_the_job_with_its_exception(settings, stack):
    """The pipeline's job for a topic fails on every record (a CAST Flink cannot do at run time: the text of a URL
    as an INT) and its restart strategy starts it again and again. The doctor must name the job link, with the
    job's own exception, once the producer and event-time links hold. Flink's own failure, not one labkit made
    up: the doctor reads it from Flink's exception history."""
    from labkit import stack as stack_mod
    from labkit.jobs import pipeline_name, pipeline_params
    from labkit.jobs.control import submit_spec
    from labkit.jobs.custom import CustomMetric

    topic = kafka_info.fresh_topic(f"doc_crash_{uuid.uuid4().hex[:6]}", settings)
    produce(2_000, topic=topic, seed=6, progress=False, settings=settings)
    crashing = CustomMetric(
        "doctor_crash",
        "SELECT window_end, SUM(CAST(url AS INT)) AS n "
        "FROM TABLE(TUMBLE(TABLE events, DESCRIPTOR(rowtime), INTERVAL '10' SECOND)) GROUP BY window_start, window_end",
        topic=topic,
        settings=settings,
    )
    params = pipeline_params(settings, topic=topic, group_id=f"labkit-doctor-crash-{uuid.uuid4().hex[:6]}")
    params = type(params)(**{**params.__dict__, "startup": "earliest-offset"})
    job = submit_spec(crashing._spec(params, pipeline_name(settings, topic)), settings, stack_mod.get(settings).mode)
    try:
        deadline = time.monotonic() + 120
        while job.restarts() < 2 and time.monotonic() < deadline:
            time.sleep(2)
        assert job.restarts() >= 2, f"the job did not keep restarting: {job.state}, {job.restarts()} restarts"
        d = diagnose(topic, settings=settings)
        _stops_at(d, "job")
        assert "restart" in d.broken.saw or "RESTARTING" in d.broken.saw or "FAILING" in d.broken.saw, str(d)
        assert any(w in d.broken.saw for w in ("NumberFormatException", "CAST", "cast")), str(d)  # Flink's own cause
    finally:
        job.cancel()


def test_a_silent_partition_without_idle_timeout_or_end_markers_stops_at_the_watermark(settings, stack):
    """The pipeline's job with its idle timeout switched off reads a 4-partition topic whose traffic (a plain
    kafka-python producer, send times as Kafka timestamps) all goes to partition 0, with no end markers: the other
    three partitions never get a watermark, so the windows' minimum never moves and nothing fires. The doctor
    must stop at the watermark link and name the silent partitions."""
    import json

    from labkit import stack as stack_mod
    from labkit.jobs import pipeline_spec
    from labkit.jobs.control import submit_spec

    topic = kafka_info.fresh_topic(f"doc_silent_{uuid.uuid4().hex[:6]}", settings)
    spec, _params = pipeline_spec(settings, topic=topic, group_id=f"labkit-doc-silent-{uuid.uuid4().hex[:6]}")
    idle = f"'scan.watermark.idle-timeout' = '{IDLE_TIMEOUT_S} s'"
    on = [d for d in spec["ddl"] if idle in d]
    assert on, f"the pipeline's source has no {IDLE_TIMEOUT_S} s idle timeout to switch off"
    spec["ddl"] = [d.replace(idle, "'scan.watermark.idle-timeout' = '0 s'") for d in spec["ddl"]]
    job = submit_spec(spec, settings, stack_mod.get(settings).mode).wait_running()
    try:
        p = KafkaProducer(bootstrap_servers=settings.kafka, acks="all")
        for i in range(600):
            ev = {"user_id": f"u{i % 40}", "session_id": f"s{i % 90}", "url": "/cart", "http_method": "GET",
                  "http_status": 200, "latency_ms": 20.0, "event_timestamp": int(time.time() * 1000) - 30_000 + i * 50}  # fmt: skip
            p.send(topic, value=json.dumps(ev).encode(), partition=0)
        p.flush()
        p.close()
        d = _until(topic, settings, "no watermark", wait_s=60)
        _stops_at(d, "watermark")
        assert all(str(n) in d.broken.saw for n in (1, 2, 3)), str(d)
    finally:
        job.cancel()
