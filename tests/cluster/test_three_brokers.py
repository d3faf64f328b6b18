"""External mode on a Kafka cluster of three hosts (network namespaces made by the test, SASL/SCRAM over TLS):
topics are created with replication factor 3, and a broker killed mid-stream loses nothing. The producer
(acks=all, idempotent) and the Flink job's consumer move to the new partition leaders; min.insync.replicas=2
keeps every acknowledged record on two brokers.

And workshop mode on the same three hosts: an attendee's user, ACLs and quota are cluster metadata (KRaft), so
they must hold on every broker that leads one of the attendee's partitions, not only on the one the instructor
talked to."""

import threading
import uuid

import pytest
from kafka import KafkaAdminClient, KafkaConsumer, KafkaProducer, TopicPartition
from kafka.errors import TopicAuthorizationFailedError

from labkit import jobs, kafka_clients, workshop
from labkit import stack as stack_mod
from labkit.kafka_clients import python_config
from labkit.produce import produce
from labkit.verify import verify

pytestmark = pytest.mark.stack


def _leaders(s, topic: str) -> dict[int, int]:
    admin = kafka_clients.admin(s)
    try:
        (t,) = admin.describe_topics([topic])
    finally:
        admin.close()
    return {p.get("partition_index", p.get("partition")): p.get("leader_id", p.get("leader")) for p in t["partitions"]}


def test_workshop_attendees_are_kept_apart_on_every_broker(kafka_cluster, tmp_path):
    instructor = kafka_cluster.settings(home=tmp_path / "instructor")
    a1, a2 = workshop.create(2, out_dir=tmp_path / "attendees", settings=instructor)
    try:
        s1, s2 = a1.settings(), a2.settings()
        assert s1.kafka_replication_factor == 3
        leaders = _leaders(instructor, s1.topic)
        assert len(set(leaders.values())) >= 2, f"a01's partitions should be led by several brokers: {leaders}"

        producer = KafkaProducer(**python_config(s1), acks="all", retries=0, max_block_ms=15_000)
        try:
            marker = uuid.uuid4().hex.encode()
            for p in leaders:  # own topic, every partition and so every leading broker: allowed
                producer.send(s1.topic, marker, partition=p).get(timeout=15)
            refused = {}
            for p in _leaders(instructor, s2.topic):  # a02's topic, on each of its leaders: refused
                try:
                    producer.send(s2.topic, b"not yours", partition=p).get(timeout=15)
                    refused[p] = False
                except TopicAuthorizationFailedError:
                    refused[p] = True
        finally:
            producer.close()
        assert all(refused.values()) and len(refused) == s2.partitions, refused

        consumer = KafkaConsumer(**python_config(s1), auto_offset_reset="earliest", enable_auto_commit=False)
        try:
            parts = [TopicPartition(s1.topic, p) for p in leaders]
            consumer.assign(parts)
            got: dict[int, list[bytes]] = {}
            for _ in range(20):
                for tp, rs in consumer.poll(timeout_ms=500).items():
                    got.setdefault(tp.partition, []).extend(r.value for r in rs)
                if len(got) == len(parts):
                    break
        finally:
            consumer.close()
        assert {p: marker in v for p, v in got.items()} == dict.fromkeys(leaders, True)
        assert workshop.quotas(instructor)["labkit-a01"]["producer_byte_rate"] == workshop.PRODUCER_BYTES_PER_S
    finally:
        workshop.teardown(instructor)
    assert workshop.attendees(instructor) == []
    admin = kafka_clients.admin(instructor)
    try:
        assert not [t for t in admin.list_topics() if t.startswith(("a01.", "a02."))]
    finally:
        admin.close()
    assert "labkit-a01" not in workshop.quotas(instructor)


def test_replication_factor_3_a_broker_killed_mid_stream_loses_nothing(kafka_cluster):
    topic = f"rf3_{uuid.uuid4().hex[:8]}"
    s = kafka_cluster.settings(topic=topic, dlq_topic=f"{topic}_dlq")
    assert stack_mod.get(s).up(timeout=90).all_running
    admin = KafkaAdminClient(**python_config(s))
    try:
        described = admin.describe_topics([topic, f"{topic}_dlq"])
    finally:
        admin.close()
    replicas = {
        t.get("name", t.get("topic")): {len(p.get("replica_nodes", p.get("replicas", []))) for p in t["partitions"]}
        for t in described
    }
    assert replicas == {topic: {3}, f"{topic}_dlq": {3}}, replicas

    victim = kafka_cluster.brokers[0]
    job = jobs.submit_pipeline(s, name=f"rf3-{topic}", wait=False)
    try:
        job.wait_running()
        killer = threading.Timer(4.0, victim.kill)  # while the producer is sending
        killer.start()
        summary = produce(20_000, seed=3, sim_rate=250, late_fraction=0.01, malformed_fraction=0.01,
                          close_windows=True, settings=s)  # fmt: skip
        killer.join()
        assert victim.proc.poll() is not None  # it really was down for part of the stream
        acc = verify(summary.ledger, settings=s, wait_s=180)
        assert acc.exact, f"{acc}\n{acc.mismatches}"
        assert acc.late_counted == acc.late_expected > 0
    finally:
        job.cancel()
        victim.restart()
