"""Workshop mode on a shared secured cluster: a Kafka broker with SASL/SCRAM over TLS and ACLs on (made by the
test), with the local Flink and InfluxDB as the shared session cluster and database.

The instructor's `labkit workshop create` makes three attendees; each attendee then works only from their
settings file. Denials are asserted next to the same client's success on its own resources, so a test cannot
pass because something else (a typo, a dead broker) failed."""

import contextlib
import os
import stat
import subprocess
import threading
import time
import uuid
from pathlib import Path

import httpx
import pytest
from kafka import KafkaAdminClient, KafkaConsumer, KafkaProducer, TopicPartition
from kafka.admin import (
    ACLFilter,
    ACLOperation,
    ACLPermissionType,
    ACLResourcePatternType,
    ResourcePatternFilter,
    ResourceType,
)
from kafka.errors import (
    GroupAuthorizationFailedError,
    KafkaError,
    PolicyViolationError,
    TopicAuthorizationFailedError,
)

from labkit import kafka_info, workshop
from labkit.kafka_clients import python_config
from labkit.stack.provision import kafka_policy
from tests.cli import LABKIT

pytestmark = pytest.mark.stack
QUOTA = 300_000  # bytes/s per attendee: low, so a plain Python producer on this machine can exceed it tenfold


@pytest.fixture(scope="module")
def shared(secured_kafka, tmp_path_factory):
    d = tmp_path_factory.mktemp("workshop")
    instructor = secured_kafka.settings(home=d / "instructor")
    people = workshop.create(3, out_dir=d / "attendees", settings=instructor, producer_bytes_per_s=QUOTA)
    yield instructor, people
    workshop.teardown(instructor)


def _as(a: workshop.Attendee):
    s = a.settings()
    assert s.namespace == a.name and s.kafka_sasl_username == a.kafka_user
    return s


def _producer(s) -> KafkaProducer:
    return KafkaProducer(**python_config(s), acks="all", retries=0, max_block_ms=10_000, request_timeout_ms=10_000)


def test_each_attendee_gets_a_private_settings_file_and_sees_only_their_topics(shared):
    instructor, people = shared
    assert [a.name for a in people] == ["a01", "a02", "a03"]
    for a in people:
        assert stat.S_IMODE(os.stat(a.settings_file).st_mode) == 0o600
        s = _as(a)
        assert (s.mode, s.topic, s.dlq_topic, s.influx_bucket) == (
            "external",
            f"{a.name}.clickstream_events",
            f"{a.name}.clickstream_dlq",
            f"clickstream-{a.name}",
        )
        assert s.influx_token is None  # no admin token in an attendee's hands
        admin = KafkaAdminClient(**python_config(s))
        try:
            visible = set(admin.list_topics())
        finally:
            admin.close()
        assert visible == {s.topic, s.dlq_topic}, visible  # ACLs hide the others' topics and the instructor's
    held = workshop.quotas(instructor)
    assert set(held) >= {a.kafka_user for a in people}
    assert held["labkit-a01"]["producer_byte_rate"] == QUOTA
    for a in people:  # partitions created or deleted per second: what limits raising a topic's partition count
        assert held[a.kafka_user]["controller_mutation_rate"] == workshop.CONTROLLER_MUTATIONS_PER_S, held


def _scratch(s) -> str:
    """A topic the attendee makes in their namespace (their ACLs allow it): test traffic stays off the lab's
    topics, whose every record the demo test below accounts for."""
    return kafka_info.fresh_topic("scratch", s)


