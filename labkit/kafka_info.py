"""Look inside Kafka from a notebook: topics, partitions, offsets, consumer lag, peeking at messages."""

from __future__ import annotations

import contextlib
import json

import pandas as pd

from labkit import kafka_clients
from labkit.kafka_clients import python_config
from labkit.settings import Settings
from labkit.settings import get as get_settings


def _admin(settings: Settings):
    return kafka_clients.admin(settings, client_id="labkit-info")


def _consumer(settings: Settings, **kw):
    from kafka import KafkaConsumer

    return KafkaConsumer(**python_config(settings), enable_auto_commit=False, client_id="labkit-info", **kw)


def topics(settings: Settings | None = None) -> pd.DataFrame:
    """Topics with their partition count and total messages (end offset minus start offset)."""
    settings = settings or get_settings()
    admin = _admin(settings)
    try:
        names = sorted(t for t in admin.list_topics() if not t.startswith("__"))
    finally:
        admin.close()
    rows = []
    for t in names:
        o = offsets(t, settings)
        rows.append({"topic": t, "partitions": len(o), "messages": int((o["end"] - o["start"]).sum())})
    return pd.DataFrame(rows, columns=["topic", "partitions", "messages"])


def offsets(topic: str | None = None, settings: Settings | None = None) -> pd.DataFrame:
    """First and next offset of each partition of `topic`."""
    from kafka import TopicPartition

    settings = settings or get_settings()
    topic = settings.scoped(topic or settings.topic)
    c = _consumer(settings)
    try:
        parts = [TopicPartition(topic, p) for p in sorted(c.partitions_for_topic(topic) or [])]
        start, end = c.beginning_offsets(parts), c.end_offsets(parts)
    finally:
        c.close()
    return pd.DataFrame([{"partition": tp.partition, "start": start[tp], "end": end[tp]} for tp in parts])


def lag(group: str, topic: str | None = None, settings: Settings | None = None) -> pd.DataFrame:
    """Consumer lag of `group` per partition: messages written but not yet committed by the group.

    Flink commits offsets on each checkpoint, so its lag shows up to one checkpoint interval late."""
    from kafka import TopicPartition

    settings = settings or get_settings()
    topic = settings.scoped(topic or settings.topic)
    group = settings.scoped(group)
    committed = _committed(group, settings)
    o = offsets(topic, settings)
    o["committed"] = [
        committed.get(TopicPartition(topic, p)).offset if committed.get(TopicPartition(topic, p)) else 0
        for p in o["partition"]
    ]
    o["lag"] = o["end"] - o["committed"]
    return o


def _committed(group: str, settings: Settings) -> dict:
    """The group's committed offsets. A broker that has just started answers "coordinator not available" until
    its offsets topic is ready (seen on a fresh docker stack): a retriable error, retried for up to 30 s."""
    from kafka.errors import CoordinatorLoadInProgressError, CoordinatorNotAvailableError, NotCoordinatorError
    from tenacity import Retrying, retry_if_exception_type, stop_after_delay, wait_fixed

    for attempt in Retrying(
        retry=retry_if_exception_type(
            (CoordinatorNotAvailableError, CoordinatorLoadInProgressError, NotCoordinatorError)
        ),
        stop=stop_after_delay(30),
        wait=wait_fixed(1),
        reraise=True,
    ):
        with attempt:
            admin = _admin(settings)
            try:
                if hasattr(admin, "list_group_offsets"):  # kafka-python 3
                    return admin.list_group_offsets(group).get(group, {})
                return admin.list_consumer_group_offsets(group)
            finally:
                admin.close()
    return {}  # not reached: the last attempt's error is re-raised


def caught_up(
    group: str,
    timeout: float = 60,
    topic: str | None = None,
    settings: Settings | None = None,
    slack: int = 0,
) -> pd.DataFrame:
    """The group's lag (as `lag`), once it has committed everything but `slack` messages, or when `timeout`
    runs out (a bounded wait, so a notebook cell finishes). A Flink job commits only when a checkpoint
    completes, so right after a burst, or after the job (re)started, its committed offsets trail.

    The slack is a number of messages, never a share of the topic: on a topic that holds millions of
    messages a 2% share let a drill's whole backlog count as "caught up" (CI's notebook 08 stopped recording
    before the drain it then claimed)."""
    import time

    deadline = time.monotonic() + timeout
    while True:
        now = lag(group, topic, settings)
        if now["lag"].sum() <= slack or time.monotonic() > deadline:
            return now
        time.sleep(2)


