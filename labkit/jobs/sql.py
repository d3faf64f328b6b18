"""The clickstream job as Flink SQL: validation, dead letters, event-time windows, InfluxDB rows.

Pure string building, unit-tested; `labkit.jobs.control` turns the result into a job spec.
Everything per event (parsing, validation, windows) runs in the JVM; Python only sees the
aggregated rows on their way to InfluxDB.
"""

from __future__ import annotations

from dataclasses import dataclass

METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS")
MAX_PAYLOAD = 16384
MAX_LATENCY_MS = 600_000


@dataclass(frozen=True)
class JobParams:
    bootstrap: str
    topic: str = "clickstream_events"
    dlq_topic: str = "clickstream_dlq"
    group_id: str = "labkit-clickstream"
    window_s: int = 10
    watermark_delay_s: int = 5
    idle_timeout_s: int = 5
    startup: str = "group-offsets"  # or earliest-offset, latest-offset, timestamp
    startup_timestamp_ms: int | None = None
    bounded: bool = False  # stop at the offsets that are latest when the job starts (previews)
    max_past_days: int = 7
    max_future_h: int = 1

    @property
    def stream(self) -> str:
        return self.topic


def lit(s: str) -> str:
    """A SQL string literal."""
    return "'" + s.replace("'", "''") + "'"


def epoch_ms(ts_expr: str) -> str:
    """Epoch milliseconds of a TIMESTAMP(3) in the UTC session time zone (whole seconds: windows align)."""
    return f"CAST(TIMESTAMPDIFF(SECOND, TIMESTAMP '1970-01-01 00:00:00', {ts_expr}) AS BIGINT) * 1000"


def source_ddl(p: JobParams, name: str = "events_raw") -> str:
    # Computed columns cannot refer to each other, hence the expression is repeated.
    ts = "TRY_CAST(JSON_VALUE(payload, '$.event_timestamp') AS BIGINT)"
    ts_ok = (
        f"{ts} BETWEEN 0 AND 32503680000000 AND TO_TIMESTAMP_LTZ({ts}, 3) "
        f"BETWEEN kafka_ts - INTERVAL '{p.max_past_days}' DAY AND kafka_ts + INTERVAL '{p.max_future_h}' HOUR"
    )
    extra = ""
    if p.startup_timestamp_ms is not None:
        extra += f"\n  'scan.startup.timestamp-millis' = '{p.startup_timestamp_ms}',"
    if p.bounded:
        extra += "\n  'scan.bounded.mode' = 'latest-offset',"
    return f"""
CREATE TEMPORARY TABLE {name} (
  payload STRING,
  kafka_ts TIMESTAMP_LTZ(3) METADATA FROM 'timestamp' VIRTUAL,
  kafka_partition INT METADATA FROM 'partition' VIRTUAL,
  kafka_offset BIGINT METADATA FROM 'offset' VIRTUAL,
  ts_raw AS {ts},
  -- Event time when plausible, else the record's Kafka timestamp: a bad timestamp must never
  -- drag the watermark (and every window) far into the future.
  rowtime AS CASE WHEN {ts_ok} THEN TO_TIMESTAMP_LTZ({ts}, 3) ELSE kafka_ts END,
  WATERMARK FOR rowtime AS rowtime - INTERVAL '{p.watermark_delay_s}' SECOND
) WITH (
  'connector' = 'kafka',
  'topic' = {lit(p.topic)},
  'properties.bootstrap.servers' = {lit(p.bootstrap)},
  'properties.group.id' = {lit(p.group_id)},
  'properties.auto.offset.reset' = 'earliest',
  'scan.startup.mode' = {lit(p.startup)},{extra}
  'scan.watermark.idle-timeout' = '{p.idle_timeout_s} s',
  -- Watermarks are per partition and a fetch is emitted partition by partition: small fetches keep
  -- the partitions' event times close, so "late" means late in event time, not in fetch order.
  'properties.max.partition.fetch.bytes' = '65536',
  'format' = 'raw'
)"""


def _missing_or(field: str, wrong: str) -> str:
    return f"CASE WHEN JSON_EXISTS(payload, '$.{field}') THEN {lit(wrong)} ELSE 'missing field: {field}' END"


