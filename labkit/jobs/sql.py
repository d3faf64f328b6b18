"""The clickstream job as Flink SQL: validation, dead letters, event-time windows, InfluxDB rows.

Pure string building, unit-tested; `labkit.jobs.control` turns the result into a job spec.
Everything per event (parsing, validation, windows) runs in the JVM; Python only sees the
aggregated rows on their way to InfluxDB.
"""

from __future__ import annotations

from dataclasses import dataclass

from labkit.timing import IDLE_TIMEOUT_S, WATERMARK_DELAY_S, WINDOW_S


@dataclass(frozen=True)
class JobParams:
    bootstrap: str
    topic: str = "clickstream_events"
    dlq_topic: str = "clickstream_dlq"
    group_id: str = "labkit-clickstream"
    window_s: int = WINDOW_S
    watermark_delay_s: int = WATERMARK_DELAY_S
    # Longer than a broker restart (labkit.timing says why): an idle partition is left out of the window
    # operator's watermark, and its records would then arrive behind that watermark.
    idle_timeout_s: int = IDLE_TIMEOUT_S
    # Watermark alignment across partitions: reading a backlog, no partition runs far ahead of the slowest,
    # so the windows between them (open, in state, waiting for the slowest) stay few. Lateness no longer
    # depends on it (on_time_view decides per partition); until session 9 it did, and 20 s left no margin.
    max_drift_s: int = 10
    startup: str = "group-offsets"  # or earliest-offset, latest-offset, timestamp
    startup_timestamp_ms: int | None = None
    bounded: bool = False  # stop at the offsets that are latest when the job starts (previews)
    alignment_group: str | None = None  # default: one group per topic
    # Kafka client properties for a secured cluster (labkit.kafka_clients.java_properties): SASL, TLS
    kafka_properties: tuple[tuple[str, str], ...] = ()

    @property
    def alignment(self) -> str:
        return self.alignment_group or "labkit-" + self.topic

    @property
    def stream(self) -> str:
        return self.topic


def lit(s: str) -> str:
    """A SQL string literal."""
    return "'" + s.replace("'", "''") + "'"


def epoch_ms(ts_expr: str) -> str:
    """Epoch milliseconds of a TIMESTAMP(3) in the UTC session time zone (whole seconds: windows align)."""
    return f"CAST(TIMESTAMPDIFF(SECOND, TIMESTAMP '1970-01-01 00:00:00', {ts_expr}) AS BIGINT) * 1000"


def functions_ddl() -> list[str]:
    """The lab's Java functions (labkit/jobs/java), on the cluster's classpath via its lib folder."""
    return [
        "CREATE TEMPORARY SYSTEM FUNCTION IF NOT EXISTS click_event_time AS 'lab.clickstream.ClickEventTime' LANGUAGE JAVA",
        "CREATE TEMPORARY SYSTEM FUNCTION IF NOT EXISTS parse_click AS 'lab.clickstream.ParseClick' LANGUAGE JAVA",
    ]


def _kafka_properties(p: JobParams) -> str:
    """The security properties, one connector option each (nothing on an unsecured cluster)."""
    return "".join(f"\n  {lit('properties.' + k)} = {lit(v)}," for k, v in p.kafka_properties)


def _alignment(p: JobParams) -> str:
    """Watermark alignment for a live job; none for a bounded run (a preview). Alignment only paces reading (the
    lateness rule is per partition, so results do not depend on it), and in a bounded run a partition that
    reached its end offset while another was paused for running ahead stalled the run until the preview's
    timeout: CI's first-TUMBLE check got 6 of 54 (window, status) pairs that way."""
    if p.bounded:
        return ""
    return f"""
  -- No partition may read more than {p.max_drift_s} s of event time ahead of the slowest: reading a backlog,
  -- the windows between the fastest and the slowest partition stay open (in state) until the slowest catches up.
  'scan.watermark.alignment.group' = {lit(p.alignment)},
  'scan.watermark.alignment.max-drift' = '{p.max_drift_s} s',
  'scan.watermark.alignment.update-interval' = '50 ms',  -- a split advances at most max-drift per update"""


