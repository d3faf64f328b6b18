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


def test_tokens_are_least_privilege(settings, stack):
    with InfluxDBClient(url=settings.influx, token=stack.influx_token("read"), org=settings.influx_org) as c:
        with pytest.raises(ApiException) as e:
            c.write_api(write_options=SYNCHRONOUS).write(settings.influx_bucket, record="smoke value=1")
        assert e.value.status in (401, 403, 404)
    with InfluxDBClient(url=settings.influx, token=stack.influx_token("write"), org=settings.influx_org) as c:
        with pytest.raises(ApiException) as e:
            c.query_api().query(f'from(bucket: "{settings.influx_bucket}") |> range(start: -1m)')
        assert e.value.status in (401, 403, 404)