def checked_view(p: JobParams, source: str = "events_raw") -> str:
    methods = ", ".join(lit(m) for m in METHODS)
    # CASE is evaluated in order and stops at the first match, so JSON_EXISTS only runs for bad rows.
    return f"""
CREATE TEMPORARY VIEW events_checked AS
SELECT *,
  CASE
    WHEN payload IS NULL THEN 'null value'
    WHEN CHAR_LENGTH(payload) = 0 THEN 'empty message'
    WHEN CHAR_LENGTH(payload) > {MAX_PAYLOAD} THEN 'oversized payload (> {MAX_PAYLOAD} bytes)'
    WHEN NOT (payload IS JSON) THEN 'malformed JSON'
    WHEN NOT (payload IS JSON OBJECT) THEN 'not a JSON object'
    WHEN event_type = 'watermark' THEN 'control'
    -- The raw format keeps the bytes; invalid UTF-8 shows up as U+FFFD once a field is decoded.
    WHEN POSITION(U&'\\FFFD' IN CONCAT_WS('|', user_id, session_id, url, http_method, country, device)) > 0
      THEN 'invalid UTF-8'
    WHEN user_id IS NULL OR CHAR_LENGTH(user_id) = 0 THEN {_missing_or("user_id", "user_id must be a string")}
    WHEN session_id IS NULL OR CHAR_LENGTH(session_id) = 0 THEN {_missing_or("session_id", "session_id must be a string")}
    WHEN url IS NULL OR url NOT LIKE '/%' THEN {_missing_or("url", "url must be a string starting with /")}
    WHEN http_method IS NULL OR http_method NOT IN ({methods})
      THEN {_missing_or("http_method", "http_method must be one of " + " ".join(METHODS))}
    WHEN http_status IS NULL THEN {_missing_or("http_status", "http_status must be an integer")}
    WHEN http_status NOT BETWEEN 100 AND 599 THEN 'http_status out of range (100-599)'
    WHEN latency_ms IS NULL OR latency_ms < 0 OR latency_ms > {MAX_LATENCY_MS}
      THEN {_missing_or("latency_ms", f"latency_ms must be a number between 0 and {MAX_LATENCY_MS}")}
    WHEN ts_raw IS NULL THEN {_missing_or("event_timestamp", "event_timestamp must be epoch milliseconds")}
    WHEN TO_TIMESTAMP_LTZ(ts_raw, 3) < kafka_ts - INTERVAL '{p.max_past_days}' DAY
      OR ts_raw < 0 THEN 'event_timestamp too far in the past'
    WHEN ts_raw > 32503680000000 OR TO_TIMESTAMP_LTZ(ts_raw, 3) > kafka_ts + INTERVAL '{p.max_future_h}' HOUR
      THEN 'event_timestamp too far in the future'
    ELSE CAST(NULL AS STRING)
  END AS reason
FROM (
  SELECT payload, kafka_ts, kafka_partition, kafka_offset, ts_raw, rowtime,
    JSON_VALUE(payload, '$.event_type') AS event_type,
    JSON_VALUE(payload, '$.user_id') AS user_id,
    JSON_VALUE(payload, '$.session_id') AS session_id,
    JSON_VALUE(payload, '$.url') AS url,
    JSON_VALUE(payload, '$.http_method') AS http_method,
    TRY_CAST(JSON_VALUE(payload, '$.http_status') AS INT) AS http_status,
    TRY_CAST(JSON_VALUE(payload, '$.latency_ms') AS DOUBLE) AS latency_ms,
    COALESCE(JSON_VALUE(payload, '$.country'), 'unknown') AS country,
    COALESCE(JSON_VALUE(payload, '$.device'), 'unknown') AS device
  FROM {source}
)"""


# JSON_VALUE ... RETURNING DOUBLE/INT throws ClassCastException on some inputs (e.g. an integer
# returned as DOUBLE) despite NULL ON ERROR; TRY_CAST over the string value is safe.