def source_ddl(p: JobParams, name: str = "events_raw") -> str:
    extra = _kafka_properties(p)
    if p.startup_timestamp_ms is not None:
        extra += f"\n  'scan.startup.timestamp-millis' = '{p.startup_timestamp_ms}',"
    if p.bounded:
        extra += "\n  'scan.bounded.mode' = 'latest-offset',"
    return f"""
CREATE TEMPORARY TABLE {name} (
  payload BYTES,
  kafka_ts TIMESTAMP_LTZ(3) METADATA FROM 'timestamp' VIRTUAL,
  kafka_partition INT METADATA FROM 'partition' VIRTUAL,
  kafka_offset BIGINT METADATA FROM 'offset' VIRTUAL,
  -- Event time when plausible, else the record's Kafka timestamp: a bad timestamp must never
  -- drag the watermark (and every window) far into the future.
  rowtime AS click_event_time(payload, kafka_ts),
  pt AS PROCTIME(),
  WATERMARK FOR rowtime AS rowtime - INTERVAL '{p.watermark_delay_s}' SECOND
) WITH (
  'connector' = 'kafka',
  'topic' = {lit(p.topic)},
  'properties.bootstrap.servers' = {lit(p.bootstrap)},
  'properties.group.id' = {lit(p.group_id)},
  'properties.auto.offset.reset' = 'earliest',
  'scan.startup.mode' = {lit(p.startup)},{extra}
  'scan.watermark.idle-timeout' = '{p.idle_timeout_s} s',{_alignment(p)}
  -- 1 MB per partition and fetch (Kafka's default): with the alignment above keeping partitions close,
  -- small fetches are not needed for that any more, and larger ones gave +10% (93k -> 101-110k ev/s).
  'properties.max.partition.fetch.bytes' = '1048576',
  'format' = 'raw'
)"""


def checked_view(p: JobParams, source: str = "events_raw", name: str = "events_checked") -> str:
    # A table function is evaluated once per record and shared by every metric below; a scalar
    # function or JSON_VALUE calls would be copied into each metric's projection and re-run there.
    return f"""
CREATE TEMPORARY VIEW {name} AS
SELECT e.kafka_ts, e.kafka_partition, e.kafka_offset, e.rowtime, e.pt, c.*
FROM {source} AS e, LATERAL TABLE(parse_click(e.payload, e.kafka_ts)) AS c"""


VALID_COLUMNS = "user_id, session_id, url, http_method, http_status, latency_ms, country, device, ts_raw, rowtime, pt"


def on_time_view(delay_s: int, name: str = "events_on_time", source: str = "events_checked",
                 columns: str = VALID_COLUMNS) -> str:  # fmt: skip
    """The valid rows of `source` that are not late, decided per Kafka partition, in the partition's order.

    A row is late when its event time is at or behind its partition's watermark: the newest event time the
    partition has shown (valid events and end markers, as the source's watermark sees them; a message that fails
    validation has the earliest time and moves nothing) minus the delay. Both the rule and its input are the
    partition's own: Kafka keeps a partition's order, and the newest time per partition is keyed state in the
    job's checkpoints, so a replay (a preview, a restart after a failure) decides exactly as the live run did.
    The windows fire by the minimum over the partitions, never ahead of any partition's own watermark, so a row
    this filter lets through finds its window still open.

    `CURRENT_WATERMARK(rowtime)` would read the subtask's watermark instead: it depends on how the reads of
    its partitions interleave, and it starts empty after a restore, when replayed late rows passed it into
    windows the restored state still held open (tests/cluster/test_flink_cluster.py found 7-14 such rows).

    The newest time includes the row itself (Flink's OVER ends at the current row), so with a delay of 0 s
    (notebook 03's experiment) the row that is its partition's newest must pass by the second condition.

    The price is an exchange by partition ahead of the windows, which carries whole rows: Flink's planner does
    not prune columns below an OVER aggregation (a narrower projection or view in between was merged away).
    docs/benchmarks.md has what it costs.
    """
    return f"""
CREATE TEMPORARY VIEW {name} AS
SELECT {columns} FROM (
  SELECT {columns}, reason, MAX(rowtime) OVER (
    PARTITION BY kafka_partition ORDER BY pt ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW) AS partition_newest
  FROM {source} WHERE reason IS NULL OR reason = 'control'
) WHERE reason IS NULL AND (rowtime > partition_newest - INTERVAL '{delay_s}' SECOND OR rowtime = partition_newest)"""


def views(p: JobParams) -> list[str]:
    return [
        f"""
CREATE TEMPORARY VIEW events_valid AS
SELECT {VALID_COLUMNS}
FROM events_checked WHERE reason IS NULL""",
        # A late row skips the windows. This filter keeps replays deterministic (see on_time_view). It is not
        # the accounting: that is read minus counted (arrival_views), which also covers rows the window
        # operator drops itself (a partition back from idle whose rows are behind the others' watermark).
        on_time_view(p.watermark_delay_s),
    ]


