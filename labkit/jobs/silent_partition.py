"""Notebook 03's "break it" lab: the windows that never come, because one partition went silent.

A scratch topic with two partitions; a plain producer writes real clicks to partition 0 only (a producer that
keys everything to one partition, or a source that stopped, does this in production) and sends no end markers.
A job of its own, written in standard Flink SQL (no labkit functions, no on-time filter), counts clicks per
10 s event-time window and writes each window to InfluxDB. Flink's Kafka source generates watermarks per
partition and emits the minimum over its partitions; a partition that never sends has no watermark to give, so
the minimum never advances and no window ever fires. The attendee reads that off the per-partition watermarks
Flink reports (`watermarks()`: the source's per-split metrics, the same the REST API serves) and fixes the job
with the connector's `scan.watermark.idle-timeout` (or the job option `table.exec.source.idle-timeout`).

Everything the lab makes (topic, consumer group, job, points) carries the run's id, and `close()` removes the
topic and cancels the job: the lab leaves nothing running.
"""

from __future__ import annotations

import re
import time
import uuid
from dataclasses import dataclass, field

import pandas as pd

from labkit.jobs import base_spec, pipeline_params
from labkit.jobs.control import Job, submit_spec
from labkit.jobs.sql import _kafka_properties, epoch_ms, influx_insert, lit, point_select
from labkit.settings import Settings
from labkit.settings import get as get_settings
from labkit.timing import WATERMARK_DELAY_S, WINDOW_MS, WINDOW_S

MEASUREMENT = "silent_partition_lab"
PARTITIONS = 2


