"""The PyFlink program labkit submits: runs a job spec (SQL statements) with the InfluxDB sink UDF.

This file is shipped to the cluster by `flink run -py`, so it imports nothing from labkit: the
TaskManager's Python may not have labkit installed (compose image). Per-event work stays in Flink SQL
(JVM); Python only writes the aggregated rows to InfluxDB, in Arrow batches.
"""

from __future__ import annotations

import argparse
import json
import os
import time

import pandas as pd
from pyflink.table import DataTypes, EnvironmentSettings, TableEnvironment
from pyflink.table.udf import ScalarFunction, udf


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
        for m, t, f, when in zip(*cols):
            p = Point(m).time(int(when), WritePrecision.MS)
            for k, v in json.loads(t).items():
                p = p.tag(k, "" if v is None else str(v))
            for k, v in json.loads(f).items():
                if v is not None:
                    p = p.field(k, float(v) if isinstance(v, float) else v)
            points.append(p)
        delay = 0.5
        while True:
            try:
                self.write_api.write(bucket=self.bucket, record=points, write_precision=WritePrecision.MS)
                break
            except Exception as e:  # InfluxDB down or restarting: wait and retry (backpressure)
                status = getattr(e, "status", None)
                if status in (400, 401, 403, 404, 422):
                    raise RuntimeError(f"InfluxDB rejected the write (HTTP {status}): {e}") from None
                time.sleep(delay)
                delay = min(delay * 2, 5.0)
        return pd.Series([1] * len(points), dtype="int32")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--spec", required=True, help="job spec JSON written by labkit")
    spec = json.load(open(ap.parse_args().spec))
    t_env = TableEnvironment.create(EnvironmentSettings.in_streaming_mode())
    conf = t_env.get_config()
    for k, v in spec["config"].items():
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
        t_env.execute_sql(stmt)
    if spec.get("preview"):
        # Bounded preview: print rows as JSON lines for labkit to read, then stop.
        with t_env.execute_sql(spec["preview"]).collect() as rows:
            names = None
            deadline = time.time() + spec.get("preview_timeout", 30)
            n = 0
            for row in rows:
                if names is None:
                    names = spec["preview_columns"]
                print("LABKIT_ROW " + json.dumps(dict(zip(names, [str(x) if not isinstance(x, (int, float, str, type(None))) else x for x in row]))), flush=True)
                n += 1
                if n >= spec.get("preview_limit", 50) or time.time() > deadline:
                    break
        return
    stmts = t_env.create_statement_set()
    for ins in spec["inserts"]:
        stmts.add_insert_sql(ins)
    stmts.execute()


if __name__ == "__main__":
    main()