def peek(
    topic: str | None = None, n: int = 10, settings: Settings | None = None, from_end: bool = True
) -> pd.DataFrame:
    """The last (or first) `n` messages of each partition, decoded, as a DataFrame."""
    from kafka import TopicPartition

    settings = settings or get_settings()
    topic = settings.scoped(topic or settings.topic)
    c = _consumer(settings, consumer_timeout_ms=2000)
    rows = []
    try:
        parts = [TopicPartition(topic, p) for p in sorted(c.partitions_for_topic(topic) or [])]
        c.assign(parts)
        end, start = c.end_offsets(parts), c.beginning_offsets(parts)
        for tp in parts:
            c.seek(tp, max(start[tp], end[tp] - n) if from_end else start[tp])
        for msg in c:
            rows.append(
                {
                    "partition": msg.partition,
                    "offset": msg.offset,
                    "timestamp": pd.to_datetime(msg.timestamp, unit="ms", utc=True),
                    "key": msg.key.decode(errors="replace") if msg.key else None,
                    "value": msg.value.decode(errors="replace") if msg.value is not None else None,
                }
            )
            if len(rows) >= n * len(parts):
                break
    finally:
        c.close()
    df = pd.DataFrame(rows)
    return df.sort_values("timestamp").tail(n).reset_index(drop=True) if not df.empty else df


def dead_letters(n: int = 10, settings: Settings | None = None) -> pd.DataFrame:
    """The latest dead letters with their reason and where they came from."""
    settings = settings or get_settings()
    df = peek(settings.dlq_topic, n, settings)
    if df.empty:
        return df
    parsed = pd.DataFrame([json.loads(v) for v in df["value"]])
    return parsed[["reason", "source_partition", "source_offset", "payload"]]


def start_at(consumer, topic: str, since_ms: int | None) -> tuple[list, dict, set]:
    """Assign every partition of `topic` to `consumer` and seek each to the first record at or after `since_ms`
    (Kafka time; None: the beginning; a partition with nothing that new: its end). Returns the partitions, their
    end offsets as of now (a bounded read stops there) and the partitions that have records left to read."""
    from kafka import TopicPartition

    parts = [TopicPartition(topic, p) for p in sorted(consumer.partitions_for_topic(topic) or [])]
    consumer.assign(parts)
    end = consumer.end_offsets(parts)
    if since_ms is not None:
        found = consumer.offsets_for_times({tp: since_ms for tp in parts})
        for tp in parts:
            consumer.seek(tp, found[tp].offset if found.get(tp) else end[tp])
    else:
        consumer.seek_to_beginning(*parts)
    return parts, end, {tp for tp in parts if consumer.position(tp) < end[tp]}


