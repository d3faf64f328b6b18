"""Produce the clickstream to Kafka: bounded (count/duration) or unbounded, paced or full speed.

kafka-python is the default client (pure Python, what the course teaches); `engine="confluent"`
uses librdkafka for benchmarks. Either way: keyed by session (a session stays in one partition),
acks=all with retries and idempotence, and a ledger of what the broker acknowledged.
"""

from __future__ import annotations

import contextlib
import gc
import html
import json
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from functools import partial

from labkit.errors import ConfigError, ServiceError
from labkit.events import WINDOW_MS, EventGenerator, Scenario, window_end
from labkit.kafka_clients import diagnose, librdkafka_config, python_config
from labkit.ledger import Ledger
from labkit.progress import Progress
from labkit.settings import Settings
from labkit.settings import get as get_settings
from labkit.timing import WATERMARK_DELAY_MS


class _KafkaPython:
    def __init__(self, settings: Settings) -> None:
        from kafka import KafkaProducer
        from kafka.errors import KafkaError

        bootstrap = settings.kafka
        try:
            self.p = KafkaProducer(
                **python_config(settings),
                acks="all",
                retries=2**31 - 1,
                enable_idempotence=True,
                linger_ms=20,
                batch_size=256 * 1024,
                max_in_flight_requests_per_connection=5,
                client_id="labkit-producer",
                request_timeout_ms=30_000,
                delivery_timeout_ms=300_000,
            )
        except KafkaError:
            raise diagnose(settings) or ServiceError(
                f"Kafka is not reachable at {bootstrap}.", "start the stack with `labkit up`"
            ) from None

    def send(self, topic, key, value, ts, partition=None, on_error=None) -> None:
        fut = self.p.send(topic, key=key, value=value, timestamp_ms=ts, partition=partition)
        if on_error is not None:
            fut.add_errback(on_error)

    def bound(self, topic: str):
        """`send(key, value, ts, on_error)` to `topic`: the producer loop's per-event call."""
        send = self.send
        return lambda key, value, ts, on_error=None: send(topic, key, value, ts, on_error=on_error)

    def tick(self) -> None:
        """Called every 1,024 events: kafka-python's I/O thread needs nothing from this one."""

    def partitions(self, topic: str) -> list[int]:
        return sorted(self.p.partitions_for(topic) or [0])

    def flush(self, timeout_s: float = 300) -> None:
        import time

        from kafka.errors import KafkaError

        # kafka-python returns from flush() early when it split a batch the broker refused as too large
        # (the Java client had the same bug, KAFKA-9312), and while the split batches are still on their way it
        # raises at once ("Future not done"): flush again, for the whole deadline, until every record has its
        # answer. Twenty immediate retries ran out in microseconds on a busy machine (tests beside each other).
        deadline = time.monotonic() + timeout_s
        while True:
            try:
                self.p.flush(timeout=max(0.1, deadline - time.monotonic()))
                return
            except KafkaError:
                if time.monotonic() >= deadline:
                    break
                time.sleep(0.05)
        raise ServiceError(
            f"Kafka did not acknowledge every record within {timeout_s:.0f} s.", "see `labkit logs kafka`"
        )

    def close(self) -> None:
        self.p.close()


class _Confluent:
    def __init__(self, settings: Settings) -> None:
        from confluent_kafka import Producer

        self.p = Producer(
            {
                **librdkafka_config(settings),
                "acks": "all",
                "enable.idempotence": True,
                "linger.ms": 20,
                "batch.size": 1_000_000,
                "queue.buffering.max.messages": 1_000_000,
                "client.id": "labkit-producer",
                "message.timeout.ms": 300_000,
                # a delivery report (a call into Python) only for a failed send: the ledger undoes those
                "delivery.report.only.error": True,
            }
        )

    def send(self, topic, key, value, ts, partition=None, on_error=None) -> None:
        # on_error(err, msg) goes to librdkafka as the delivery callback itself: no wrapper object per record
        produce = self.p.produce
        while True:
            try:
                if partition is None:
                    produce(topic, value, key, timestamp=ts, on_delivery=on_error)
                else:
                    produce(topic, value, key, partition=partition, timestamp=ts, on_delivery=on_error)
                break
            except BufferError:  # the local queue is full: let librdkafka deliver some first
                self.p.poll(0.05)

    def bound(self, topic: str):
        """`send(key, value, ts, on_error)` to `topic`, for the producer loop: librdkafka's `produce` itself, bound
        once, with no Python frame of ours around it unless the local queue is full. The method frame and its
        attribute lookups cost ~0.5 µs per event, a quarter of the send's ~2 µs (measured, docs/benchmarks.md)."""
        produce, send = self.p.produce, self.send

        def send_one(key, value, ts, on_error=None) -> None:
            try:
                produce(topic, value, key, timestamp=ts, on_delivery=on_error)
            except BufferError:  # the queue is full: the method's loop waits for room
                send(topic, key, value, ts, on_error=on_error)

        return send_one

    def tick(self) -> None:
        """Called every 1,024 events: serve librdkafka's callbacks (here only failed sends' reports)."""
        self.p.poll(0)

    def partitions(self, topic: str) -> list[int]:
        md = self.p.list_topics(topic, timeout=10)
        return sorted(md.topics[topic].partitions)

    def flush(self) -> None:
        self.p.flush(300)

    def close(self) -> None:
        self.flush()