def test_an_attendee_cannot_read_or_write_another_attendees_topics_groups_or_bucket(shared):
    _, (a1, a2, _) = shared
    s1, s2 = _as(a1), _as(a2)
    t1, t2 = _scratch(s1), _scratch(s2)
    assert (t1, t2) == ("a01.scratch", "a02.scratch")
    marker = uuid.uuid4().hex.encode()

    p = _producer(s1)
    try:
        p.send(t1, marker).get(timeout=15)  # own topic: allowed
        with pytest.raises(TopicAuthorizationFailedError):
            p.send(s2.topic, b"not yours").get(timeout=15)
    finally:
        p.close()

    c = KafkaConsumer(**python_config(s1), group_id=s1.scoped("peek"), auto_offset_reset="earliest",
                      consumer_timeout_ms=8000, enable_auto_commit=False)  # fmt: skip
    try:
        c.subscribe([t1])
        assert marker in [m.value for m in c]  # own topic, own group: allowed
        c.commit()
    finally:
        c.close()
    secret = uuid.uuid4().hex.encode()
    p = _producer(s2)
    try:
        p.send(t2, secret).get(timeout=15)
    finally:
        p.close()
    c = KafkaConsumer(**python_config(s1), auto_offset_reset="earliest", enable_auto_commit=False)
    c.assign([TopicPartition(t2, 0)])  # no group: only the topic's ACLs
    got: list[bytes] = []
    try:
        for _ in range(10):
            got += [r.value for rs in c.poll(timeout_ms=300).values() for r in rs]
    finally:
        c.close()
    assert secret not in got
    admin = KafkaAdminClient(**python_config(s1))
    try:  # the broker's answer, not only an empty read: a02's topic is refused to a01 by name
        described = {t.get("name", t.get("topic")): t["error_code"] for t in admin.describe_topics([t1, s2.topic])}
    finally:
        admin.close()
    assert described == {t1: 0, s2.topic: TopicAuthorizationFailedError.errno}, described
    with pytest.raises(GroupAuthorizationFailedError):  # own topic, but a group in a02's namespace
        c = KafkaConsumer(t1, **python_config(s1), group_id=s2.scoped("g"), consumer_timeout_ms=5000)
        try:
            list(c)
        finally:
            c.close()

    def flux(s, token: str, bucket: str) -> httpx.Response:
        return httpx.post(f"{s.influx}/api/v2/query", params={"org": s.influx_org}, timeout=10,
                          headers={"Authorization": f"Token {token}", "Content-Type": "application/vnd.flux"},
                          content=f'from(bucket: "{bucket}") |> range(start: -1m)')  # fmt: skip

    def write(s, token: str, bucket: str) -> httpx.Response:
        return httpx.post(f"{s.influx}/api/v2/write", params={"org": s.influx_org, "bucket": bucket}, timeout=10,
                          headers={"Authorization": f"Token {token}"}, content="probe value=1")  # fmt: skip

    read1, write1 = s1.influx_read_token.get_secret_value(), s1.influx_write_token.get_secret_value()  # SecretStr
    assert flux(s1, read1, s1.influx_bucket).status_code == 200
    assert write(s1, write1, s1.influx_bucket).status_code == 204
    denied = {"read": flux(s1, read1, s2.influx_bucket), "write": write(s1, write1, s2.influx_bucket),
              "read with write token": flux(s1, write1, s1.influx_bucket)}  # fmt: skip
    # InfluxDB says "not found" for a bucket a token cannot read, and "forbidden" for a write it may not make
    expected = {"read": 404, "write": 403, "read with write token": 404}
    assert {k: r.status_code for k, r in denied.items()} == expected, {k: r.text for k, r in denied.items()}


def _throttle_ms(p: KafkaProducer) -> float:
    """The longest throttle the brokers asked of this client (kafka-python's `throttle-time-max` metric)."""
    return max([float(v or 0) for group in p.metrics().values() for k, v in group.items() if k == "throttle-time-max"]
               or [0.0])  # fmt: skip


def test_a_runaway_producer_is_held_at_its_quota_without_stalling_the_others(shared):
    _, (a1, a2, _) = shared
    s1, s2 = _as(a1), _as(a2)
    t1, t2 = _scratch(s1), _scratch(s2)
    payload = os.urandom(1000)
    sent = {"runaway": 0}
    stop = threading.Event()
    # what is still queued at the end is dropped (close times out), not waited for
    runaway = KafkaProducer(**python_config(s1), acks=1, linger_ms=5, batch_size=64_000,
                            max_block_ms=1000)  # fmt: skip

    def flood() -> None:
        def count(_md) -> None:
            sent["runaway"] += 1

        while not stop.is_set():
            with contextlib.suppress(KafkaError):  # the buffer is full while the broker throttles: keep pushing
                runaway.send(t1, payload).add_callback(count)

    t = threading.Thread(target=flood, daemon=True)
    t.start()
    time.sleep(3)  # past the brokers' first quota window: from here on the runaway is throttled
    start, acked_before = time.monotonic(), sent["runaway"]
    # the neighbour: 2,000 small records, well under its own quota, sent while the runaway floods
    neighbour = _producer(s2)
    futures = [neighbour.send(t2, b"x" * 100) for _ in range(2000)]
    neighbour.flush(timeout=60)
    assert all(f.succeeded() for f in futures)
    time.sleep(max(0.0, 8 - (time.monotonic() - start)))
    rate = (sent["runaway"] - acked_before) * len(payload) / (time.monotonic() - start)
    stop.set()
    t.join(10)
    runaway_throttle, neighbour_throttle = _throttle_ms(runaway), _throttle_ms(neighbour)
    with contextlib.suppress(KafkaError):
        runaway.close(timeout=1)
    neighbour.close()
    print(f"runaway: {rate:,.0f} B/s against a quota of {QUOTA:,} B/s; throttled up to {runaway_throttle:.0f} ms")
    assert runaway_throttle > 0, f"the broker never throttled the runaway producer ({rate:,.0f} B/s)"
    assert neighbour_throttle == 0, "the neighbour was throttled by someone else's quota"
    assert rate < 2 * QUOTA, f"the runaway producer reached {rate:,.0f} B/s against a quota of {QUOTA:,} B/s"


