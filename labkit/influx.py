"""Read metrics from InfluxDB: Flux query builders (pure, unit-tested) and helpers returning DataFrames."""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import pandas as pd

from labkit.errors import ServiceError
from labkit.settings import Settings
from labkit.settings import get as get_settings
from labkit.timing import WINDOW_S

MEASUREMENTS = {
    "http_counts": f"events per HTTP status per {WINDOW_S} s window (tag status_code, field count)",
    "error_rate": "total, errors_4xx, errors_5xx and their shares per window",
    "active_users": "distinct users and sessions per window",
    "url_counts": "events, errors and 5xx per URL per window (tag url)",
    "latency": "latency p50/p95/p99 per URL per window (tag url; url=ALL for the whole site)",
    "valid_events": "valid events read by the job, by the window their event time falls in (updating)",
    "late_events": "derived: valid events read but in no window's count (arrived after it fired), by window",
    "dlq_events": "dead-lettered messages by reason (tag reason), by Kafka-time window",
    "sink_rejections": "points InfluxDB refused (type conflict, retention): per measurement, stamped when refused",
}


def flux_string(s: str) -> str:
    return '"' + s.replace("\\", "\\\\").replace('"', '\\"') + '"'


# Late is measured, not decided upstream (see labkit.jobs.sql.arrival_views): per window, the valid
# events read minus those counted in the window. Only windows at least two fired windows old: the
# read counts arrive in 1 s slices and may trail the window's own count for a moment.
LATE_EVENTS_FLUX = """
  |> filter(fn: (r) => (r._measurement == "valid_events" or r._measurement == "http_counts") and r._field == "count")
  |> group(columns: ["stream", "_measurement", "_time"])
  |> sum()
  |> group(columns: ["stream"])
  |> pivot(rowKey: ["_time"], columnKey: ["_measurement"], valueColumn: "_value")
  |> sort(columns: ["_time"], desc: true)
  |> map(fn: (r) => ({r with fired: if exists r.http_counts then 1 else 0}))
  |> cumulativeSum(columns: ["fired"])
  |> filter(fn: (r) => r.fired >= 2 and exists r.valid_events)
  |> map(fn: (r) => ({_time: r._time, stream: r.stream, _field: "count",
      _value: r.valid_events - (if exists r.http_counts then r.http_counts else 0)}))
  |> sort(columns: ["_time"])"""


@dataclass(frozen=True)
class Query:
    """A Flux query over one measurement, pivoted to one column per field."""

    measurement: str
    start: str = "-1h"
    stop: str | None = None
    fields: tuple[str, ...] = ()
    where: tuple[tuple[str, str], ...] = ()  # tag equality filters
    bucket: str = "clickstream"

    def flux(self) -> str:
        # The default stop is an hour ahead, not now(): a full-speed run back-fills or runs ahead of the
        # wall clock, and Kafka accepts timestamps up to an hour in the future.
        rng = f"start: {self.start}, stop: {self.stop or '1h'}"
        parts = [f"from(bucket: {flux_string(self.bucket)})", f"  |> range({rng})"]
        where = [f"  |> filter(fn: (r) => r[{flux_string(tag)}] == {flux_string(value)})" for tag, value in self.where]
        if self.measurement == "late_events":
            return (
                "\n".join([*parts, *where])
                + LATE_EVENTS_FLUX
                + '\n  |> pivot(rowKey: ["_time"], columnKey: ["_field"], valueColumn: "_value")'
            )
        parts.append(f"  |> filter(fn: (r) => r._measurement == {flux_string(self.measurement)})")
        parts += where
        if self.fields:
            cond = " or ".join(f"r._field == {flux_string(f)}" for f in self.fields)
            parts.append(f"  |> filter(fn: (r) => {cond})")
        parts.append('  |> pivot(rowKey: ["_time"], columnKey: ["_field"], valueColumn: "_value")')
        parts.append('  |> drop(columns: ["_start", "_stop", "_measurement"])')
        return "\n".join(parts)