@dataclass
class ProduceSummary:
    """What one `produce` call sent; `ledger` holds the expected counts per window and status."""

    run_id: str
    topic: str
    produced: int
    seconds: float
    by_status: Counter
    by_kind: Counter
    ledger: Ledger = field(repr=False)
    scenario: str | None = None
    # the `orders` option's second stream; None/0 without it, and then the summary says nothing about orders
    orders_topic: str | None = field(default=None, repr=False)
    orders: int = field(default=0, repr=False)

    @property
    def rate(self) -> float:
        return self.produced / self.seconds if self.seconds else 0.0

    @property
    def acknowledged(self) -> int:
        return self.produced - self.ledger.failed

    def as_dict(self) -> dict:
        return {
            "run_id": self.run_id,
            "topic": self.topic,
            "produced": self.produced,
            "acknowledged": self.acknowledged,
            "seconds": round(self.seconds, 2),
            "events_per_s": round(self.rate),
            "valid_on_time": self.by_kind["valid"],
            "late": self.by_kind["late"],
            "malformed": self.by_kind["malformed"],
            "windows": len({w for w, _ in self.ledger.on_time}),
            "scenario": self.scenario,
        } | ({"orders_topic": self.orders_topic, "orders": self.orders} if self.orders_topic else {})

    def __str__(self) -> str:
        d = self.as_dict()
        statuses = ", ".join(f"{s}: {n:,}" for s, n in sorted(self.by_status.items()))
        return (
            f"produced {d['produced']:,} events to {self.topic} in {d['seconds']}s ({d['events_per_s']:,}/s); "
            f"acknowledged {d['acknowledged']:,}; on time {d['valid_on_time']:,}, late {d['late']:,}, "
            f"malformed {d['malformed']:,}; windows {d['windows']}\nby status: {statuses}"
        ) + (f"\n{self.orders:,} orders to {self.orders_topic}" if self.orders_topic else "")

    def _repr_html_(self) -> str:
        d = self.as_dict()
        rows = "".join(
            f"<tr><td>{html.escape(k)}</td><td>{v:,}</td></tr>"
            if isinstance(v, int) and not isinstance(v, bool)
            else f"<tr><td>{html.escape(k)}</td><td>{html.escape(str(v))}</td></tr>"
            for k, v in d.items()
        )
        st = "".join(f"<tr><td>{s}</td><td>{n:,}</td></tr>" for s, n in sorted(self.by_status.items()))
        return (
            f"<b>Producer summary</b><div style='display:flex;gap:2em'><table>{rows}</table>"
            f"<table><tr><th>status</th><th>events</th></tr>{st}</table></div>"
        )


