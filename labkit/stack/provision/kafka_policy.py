"""The brokers' cap on partitions per topic (kafka_policy/.../PartitionCapPolicy.java), compiled with javac against
the pinned Kafka release's jars and cached by source hash.

Workshop mode gives each attendee ALL on their own prefix of topics: ACLs cannot say how many partitions a topic may
have, and one 100,000-partition topic would bring down the broker the whole room shares. A shared cluster loads
this jar on its brokers' classpath (`-cp <kafka jars>/*:<this jar>`) with `broker_properties()` in
server.properties; the controller then refuses a larger topic with a message naming the cap.

It covers CreateTopics only: Kafka 4.1 (KRaft) does not call a CreateTopicPolicy for CreatePartitions (see the
Java file's comment). Increases are limited by the `controller_mutation_rate` quota `workshop.create` sets.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

from labkit.console import say
from labkit.paths import cache_dir
from labkit.stack.provision import kafka
from labkit.versions import KAFKA

SOURCES = Path(__file__).resolve().parent / "kafka_policy"
CLASS_NAME = "lab.clickstream.kafka.PartitionCapPolicy"
CLASS_FILE = CLASS_NAME.replace(".", "/") + ".class"
CAP_PROPERTY = "labkit.max.partitions.per.topic"
DEFAULT_CAP = 64  # the lab's topics have 4; 64 leaves room for any exercise and none for a runaway
JAR_NAME = "labkit-kafka-policy.jar"


def _sources() -> list[Path]:
    return sorted(SOURCES.rglob("*.java"))


def _key() -> str:
    h = hashlib.sha256(KAFKA.encode())  # a new Kafka release recompiles against its own interface
    for src in _sources():
        h.update(src.name.encode())
        h.update(src.read_bytes())
    return h.hexdigest()[:12]


def jar_path() -> Path:
    return cache_dir() / "kafka-policy" / _key() / JAR_NAME


def is_provisioned() -> bool:
    return jar_path().is_file()


def provision() -> Path:
    """Compile the policy into its jar unless cached; fetches the Kafka jars first if they are missing."""
    from labkit.stack.provision.udf import compile_jar

    target = jar_path()
    if not target.is_file():
        jars = kafka.jars_dir() if kafka.is_provisioned() else kafka.provision()
        say("compiling the brokers' partition cap (javac)")
        compile_jar(_sources(), str(jars / "*"), target)
    return target


def broker_properties(cap: int = DEFAULT_CAP) -> dict[str, str]:
    """What a broker's server.properties needs for the cap (its classpath needs `jar_path()` too)."""
    if cap < 1:
        raise ValueError(f"a partition cap must be at least 1, not {cap}")
    return {"create.topic.policy.class.name": CLASS_NAME, CAP_PROPERTY: str(cap)}
