import gc
import shutil
import time
import uuid

import pytest
from kafka import KafkaConsumer, KafkaProducer
from kafka.admin import KafkaAdminClient, NewTopic

from labkit import kafka_info
from labkit.events import EventGenerator
from labkit.produce import produce

pytestmark = pytest.mark.stack


def test_create_topic_produce_and_consume(settings, stack):
    topic = f"t_{uuid.uuid4().hex[:8]}"
    admin = KafkaAdminClient(bootstrap_servers=settings.kafka)
    admin.create_topics([NewTopic(topic, num_partitions=3, replication_factor=1)])
    # CreateTopics returns once the controller has committed the topic; the broker's metadata, which list_topics
    # reads, catches up a moment later (a CI run under load listed the topics before it had: asked once, it failed)
    deadline = time.monotonic() + 15
    while topic not in (listed := admin.list_topics()) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert topic in listed, f"{topic} not listed 15 s after it was created: {listed}"
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
        group_id=f"g-{topic}",
    )
    # Read until all 100 are in or a minute has passed, not until 5 s without a message: the first group on a
    # freshly wiped broker waits while Kafka creates __consumer_offsets (50 partitions), which took longer than 5 s
    # on a busy CI machine (NotCoordinatorError meanwhile) and read nothing.
    got: list[str] = []
    deadline = time.monotonic() + 60
    while len(got) < 100 and time.monotonic() < deadline:
        for batch in consumer.poll(timeout_ms=1000).values():
            got.extend(m.value.decode() for m in batch)
    consumer.close()
    assert sorted(got) == sorted(f"message-{i}" for i in range(100))


def test_lab_topics_exist(settings, stack):
    admin = KafkaAdminClient(bootstrap_servers=settings.kafka)
    topics = admin.list_topics()
    admin.close()
    assert settings.topic in topics and settings.dlq_topic in topics


@pytest.mark.parametrize("engine", ["confluent", "kafka-python"])
def test_records_the_broker_refuses_leave_the_ledger(settings, stack, engine):
    # The broker refuses record batches over the topic's max.message.bytes. Which neighbours share a batch
    # with an oversized record is up to the client, so the test does not predict the failures: it checks that
    # the ledger holds exactly what the topic holds.
    topic = f"t_{uuid.uuid4().hex[:8]}"
    admin = KafkaAdminClient(bootstrap_servers=settings.kafka)
    admin.create_topics(
        [NewTopic(topic, num_partitions=1, replication_factor=1, topic_configs={"max.message.bytes": "4000"})]
    )
    admin.close()
    gen = EventGenerator(seed=5, rate=100)
    events = []
    for i in range(300):
        e = next(gen)
        if e.kind == "valid" and i % 50 == 7:
            e.value = e.value[:-1] + b', "pad": "' + b"x" * 20_000 + b'"}'
        events.append(e)
    summary = produce(
        len(events),
        topic=topic,
        engine=engine,
        settings=settings,
        progress=False,
        generator=iter(events),
        wake_partitions=False,  # no job reads this topic: only the events themselves are counted in it
    )
    assert gc.isenabled()  # produce() pauses the cyclic collector while it sends, and only then
    in_topic = sum(o.end - o.start for o in kafka_info.offsets(topic, settings).itertuples())
    assert summary.ledger.failed >= 6
    assert summary.acknowledged == in_topic == 300 - summary.ledger.failed
    assert summary.ledger.valid + sum(summary.ledger.late.values()) + sum(summary.ledger.malformed.values()) == in_topic


