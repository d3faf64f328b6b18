"""Look inside Kafka from a notebook: topics, partitions, offsets, consumer lag, peeking at messages."""

from __future__ import annotations

import json

import pandas as pd

from labkit.settings import Settings
from labkit.settings import get as get_settings


def _admin(settings: Settings):
    from kafka import KafkaAdminClient

    return KafkaAdminClient(bootstrap_servers=settings.kafka, client_id="labkit-info")


def _consumer(settings: Settings, **kw):
    from kafka import KafkaConsumer

    return KafkaConsumer(bootstrap_servers=settings.kafka, enable_auto_commit=False, client_id="labkit-info", **kw)


def topics(settings: Settings | None = None) -> pd.DataFrame:
    """Topics with their partition count and total messages (end offset minus start offset)."""
    settings = settings or get_settings()
    admin = _admin(settings)
    try:
        names = sorted(t for t in admin.list_topics() if not t.startswith("__"))
    finally:
        admin.close()
    rows = []
    for t in names:
        o = offsets(t, settings)
        rows.append({"topic": t, "partitions": len(o), "messages": int((o["end"] - o["start"]).sum())})
    return pd.DataFrame(rows, columns=["topic", "partitions", "messages"])


def offsets(topic: str | None = None, settings: Settings | None = None) -> pd.DataFrame:
    """First and next offset of each partition of `topic`."""
    from kafka import TopicPartition

    settings = settings or get_settings()
    topic = topic or settings.topic
    c = _consumer(settings)
    try:
        parts = [TopicPartition(topic, p) for p in sorted(c.partitions_for_topic(topic) or [])]
        start, end = c.beginning_offsets(parts), c.end_offsets(parts)
    finally:
        c.close()
    return pd.DataFrame([{"partition": tp.partition, "start": start[tp], "end": end[tp]} for tp in parts])


def lag(group: str, topic: str | None = None, settings: Settings | None = None) -> pd.DataFrame:
    """Consumer lag of `group` per partition: messages written but not yet committed by the group.

    Flink commits offsets on each checkpoint, so its lag shows up to one checkpoint interval late."""
    from kafka import TopicPartition

    settings = settings or get_settings()
    topic = topic or settings.topic
    admin = _admin(settings)
    try:
        if hasattr(admin, "list_group_offsets"):  # kafka-python 3
            committed = admin.list_group_offsets(group).get(group, {})
        else:
            committed = admin.list_consumer_group_offsets(group)
    finally:
        admin.close()
    o = offsets(topic, settings)
    o["committed"] = [
        committed.get(TopicPartition(topic, p)).offset if committed.get(TopicPartition(topic, p)) else 0
        for p in o["partition"]
    ]
    o["lag"] = o["end"] - o["committed"]
    return o


def peek(
    topic: str | None = None, n: int = 10, settings: Settings | None = None, from_end: bool = True
) -> pd.DataFrame:
    """The last (or first) `n` messages of each partition, decoded, as a DataFrame."""
    from kafka import TopicPartition

    settings = settings or get_settings()
    topic = topic or settings.topic
    c = _consumer(settings, consumer_timeout_ms=2000)
    rows = []
    try:
        parts = [TopicPartition(topic, p) for p in sorted(c.partitions_for_topic(topic) or [])]
        c.assign(parts)
        end, start = c.end_offsets(parts), c.beginning_offsets(parts)
        for tp in parts:
            c.seek(tp, max(start[tp], end[tp] - n) if from_end else start[tp])
        for msg in c:
            rows.append(
                {
                    "partition": msg.partition,
                    "offset": msg.offset,
                    "timestamp": pd.to_datetime(msg.timestamp, unit="ms", utc=True),
                    "key": msg.key.decode(errors="replace") if msg.key else None,
                    "value": msg.value.decode(errors="replace") if msg.value is not None else None,
                }
            )
            if len(rows) >= n * len(parts):
                break
    finally:
        c.close()
    df = pd.DataFrame(rows)
    return df.sort_values("timestamp").tail(n).reset_index(drop=True) if not df.empty else df


def dead_letters(n: int = 10, settings: Settings | None = None) -> pd.DataFrame:
    """The latest dead letters with their reason and where they came from."""
    settings = settings or get_settings()
    df = peek(settings.dlq_topic, n, settings)
    if df.empty:
        return df
    parsed = pd.DataFrame([json.loads(v) for v in df["value"]])
    return parsed[["reason", "source_partition", "source_offset", "payload"]]
