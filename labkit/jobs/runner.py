"""The PyFlink program labkit submits: runs a job spec (SQL statements) with the InfluxDB sink UDF.

This file is shipped to the cluster by `flink run -py`, so it imports nothing from labkit: the
TaskManager's Python may not have labkit installed (compose image). Per-event work stays in Flink SQL
(JVM); Python only writes the aggregated rows to InfluxDB, in Arrow batches.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import threading

import pandas as pd
from pyflink.table import DataTypes, EnvironmentSettings, TableEnvironment
from pyflink.table.udf import ScalarFunction, udf

VIEW = re.compile(r"^\s*CREATE TEMPORARY VIEW (\w+) AS\s+(.*)$", re.S | re.I)


class InfluxWrite(ScalarFunction):
    """Writes each row as an InfluxDB point; returns 1 per row written.

    A window's point is identified by measurement, tags and the window end, so a replay overwrites
    instead of double counting. Writes block and retry while InfluxDB is away (backpressure), and a
    bundle is flushed before each checkpoint completes, so no window is lost.
    """

    def __init__(self, url: str, org: str, bucket: str, token_file: str, token_env: str) -> None:
        self.url, self.org, self.bucket, self.token_file, self.token_env = url, org, bucket, token_file, token_env

    def open(self, function_context) -> None:
        from influxdb_client import InfluxDBClient
        from influxdb_client.client.write_api import SYNCHRONOUS

        token = os.environ.get(self.token_env)
        if self.token_file and os.path.exists(self.token_file):
            with open(self.token_file) as f:
                token = f.read().strip()
        self.client = InfluxDBClient(url=self.url, token=token, org=self.org, timeout=10_000)
        self.write_api = self.client.write_api(write_options=SYNCHRONOUS)

    def close(self) -> None:
        self.client.close()

    def eval(self, measurement: pd.Series, tags: pd.Series, fields: pd.Series, ts: pd.Series) -> pd.Series:
        from influxdb_client import Point, WritePrecision

        n = max(len(a) for a in (measurement, tags, fields, ts) if isinstance(a, pd.Series))
        # A literal argument arrives as a scalar, not a Series.
        cols = [a if isinstance(a, pd.Series) else [a] * n for a in (measurement, tags, fields, ts)]
        points = []
        for m, t, f, when in zip(*cols, strict=False):
            p = Point(m).time(int(when), WritePrecision.MS)
            for k, v in json.loads(t).items():
                p = p.tag(k, "" if v is None else str(v))
            for k, v in json.loads(f).items():
                if v is not None:
                    p = p.field(k, float(v) if isinstance(v, float) else v)
            points.append(p)
        self._write(points)
        return pd.Series([1] * len(points), dtype="int32")

    def _write(self, points: list) -> None:
        """Write with retries for as long as InfluxDB is away (tenacity: exponential back-off up to 5 s, no
        limit): the blocked sink is back pressure, and the job's checkpoints tolerate the wait. A batch that
        is too large (413) is split in halves; points refused for what they hold (400, 422) are recorded and
        skipped (`_refused`); a rejected request (token, bucket) fails the job with InfluxDB's message. Rewrites after a retry overwrite the same points, so they cannot double count."""
        from influxdb_client import WritePrecision
        from tenacity import Retrying, retry_if_exception, stop_never, wait_exponential

        for attempt in Retrying(
            retry=retry_if_exception(_transient), wait=wait_exponential(multiplier=0.5, max=5), stop=stop_never
        ):
            with attempt:
                try:
                    self.write_api.write(bucket=self.bucket, record=points, write_precision=WritePrecision.MS)
                except Exception as e:
                    status = getattr(e, "status", None)
                    if status == 413 and len(points) > 1:
                        self._write(points[: len(points) // 2])
                        self._write(points[len(points) // 2 :])
                        return
                    if status in REFUSED_POINTS:
                        self._refused(points, status, e)
                        return
                    if status in REJECTED:
                        raise RuntimeError(f"InfluxDB rejected the write (HTTP {status}): {e}") from None
                    raise

    def _refused(self, points: list, status: int, error: Exception) -> None:
        """InfluxDB refused points of a batch for what they hold (a field of another type than the stored one,
        a time beyond the bucket's retention), and wrote the rest: retrying would be refused again, and failing
        the job would restart it into the same refusal forever. So the job goes on, and the refusal is recorded
        as a point of its own (`sink_rejections`, per measurement and stream, stamped now, with the refused
        points' time span and InfluxDB's message), which `verify` and `labkit status` report."""
        import time as _time

        from influxdb_client import Point, WritePrecision

        body = getattr(error, "body", None) or str(error)
        try:
            message = json.loads(body).get("message", body)
        except (ValueError, TypeError, AttributeError):
            message = str(body)
        groups: dict[tuple[str, str], list[int]] = {}
        for p in points:
            key = (getattr(p, "_name", "?"), str(getattr(p, "_tags", {}).get("stream", "")))
            groups.setdefault(key, []).append(int(getattr(p, "_time", 0) or 0))
        now = int(_time.time() * 1000)
        records = [
            Point("sink_rejections")
            .tag("measurement", m)
            .tag("stream", stream)
            .tag("status", str(status))
            .field("points", len(times))
            .field("first_ms", min(times))
            .field("last_ms", max(times))
            .field("message", message[:500])
            .time(now, WritePrecision.MS)
            for (m, stream), times in groups.items()
        ]
        try:
            self.write_api.write(bucket=self.bucket, record=records, write_precision=WritePrecision.MS)
        except Exception as e:
            _log(f"labkit sink: could not record a refusal (HTTP {status}: {message}): {e}")


def _log(text: str) -> None:
    """A line for the worker's log. Never raises: the Python worker's stderr can be closed, and an error here
    would count as a transient write failure and retry the refused batch forever (it did)."""
    import contextlib
    import sys

    with contextlib.suppress(Exception):
        print(text, file=sys.stderr, flush=True)


# InfluxDB refused points for their content (422: field type conflict, beyond retention; 400: a point it cannot
# parse) and wrote the others: recorded and skipped, never retried or raised
REFUSED_POINTS = (400, 422)
REJECTED = (401, 403, 404, 413)  # the request itself is wrong (token, bucket): retrying cannot help


def _transient(e: BaseException) -> bool:
    """InfluxDB down, restarting or overloaded (connection errors, 5xx, 429): wait and try again."""
    return not isinstance(e, RuntimeError) and getattr(e, "status", None) not in REJECTED + REFUSED_POINTS


def custom_metric_insert(t_env, measurement: str, stream: str, sql: str) -> str:
    """INSERT writing a user's aggregation: STRING columns become tags, numeric columns fields,
    `window_end` the point's time. Built from the query's schema, so any windowed SELECT works."""
    schema = t_env.sql_query(sql).get_schema()
    names, types = schema.get_field_names(), [str(t) for t in schema.get_field_data_types()]
    if "window_end" not in names:
        raise ValueError("a custom metric must select window_end (the end of its window) to time its points")
    tags, fields = [f"KEY 'stream' VALUE '{stream}'"], []
    for n, t in zip(names, types, strict=False):
        if n in ("window_end", "window_start", "window_time"):
            continue
        if t.startswith(("VARCHAR", "STRING", "CHAR")):
            tags.append(f"KEY '{n}' VALUE `{n}`")
        elif t.startswith(("BIGINT", "INT", "SMALLINT", "TINYINT", "DOUBLE", "FLOAT", "DECIMAL", "BOOLEAN")):
            fields.append(f"KEY '{n}' VALUE `{n}`")
    if not fields:
        raise ValueError("a custom metric needs at least one numeric column (the value to store)")
    ts = "CAST(TIMESTAMPDIFF(SECOND, TIMESTAMP '1970-01-01 00:00:00', window_end) AS BIGINT) * 1000"
    return (
        f"INSERT INTO influx_sink SELECT influx_write('{measurement}', JSON_OBJECT({', '.join(tags)}), "
        f"JSON_OBJECT({', '.join(fields)}), {ts}) FROM (\n{sql}\n)"
    )


def _jsonable(x):
    return x if isinstance(x, (int, float, str, type(None))) else str(x)


def row_kind_column(names: list[str]) -> str:
    """The name the preview gives each row's kind (+I, -U, +U, -D): `op`, unless the query has a column of that
    name already, then `row_kind` (then `_row_kind`, ...)."""
    for name in ("op", "row_kind"):
        if name not in names:
            return name
    name = "row_kind"
    while name in names:
        name = "_" + name
    return name


def plain_times(t_env, sql: str):
    """`sql` as a Table whose TIMESTAMP_LTZ columns (a rowtime, a proctime, TO_TIMESTAMP_LTZ(...)) are cast to
    TIMESTAMP(3), the instant as the session's time zone reads it: PyFlink cannot hand an LTZ value to Python (the
    collect fails in PythonBridgeUtils.getPickledBytesFromRow), and a query that selects `rowtime` is natural."""
    table = t_env.sql_query(sql)
    cols = table._j_table.getResolvedSchema().getColumns()
    out, cast = [], False
    for c in cols:
        name = "`" + c.getName().replace("`", "``") + "`"
        if c.getDataType().getLogicalType().getTypeRoot().name() == "TIMESTAMP_WITH_LOCAL_TIME_ZONE":
            out.append(f"CAST({name} AS TIMESTAMP(3)) AS {name}")
            cast = True
        else:
            out.append(name)
    return t_env.sql_query(f"SELECT {', '.join(out)} FROM (\n{sql}\n)") if cast else table


def preview(t_env, sql: str, limit: int, timeout_s: float, row_kind: bool = False, plain_time: bool = False) -> None:
    """Bounded preview in this process (a local MiniCluster): rows as JSON lines, then stop. A watchdog
    cancels the job at the deadline even when no row ever comes, so the caller always gets an answer.

    `row_kind`: each row also carries its kind, as Flink's changelog spells it (+I insert, -U the row an update
    retracts, +U the row it adds, -D delete), in a first column named by `row_kind_column`. Without it, rows of
    an updating result come out as if every one were an insert (the protocol as it always was).
    `plain_time`: TIMESTAMP_LTZ columns come out as timestamps (`plain_times`) instead of failing the run."""
    table = plain_times(t_env, sql) if plain_time else t_env.sql_query(sql)
    names = table.get_schema().get_field_names()
    kind = row_kind_column(names) if row_kind else None
    print("LABKIT_COLUMNS " + json.dumps([kind, *names] if kind else names), flush=True)  # even an empty result
    result = table.execute()
    timed_out = threading.Event()

    def stop() -> None:
        timed_out.set()
        print("LABKIT_PREVIEW_TIMEOUT", flush=True)
        result.get_job_client().cancel()

    watchdog = threading.Timer(timeout_s, stop)
    watchdog.daemon = True
    watchdog.start()
    try:
        with result.collect() as rows:
            for i, row in enumerate(rows):
                values = dict(zip(names, map(_jsonable, row), strict=False))
                if kind:
                    values = {kind: str(row.get_row_kind()), **values}  # pyflink's RowKind prints as +I/-U/+U/-D
                print("LABKIT_ROW " + json.dumps(values), flush=True)
                if i + 1 >= limit or timed_out.is_set():
                    break
    except Exception:
        if not timed_out.is_set():  # a cancelled job ends the iterator with an error: expected then
            raise
    finally:
        watchdog.cancel()


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--spec", required=True, help="job spec JSON written by labkit")
    with open(ap.parse_args().spec) as f:
        spec = json.load(f)
    t_env = TableEnvironment.create(EnvironmentSettings.in_streaming_mode())
    conf = t_env.get_config()
    for k, v in spec["config"].items():  # a preview's spec comes without checkpoints (custom.preview_config)
        conf.set(k, str(v))
    influx = spec["influx"]
    t_env.create_temporary_function(
        "influx_write",
        udf(
            InfluxWrite(influx["url"], influx["org"], influx["bucket"], influx["token_file"], influx["token_env"]),
            input_types=[DataTypes.STRING(), DataTypes.STRING(), DataTypes.STRING(), DataTypes.BIGINT()],
            result_type=DataTypes.INT(),
            func_type="pandas",
        ),
    )
    for stmt in spec["ddl"]:
        m = VIEW.match(stmt)
        if m:
            # A view made from a Table object is one node that every reader shares: the planner
            # optimizes it once as a common block instead of inlining (and re-running) it per INSERT.
            t_env.create_temporary_view(m.group(1), t_env.sql_query(m.group(2)))
        else:
            t_env.execute_sql(stmt)
    custom = spec.get("custom")
    if custom and spec.get("preview"):
        p = spec["preview"]
        preview(
            t_env,
            custom["sql"],
            p["limit"],
            p["timeout_s"],
            row_kind=bool(p.get("row_kind")),
            plain_time=bool(p.get("plain_time")),
        )
        return
    inserts = list(spec.get("inserts", []))
    if custom:
        inserts.append(custom_metric_insert(t_env, custom["measurement"], custom["stream"], custom["sql"]))
    stmts = t_env.create_statement_set()
    for ins in inserts:
        stmts.add_insert_sql(ins)
    stmts.execute()


if __name__ == "__main__":
    main()
