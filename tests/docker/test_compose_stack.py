"""The compose stack as `labkit up --mode docker` leaves it: every container healthy or done, the init
containers' work there, secrets only from compose/.env, and jobs given the addresses containers use."""

import json
import os
import re
import stat
import subprocess

import pytest

from labkit import jobs
from labkit.influx import Influx
from labkit.produce import produce
from labkit.stack.docker import COMPOSE_DIR
from labkit.verify import verify
from tests.cli import LABKIT

pytestmark = pytest.mark.stack

ONE_SHOTS = {"kafka-init", "influxdb-init"}


def test_every_container_is_healthy_and_every_init_container_succeeded(stack):
    assert stack.mode == "docker"
    containers = {c["service"]: c for c in stack.containers()}
    expected = set(stack.services()) - {"jupyter"}
    assert expected <= set(containers), f"not started: {expected - set(containers)}"
    for name, c in containers.items():
        if name in ONE_SHOTS:
            assert (c["state"], c["exit_code"]) == ("exited", 0), f"{name}: {c}"
        else:
            assert (c["state"], c["health"]) == ("running", "healthy"), f"{name}: {c}"


def test_init_containers_made_the_topics_and_scoped_tokens(settings, stack):
    from labkit import kafka_info

    parts = kafka_info.topics(settings).set_index("topic")["partitions"]
    assert parts.get("clickstream_events") == 4 and parts.get("clickstream_dlq") == 4
    write, read, admin = (stack.influx_token(r) for r in ("write", "read", "admin"))
    assert len({write, read, admin}) == 3 and all(len(t) > 20 for t in (write, read))


def test_secrets_come_only_from_the_generated_env_file(settings, stack):
    env = COMPOSE_DIR / ".env"
    assert stat.S_IMODE(env.stat().st_mode) == 0o600
    assert subprocess.run(["git", "check-ignore", "-q", str(env)], cwd=COMPOSE_DIR).returncode == 0
    admin = stack.influx_token("admin")
    assert admin in env.read_text()
    # the running InfluxDB was set up with exactly that token
    with Influx(settings, role="admin") as db:
        assert db.client.buckets_api().find_bucket_by_name(settings.influx_bucket) is not None
    # and no secret is baked into the compose configuration itself
    config = json.loads(stack._compose("config", "--format", "json", "--no-interpolate").stdout)
    assert admin not in json.dumps(config)


def test_the_job_is_given_the_addresses_containers_use(settings, stack):
    spec = jobs.base_spec(settings, "address-check")
    side = stack.job_side()
    assert (side.kafka, side.influx_url, side.token_file) == (
        "kafka:19092",
        "http://influxdb:8086",
        "/secrets/influx-write.token",
    )
    assert spec["influx"]["url"] == "http://influxdb:8086"
    assert "127.0.0.1" not in json.dumps(spec)


def test_the_global_mode_option_submits_to_the_docker_stack_whatever_the_environment_says(settings, unique_topic):
    """Issue 21's acceptance: `labkit --mode docker submit` submits to the docker stack. The environment says local
    mode, so a submission that took its mode from there would give the job the host's addresses (127.0.0.1, which
    inside a container is the container itself): it would count nothing. The job must read and count here."""
    env = {**os.environ, "LABKIT_MODE": "local"}
    r = subprocess.run([LABKIT, "--mode", "docker", "submit", "--topic", unique_topic], env=env,
                       capture_output=True, text=True, timeout=300)  # fmt: skip
    assert r.returncode == 0, r.stdout + r.stderr
    job_id = re.search(r"job \S+ ([0-9a-f]{32}) is", r.stdout).group(1)
    job = jobs.get_job(job_id, settings)
    try:
        summary = produce(2_000, topic=unique_topic, seed=4, sim_rate=200, close_windows=True, settings=settings,
                          progress=False)  # fmt: skip
        acc = verify(summary.ledger, settings=settings, wait_s=120)
        assert acc.exact, f"{acc}\n{acc.mismatches}"
    finally:
        job.cancel()