def produce(
    count: int | None = None,
    *,
    duration: float | None = None,
    rate: float | None = None,
    seed: int = 42,
    scenario: str | Scenario | None = None,
    late_fraction: float = 0.0,
    malformed_fraction: float = 0.0,
    topic: str | None = None,
    sim_rate: float | None = None,
    start_ms: int | None = None,
    close_windows: bool = False,
    engine: str = "kafka-python",
    settings: Settings | None = None,
    progress: bool = True,
    generator: EventGenerator | None = None,
    wake_partitions: bool = True,
    orders: float = 0.0,
    duplicates: float = 0.0,
    session_gaps: float = 0.0,
    orders_topic: str | None = None,
) -> ProduceSummary:
    """Send events and return a summary with a ledger of what the broker acknowledged.

    count/duration bound the run (both None: until interrupted). `rate` paces sending in events per
    wall-clock second (None: full speed). Event time follows the wall clock when paced; at full speed
    a bounded run is back-dated so its last event is about now (`sim_rate` events per event-time second).
    `close_windows` sends an end marker to every partition afterwards, so the last windows fire.

    `orders`, `duplicates` and `session_gaps` are the generator's pattern options (notebook 10; see EventGenerator),
    all off by default. With orders on (here or in `generator`), each order confirmation goes to `orders_topic`
    (default: the settings' `orders_topic`, created if missing) as soon as the clicks' send clock reaches its
    Kafka timestamp, and those still pending when the run ends right after it. Orders are not clicks: the ledger
    and the click counts leave them out; the summary counts them. Orders happen in event time, up to minutes after
    their checkout: a run meant to show them spans well over 10 minutes of event time (e.g. a low `sim_rate`).
    """
    settings = settings or get_settings()
    topic = settings.scoped(topic or settings.topic)
    if count is not None and count < 0:
        raise ConfigError(f"count must be >= 0 (got {count}).", "pass a positive count, or none for unbounded")
    if rate is not None and rate <= 0:
        raise ConfigError(f"rate must be positive (got {rate}).", "pass e.g. rate=500, or rate=None for full speed")
    if engine not in ("kafka-python", "confluent"):
        raise ConfigError(f"unknown producer engine {engine!r}.", "use engine='kafka-python' or engine='confluent'")
    sim = sim_rate or rate or 1000.0
    live = False  # event time at the wall clock from the first event (rate given, nothing earlier on the topic)
    if start_ms is None:
        now = int(time.time() * 1000)
        start_ms = now - int(count / sim * 1000) if (rate is None and count) else now
        start_ms = max(start_ms, _clock_floor(topic, settings))
        live = rate is not None and start_ms == now and generator is None
    gen = generator or EventGenerator(
        seed=seed,
        rate=sim,
        start_ms=start_ms,
        late_fraction=late_fraction,
        malformed_fraction=malformed_fraction,
        scenario=scenario,
        orders=orders,
        duplicates=duplicates,
        session_gaps=session_gaps,
    )
    if settings.mode == "external" and (problem := diagnose(settings)):
        raise problem  # someone else's cluster: name the setting now, not after a client's 30 s timeout
    sender = (_KafkaPython if engine == "kafka-python" else _Confluent)(settings)
    take_orders = getattr(gen, "take_orders", None) if getattr(gen, "orders", 0) else None
    if take_orders is not None:
        orders_topic = settings.scoped(orders_topic or settings.orders_topic)
        _ensure_topic(orders_topic, settings)
    if wake_partitions:
        wake(sender, topic, int(getattr(gen, "clock_ms", start_ms)) - 1)
    if live:
        # Building the generator, connecting and checking the topic take a second or more since `now`: started
        # there, every event's time would stay that far behind the wall clock, and each window would close that
        # much later than its events say (freshness, docs/benchmarks.md). The wake-up markers sent above are older.
        gen.start_at(int(time.time() * 1000))
    info = getattr(gen, "scenario_info", None)
    ledger = Ledger(topic, scenario=info() if info else None)
    by_status: Counter = Counter()
    by_kind: Counter = Counter()
    run_id = uuid.uuid4().hex[:8]
    bar = Progress(count, f"producing to {topic}") if progress else None
    t0 = time.monotonic()
    deadline = t0 + duration if duration else None
    n = n_orders = 0
    counts: dict[tuple[str, int], int] = {}
    send = sender.send
    send_event = sender.bound(topic)

    # Delivery callbacks run on the client's I/O thread: they only queue the refused events (list.append is
    # atomic), and the ledger, which this thread writes, takes them out after the final flush.
    refused: list = []

    def failed(e, err, _msg=None) -> None:  # the broker never acknowledged e: nobody should count it
        if err is not None:
            refused.append(e)

    # Every in-flight record holds a delivery callback until the broker acknowledges it: hundreds of
    # thousands of live, GC-tracked objects that the cyclic collector rescans over and over (about a third
    # of the producer's time). The loop makes no reference cycles, so reference counting frees everything;
    # a young-generation pass every 65,536 events collects what clients or a custom generator leave in cycles.
    gc_was_enabled = gc.isenabled()
    gc.disable()
    try:
        while count is None or n < count:
            if deadline is not None and (n & 255) == 0 and time.monotonic() >= deadline:
                break
            if rate is not None:
                ahead = n / rate - (time.monotonic() - t0)
                if ahead > 0.002:
                    time.sleep(ahead)
            e = next(gen)
            ledger.add_event(e)
            counts[(e.kind, e.status)] = counts.get((e.kind, e.status), 0) + 1
            send_event(e.key, e.value, e.timestamp_ms, partial(failed, e))
            n += 1
            if take_orders is not None:
                for o in take_orders(e.timestamp_ms):
                    send(orders_topic, o.key, o.value, o.timestamp_ms)
                    n_orders += 1
            if (n & 1023) == 0:
                sender.tick()
                if bar is not None:
                    bar.update(1024)
                if (n & 0xFFFF) == 0:
                    gc.collect(0)
        if take_orders is not None:  # the run's last checkouts: their orders come after its last click
            for o in take_orders(None):
                send(orders_topic, o.key, o.value, o.timestamp_ms)
                n_orders += 1
    except KeyboardInterrupt:
        pass
    finally:
        try:
            sender.flush()
        finally:
            if gc_was_enabled:
                gc.enable()
            for e in refused:
                ledger.add_event(e, sign=-1)
        if bar is not None:
            bar.update(n - bar.n)
            bar.close()
    for (kind, status), k in counts.items():
        by_kind[kind] += k
        if kind != "malformed":
            by_status[status] += k
    if close_windows and ledger.last_event_ms is not None:
        send_end_markers(sender, topic, ledger)
        sender.flush()
    sender.close()
    summary = ProduceSummary(
        run_id,
        topic,
        n,
        time.monotonic() - t0,
        by_status,
        by_kind,
        ledger,
        scenario.name if isinstance(scenario, Scenario) else scenario,
    )
    if take_orders is not None:
        summary.orders_topic, summary.orders = orders_topic, n_orders
    ledger.save(settings.home / "runs" / f"{run_id}.json")
    ledger.save(settings.home / "runs" / f"last-{topic}.json")
    return summary


