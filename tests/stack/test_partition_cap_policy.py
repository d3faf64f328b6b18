"""The brokers' cap on partitions per topic (labkit/stack/provision/kafka_policy), checked without a broker: the
policy compiles against the pinned Kafka release's jars into a cached jar holding the class, and, loaded in a JVM
the way Kafka's controller calls it, refuses more partitions than the cap with a message naming both numbers.

The Kafka jars come from `labkit up` (or `labkit.stack.provision.kafka.provision()`): this is a stack suite, not a
unit test, because `make check` runs before anything is provisioned (a fresh machine's first CI run failed here).
Without the jars it skips on a laptop and fails in CI (tests/requirements.py)."""

from __future__ import annotations

import subprocess
import zipfile
from pathlib import Path

import pytest

from labkit.stack.provision import kafka, kafka_policy
from labkit.stack.provision.tools import require, require_java
from tests.requirements import need

pytestmark = pytest.mark.stack  # needs what `labkit up` provisions (no service is called)

HARNESS = Path(__file__).resolve().parents[1] / "cases" / "PolicyHarness.java"


@pytest.fixture(scope="module")
def policy_jar(tmp_path_factory) -> Path:
    """The policy compiled by `provision()`, into a cache of this module's own (the user's cache is left alone)."""
    need(kafka.is_provisioned(), f"the Kafka {kafka.KAFKA} jars are not provisioned (run `labkit up` once)")
    cache = tmp_path_factory.mktemp("cache")
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(kafka_policy, "cache_dir", lambda: cache)
        jar = kafka_policy.provision()
        assert jar == kafka_policy.jar_path() and jar.is_relative_to(cache / "kafka-policy")
        built = jar.stat().st_mtime_ns
        assert kafka_policy.is_provisioned() and kafka_policy.provision() == jar
        assert jar.stat().st_mtime_ns == built  # cached by source hash: not compiled again
    return jar


def test_the_policy_compiles_against_the_pinned_kafka_into_a_jar_holding_the_class(policy_jar):
    with zipfile.ZipFile(policy_jar) as jar:
        assert kafka_policy.CLASS_FILE in jar.namelist(), jar.namelist()
    assert kafka_policy.CLASS_FILE == "lab/clickstream/kafka/PartitionCapPolicy.class"


# a broker's own settings, enough for Kafka's KafkaConfig to parse (nothing is started)
BROKER = """process.roles=broker,controller
node.id=1
controller.quorum.voters=1@127.0.0.1:9093
listeners=PLAINTEXT://127.0.0.1:9092,CONTROLLER://127.0.0.1:9093
controller.listener.names=CONTROLLER
log.dirs={dir}/data
"""


@pytest.fixture(scope="module")
def ask(policy_jar, tmp_path_factory):
    """`ask(properties, *topics)`: the policy's answer per topic, from a JVM that reads a server.properties of
    `BROKER` plus `properties` with Kafka's KafkaConfig and gets the policy from it as the controller does
    (tests/cases/PolicyHarness.java): {topic: "allowed" | "refused: <message>"}, or {"config": "refused: <message>"}
    when the policy refuses its configuration (the broker would not start)."""
    out = tmp_path_factory.mktemp("harness")
    classpath = f"{kafka.jars_dir() / '*'}:{policy_jar}"
    subprocess.run([require("javac"), "--release", "17", "-nowarn", "-cp", classpath, "-d", str(out), str(HARNESS)],
                   check=True, capture_output=True, text=True)  # fmt: skip

    def run(properties: dict[str, str], *topics: str) -> dict[str, str]:
        conf = out / "server.properties"
        conf.write_text(BROKER.format(dir=out) + "".join(f"{k}={v}\n" for k, v in properties.items()))
        r = subprocess.run([require_java(), "-Xmx128m", "-cp", f"{classpath}:{out}", "PolicyHarness", str(conf),
                            *topics], capture_output=True, text=True, timeout=120)  # fmt: skip
        assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-2000:]
        return dict(line.split(" ", 1) for line in r.stdout.splitlines())

    return run


def test_the_policy_refuses_more_partitions_than_the_cap_and_says_so(ask):
    got = ask(kafka_policy.broker_properties(), "a01.ok=64", "a01.over=65", "a01.huge=100000", "a01.assigned=@64",
              "a01.assigned_over=@65", "__consumer_offsets=100")  # fmt: skip
    assert got["a01.ok"] == "allowed" and got["a01.assigned"] == "allowed"
    assert got["a01.over"] == (
        "refused: Topic a01.over: 65 partitions requested, but this cluster allows at most 64 partitions per topic "
        "(labkit.max.partitions.per.topic=64)."
    )
    assert got["a01.huge"].startswith("refused: Topic a01.huge: 100000 partitions requested")
    # with explicit replica assignments Kafka passes no count: the assignments are counted
    assert got["a01.assigned_over"].startswith("refused: Topic a01.assigned_over: 65 partitions requested")
    assert got["__consumer_offsets"] == "allowed"  # Kafka's internal topics, made by the brokers themselves


def test_the_cap_comes_from_the_broker_property_and_a_bad_one_stops_the_broker(ask):
    policy_only = {"create.topic.policy.class.name": kafka_policy.CLASS_NAME}
    assert ask(policy_only, "a01.t=64", "a01.u=65") == {
        "a01.t": "allowed",
        "a01.u": "refused: Topic a01.u: 65 partitions requested, but this cluster allows at most 64 partitions "
        "per topic (labkit.max.partitions.per.topic=64).",
    }  # no cap property: the default
    got = ask(kafka_policy.broker_properties(cap=8), "a01.t=8", "a01.u=9")
    assert got["a01.t"] == "allowed" and "9 partitions requested" in got["a01.u"] and "at most 8 " in got["a01.u"]
    for bad in ("0", "many"):
        answer = ask({**policy_only, kafka_policy.CAP_PROPERTY: bad}, "a01.t=1")
        assert list(answer) == ["config"], answer
        assert answer["config"].startswith("refused: Invalid value") and kafka_policy.CAP_PROPERTY in answer["config"]