@dataclass
class SilentPartitionLab:
    """The scratch topic, its traffic and the lab's job; `close()` when done."""

    settings: Settings = field(default_factory=get_settings)
    run_id: str = field(default_factory=lambda: uuid.uuid4().hex[:6])
    job: Job | None = None
    ddl: str | None = None  # the source DDL the lab's job runs
    config: dict[str, str] = field(default_factory=dict)  # and the job options it runs with
    sent: pd.DataFrame | None = None  # per event: partition, event_ms

    def __post_init__(self) -> None:
        from kafka.admin import NewTopic

        from labkit.jobs.control import Flink
        from labkit.kafka_info import _admin

        # an earlier lab left running (a cell run again, a kernel restarted) would hold a task slot for nothing
        flink, earlier = Flink(self.settings.flink), self.settings.scoped("silent-partition-lab-")
        for j in flink.jobs():
            if j["name"].startswith(earlier) and j["state"] in ("RUNNING", "CREATED", "RESTARTING"):
                flink.cancel(j["jid"])

        self.topic = self.settings.scoped(f"silent_{self.run_id}")  # a new name per lab: nothing to clean first
        admin = _admin(self.settings)
        try:
            admin.create_topics([NewTopic(self.topic, num_partitions=PARTITIONS, replication_factor=1)])
        finally:
            admin.close()

    # ---- traffic ------------------------------------------------------------------------------------------------
    def send(self, seconds: float = 60, rate: float = 50, partition: int = 0, seed: int = 3) -> pd.DataFrame:
        """`seconds` of clicks (event time from now on, `rate` per second of event time), every one to
        `partition`; no end markers. A plain kafka-python producer: Kafka timestamps are the send times."""
        from kafka import KafkaProducer

        from labkit.events import EventGenerator
        from labkit.kafka_clients import python_config

        gen = EventGenerator(seed=seed, rate=rate, start_ms=int(time.time() * 1000), malformed_fraction=0.0)
        producer = KafkaProducer(**python_config(self.settings), acks="all")
        rows = []
        try:
            end_ms = gen.start_ms + seconds * 1000
            for e in gen:
                if e.event_ms >= end_ms:
                    break
                if e.kind != "valid":
                    continue
                producer.send(self.topic, value=e.value, key=e.key, partition=partition)
                rows.append((partition, e.event_ms))
            producer.flush()
        finally:
            producer.close()
        self.sent = pd.DataFrame(rows, columns=["partition", "event_ms"])
        return self.sent.groupby("partition").agg(events=("event_ms", "size")).reset_index()

    # ---- the job ------------------------------------------------------------------------------------------------
    def source_ddl(self) -> str:
        """The job's source table in standard Flink SQL, as an attendee would write it: event time from the
        click's own timestamp, a watermark 5 s behind it, and nothing about idle partitions."""
        p = pipeline_params(self.settings, topic=self.topic)  # the job's view of Kafka: address, security
        return f"""CREATE TEMPORARY TABLE clicks (
  url STRING,
  http_status INT,
  event_timestamp BIGINT,
  rowtime AS TO_TIMESTAMP_LTZ(event_timestamp, 3),
  WATERMARK FOR rowtime AS rowtime - INTERVAL '{WATERMARK_DELAY_S}' SECOND
) WITH (
  'connector' = 'kafka',
  'topic' = {lit(self.topic)},
  'properties.bootstrap.servers' = {lit(p.bootstrap)},
  'properties.group.id' = {lit(self.settings.scoped("silent-lab-" + self.run_id))},{_kafka_properties(p)}
  'scan.startup.mode' = 'earliest-offset',
  'format' = 'json',
  'json.ignore-parse-errors' = 'true'
)"""

    def show_source_ddl(self) -> str:
        """source_ddl() fit to print: on a secured cluster the SASL password and the inline CA are replaced by
        `***` (kafka_clients.redact_secrets). Build the DDL to run from source_ddl(), never from this."""
        from labkit.kafka_clients import redact_secrets

        return redact_secrets(self.source_ddl())

    def run(self, ddl: str | None = None, config: dict[str, str] | None = None) -> Job:
        """Submit the lab's job with `ddl` as its source table (default: `source_ddl()`), replacing a job the
        lab runs already. `config`: job options, e.g. {"table.exec.source.idle-timeout": "5 s"}."""
        from labkit.errors import ConfigError

        ddl = ddl or self.source_ddl()
        if not isinstance(ddl, str) or not re.search(r"CREATE\s+(TEMPORARY\s+)?TABLE\s+clicks\b", ddl, re.I):
            raise ConfigError(
                "the source must be a CREATE TABLE statement for a table called `clicks`.",
                "start from lab.source_ddl() and change it",
            )
        from labkit.kafka_clients import REDACTED

        if REDACTED in ddl and REDACTED not in self.source_ddl():
            raise ConfigError(
                f"this DDL has the cluster's secrets hidden ({REDACTED}): it was copied from the printed one.",
                "start from the string lab.source_ddl() returns (show_source_ddl() hides the password) and change it",
            )
        self.cancel()
        self.ddl, self.config = ddl, dict(config or {})
        spec = base_spec(self.settings, f"silent-partition-lab-{self.run_id}", parallelism=1)
        spec["config"].update(config or {})
        count = point_select(
            MEASUREMENT,
            {"stream": lit(self.topic)},
            {"clicks": "COUNT(*)"},
            epoch_ms("window_end"),
            f"FROM TABLE(TUMBLE(TABLE clicks, DESCRIPTOR(rowtime), INTERVAL '{WINDOW_S}' SECOND)) "
            "GROUP BY window_start, window_end",
        )
        spec.update(
            ddl=[ddl],
            inserts=[influx_insert([count])],
        )
        self.job = submit_spec(spec, self.settings, _stack(self.settings).mode).wait_running()
        self._submitted = time.monotonic()
        return self.job

    def cancel(self) -> None:
        if self.job is not None and self.job.state not in ("CANCELED", "FINISHED", "FAILED"):
            self.job.cancel()

    # ---- what the attendee reads -------------------------------------------------------------------------------
    def windows(self, wait_s: float = 20) -> pd.DataFrame:
        """The windows the job wrote (window end, clicks, and the events sent to that window), after waiting up
        to `wait_s` seconds for the first and then until no new one comes for 2 s."""
        from labkit.influx import Influx

        deadline = time.monotonic() + wait_s
        seen = -1
        while True:
            with Influx(self.settings) as db:
                pts = db.query(MEASUREMENT, start="-2h", stream=self.topic)
            # windows that fire together can reach InfluxDB in more than one write: once the first is there,
            # wait until a second look finds no new one, so the table is never a half-written moment
            if (not pts.empty and len(pts) == seen) or time.monotonic() > deadline:
                break
            seen = len(pts) if not pts.empty else -1
            time.sleep(2 if seen > 0 else 1)
        out = pd.DataFrame(columns=["window_end", "clicks", "sent"])
        if not pts.empty:
            out = pts.rename(columns={"time": "window_end"})[["window_end", "clicks"]].sort_values("window_end")
            out["clicks"] = out["clicks"].astype(int)
            out["sent"] = out["window_end"].map(self.sent_per_window()).fillna(0).astype(int)
        return out.reset_index(drop=True)

    def sent_per_window(self) -> pd.Series:
        """Events sent per 10 s event-time window (index: window end, UTC)."""
        if self.sent is None or self.sent.empty:
            return pd.Series(dtype="int64")
        w = WINDOW_MS
        ends = (self.sent["event_ms"] // w + 1) * w
        s = ends.value_counts().sort_index()
        s.index = pd.to_datetime(s.index, unit="ms", utc=True)
        return s

    def watermarks(self) -> pd.DataFrame:
        """Each partition's watermark as Flink's Kafka source reports it (`Job.partition_watermarks`: the metric
        `<source>.split.<topic>-<partition>.watermark.currentWatermark` from the REST API). A partition that has
        sent nothing has no watermark: shown as empty (NaT)."""
        if self.job is None:
            return pd.DataFrame(columns=["partition", "watermark"])
        return self.job.partition_watermarks(self.topic, PARTITIONS).reset_index(drop=True)

    def close(self) -> None:
        """Cancel the lab's job and delete its topic."""
        from contextlib import suppress

        from labkit.kafka_info import _admin

        self.cancel()
        admin = _admin(self.settings)
        try:
            with suppress(Exception):
                admin.delete_topics([self.topic])
        finally:
            admin.close()

    def _repr_html_(self) -> str:
        state = self.job.state if self.job is not None else "no job yet"
        return f"<b>Silent-partition lab</b> topic <code>{self.topic}</code> ({PARTITIONS} partitions), job: {state}"


def _stack(settings: Settings):
    from labkit import stack

    return stack.get(settings)


def has_idle_timeout(ddl: object, config: dict | None = None) -> bool:
    """Whether a source DDL (or the job's options) sets an idle timeout that is not zero."""
    text = ddl if isinstance(ddl, str) else ""
    m = re.search(r"'scan\.watermark\.idle-timeout'\s*=\s*'([^']*)'", text)
    opt = (config or {}).get("table.exec.source.idle-timeout")
    return any(v and not re.fullmatch(r"\s*0+\s*(ms|s)?\s*", v) for v in (m[1] if m else None, opt))
