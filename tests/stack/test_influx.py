import time
import uuid

import pytest
from influxdb_client import InfluxDBClient, Point
from influxdb_client.client.write_api import SYNCHRONOUS
from influxdb_client.rest import ApiException

from labkit.influx import Influx

pytestmark = pytest.mark.stack


def test_point_written_comes_back_from_flux(settings, stack):
    tag = uuid.uuid4().hex[:8]
    now_ms = int(time.time() * 1000)
    with InfluxDBClient(url=settings.influx, token=stack.influx_token("write"), org=settings.influx_org) as c:
        c.write_api(write_options=SYNCHRONOUS).write(
            settings.influx_bucket, record=Point("smoke").tag("stream", tag).field("value", 42.5).time(now_ms, "ms")
        )
    with Influx(settings) as db:  # read-only token
        df = db.query("smoke", start="-5m", stream=tag)
    assert len(df) == 1 and df["value"].iloc[0] == 42.5


def test_query_columns_are_time_tags_fields_in_a_stable_order(settings, stack):
    # Flux orders columns by plan (pivot, map); replay comparisons and users need one order.
    tag = uuid.uuid4().hex[:8]
    t0 = (int(time.time()) // 10 - 30) * 10_000
    points = [
        Point("http_counts").tag("stream", tag).tag("status", "200").field("count", 5).time(t0 + i * 10_000, "ms")
        for i in range(4)
    ] + [Point("valid_events").tag("stream", tag).field("count", 7).time(t0 + i * 10_000, "ms") for i in range(4)]
    points.append(Point("smoke").tag("stream", tag).tag("b", "x").field("z", 1.0).field("a", 2.0).time(t0, "ms"))
    with InfluxDBClient(url=settings.influx, token=stack.influx_token("write"), org=settings.influx_org) as c:
        c.write_api(write_options=SYNCHRONOUS).write(settings.influx_bucket, record=points)
    with Influx(settings) as db:
        smoke = db.query("smoke", start="-1h", stream=tag)
        late = db.query("late_events", start="-1h", stream=tag)
    assert list(smoke.columns) == ["time", "b", "stream", "a", "z"]
    assert list(late.columns) == ["time", "stream", "count"]
    # windows at least two fired windows old: 7 read, 5 counted -> 2 late each
    assert late["count"].tolist() == [2, 2, 2]


def test_tokens_are_least_privilege(settings, stack):
    with InfluxDBClient(url=settings.influx, token=stack.influx_token("read"), org=settings.influx_org) as c:
        with pytest.raises(ApiException) as e:
            c.write_api(write_options=SYNCHRONOUS).write(settings.influx_bucket, record="smoke value=1")
        assert e.value.status in (401, 403, 404)
    with InfluxDBClient(url=settings.influx, token=stack.influx_token("write"), org=settings.influx_org) as c:
        with pytest.raises(ApiException) as e:
            c.query_api().query(f'from(bucket: "{settings.influx_bucket}") |> range(start: -1m)')
        assert e.value.status in (401, 403, 404)
