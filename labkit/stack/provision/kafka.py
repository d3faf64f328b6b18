"""Kafka broker (KRaft) from Maven Central jars: the broker, its CLI tools and a log4j2 backend."""

from __future__ import annotations

from pathlib import Path

from labkit.paths import cache_dir
from labkit.stack.provision import maven
from labkit.versions import KAFKA, LOG4J, SLF4J


def jars_dir(version: str = KAFKA) -> Path:
    return cache_dir() / "kafka" / version / "jars"


def is_provisioned(version: str = KAFKA) -> bool:
    return (jars_dir(version).parent / ".complete").exists()


def provision(version: str = KAFKA) -> Path:
    """Fetch the Kafka jars into the cache; returns the folder to put on the classpath."""
    maven.fetch(
        f"kafka-{version}",
        [
            f"org.apache.kafka:kafka_2.13:{version}",
            f"org.apache.kafka:kafka-tools:{version}",  # ProducerPerformance and the admin tools
            f"org.slf4j:slf4j-api:{SLF4J}",
            f"org.apache.logging.log4j:log4j-slf4j2-impl:{LOG4J}",
            f"org.apache.logging.log4j:log4j-core:{LOG4J}",
        ],
        jars_dir(version).parent,
    )
    return jars_dir(version)