def _ensure_topic(topic: str, settings: Settings) -> None:
    """Create `topic` like the lab's own topics (partitions, replication) if it is missing. The orders topic is
    not one `labkit up` makes (only the orders option writes it), and a broker may not auto-create topics."""
    from kafka.admin import NewTopic
    from kafka.errors import TopicAlreadyExistsError

    from labkit import kafka_clients

    admin = kafka_clients.admin(settings, client_id="labkit-admin")
    try:
        if topic not in set(admin.list_topics()):
            new = NewTopic(
                topic, num_partitions=settings.partitions, replication_factor=settings.kafka_replication_factor
            )
            with contextlib.suppress(TopicAlreadyExistsError):  # made meanwhile by someone else: as good
                admin.create_topics([new])
    finally:
        admin.close()


def wake(sender, topic: str, ts: int, settle_s: float = 1.5) -> None:
    """A control event per partition just before a run's first event, then a short pause.

    A job that idled for longer than its idle timeout has its partitions marked idle, and an idle partition
    is left out of the watermark. Without this, the first partition the job reads of a fast run advances the
    watermark alone, and the other partitions' first events arrive behind it: late, though sent on time
    (seen in notebook 06: 1,022 of a window's 2,000 events). Waking every partition first makes them all
    active before any of them moves the watermark. The job counts control events nowhere."""
    value = json.dumps({"event_type": "watermark", "event_timestamp": ts}).encode()
    for p in sender.partitions(topic):
        sender.send(topic, b"__watermark__", value, ts, partition=p)
    sender.flush()
    time.sleep(settle_s)


def send_end_markers(sender, topic: str, ledger: Ledger, watermark_delay_ms: int = WATERMARK_DELAY_MS) -> None:
    """A control event per partition, one window past the last event: moves every partition's
    watermark past the last window so it fires. The job counts control events nowhere."""
    ts = ledger.last_event_ms + watermark_delay_ms + WINDOW_MS + 1000
    value = json.dumps({"event_type": "watermark", "event_timestamp": ts}).encode()
    for p in sender.partitions(topic):
        sender.send(topic, b"__watermark__", value, ts, partition=p)
    ledger.closed_until_ms = ts - watermark_delay_ms


def _clock_floor(topic: str, settings: Settings, watermark_delay_ms: int = WATERMARK_DELAY_MS) -> int:
    """Event time never goes backwards on a topic: a new run starts in the window after the last one
    (and after its end markers), or its events would be late or share a window with the previous run."""
    try:
        prev = load_ledger(topic, settings)
    except ConfigError:
        return 0
    last = max(v for v in (prev.last_event_ms, (prev.closed_until_ms or 0) + watermark_delay_ms, 0) if v is not None)
    return window_end(last, prev.window_ms)


def clock_ahead_s(topic: str | None = None, settings: Settings | None = None) -> float:
    """How far the topic's event-time clock (where its next run must start) is ahead of the wall clock, in
    seconds; 0 when it is not. Back-dated runs end about now, but a run too short to reach back past the previous
    one starts after it, in the future: a live run (event time at the wall clock's pace, for a Grafana whose
    "now" is the wall clock) waits this long first, or its windows fall outside Grafana's last minutes."""
    settings = settings or get_settings()
    topic = settings.scoped(topic or settings.topic)
    return max(0.0, (_clock_floor(topic, settings) - time.time() * 1000) / 1000)


def load_ledger(topic: str | None = None, settings: Settings | None = None) -> Ledger:
    settings = settings or get_settings()
    topic = settings.scoped(topic or settings.topic)
    path = settings.home / "runs" / f"last-{topic}.json"
    if not path.exists():
        raise ConfigError(f"no producer run recorded for topic {topic}.", "run `labkit produce` first")
    return Ledger.from_json(path.read_text())
