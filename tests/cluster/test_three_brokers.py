"""External mode on a Kafka cluster of three hosts (network namespaces made by the test, SASL/SCRAM over TLS):
topics are created with replication factor 3, and a broker killed mid-stream loses nothing. The producer
(acks=all, idempotent) and the Flink job's consumer move to the new partition leaders; min.insync.replicas=2
keeps every acknowledged record on two brokers."""

import threading
import uuid

import pytest
from kafka import KafkaAdminClient

from labkit import jobs
from labkit import stack as stack_mod
from labkit.kafka_clients import python_config
from labkit.produce import produce
from labkit.verify import verify

pytestmark = pytest.mark.stack


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