def views() -> list[str]:
    return [
        """
CREATE TEMPORARY VIEW events_valid AS
SELECT user_id, session_id, url, http_method, http_status, latency_ms, country, device, ts_raw, rowtime
FROM events_checked WHERE reason IS NULL""",
        # A row at or behind the watermark would be dropped by the window operator; route it to the
        # late count instead. The window operator's watermark is never ahead of this one, so every
        # row that passes here is counted in its window.
        """
CREATE TEMPORARY VIEW events_on_time AS
SELECT * FROM events_valid WHERE CURRENT_WATERMARK(rowtime) IS NULL OR rowtime > CURRENT_WATERMARK(rowtime)""",
        """
CREATE TEMPORARY VIEW events_late AS
SELECT * FROM events_valid WHERE rowtime <= CURRENT_WATERMARK(rowtime)""",
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
  'properties.bootstrap.servers' = {lit(p.bootstrap)},
  'sink.delivery-guarantee' = 'at-least-once',
  'format' = 'json',
  'json.encode.ignore-null-fields' = 'false'
)"""


def sink_ddl() -> str:
    return "CREATE TEMPORARY TABLE influx_sink (written INT) WITH ('connector' = 'blackhole')"


def window(p: JobParams, source: str = "events_on_time") -> str:
    return f"TABLE(TUMBLE(TABLE {source}, DESCRIPTOR(rowtime), INTERVAL '{p.window_s}' SECOND))"


def point_select(measurement: str, tags: dict[str, str], fields: dict[str, str], ts: str, rest: str) -> str:
    """A SELECT producing InfluxDB points (measurement, tags JSON, fields JSON, time ms) from one query.

    `tags`/`fields` map names to SQL expressions.
    """
    tag_json = ", ".join(f"KEY {lit(k)} VALUE {v}" for k, v in tags.items())
    field_json = ", ".join(f"KEY {lit(k)} VALUE {v}" for k, v in fields.items())
    return (
        f"SELECT CAST({lit(measurement)} AS STRING) AS measurement, JSON_OBJECT({tag_json}) AS tags, "
        f"JSON_OBJECT({field_json}) AS fields, CAST({ts} AS BIGINT) AS ts {rest}"
    )


def influx_insert(selects: list[str]) -> str:
    """One INSERT for all point queries: a single Python operator writes them (one worker, not one per metric)."""
    union = "\nUNION ALL\n".join(selects)
    return f"INSERT INTO influx_sink SELECT influx_write(measurement, tags, fields, ts) FROM (\n{union}\n)"


def metric_inserts(p: JobParams) -> list[str]:
    s = lit(p.stream)
    w = window(p)
    end = epoch_ms("window_end")
    err4 = "SUM(CASE WHEN http_status BETWEEN 400 AND 499 THEN 1 ELSE 0 END)"
    err5 = "SUM(CASE WHEN http_status >= 500 THEN 1 ELSE 0 END)"
    win_end_of = f"(ts_raw - MOD(ts_raw, {p.window_s * 1000}) + {p.window_s * 1000})"
    kafka_ts_utc = "CAST(kafka_ts AS TIMESTAMP(3))"
    dlq_end = (
        f"(CAST(TIMESTAMPDIFF(SECOND, TIMESTAMP '1970-01-01 00:00:00', {kafka_ts_utc}) AS BIGINT) "
        f"/ {p.window_s} * {p.window_s} + {p.window_s}) * 1000"
    )
    points = [
        point_select(
            "http_counts",
            {"stream": s, "status_code": "CAST(http_status AS STRING)"},
            {"count": "COUNT(*)"},
            end,
            f"FROM {w} GROUP BY window_start, window_end, http_status",
        ),
        point_select(
            "error_rate",
            {"stream": s},
            {
                "total": "COUNT(*)",
                "errors_4xx": err4,
                "errors_5xx": err5,
                "rate_4xx": f"CAST({err4} AS DOUBLE) / COUNT(*)",
                "rate_5xx": f"CAST({err5} AS DOUBLE) / COUNT(*)",
                "error_rate": f"CAST({err4} + {err5} AS DOUBLE) / COUNT(*)",
            },
            end,
            f"FROM {w} GROUP BY window_start, window_end",
        ),
        point_select(
            "active_users",
            {"stream": s},
            {"users": "COUNT(DISTINCT user_id)", "sessions": "COUNT(DISTINCT session_id)"},
            end,
            f"FROM {w} GROUP BY window_start, window_end",
        ),
        point_select(
            "url_counts",
            {"stream": s, "url": "url"},
            {"count": "COUNT(*)", "errors": f"{err4} + {err5}", "errors_5xx": err5},
            end,
            f"FROM {w} GROUP BY window_start, window_end, url",
        ),
        point_select(
            "latency",
            {"stream": s, "url": "url"},
            {
                "p50": "PERCENTILE(latency_ms, 0.5)",
                "p95": "PERCENTILE(latency_ms, 0.95)",
                "p99": "PERCENTILE(latency_ms, 0.99)",
                "count": "COUNT(*)",
            },
            end,
            f"FROM {w} GROUP BY window_start, window_end, url",
        ),
        point_select(
            "latency",
            {"stream": s, "url": "CAST('ALL' AS STRING)"},
            {
                "p50": "PERCENTILE(latency_ms, 0.5)",
                "p95": "PERCENTILE(latency_ms, 0.95)",
                "p99": "PERCENTILE(latency_ms, 0.99)",
                "count": "COUNT(*)",
            },
            end,
            f"FROM {w} GROUP BY window_start, window_end",
        ),
        # Updating counts (not windows): a late row or a dead letter may arrive at any time. Each
        # update overwrites the same point, so the last write is the current total.
        point_select(
            "late_events",
            {"stream": s},
            {"count": "COUNT(*)"},
            "win_end",
            f"FROM (SELECT {win_end_of} AS win_end FROM events_late) GROUP BY win_end",
        ),
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
SELECT reason, payload, {lit(p.topic)}, kafka_partition, kafka_offset, kafka_ts
FROM events_checked WHERE reason IS NOT NULL AND reason <> 'control'""",
    ]


def pipeline_statements(p: JobParams) -> tuple[list[str], list[str]]:
    """(DDL and views, inserts) of the clickstream job."""
    ddl = [source_ddl(p), checked_view(p), *views(), dlq_ddl(p), sink_ddl()]
    return ddl, metric_inserts(p)