def arrival_views(p: JobParams) -> list[str]:
    """Valid events read, per event-time window, counted in 1 s processing-time slices.

    Late is measured, not only filtered: late(window) = read(window) - counted in the window. A filter
    cannot see every drop: the window operator restores its watermark from a checkpoint while the
    filter starts without one, and an idle partition can put the window operator ahead of it. Slicing
    per second keeps the updating count to a few rows per second, whatever the event rate.
    """
    ms = p.window_s * 1000
    return [
        f"""
CREATE TEMPORARY VIEW arrival_times AS
SELECT pt, ts_raw - MOD(ts_raw, {ms}) + {ms} AS win_end FROM events_valid""",
        """
CREATE TEMPORARY VIEW arrivals AS
SELECT win_end, SUM(n) AS n FROM (
  SELECT win_end, COUNT(*) AS n
  FROM TABLE(TUMBLE(TABLE arrival_times, DESCRIPTOR(pt), INTERVAL '1' SECOND))
  GROUP BY window_start, window_end, win_end
) GROUP BY win_end""",
    ]


def aggregate_views(p: JobParams) -> list[str]:
    """Three window aggregations (by window, by URL, by status) that every window metric reads.

    Registered as views from Table objects (see runner.py) and each read by one query (`points_select`),
    so each is computed once in the job graph."""
    w = window(p)
    err4 = "SUM(CASE WHEN http_status BETWEEN 400 AND 499 THEN 1 ELSE 0 END)"
    err5 = "SUM(CASE WHEN http_status >= 500 THEN 1 ELSE 0 END)"
    pct = "PERCENTILE(latency_ms, 0.5) AS p50, PERCENTILE(latency_ms, 0.95) AS p95, PERCENTILE(latency_ms, 0.99) AS p99"
    return [
        f"""
CREATE TEMPORARY VIEW agg_window AS
SELECT window_end, COUNT(*) AS total, {err4} AS e4, {err5} AS e5,
  COUNT(DISTINCT user_id) AS users, COUNT(DISTINCT session_id) AS sessions, {pct}
FROM {w} GROUP BY window_start, window_end""",
        f"""
CREATE TEMPORARY VIEW agg_url AS
SELECT window_end, url, COUNT(*) AS total, {err4} + {err5} AS errors, {err5} AS e5, {pct}
FROM {w} GROUP BY window_start, window_end, url""",
        f"""
CREATE TEMPORARY VIEW agg_status AS
SELECT window_end, http_status, COUNT(*) AS total
FROM {w} GROUP BY window_start, window_end, http_status""",
    ]


def dlq_ddl(p: JobParams) -> str:
    return f"""
CREATE TEMPORARY TABLE dead_letters (
  reason STRING,
  payload STRING,
  source_topic STRING,
  source_partition INT,
  source_offset BIGINT,
  kafka_timestamp TIMESTAMP_LTZ(3)
) WITH (
  'connector' = 'kafka',
  'topic' = {lit(p.dlq_topic)},
  'properties.bootstrap.servers' = {lit(p.bootstrap)},{_kafka_properties(p)}
  'sink.delivery-guarantee' = 'at-least-once',
  'format' = 'json',
  'json.encode.ignore-null-fields' = 'false'
)"""


def window(p: JobParams, source: str = "events_on_time") -> str:
    return f"TABLE(TUMBLE(TABLE {source}, DESCRIPTOR(rowtime), INTERVAL '{p.window_s}' SECOND))"


def json_object(items: dict[str, str]) -> str:
    """JSON_OBJECT of names to SQL expressions."""
    return "JSON_OBJECT(" + ", ".join(f"KEY {lit(k)} VALUE {v}" for k, v in items.items()) + ")"


def point_select(measurement: str, tags: dict[str, str], fields: dict[str, str], ts: str, rest: str) -> str:
    """A SELECT producing InfluxDB points (measurement, tags JSON, fields JSON, time ms) from one query.

    `tags`/`fields` map names to SQL expressions.
    """
    return (
        f"SELECT CAST({lit(measurement)} AS STRING) AS measurement, {json_object(tags)} AS tags, "
        f"{json_object(fields)} AS fields, CAST({ts} AS BIGINT) AS ts {rest}"
    )