class Influx:
    """A read client for the lab's bucket (uses the read-only token where the stack has one)."""

    def __init__(self, settings: Settings | None = None, token: str | None = None, role: str = "read") -> None:
        from influxdb_client import InfluxDBClient

        self.settings = settings or get_settings()
        if token is None:  # asked once per settings object, not once per client (labkit.context)
            from labkit import context

            token = context.of(self.settings).token(role)
        self.client = InfluxDBClient(
            url=self.settings.influx, token=token, org=self.settings.influx_org, timeout=30_000
        )

    def flux(self, query: str) -> pd.DataFrame:
        """Run any Flux query; returns one DataFrame (empty if no rows)."""
        from influxdb_client.rest import ApiException
        from urllib3.exceptions import HTTPError

        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                df = self.client.query_api().query_data_frame(query)
        except ApiException as e:
            raise ServiceError(f"InfluxDB rejected the query (HTTP {e.status}): {_message(e)}") from None
        except HTTPError as e:
            raise ServiceError(
                f"InfluxDB is not reachable at {self.settings.influx} ({type(e).__name__}).",
                "start the stack with `labkit up`",
            ) from None
        if isinstance(df, list):
            df = pd.concat(df, ignore_index=True) if df else pd.DataFrame()
        return df.drop(columns=[c for c in ("result", "table") if c in df.columns])

    def query(
        self,
        measurement: str,
        *,
        start: str = "-1h",
        stop: str | None = None,
        stream: str | None = None,
        fields: tuple[str, ...] = (),
        **tags: str,
    ) -> pd.DataFrame:
        where = (("stream", self.settings.scoped(stream or self.settings.topic)), *tags.items())
        q = Query(measurement, start, stop, fields, tuple(where), self.settings.influx_bucket)
        df = self.flux(q.flux())
        if not df.empty:
            df = df.rename(columns={"_time": "time"}).sort_values("time").reset_index(drop=True)
            df = df[_column_order(df)]
        return df

    def close(self) -> None:
        self.client.close()

    def __enter__(self) -> Influx:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _column_order(df: pd.DataFrame) -> list[str]:
    """time, then tags, then fields, each sorted: Flux's column order depends on the plan (pivot, map)."""
    rest = [c for c in df.columns if c != "time"]
    tags = sorted(c for c in rest if df[c].dtype == object)
    return ["time", *tags, *sorted(c for c in rest if c not in tags)]


def _message(e) -> str:
    import json

    try:
        return json.loads(e.body)["message"]
    except Exception:
        return str(e.reason)


# Convenience functions for notebooks: one call, one DataFrame.
def _q(measurement: str, start: str, stream: str | None, settings: Settings | None, **tags) -> pd.DataFrame:
    with Influx(settings) as db:
        return db.query(measurement, start=start, stream=stream, **tags)


def http_counts(start: str = "-15m", stream: str | None = None, settings: Settings | None = None) -> pd.DataFrame:
    return _q("http_counts", start, stream, settings)


def error_rate(start: str = "-15m", stream: str | None = None, settings: Settings | None = None) -> pd.DataFrame:
    return _q("error_rate", start, stream, settings)


def active_users(start: str = "-15m", stream: str | None = None, settings: Settings | None = None) -> pd.DataFrame:
    return _q("active_users", start, stream, settings)


def url_counts(start: str = "-15m", stream: str | None = None, settings: Settings | None = None) -> pd.DataFrame:
    return _q("url_counts", start, stream, settings)


def latency(
    start: str = "-15m", stream: str | None = None, url: str | None = None, settings: Settings | None = None
) -> pd.DataFrame:
    return _q("latency", start, stream, settings, **({"url": url} if url else {}))


def late_events(start: str = "-15m", stream: str | None = None, settings: Settings | None = None) -> pd.DataFrame:
    return _q("late_events", start, stream, settings)


def valid_events(start: str = "-15m", stream: str | None = None, settings: Settings | None = None) -> pd.DataFrame:
    return _q("valid_events", start, stream, settings)


def dlq_events(start: str = "-15m", stream: str | None = None, settings: Settings | None = None) -> pd.DataFrame:
    return _q("dlq_events", start, stream, settings)


def top_failing_urls(
    start: str = "-15m", n: int = 10, stream: str | None = None, settings: Settings | None = None
) -> pd.DataFrame:
    """URLs with the most 4xx+5xx responses over the range."""
    df = url_counts(start, stream, settings)
    if df.empty:
        return pd.DataFrame(columns=["url", "count", "errors", "errors_5xx", "error_rate"])
    agg = df.groupby("url")[["count", "errors", "errors_5xx"]].sum()
    agg["error_rate"] = agg["errors"] / agg["count"]
    return agg.sort_values(["errors", "count"], ascending=False).head(n).reset_index()


def in_run(df: pd.DataFrame, ledger) -> pd.DataFrame:
    """The rows of `df` (with a `time` column of window ends) in the windows of the producer run `ledger`
    describes: a topic keeps the points of its earlier runs, and charts and checks of a drill want this one."""
    if df is None or df.empty:
        return df
    windows = [w for w, _ in ledger.on_time] + list(ledger.late)
    if not windows:
        return df.iloc[0:0]
    ends = df["time"].astype("int64") // 10**6
    return df[ends.between(min(windows), max(windows))].reset_index(drop=True)
