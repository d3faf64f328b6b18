"""The brokers' cap on partitions per topic (labkit/stack/provision/kafka_policy), what needs no Kafka release: the
class the broker is told to load is the source's, the broker properties, and the source ships with the package.
Compiling the policy against the pinned Kafka jars and asking it, as Kafka's controller does, needs those jars
(`labkit up`): tests/stack/test_partition_cap_policy.py."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from labkit.stack.provision import kafka_policy


def test_the_class_the_broker_is_told_to_load_is_the_one_in_the_source():
    (src,) = kafka_policy._sources()
    text = src.read_text()
    package = re.search(r"^package ([\w.]+);", text, re.M).group(1)
    cls = re.search(r"public final class (\w+) implements CreateTopicPolicy", text).group(1)
    assert f"{package}.{cls}" == kafka_policy.CLASS_NAME
    assert f'CAP_CONFIG = "{kafka_policy.CAP_PROPERTY}"' in text
    assert f"DEFAULT_CAP = {kafka_policy.DEFAULT_CAP};" in text  # the broker's default and Python's agree


def test_broker_properties_name_the_policy_and_the_cap():
    assert kafka_policy.broker_properties() == {
        "create.topic.policy.class.name": "lab.clickstream.kafka.PartitionCapPolicy",
        "labkit.max.partitions.per.topic": "64",
    }
    assert kafka_policy.broker_properties(cap=12)["labkit.max.partitions.per.topic"] == "12"
    with pytest.raises(ValueError, match="at least 1"):
        kafka_policy.broker_properties(cap=0)


def test_the_source_ships_with_the_package():
    import tomllib

    root = Path(__file__).resolve().parents[2]
    globs = tomllib.loads((root / "pyproject.toml").read_text())["tool"]["setuptools"]["package-data"]["labkit"]
    shipped = {p for g in globs for p in (root / "labkit").glob(g)}
    assert set(kafka_policy._sources()) <= shipped
