"""`explore()` and `CustomMetric.preview()`: the bounded look at the stream notebook 03 opens with.

CI once failed here: with the job's checkpointing inherited, collect() showed rows only after a checkpoint
completed, which on a busy machine (the pipeline running beside it) took minutes, and the cell timed out.
These tests run beside a running pipeline too, on events another client wrote (a plain kafka-python
producer, Kafka timestamps = send time), and check what the attendee sees: the rows sent, the query's
columns even when nothing matches, a run-time error named at once (no restarts), and an answer by the
deadline even when no row ever comes."""

from __future__ import annotations

import contextlib
import json
import time
import uuid

import pytest

from labkit import jobs, kafka_info
from labkit.errors import JobError
from labkit.jobs.custom import CustomMetric, explore

pytestmark = pytest.mark.stack

COLUMNS = "SELECT user_id, url, http_status, latency_ms FROM events"


@pytest.fixture(scope="module")
def foreign_events(settings, stack):
    """40 valid events written by a plain kafka-python producer while the pipeline runs on the same topic."""
    from kafka import KafkaProducer

    topic = kafka_info.fresh_topic(f"t_explore_{uuid.uuid4().hex[:8]}", settings)
    job = jobs.submit_pipeline(settings, topic=topic, from_earliest=True, parallelism=1)
    now_ms = int(time.time() * 1000)
    sent = []
    producer = KafkaProducer(bootstrap_servers=settings.kafka, acks="all")
    for i in range(40):
        e = {
            "user_id": f"foreign_{i:03d}",
            "session_id": f"s_{i % 5}",
            "event_timestamp": now_ms - 20_000 + i * 100,  # event time 20 s before the send time
            "url": f"/foreign/{i % 4}",
            "http_method": "GET",
            "http_status": 200 if i % 10 else 503,
            "latency_ms": 10.0 + i,
            "country": "DE",
            "device": "desktop",
            "user_agent": "kafka-python test",
        }
        sent.append(e)
        producer.send(topic, key=e["session_id"].encode(), value=json.dumps(e).encode())
    producer.flush()
    producer.close()
    yield topic, sent
    with contextlib.suppress(Exception):
        job.cancel()


def test_explore_shows_another_clients_events_beside_a_running_job(foreign_events):
    topic, sent = foreign_events
    df = explore(f"{COLUMNS} LIMIT 15", topic=topic, seconds=300)
    assert list(df.columns) == ["user_id", "url", "http_status", "latency_ms"]
    assert len(df) == 15
    by_user = {e["user_id"]: e for e in sent}
    for row in df.itertuples():
        e = by_user[row.user_id]  # every row is one of the events sent, unchanged
        assert (row.url, row.http_status, row.latency_ms) == (e["url"], e["http_status"], e["latency_ms"])


def test_a_first_tumble_preview_counts_what_was_sent(foreign_events):
    topic, sent = foreign_events
    sql = (
        "SELECT window_end, http_status, COUNT(*) AS n FROM TABLE(TUMBLE(TABLE events, DESCRIPTOR(rowtime), "
        "INTERVAL '10' SECOND)) GROUP BY window_start, window_end, http_status"
    )
    df = CustomMetric("t_tumble", sql, topic=topic).preview(seconds=300)
    assert df.groupby("http_status")["n"].sum().to_dict() == {200: 36, 503: 4}


def test_an_empty_result_keeps_the_querys_columns(settings, unique_topic, capsys):
    df = explore(f"{COLUMNS} LIMIT 5", topic=unique_topic, seconds=60)
    assert df.empty
    assert list(df.columns) == ["user_id", "url", "http_status", "latency_ms"]
    assert f"{unique_topic} has no valid events in the last 60s" in capsys.readouterr().out


def test_a_run_time_error_is_named_at_once_not_retried(foreign_events):
    topic, _ = foreign_events
    with pytest.raises(JobError) as e:
        explore("SELECT http_status / (http_status - http_status) AS boom FROM events", topic=topic, seconds=300)
    assert "/ by zero" in str(e.value)
    # with restarts it would retry until the deadline and report "no row within 90s" instead
    assert "while running" in str(e.value)


def test_the_deadline_holds_when_no_row_comes(foreign_events):
    topic, _ = foreign_events
    with pytest.raises(JobError, match="returned no row within"):
        # an aggregation emits only at the end of its input; the job cannot even start in 10 ms
        CustomMetric(
            "t_deadline",
            "SELECT window_end, COUNT(*) AS n FROM TABLE(TUMBLE(TABLE events, DESCRIPTOR(rowtime), "
            "INTERVAL '10' SECOND)) GROUP BY window_start, window_end",
            topic=topic,
        ).preview(seconds=300, timeout_s=0.01)
