import uuid

import pytest
from kafka import KafkaConsumer, KafkaProducer
from kafka.admin import KafkaAdminClient, NewTopic

pytestmark = pytest.mark.stack


def test_create_topic_produce_and_consume(settings, stack):
    topic = f"t_{uuid.uuid4().hex[:8]}"
    admin = KafkaAdminClient(bootstrap_servers=settings.kafka)
    admin.create_topics([NewTopic(topic, num_partitions=3, replication_factor=1)])
    assert topic in admin.list_topics()
    admin.close()

    producer = KafkaProducer(bootstrap_servers=settings.kafka, acks="all")
    for i in range(100):
        producer.send(topic, key=f"k{i % 7}".encode(), value=f"message-{i}".encode())
    producer.flush()
    producer.close()

    consumer = KafkaConsumer(
        topic,
        bootstrap_servers=settings.kafka,
        auto_offset_reset="earliest",
        consumer_timeout_ms=5000,
        group_id=f"g-{topic}",
    )
    got = sorted(m.value.decode() for m in consumer)
    consumer.close()
    assert got == sorted(f"message-{i}" for i in range(100))


def test_lab_topics_exist(settings, stack):
    admin = KafkaAdminClient(bootstrap_servers=settings.kafka)
    topics = admin.list_topics()
    admin.close()
    assert settings.topic in topics and settings.dlq_topic in topics
