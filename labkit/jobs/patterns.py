"""Notebook 10's tables and previews: the clickstream and its order confirmations as plain Flink SQL tables.

This notebook teaches standard Flink SQL, so its tables are what an attendee would write for any Kafka topic of
JSON events: columns named as the events name them (docs/event-schema.md), the event time from the event's own
`event_timestamp`, a watermark 5 s behind it (labkit.timing), and the Kafka connector. None of the lab's own
devices (its Java parsing, its on-time filter per partition, its dead letters) is used.

Two things make a notebook's run exact and gradeable, and both are standard options of the table:
* `'scan.watermark.emit.strategy' = 'on-event'`: the source emits its watermark after every record, instead of
  every 200 ms, so on a one-partition topic the watermark each row meets is pinned by Kafka's order, and the
  Python references (labkit.patterns_reference, `Watermark(emit="on-event")`) say exactly which rows Flink drops
  as late;
* `'scan.bounded.mode' = 'latest-offset'`: a preview reads what the topic holds when it starts and stops there;
  at the end of its input Flink's watermark jumps to the end of time, so every window, session and pattern
  fires (`Watermark(bounded=True)`). No end marker is needed, however long the windows or the session gaps.

`PatternStreams` produces the notebook's streams to its own one-partition topics (orders, retries and pausing
sessions on: the generator's options of issue 24), reads the records back for the references, and previews an
attendee's SELECT over `clicks` and `orders` (`preview`): a bounded local run whose rows carry their kind (`op`:
+I, -U, +U, -D), so an updating result shows its changelog.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import pandas as pd

from labkit import patterns_reference as pr
from labkit.jobs.sql import lit
from labkit.settings import Settings
from labkit.settings import get as get_settings
from labkit.timing import WATERMARK_DELAY_MS, WATERMARK_DELAY_S

#: the click event's fields (labkit.events; docs/event-schema.md), as the `clicks` table declares them
CLICK_COLUMNS = (
    ("event_id", "STRING"),
    ("user_id", "STRING"),
    ("session_id", "STRING"),
    ("url", "STRING"),
    ("http_method", "STRING"),
    ("http_status", "INT"),
    ("latency_ms", "DOUBLE"),
    ("country", "STRING"),
    ("device", "STRING"),
    ("event_timestamp", "BIGINT"),
)
#: the order confirmation's fields (labkit.events, the `orders` option)
ORDER_COLUMNS = (
    ("order_id", "STRING"),
    ("session_id", "STRING"),
    ("user_id", "STRING"),
    ("items", "INT"),
    ("amount", "DOUBLE"),
    ("currency", "STRING"),
    ("event_timestamp", "BIGINT"),
)

#: how the references replay this notebook's previews: the tables' delay, a watermark after every record, and a
#: bounded run whose end fires everything. Exact on one partition (patterns_reference's docstring says why).
REFERENCE_WATERMARK = pr.Watermark(delay_ms=WATERMARK_DELAY_MS, emit="on-event", bounded=True)

# The stream's shape: 12 clicks per simulated second among 30 open sessions puts a session's clicks about 2.5 s
# apart, far below a one-minute session gap, while the generator's pauses (90-240 s) are far above it: a gap of
# one minute splits exactly the sessions that paused. 12,000 clicks span about 17 minutes of event time, room
# for the orders (a median of a minute after their checkout, about 1.5% after more than ten).
RATE = 12.0
CONCURRENT_SESSIONS = 30


def table_ddl(
    name: str,
    columns: tuple[tuple[str, str], ...],
    topic: str,
    bootstrap: str,
    *,
    group_id: str,
    kafka_properties: tuple[tuple[str, str], ...] = (),
    delay_s: int = WATERMARK_DELAY_S,
    bounded: bool = True,
) -> str:
    """CREATE TABLE for a Kafka topic of JSON events with an `event_timestamp` (epoch ms): its columns, `rowtime`
    (the event time, a TIMESTAMP_LTZ(3)) with a watermark `delay_s` behind it, emitted after every record, and
    `proctime` (processing time). Read from the earliest offset; `bounded`: up to the latest offset at the start."""
    cols = ",\n".join(f"  {c} {t}" for c, t in columns)
    props = "".join(f"\n  {lit('properties.' + k)} = {lit(v)}," for k, v in kafka_properties)  # SASL, TLS
    end = "\n  'scan.bounded.mode' = 'latest-offset'," if bounded else ""
    return f"""CREATE TEMPORARY TABLE {name} (
{cols},
  rowtime AS TO_TIMESTAMP_LTZ(event_timestamp, 3),
  proctime AS PROCTIME(),
  WATERMARK FOR rowtime AS rowtime - INTERVAL '{delay_s}' SECOND
) WITH (
  'connector' = 'kafka',
  'topic' = {lit(topic)},
  'properties.bootstrap.servers' = {lit(bootstrap)},
  'properties.group.id' = {lit(group_id)},{props}
  'scan.startup.mode' = 'earliest-offset',{end}
  'scan.watermark.emit.strategy' = 'on-event',
  'format' = 'json',
  'json.ignore-parse-errors' = 'true'
)"""


def clicks_ddl(topic: str, bootstrap: str, **kw) -> str:
    """The `clicks` table (see table_ddl)."""
    return table_ddl("clicks", CLICK_COLUMNS, topic, bootstrap, **kw)


def orders_ddl(topic: str, bootstrap: str, **kw) -> str:
    """The `orders` table (see table_ddl)."""
    return table_ddl("orders", ORDER_COLUMNS, topic, bootstrap, **kw)


def read_topic(topic: str, settings: Settings) -> pd.DataFrame:
    """Every record of `topic` in Kafka's order (partition, offset): partition, offset, timestamp (the Kafka
    timestamp), key, value (the JSON text). What the references take."""
    from labkit import kafka_info

    df = kafka_info.peek(topic, n=10_000_000, settings=settings, from_end=False)
    if df.empty:
        return pd.DataFrame(columns=["partition", "offset", "timestamp", "key", "value"])
    return df.sort_values(["partition", "offset"], kind="stable").reset_index(drop=True)


@dataclass
class PatternStreams:
    """The notebook's two topics (clicks, orders), what was produced to them and the records read back."""

    clicks_topic: str
    orders_topic: str
    settings: Settings = field(default_factory=get_settings)
    clicks: pd.DataFrame = field(default_factory=pd.DataFrame, repr=False)  # records as read_topic gives them
    orders: pd.DataFrame = field(default_factory=pd.DataFrame, repr=False)
    session_pauses: list = field(default_factory=list, repr=False)  # the generator's answer key: (sid, last, back)
    summary: object = field(default=None, repr=False)  # the ProduceSummary
    watermark: pr.Watermark = REFERENCE_WATERMARK

    @classmethod
    def produce(
        cls,
        count: int = 12_000,
        *,
        seed: int = 10,
        clicks_topic: str = "lab10_clicks",
        orders_topic: str = "lab10_orders",
        rate: float = RATE,
        late_fraction: float = 0.005,
        duplicates: float = 0.02,
        orders: float = 0.85,
        session_gaps: float = 0.2,
        settings: Settings | None = None,
    ) -> PatternStreams:
        """Fresh one-partition topics, `count` clicks to the first (retries, pausing sessions, a few late events)
        and their orders to the second, event time back-dated so that even the last order lies in the past; then
        the records read back.

        No end marker and no wake-up record is sent: the topics hold events only, and the previews, being
        bounded, fire every window at the end of their input."""
        from labkit import kafka_info
        from labkit.events import EventGenerator
        from labkit.produce import produce

        s = settings or get_settings()
        clicks_topic = kafka_info.fresh_topic(clicks_topic, s, partitions=1)
        orders_topic = kafka_info.fresh_topic(orders_topic, s, partitions=1, dlq=False)
        # Back-dated so that the last order, up to order_delay_max_s after the last checkout, is sent before now: a
        # Kafka timestamp far ahead of the broker's clock can be refused (log.message.timestamp.after.max.ms).
        ahead_s = EventGenerator.order_delay_max_s + 60
        gen = EventGenerator(
            seed=seed,
            rate=rate,
            start_ms=int(time.time() * 1000 - (count / rate + ahead_s) * 1000),
            concurrent_sessions=CONCURRENT_SESSIONS,
            late_fraction=late_fraction,
            orders=orders,
            duplicates=duplicates,
            session_gaps=session_gaps,
        )
        summary = produce(
            count,
            topic=clicks_topic,
            orders_topic=orders_topic,
            generator=gen,
            settings=s,
            progress=False,
            wake_partitions=False,
        )
        streams = cls(clicks_topic, orders_topic, s, session_pauses=list(gen.session_pauses), summary=summary)
        return streams.read()

    def read(self) -> PatternStreams:
        """Read both topics back (what the references are computed from)."""
        self.clicks = read_topic(self.clicks_topic, self.settings)
        self.orders = read_topic(self.orders_topic, self.settings)
        return self

    @property
    def partitions(self) -> int:
        """How many partitions the click records came from (1 for the notebook's topics: the exact case)."""
        return int(self.clicks["partition"].nunique()) if len(self.clicks) else 1

    def ddl(self, bounded: bool = True) -> list[str]:
        """The CREATE TABLE statements of `clicks` and `orders`, as the preview runs them (the job's view of Kafka:
        on this machine, `settings.kafka`)."""
        from labkit.kafka_clients import java_properties

        s = self.settings
        kw = {"kafka_properties": tuple(java_properties(s).items()), "bounded": bounded}
        return [
            clicks_ddl(self.clicks_topic, s.kafka, group_id=s.scoped("labkit-lab10-clicks"), **kw),
            orders_ddl(self.orders_topic, s.kafka, group_id=s.scoped("labkit-lab10-orders"), **kw),
        ]

    def show_ddl(self, table: str = "clicks") -> str:
        """The CREATE TABLE of `clicks` or `orders` fit to print: as ddl() gives it, with the secrets of a secured
        cluster (the SASL password, private keys, the inline CA) replaced by `***` (kafka_clients.redact_secrets).
        The previews run ddl(), never this."""
        from labkit.errors import ConfigError
        from labkit.kafka_clients import redact_secrets

        tables = ("clicks", "orders")
        if table not in tables:
            raise ConfigError(f"no table {table!r} in this notebook.", "show_ddl('clicks') or show_ddl('orders')")
        return redact_secrets(self.ddl()[tables.index(table)])

    def preview(self, sql: str, name: str = "pattern", limit: int = 200_000, timeout_s: float = 180) -> pd.DataFrame:
        """Run `sql` (a SELECT over `clicks` and `orders`) once over everything the topics hold, in a local
        bounded run, and return its rows with their kind first (`op`: +I, -U, +U, -D). Window columns come back
        as datetimes, and so does a selected `rowtime` or `proctime` (as UTC timestamps). Raises JobError with Flink's message for a query that fails, PreviewTimeout when the lab
        is too slow."""
        from labkit.jobs import base_spec
        from labkit.jobs.custom import run_preview

        spec = base_spec(self.settings, f"preview-lab10-{name}", parallelism=1)
        spec["ddl"] = self.ddl()
        spec["custom"] = {"sql": sql.strip().rstrip(";"), "measurement": f"lab10_{name}", "stream": self.clicks_topic}
        df = run_preview(
            spec,
            f"lab10-{name}",
            self.settings,
            limit=limit,
            timeout_s=timeout_s,
            row_kind=True,
            plain_time=True,
            slow_hint="run it again; a busy machine starts a preview slowly (or give it longer: timeout_s=...)",
        )
        for c in ("window_start", "window_end", "window_time"):
            if c in df.columns:
                df[c] = pd.to_datetime(df[c], errors="coerce", format="ISO8601")  # whole seconds or not, each row
        return df


def changelog_table(result: pd.DataFrame, op: str = "op") -> pd.DataFrame:
    """The table a changelog leaves: +I and +U rows added, each -U and -D removing one equal row (the columns
    other than `op`). For an insert-only result, the result itself without `op`."""
    if op not in result.columns:
        return result.reset_index(drop=True)
    cols = [c for c in result.columns if c != op]
    if not result[op].isin(["-U", "-D"]).any():
        return result[cols].reset_index(drop=True)
    live: dict = {}
    order: list = []
    for kind, *values in result[[op, *cols]].itertuples(index=False, name=None):
        k = tuple(_hashable(v) for v in values)
        if kind in ("-U", "-D"):
            if live.get(k):
                live[k].pop()
        else:
            live.setdefault(k, []).append(values)
            order.append(k)
    rows, seen = [], set()
    for k in order:
        if k in seen:
            continue
        seen.add(k)
        rows += live.get(k, [])
    return pd.DataFrame(rows, columns=cols)


def _hashable(v: object) -> object:
    return tuple(v) if isinstance(v, list) else v
