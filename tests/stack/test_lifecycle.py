"""Stack control on the real local stack: idempotent up, status, crash detection, data kept over down/up,
and the documented errors for a taken port and a missing java. Runs last in tests/stack (it restarts all)."""

import os
import shutil
import socket
import subprocess
import time
import uuid

import pytest
from influxdb_client import InfluxDBClient, Point
from influxdb_client.client.write_api import SYNCHRONOUS
from kafka import KafkaConsumer, KafkaProducer

from labkit.influx import Influx
from tests.cli import LABKIT

pytestmark = [pytest.mark.stack, pytest.mark.serial]  # stops or kills the shared stack


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _other_stack_env(tmp_path, **extra) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith("LABKIT_")}
    env.update(
        LABKIT_HOME=str(tmp_path / "home"),
        LABKIT_KAFKA_PORT=str(_free_port()),
        LABKIT_KAFKA_CONTROLLER_PORT=str(_free_port()),
        LABKIT_FLINK_REST_PORT=str(_free_port()),
        LABKIT_FLINK_RPC_PORT=str(_free_port()),
        LABKIT_INFLUX_PORT=str(_free_port()),
    )
    env.update(extra)
    return env


def test_port_taken_is_reported_by_name_before_anything_starts(tmp_path):
    with socket.socket() as blocker:
        blocker.bind(("127.0.0.1", 0))
        blocker.listen()
        port = blocker.getsockname()[1]
        r = subprocess.run(
            [LABKIT, "up"],
            env=_other_stack_env(tmp_path, LABKIT_INFLUX_PORT=str(port)),
            capture_output=True,
            text=True,
            timeout=120,
        )
    assert r.returncode == 2
    assert f"port {port} for influxdb (LABKIT_INFLUX_PORT) is already in use" in r.stderr
    assert "fix:" in r.stderr and "Traceback" not in r.stderr
    assert not (tmp_path / "home" / "run" / "kafka.pid").exists()  # nothing was started


def test_missing_java_is_named_with_how_to_get_it(tmp_path):
    bindir = tmp_path / "bin"
    bindir.mkdir()
    for tool in ("bash", "sh", "env", "uname", "dirname"):  # a PATH with everything but java
        if shutil.which(tool):
            (bindir / tool).symlink_to(shutil.which(tool))
    r = subprocess.run(
        [LABKIT, "up"], env=_other_stack_env(tmp_path, PATH=str(bindir)), capture_output=True, text=True, timeout=120
    )
    assert r.returncode == 2
    assert "`java` is not installed" in r.stderr and "openjdk" in r.stderr
    assert "Traceback" not in r.stderr


def test_doctor_passes_on_this_machine():
    r = subprocess.run([LABKIT, "doctor"], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stdout
    assert "all checks passed" in r.stdout


def test_up_when_up_changes_nothing(stack):
    before = {s.name: s.pid for s in stack.status().services}
    assert all(before.values())
    st = stack.up()
    assert {s.name: s.pid for s in st.services} == before
    assert st.all_running
    html = st._repr_html_()
    assert "<table>" in html and "kafka" in html


def test_crash_is_shown_and_logs_have_the_tail(stack):
    svc = stack.service("influxdb")
    svc.process.kill()
    st = stack.status()
    assert st["influxdb"].state == "crashed"
    assert "labkit logs influxdb" in st["influxdb"].detail
    assert "labkit started influxdb" in stack.logs("influxdb", 200)
    st = stack.up()  # brings back exactly the crashed one
    assert st["influxdb"].state == "running" and st.all_running


def test_down_then_up_keeps_data(settings, stack):
    tag = uuid.uuid4().hex[:8]
    topic = f"keep_{tag}"
    p = KafkaProducer(bootstrap_servers=settings.kafka)
    from labkit.stack.kafka import ensure_topics

    ensure_topics(settings.kafka, settings.model_copy(update={"topic": topic}))
    p.send(topic, b"survives").get(timeout=10)
    p.close()
    with InfluxDBClient(url=settings.influx, token=stack.influx_token("write"), org=settings.influx_org) as c:
        c.write_api(write_options=SYNCHRONOUS).write(
            settings.influx_bucket,
            record=Point("keep").tag("stream", tag).field("v", 1).time(int(time.time() * 1e3), "ms"),
        )

    st = stack.down()
    assert all(s.state == "stopped" for s in st.services)
    t0 = time.monotonic()
    assert stack.up().all_running
    assert time.monotonic() - t0 < 120

    c = KafkaConsumer(topic, bootstrap_servers=settings.kafka, auto_offset_reset="earliest", consumer_timeout_ms=5000)
    assert [m.value for m in c] == [b"survives"]
    c.close()
    with Influx(settings) as db:
        assert len(db.query("keep", start="-1h", stream=tag)) == 1