def points_select(points: list[tuple[str, dict[str, str], dict[str, str]]], ts: str, rest: str) -> str:
    """Several points (measurement, tags, fields) per row of one query, via UNNEST.

    One reader of an aggregate view, not one per measurement: separate readers each prune the view
    to the columns they use, so the planner computes a separate aggregation for each."""
    rows = [f"ROW(CAST({lit(m)} AS STRING), {json_object(t)}, {json_object(f)})" for m, t, f in points]
    return (
        f"SELECT pt.measurement, pt.tags, pt.fields, CAST({ts} AS BIGINT) AS ts {rest}\n"
        f"  CROSS JOIN UNNEST(ARRAY[{', '.join(rows)}]) AS pt (measurement, tags, fields)"
    )


def influx_insert(selects: list[str]) -> str:
    """One INSERT for all point queries: one writer batches them all (InfluxWriter.java), not one per metric."""
    union = "\nUNION ALL\n".join(selects)
    return f"INSERT INTO influx_sink SELECT measurement, tags, fields, ts FROM (\n{union}\n)"


def metric_inserts(p: JobParams) -> list[str]:
    s = lit(p.stream)
    end = epoch_ms("window_end")
    kafka_ts_utc = "CAST(kafka_ts AS TIMESTAMP(3))"
    dlq_end = (
        f"(CAST(TIMESTAMPDIFF(SECOND, TIMESTAMP '1970-01-01 00:00:00', {kafka_ts_utc}) AS BIGINT) "
        f"/ {p.window_s} * {p.window_s} + {p.window_s}) * 1000"
    )
    by_window, by_url, by_status = "agg_window", "agg_url", "agg_status"
    latency = {"p50": "p50", "p95": "p95", "p99": "p99", "count": "total"}
    points = [
        point_select(
            "http_counts",
            {"stream": s, "status_code": "CAST(http_status AS STRING)"},
            {"count": "total"},
            end,
            f"FROM {by_status}",
        ),
        points_select(
            [
                (
                    "error_rate",
                    {"stream": s},
                    {
                        "total": "total",
                        "errors_4xx": "e4",
                        "errors_5xx": "e5",
                        "rate_4xx": "CAST(e4 AS DOUBLE) / total",
                        "rate_5xx": "CAST(e5 AS DOUBLE) / total",
                        "error_rate": "CAST(e4 + e5 AS DOUBLE) / total",
                    },
                ),
                ("active_users", {"stream": s}, {"users": "users", "sessions": "sessions"}),
                ("latency", {"stream": s, "url": "CAST('ALL' AS STRING)"}, latency),
            ],
            end,
            f"FROM {by_window}",
        ),
        points_select(
            [
                ("url_counts", {"stream": s, "url": "url"}, {"count": "total", "errors": "errors", "errors_5xx": "e5"}),
                ("latency", {"stream": s, "url": "url"}, latency),
            ],
            end,
            f"FROM {by_url}",
        ),
        # Updating counts (not windows): reads of a window and dead letters go on after it has fired.
        # Each update overwrites the same point, so the last write is the current total.
        point_select("valid_events", {"stream": s}, {"count": "n"}, "win_end", "FROM arrivals"),
        point_select(
            "dlq_events",
            {"stream": s, "reason": "reason"},
            {"count": "COUNT(*)"},
            "win_end",
            f"FROM (SELECT reason, {dlq_end} AS win_end FROM events_checked "
            "WHERE reason IS NOT NULL AND reason <> 'control') GROUP BY win_end, reason",
        ),
    ]
    return [
        influx_insert(points),
        f"""INSERT INTO dead_letters
SELECT reason, payload_text, {lit(p.topic)}, kafka_partition, kafka_offset, kafka_ts
FROM events_checked WHERE reason IS NOT NULL AND reason <> 'control'""",
    ]


def statement(p: JobParams, name: str) -> str:
    """One statement of the job by the view or table it creates (e.g. "agg_status"), as the job runs it."""
    ddl, _ = pipeline_statements(p)
    for s in ddl:
        head = s.strip().split("(")[0].split(" AS")[0].split()
        if head and head[-1] == name:
            return s.strip()
    raise KeyError(f"no statement creates {name!r}")


def pipeline_statements(p: JobParams) -> tuple[list[str], list[str]]:
    """(DDL and views, inserts) of the clickstream job."""
    ddl = [
        *functions_ddl(),
        source_ddl(p),
        checked_view(p),
        *views(p),
        *aggregate_views(p),
        *arrival_views(p),
        dlq_ddl(p),
    ]  # influx_sink is the runner's (runner.sink_ddl), made from the spec's InfluxDB side
    return ddl, metric_inserts(p)