def test_three_attendees_run_the_demo_at_once_each_exact(shared, free_slots):
    instructor, people = shared
    free_slots(len(people))  # one slot per attendee's pipeline, beside whatever else runs (the lab's own demo)
    procs = {
        a.name: subprocess.Popen([LABKIT, "demo", "-n", "20000", "--seed", str(i)],
                                 env={**os.environ, "LABKIT_ENV_FILE": a.settings_file, "LABKIT_HOME": str(
                                     Path(instructor.home).parent / f"home-{a.name}")},
                                 stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        for i, a in enumerate(people, start=1)
    }  # fmt: skip
    outputs = {name: p.communicate(timeout=900)[0] for name, p in procs.items()}
    for name, p in procs.items():
        assert p.returncode == 0 and "EXACT" in outputs[name], f"{name}:\n{outputs[name][-3000:]}"
    deadline = time.monotonic() + 60  # Flink commits its offsets with each checkpoint (every 10 s)
    while True:
        st = workshop.status(instructor)
        if (st["pipeline_lag"] == 0).all() or time.monotonic() > deadline:
            break
        time.sleep(2)
    assert list(st["attendee"]) == ["a01", "a02", "a03"]
    for row in st.itertuples():
        assert row.running_jobs == [f"{row.attendee}.clickstream-metrics"], st
        assert row.pipeline_lag == 0, st.to_string()  # each job read its whole stream and committed

    # The instructor's dashboard: its attendee variable lists the three, and each panel shows that attendee's data
    from labkit import dashboards
    from labkit.influx import Influx

    grafana = instructor.model_copy(update={"influx_read_token": instructor.influx_token})  # reads every bucket
    with Influx(grafana) as db:
        listed = db.flux(dashboards.WORKSHOP_ATTENDEES)
    assert sorted(listed.get("_value", [])) == ["clickstream-a01", "clickstream-a02", "clickstream-a03"], listed
    for a in people:
        for panel in dashboards.WORKSHOP_ERRORS.panels:
            df = panel.data("30m", settings=grafana, attendee=a.name)
            assert not df.empty, f"workshop panel {panel.title!r} shows nothing for {a.name}"


def test_recreating_an_attendee_revokes_their_old_password_and_tokens(shared):
    instructor, people = shared
    old = _as(people[1])
    (again,) = workshop.create(1, first=2, out_dir=Path(people[1].settings_file).parent, settings=instructor)
    new = _as(again)
    assert new.influx_read_token != old.influx_read_token

    def read(token: str) -> int:
        return httpx.post(f"{old.influx}/api/v2/query", params={"org": old.influx_org}, timeout=10,
                          headers={"Authorization": f"Token {token}", "Content-Type": "application/vnd.flux"},
                          content=f'from(bucket: "{old.influx_bucket}") |> range(start: -1m)').status_code  # fmt: skip

    new_read, old_read = new.influx_read_token.get_secret_value(), old.influx_read_token.get_secret_value()
    assert (read(new_read), read(old_read)) == (200, 401)
    admin = KafkaAdminClient(**python_config(new))
    admin.close()
    with pytest.raises(KafkaError):  # the old password no longer authenticates
        KafkaAdminClient(**python_config(old), request_timeout_ms=5000).close()


def test_teardown_leaves_nothing_of_an_attendee(shared):
    instructor, people = shared
    a3 = people[2]
    s3 = _as(a3)
    assert workshop.teardown(instructor, names=["a03"]) == ["a03"]
    assert [a.name for a in workshop.attendees(instructor)] == ["a01", "a02"]
    assert not Path(a3.settings_file).exists()
    with pytest.raises(KafkaError):  # the user is gone: its password no longer authenticates
        admin = KafkaAdminClient(**python_config(s3), request_timeout_ms=5000)
        admin.close()
    admin = KafkaAdminClient(**python_config(instructor))
    try:
        assert not [t for t in admin.list_topics() if t.startswith("a03.")]
        assert "labkit-a03" not in workshop.quotas(instructor)
        any_resource = ResourcePatternFilter(ResourceType.ANY, None, ACLResourcePatternType.ANY)
        acls, _ = admin.describe_acls(
            ACLFilter("User:labkit-a03", None, ACLOperation.ANY, ACLPermissionType.ANY, any_resource)
        )
        kept, _ = admin.describe_acls(
            ACLFilter("User:labkit-a01", None, ACLOperation.ANY, ACLPermissionType.ANY, any_resource)
        )
        granted = len(workshop._acls("labkit-a01", "a01."))  # the topic operations and the group's
        assert (len(acls), len(kept)) == (0, granted)  # a03's gone; a01's topic and group ACLs untouched
    finally:
        admin.close()
    r = httpx.get(f"{instructor.influx}/api/v2/buckets", params={"name": a3.bucket}, timeout=10,
                  headers={"Authorization": f"Token {instructor.influx_token.get_secret_value()}"})  # fmt: skip
    assert r.json().get("buckets") == []
    jobs = httpx.get(f"{instructor.flink}/jobs/overview", timeout=10).json()["jobs"]
    assert not [j for j in jobs if j["name"].startswith("a03.") and j["state"] == "RUNNING"]


# ---- partitions: the brokers' cap (kafka_policy, loaded by tests/cluster/conftest.py) and the mutation quota ----
# The partition tests: the cap on CreateTopics, and no ALTER (so no CreatePartitions) for attendees.

CAP = kafka_policy.DEFAULT_CAP  # the test brokers' cap


def _partitions(admin: KafkaAdminClient, topic: str, expected: int, timeout: float = 15) -> int:
    """The partition count `admin` sees for `topic`, once it is `expected` (metadata follows the controller)."""
    deadline = time.monotonic() + timeout
    while True:
        (t,) = admin.describe_topics([topic])
        n = len(t["partitions"]) if not t["error_code"] else -1
        if n == expected or time.monotonic() > deadline:
            return n
        time.sleep(0.3)


def test_an_attendee_cannot_create_a_topic_over_the_partition_cap(shared):
    """a01 asks for 100,000 partitions, then for 10,000, in their own namespace: both refused with a policy
    violation, and nothing created; next to it a01 creates (and deletes) a 3-partition topic there."""
    _, (a1, *_) = shared
    s1 = _as(a1)
    rf = s1.kafka_replication_factor
    huge, large, small = (f"{a1.name}.{name}-{uuid.uuid4().hex[:8]}" for name in ("huge", "large", "small"))
    admin = KafkaAdminClient(**python_config(s1))
    try:
        with pytest.raises(PolicyViolationError) as refused_huge:
            admin.create_topics({huge: {"num_partitions": 100_000, "replication_factor": rf}})
        with pytest.raises(PolicyViolationError) as refused_large:
            admin.create_topics({large: {"num_partitions": 10_000, "replication_factor": rf}})
        admin.create_topics({small: {"num_partitions": 3, "replication_factor": rf}}, wait_for_metadata=True)
        assert _partitions(admin, small, 3) == 3  # the same user, namespace and call: allowed
        admin.delete_topics([small], timeout_ms=30_000)
        deadline = time.monotonic() + 30
        while small in admin.list_topics() and time.monotonic() < deadline:
            time.sleep(0.5)
        assert not {huge, large, small} & set(admin.list_topics())
    finally:
        admin.close()
    # 100,000: Kafka 4.1 refuses more than 10,000 partitions in one CreateTopics request itself, before any topic
    # policy is asked (ReplicationControlManager.validateTotalNumberOfPartitions)
    assert "Excessively large number of partitions per request" in str(refused_huge.value), refused_huge.value
    # 10,000, the most Kafka lets through in one request: the cap refuses it, naming both numbers
    expected = f"{large}: 10000 partitions requested, but this cluster allows at most {CAP} partitions per topic"
    assert expected in str(refused_large.value), refused_large.value


def test_an_attendee_cannot_raise_the_partitions_of_their_own_topic_the_instructor_can(shared):
    """Kafka 4.1 (KRaft) calls no topic policy for CreatePartitions (ReplicationControlManager.createPartitions
    checks only that the count grows, and charges the controller mutation quota once the request is admitted), so
    the cap cannot see an increase. Attendees therefore get no ALTER on their topics, which CreatePartitions needs:
    a01 creates and writes their topic, and cannot raise its partition count; the instructor can."""
    instructor, (a1, *_) = shared
    s1 = _as(a1)
    topic = f"{a1.name}.grow-{uuid.uuid4().hex[:8]}"
    admin = KafkaAdminClient(**python_config(s1))
    try:
        admin.create_topics({topic: {"num_partitions": 1, "replication_factor": s1.kafka_replication_factor}},
                            wait_for_metadata=True)  # fmt: skip
        p = _producer(s1)
        p.send(topic, b"mine").get(timeout=15)  # their own topic: created and written
        p.close()
        with pytest.raises(TopicAuthorizationFailedError):
            admin.create_partitions({topic: 100_000})
        with pytest.raises(TopicAuthorizationFailedError):
            admin.create_partitions({topic: 2})
    finally:
        admin.close()
    admin = KafkaAdminClient(**python_config(instructor))
    try:
        assert _partitions(admin, topic, 1, timeout=5) == 1  # a01's requests changed nothing
        admin.create_partitions({topic: 2})  # the instructor may
        assert _partitions(admin, topic, 2) == 2
        admin.delete_topics([topic], timeout_ms=30_000)
    finally:
        admin.close()