def records(
    topic: str | None = None,
    *,
    since_ms: int | None = None,
    limit: int = 50_000,
    settings: Settings | None = None,
) -> pd.DataFrame:
    """Records of `topic` (from `since_ms` by Kafka timestamp, else from the start), at most `limit`:
    partition, offset, Kafka timestamp (arrival, in labkit's producer the send time) and the event's own
    `event_timestamp` where the value is a JSON click event (NaN otherwise: malformed or control records)."""

    settings = settings or get_settings()
    topic = settings.scoped(topic or settings.topic)
    c = _consumer(settings, consumer_timeout_ms=3000, max_poll_records=5000)
    rows = []
    try:
        parts, end, remaining = start_at(c, topic, since_ms)
        per_part = max(1, limit // max(1, len(parts)))
        taken: dict[int, int] = {}
        while remaining:
            batch = c.poll(timeout_ms=2000)
            if not batch:
                break
            for tp, msgs in batch.items():
                for m in msgs:
                    if m.offset >= end[tp] or taken.get(tp.partition, 0) >= per_part:
                        remaining.discard(tp)
                        break
                    taken[tp.partition] = taken.get(tp.partition, 0) + 1
                    rows.append((m.partition, m.offset, m.timestamp, _event_ms(m.value, m.timestamp)))
                if c.position(tp) >= end[tp]:
                    remaining.discard(tp)
    finally:
        c.close()
    df = pd.DataFrame(rows, columns=["partition", "offset", "kafka_ms", "event_ms"])
    df["arrival"] = pd.to_datetime(df["kafka_ms"], unit="ms", utc=True)
    df["event_time"] = pd.to_datetime(df["event_ms"], unit="ms", utc=True)
    return df.sort_values(["kafka_ms", "partition", "offset"]).reset_index(drop=True)


def _event_ms(value: bytes | None, kafka_ms: int) -> float:
    """The event time of a valid click event, NaN for anything the job would dead-letter or ignore: the job's
    rules as `labkit.click_rules` reads them (one Python port of lab.clickstream.ParseClick)."""
    from labkit.click_rules import event_ms

    return event_ms(value, kafka_ms)


def fresh_topic(name: str, settings: Settings | None = None, *, partitions: int | None = None, dlq: bool = True) -> str:
    """A scratch topic for an experiment: deleted if it exists, created empty (with its dead-letter topic),
    its previous producer ledger and its pipeline's restore point forgotten. Returns the name.

    `partitions`: how many (default: the lab's setting); `dlq=False`: no dead-letter topic (a topic no lab
    pipeline reads, such as notebook 10's orders)."""
    from kafka.errors import UnknownTopicOrPartitionError

    from labkit.stack.kafka import ensure_topics

    settings = settings or get_settings()
    if partitions is not None:
        settings = settings.model_copy(update={"partitions": partitions})
    name = settings.scoped(name)
    dlq_name = settings.dlq_topic_for(name)
    admin = _admin(settings)
    try:
        existing = [t for t in ((name, dlq_name) if dlq else (name,)) if t in admin.list_topics()]
        if existing:
            with contextlib.suppress(UnknownTopicOrPartitionError):
                admin.delete_topics(existing, timeout_ms=30_000)
            import time

            deadline = time.monotonic() + 30
            while any(t in admin.list_topics() for t in existing) and time.monotonic() < deadline:
                time.sleep(0.5)
        if not dlq:
            from kafka.admin import NewTopic
            from kafka.errors import TopicAlreadyExistsError

            new = NewTopic(
                name, num_partitions=settings.partitions, replication_factor=settings.kafka_replication_factor
            )
            with contextlib.suppress(TopicAlreadyExistsError):
                admin.create_topics([new])
    finally:
        admin.close()
    (settings.home / "runs" / f"last-{name}.json").unlink(missing_ok=True)
    # a pipeline on the old topic must not resume from offsets of a topic that no longer exists
    from labkit.jobs import pipeline_name, resume

    resume.forget(settings, pipeline_name(settings, name))
    if dlq:
        ensure_topics(settings.kafka, settings.model_copy(update={"topic": name, "dlq_topic": dlq_name}))
    return name


class LagRecorder:
    """Samples a consumer group's total lag every `every_s` seconds on a thread, for a lag-over-time chart:
    `with LagRecorder(group) as rec: ...` then `rec.frame()`; `rec.mark("TaskManager killed")` notes a moment."""

    def __init__(self, group: str, topic: str | None = None, every_s: float = 1.0, settings: Settings | None = None):
        import threading

        self.group, self.topic, self.every_s = group, topic, every_s
        self.settings = settings or get_settings()
        self.samples: list[tuple[pd.Timestamp, int, int]] = []
        self.marks: list[tuple[pd.Timestamp, str]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _sample(self) -> None:
        try:
            lg = lag(self.group, self.topic, self.settings)
            self.samples.append((pd.Timestamp.now(tz="UTC"), int(lg["lag"].sum()), int(lg["end"].sum())))
        except Exception:  # a broker restart drill: a missing sample is a gap in the chart, not an error
            pass

    def _run(self) -> None:
        while not self._stop.is_set():
            self._sample()
            self._stop.wait(self.every_s)

    def mark(self, what: str) -> None:
        self.marks.append((pd.Timestamp.now(tz="UTC"), what))

    def frame(self) -> pd.DataFrame:
        return pd.DataFrame(self.samples, columns=["time", "lag", "end_offsets"])

    def __enter__(self) -> LagRecorder:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        """Stops sampling, then takes one last sample: the chart ends on the lag as it is now. A drain that
        completes at once (a Flink job commits a whole backlog with one checkpoint) can fall between two
        samples when a sample takes longer than `every_s`; without this one, a recording stopped by
        `caught_up` ended on its peak (CI's docker run of notebook 08: lag 45,004, then 0 unseen)."""
        self._stop.set()
        self._thread.join(timeout=10)
        self._sample()


def consumer_groups_tool(*args: str, settings: Settings | None = None, timeout: float = 60) -> str:
    """Run Kafka's own `kafka-consumer-groups` tool (the class behind kafka-consumer-groups.sh, from the
    kafka-tools jar labkit provisions) against the lab's cluster, and return what it printed. Notebooks show
    the standard tool's view first; `lag()` is labkit's reading of the same offsets.

    Plaintext clusters only: on a secured cluster the tool needs a `--command-config` file with the SASL
    settings, which would put the password on disk; use `lag()` there."""
    import subprocess

    from labkit.errors import LabkitError
    from labkit.stack.provision import kafka as kafka_dist
    from labkit.stack.provision.tools import require_java

    s = settings or get_settings()
    if s.kafka_security_protocol != "PLAINTEXT":
        raise LabkitError(
            "kafka-consumer-groups is run here only against a plaintext cluster.",
            "use kafka_info.lag(group), which reads the same offsets with the lab's credentials",
        )
    if not kafka_dist.is_provisioned():
        raise LabkitError("Kafka's tools are not provisioned on this machine.", "run `labkit up --mode local` once")
    cmd = [require_java(), "-Xmx256m", "-cp", str(kafka_dist.jars_dir() / "*"),
           "org.apache.kafka.tools.consumer.group.ConsumerGroupCommand", "--bootstrap-server", s.kafka, *args]  # fmt: skip
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    # the tool prints a Java stack trace under its one-line error (and exits 0 on some): keep the lines for people
    noise = ("SLF4J", "\tat ", "java.util.concurrent.", "Caused by:")
    out = "\n".join(line for line in (r.stdout + r.stderr).splitlines() if not line.startswith(noise)).strip()
    if r.returncode != 0:
        raise LabkitError(
            f"kafka-consumer-groups failed: {out.strip()[-500:]}", "check that Kafka is up: labkit status"
        )
    return out


def join_group(consumers: list, timeout: float = 60) -> pd.DataFrame:
    """Poll every consumer of one group in turn until the group has settled: each partition of their topics
    assigned to exactly one of them. Returns one row per consumer: its partitions. Kafka's rebalance needs every
    member to poll (a member that does not is waited for, then dropped), so in one notebook cell the consumers
    take turns; each poll may also read a few records, which nobody commits here.

    Raises ServiceError if the group has not settled within `timeout` (Kafka not reachable, or a member stuck)."""
    import time

    from labkit.errors import ServiceError

    deadline = time.monotonic() + timeout
    topics = set().union(*((c.subscription() or set()) for c in consumers))
    last, same = None, 0
    while True:
        for c in consumers:
            c.poll(timeout_ms=300, max_records=10)
        owned = [sorted(tp.partition for tp in c.assignment()) for c in consumers]
        total = sum(len(consumers[0].partitions_for_topic(t) or ()) for t in topics)
        flat = [p for ps in owned for p in ps]
        # settled: every partition owned once, as many members owning some as can, and no change for 3 rounds
        complete = total > 0 and sorted(flat) == list(range(total)) if len(topics) == 1 else len(set(flat)) == total
        busy = sum(1 for o in owned if o) == min(len(consumers), total)
        same = same + 1 if owned == last else 0
        last = owned
        if complete and busy and same >= 3:
            return pd.DataFrame({"consumer": [f"consumer {i + 1}" for i in range(len(consumers))],
                                 "partitions": owned, "count": [len(p) for p in owned]})  # fmt: skip
        if time.monotonic() > deadline:
            raise ServiceError(
                f"the group did not settle within {timeout:.0f}s (assignments so far: {owned}).",
                "check that Kafka is up (`labkit status`) and that every consumer subscribed to the same topic",
            )