def test_storage_formats_with_a_cluster_id_that_starts_with_a_dash(tmp_path):
    # CI once drew this id and `StorageTool format -t -dhQ…` read it as an option (a 1-in-64 draw). Kafka's own
    # tools never draw such ids; labkit now doesn't either, and passes the id so no parser can mistake it.
    from labkit import settings as settings_mod
    from labkit.credentials import Credentials
    from labkit.stack.kafka import LocalKafka

    kafka = LocalKafka(settings_mod.load(home=tmp_path, kafka_port=_free_port(), kafka_controller_port=_free_port()),
                       Credentials())  # fmt: skip
    kafka.prepare()  # writes server.properties and formats with an id it draws
    meta = kafka.home / "data" / "meta.properties"
    assert not kafka_cluster_id(meta).startswith("-")
    shutil.rmtree(kafka.home / "data")
    kafka.format_storage("-dhQrORBTHindSECQD5n7g")
    assert kafka_cluster_id(meta) == "-dhQrORBTHindSECQD5n7g"


def kafka_cluster_id(meta) -> str:
    return dict(line.split("=", 1) for line in meta.read_text().splitlines() if "=" in line)["cluster.id"]


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _one_partition_topic(settings, n: int) -> tuple[str, str]:
    """A fresh one-partition topic holding `n` messages from a plain kafka-python producer, and a group name."""
    topic = f"t_{uuid.uuid4().hex[:8]}"
    admin = KafkaAdminClient(bootstrap_servers=settings.kafka)
    admin.create_topics([NewTopic(topic, num_partitions=1, replication_factor=1)])
    admin.close()
    producer = KafkaProducer(bootstrap_servers=settings.kafka, acks="all")
    for i in range(n):
        producer.send(topic, value=b"x%d" % i)
    producer.flush()
    producer.close()
    return topic, f"g-{topic}"


def test_caught_up_waits_for_the_group_not_for_a_share_of_the_topic(settings, stack):
    # A plain kafka-python consumer commits all but the last 10 of 5,000 messages. Before, "caught up" meant a
    # lag of at most 2% of everything the topic held, so this group counted as caught up at once; in CI that
    # ended notebook 08's recording before the drain it then claimed.
    from kafka import OffsetAndMetadata, TopicPartition

    topic, group = _one_partition_topic(settings, 5000)
    consumer = KafkaConsumer(bootstrap_servers=settings.kafka, group_id=group, enable_auto_commit=False)
    consumer.commit({TopicPartition(topic, 0): OffsetAndMetadata(4990, None, -1)})
    consumer.close()

    t0 = time.monotonic()
    now = kafka_info.caught_up(group, timeout=3, topic=topic, settings=settings)
    waited = time.monotonic() - t0
    assert int(now["lag"].sum()) == 10
    assert waited >= 3, "a group 10 messages behind is not caught up: the wait must run to its timeout"
    # with a slack of 10 messages it is caught up, and the call says so at once
    t0 = time.monotonic()
    assert int(kafka_info.caught_up(group, timeout=30, topic=topic, settings=settings, slack=10)["lag"].sum()) == 10
    assert time.monotonic() - t0 < 30


def test_lag_recorder_ends_on_the_lag_as_it_is_when_stopped(settings, stack):
    # A Flink job commits a whole backlog with one checkpoint, so the lag can fall from its peak to 0 between
    # two samples; CI's docker run of notebook 08 stopped its recording right then and claimed a drain its
    # chart did not show. Here a plain kafka-python consumer commits everything after the recorder's first
    # sample, and the recorder (one sample an hour) must still end on a lag of 0.
    from kafka import OffsetAndMetadata, TopicPartition

    topic, group = _one_partition_topic(settings, 300)
    consumer = KafkaConsumer(bootstrap_servers=settings.kafka, group_id=group, enable_auto_commit=False)
    consumer.commit({TopicPartition(topic, 0): OffsetAndMetadata(0, None, -1)})

    with kafka_info.LagRecorder(group, topic=topic, every_s=3600, settings=settings) as rec:
        deadline = time.monotonic() + 30
        while not rec.samples and time.monotonic() < deadline:
            time.sleep(0.1)
        consumer.commit({TopicPartition(topic, 0): OffsetAndMetadata(300, None, -1)})
    consumer.close()
    lags = rec.frame()["lag"].tolist()
    assert lags[0] == 300, lags
    assert lags[-1] == 0, f"the recording ended on {lags[-1]}, not on the lag when it stopped"
