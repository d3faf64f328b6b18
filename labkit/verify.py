"""Accounting: the producer's ledger against what the pipeline wrote (InfluxDB) and dead-lettered (Kafka).

Per closed 10 s window and status: lost = expected but not counted, duplicated = counted beyond
expected. Late events and dead letters are compared by total and by reason. Then every other measurement
the job writes, per closed window, against the ledger's detail (`metric_values`): error_rate (totals, 4xx,
5xx, shares), url_counts (count, errors, 5xx per URL), active_users (distinct users and sessions, exact) and
latency (p50/p95/p99 and count per URL and site-wide; the job's PERCENTILE is exact with linear interpolation,
so they must agree to rounding, 1e-6 ms). A window missing from any measurement is a mismatch too.
"""

from __future__ import annotations

import html
import json
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime

import numpy as np
import pandas as pd

from labkit.ledger import Ledger
from labkit.settings import Settings
from labkit.settings import get as get_settings
from labkit.timing import IDLE_TIMEOUT_S


@dataclass
class Accounting:
    topic: str
    windows: int
    open_windows: int
    expected: int
    counted: int
    lost: int
    duplicated: int
    late_expected: int
    late_counted: int
    dlq_expected: Counter
    dlq_found: Counter
    mismatches: pd.DataFrame = field(repr=False)
    missing_windows: dict = field(default_factory=dict)  # measurement -> closed windows without a point
    # measurement -> (window, key, field) values that differ from the ledger; None: not checked (no detail)
    value_mismatches: dict | None = None
    value_diffs: pd.DataFrame = field(default_factory=pd.DataFrame, repr=False)  # the first differing values
    dlq_checked: bool = True  # False: check_dlq=False, the dead letters were not read (never assumed)
    # closed windows whose late events (read − counted) differ from the ledger's late events for that window
    late_windows_off: int = 0
    # points of the run's windows that InfluxDB refused (field type conflict, beyond retention), and why
    refused: int = 0
    refused_why: list[str] = field(default_factory=list)
    detail_dropped_at: int | None = None  # the ledger's: an unbounded run dropped its detail (ledger.DETAIL_CAP)

    @property
    def complete(self) -> bool:
        """Everything the run sent was checked: at least one window, none still open, the DLQ read. A run
        without end markers leaves its last windows open (they fire only when later events move the
        watermark), and a run whose windows are all open checked nothing: neither may be called EXACT."""
        return self.windows > 0 and self.open_windows == 0 and self.dlq_checked

    def _incomplete_reasons(self) -> list[str]:
        why = []
        if self.windows == 0:
            why.append("no window of the run was checked (all of them are still open)")
        elif self.open_windows:
            why.append(f"{self.open_windows} window(s) are still open, so their counts were not checked")
        if not self.dlq_checked:
            why.append("the dead-letter topic was not read")
        return why

    @property
    def agrees(self) -> bool:
        """The checked windows' numbers agree with the ledger (what EXACT needs besides being complete)."""
        return (
            self.lost == 0
            and self.duplicated == 0
            and self.late_expected == self.late_counted
            and self.late_windows_off == 0
            and self.dlq_expected == self.dlq_found
            and not any(self.missing_windows.values())
            and not any((self.value_mismatches or {}).values())
            and self.refused == 0
        )

    @property
    def exact(self) -> bool:
        return self.complete and self.agrees

    @property
    def missed_are_late(self) -> bool:
        """Every on-time event the windows missed was read and is in the late count (read minus counted), and none
        was counted twice: nothing vanished, the window operator's watermark was ahead of them (labkit.timing's
        IDLE_TIMEOUT_S says when that happens)."""
        return not self.duplicated and self.lost == self.late_counted - self.late_expected

    @property
    def verdict(self) -> str:
        if self.exact:
            return "EXACT: every event is accounted for"
        if self.agrees:
            return (
                "INCOMPLETE: "
                + "; ".join(self._incomplete_reasons())
                + ". Send end markers so the last windows fire (`labkit produce --close-windows`, or "
                "close_windows=True), make sure the pipeline is running (`labkit jobs`), then verify again"
                + ("" if self.dlq_checked else " with the dead-letter check on")
            )
        parts = []
        if self.lost and self.missed_are_late:
            parts.append(
                f"{self.lost} on-time event(s) counted late: read, but after their windows had closed (a partition "
                f"back from idle behind the others' watermark, e.g. Kafka down longer than the source's "
                f"{IDLE_TIMEOUT_S} s idle timeout); none vanished"
            )
        else:
            if self.lost:
                parts.append(f"{self.lost} lost")
            if self.duplicated:
                parts.append(f"{self.duplicated} double counted")
            if self.late_expected != self.late_counted:
                parts.append(f"late {self.late_counted} counted vs {self.late_expected} sent")
        if self.late_windows_off:
            parts.append(f"late events differ from the ledger in {self.late_windows_off} window(s)")
        for m, n in self.missing_windows.items():
            if n:
                parts.append(f"{m} missing {n} window(s)")
        if self.dlq_expected != self.dlq_found:
            parts.append(f"dead letters {sum(self.dlq_found.values())} found vs {sum(self.dlq_expected.values())} sent")
        for m, n in (self.value_mismatches or {}).items():
            if n:
                parts.append(f"{m}: {n} value(s) differ from the ledger")
        if self.refused:
            parts.append(
                f"InfluxDB refused {self.refused} point(s) of the run's windows: {'; '.join(self.refused_why)}"
            )
        return "MISMATCH: " + ", ".join(parts) + "".join(f" ({w})" for w in self._incomplete_reasons())

    def as_dict(self) -> dict:
        return {
            "topic": self.topic,
            "windows checked": self.windows,
            "windows still open": self.open_windows,
            "on-time events expected": self.expected,
            "counted": self.counted,
            "lost": self.lost,
            "double counted": self.duplicated,
            "late sent": self.late_expected,
            "late counted": self.late_counted,
            "dead letters sent": sum(self.dlq_expected.values()),
            "dead letters in DLQ": sum(self.dlq_found.values()),
            "values checked": "every measurement"
            if self.value_mismatches is not None
            else "http_counts only (no detail in the ledger)"
            if self.detail_dropped_at is None
            else f"http_counts only (the producer dropped the detail after {self.detail_dropped_at:,} events)",
            "verdict": self.verdict,
        }

    def __str__(self) -> str:
        return "\n".join(
            f"{k:>24}: {v:,}" if isinstance(v, int) else f"{k:>24}: {v}" for k, v in self.as_dict().items()
        )

    def _repr_html_(self) -> str:
        color = "#2e7d32" if self.exact else "#c62828"
        rows = "".join(
            f"<tr><td>{html.escape(k)}</td><td>{html.escape(f'{v:,}' if isinstance(v, int) else str(v))}</td></tr>"
            for k, v in self.as_dict().items()
            if k != "verdict"
        )
        extra = self.mismatches.head(20).to_html() if not self.mismatches.empty else ""
        if not self.value_diffs.empty:
            extra += "<p>values that differ from the ledger (first few):</p>" + self.value_diffs.head(12).to_html()
        return f"<b style='color:{color}'>{html.escape(self.verdict)}</b><table>{rows}</table>{extra}"


def _iso(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def counted_per_window(ledger: Ledger, open_windows: set[int], settings: Settings) -> tuple[pd.Series, int, pd.Series]:
    """(counts per (window_end, status) in InfluxDB, late events counted, late events per closed window) for the
    ledger's time span.

    Late is what the job read but no window counted: valid events read minus events in windows, over the
    windows that have closed (an open window's events are read but not yet counted)."""
    from labkit.influx import Influx

    windows = [w for w, _ in ledger.on_time] + list(ledger.late)
    # points are stamped with their window's end: exactly the ledger's windows, none of a neighbour run's
    start, stop = _iso(min(windows)), _iso(max(windows) + 1000)
    with Influx(settings) as db:
        df = db.query("http_counts", start=start, stop=stop, stream=ledger.topic)
        read = db.query("valid_events", start=start, stop=stop, stream=ledger.topic)
    read_w = pd.Series(dtype="int64")
    if not read.empty:
        ends = read["time"].astype("int64") // 10**6
        read_w = read.assign(w=ends)[~ends.isin(open_windows)].groupby("w")["count"].sum().astype("int64")
    read_n = int(read_w.sum())
    if df.empty:
        idx = pd.MultiIndex.from_arrays([[], []], names=["window_end", "status_code"])
        return pd.Series([], index=idx, dtype="int64", name="counted"), read_n, read_w
    df = df.assign(window_end=df["time"].astype("int64") // 10**6, status_code=df["status_code"].astype(int))
    counted = df.set_index(["window_end", "status_code"])["count"].rename("counted")
    in_closed = ~counted.index.get_level_values(0).isin(open_windows)
    per_window = counted[in_closed].groupby(level=0).sum()
    late_w = read_w.sub(per_window, fill_value=0).astype("int64")
    return counted, read_n - int(counted[in_closed].sum()), late_w


def _late_windows_off(ledger: Ledger, open_windows: set[int], late_w: pd.Series) -> int:
    """How many closed windows' late events (read − counted, per window) differ from the ledger's: the totals can
    agree while one window's late events are counted in another's."""
    want = pd.Series({w: n for w, n in ledger.late.items() if w not in open_windows and n}, dtype="int64")
    both = want.to_frame("want").join(late_w.rename("got"), how="outer").fillna(0)
    return int((both["want"] != both["got"]).sum())


def refused_points(ledger: Ledger, settings: Settings) -> tuple[int, list[str]]:
    """Points of the ledger's windows that InfluxDB refused (the sink records each refusal in `sink_rejections`
    instead of failing the job), and InfluxDB's reasons."""
    from labkit.influx import Influx

    windows = [w for w, _ in ledger.on_time] + list(ledger.late)
    if not windows:
        return 0, []
    lo, hi = min(windows) - ledger.window_ms, max(windows)
    with Influx(settings) as db:
        rec = db.query("sink_rejections", start="-30d", stream=ledger.topic)
    if rec.empty:
        return 0, []
    checked = {"http_counts", "valid_events", "dlq_events", *WINDOW_MEASUREMENTS}  # a custom metric's are its own
    mine = rec[(rec["last_ms"] >= lo) & (rec["first_ms"] <= hi) & rec["measurement"].isin(checked)]
    why = sorted({f"{m}: {msg}" for m, msg in zip(mine["measurement"], mine["message"], strict=False)})
    return int(mine["points"].sum()), why[:3]


WINDOW_MEASUREMENTS = ("error_rate", "active_users", "url_counts", "latency")
PERCENTILES = {"p50": 50, "p95": 95, "p99": 99}


def expected_values(ledger: Ledger, windows: set[int]) -> dict[str, pd.DataFrame]:
    """What each window measurement must hold for `windows`, computed from the ledger's detail."""
    import numpy as np

    det = ledger.detail
    status = pd.DataFrame(
        [(w, s, n) for (w, s), n in ledger.on_time.items() if n and w in windows], columns=["w", "s", "n"]
    )
    er = status.assign(
        e4=status["n"].where(status["s"].between(400, 499), 0), e5=status["n"].where(status["s"] >= 500, 0)
    )
    er = er.groupby("w")[["n", "e4", "e5"]].sum()
    er = pd.DataFrame(
        {
            "total": er["n"],
            "errors_4xx": er["e4"],
            "errors_5xx": er["e5"],
            "rate_4xx": er["e4"] / er["n"],
            "rate_5xx": er["e5"] / er["n"],
            "error_rate": (er["e4"] + er["e5"]) / er["n"],
        }
    )
    urls = pd.DataFrame(
        [(w, u, n, det.url_errors[(w, u)], det.url_5xx[(w, u)]) for (w, u), n in det.url.items() if n and w in windows],
        columns=["w", "url", "count", "errors", "errors_5xx"],
    ).set_index(["w", "url"])
    users = pd.Series(Counter(w for (w, _u), n in det.users.items() if n and w in windows), name="users")
    sessions = pd.Series(Counter(w for (w, _s), n in det.sessions.items() if n and w in windows), name="sessions")
    active = pd.concat([users, sessions], axis=1).rename_axis("w")
    lat_rows, site = [], {}
    for (w, u), vals in det.latencies.items():
        if w not in windows or not vals:
            continue
        site.setdefault(w, []).extend(vals)
        lat_rows.append((w, u, vals))
    lat_rows += [(w, "ALL", v) for w, v in site.items()]
    latency = pd.DataFrame(
        [
            {"w": w, "url": u, "count": len(v), **{k: float(np.percentile(v, q)) for k, q in PERCENTILES.items()}}
            for w, u, v in lat_rows
        ],
        columns=["w", "url", "count", *PERCENTILES],
    ).set_index(["w", "url"])
    return {"error_rate": er, "url_counts": urls, "active_users": active, "latency": latency}


def metric_values(ledger: Ledger, windows: set[int], settings: Settings) -> tuple[dict[str, int], pd.DataFrame]:
    """Per measurement, how many values in `windows` differ from the ledger, and the first differences."""
    from labkit.influx import Influx

    if ledger.detail is None or not windows:
        return {}, pd.DataFrame()
    want = expected_values(ledger, windows)
    start, stop = _iso(min(windows) - ledger.window_ms), _iso(max(windows) + ledger.window_ms)
    counts, diffs = {}, []
    with Influx(settings) as db:
        for m, exp in want.items():
            got = db.query(m, start=start, stop=stop, stream=ledger.topic)
            if got.empty:
                counts[m] = int(exp.size)
                continue
            got = got.assign(w=got["time"].astype("int64") // 10**6)
            got = got[got["w"].isin(windows)]
            keys = ["w", *[k for k in exp.index.names if k != "w"]]
            got = got.set_index(keys)[list(exp.columns)]
            both = exp.join(got, how="outer", rsuffix="__got")
            n = 0
            for c in exp.columns:
                a, b = both[c].astype(float), both[c + "__got"].astype(float)
                bad = ~(np.isclose(a, b, rtol=0, atol=1e-6) | (a.isna() & b.isna()))
                n += int(bad.sum())
                if bad.any():
                    d = both.loc[bad, [c, c + "__got"]].head(3).reset_index()
                    diffs.append(
                        d.rename(columns={c: "expected", c + "__got": "written"}).assign(measurement=m, field=c)
                    )
            counts[m] = n
    return counts, pd.concat(diffs, ignore_index=True) if diffs else pd.DataFrame()


def missing_windows(ledger: Ledger, closed: set[int], settings: Settings) -> dict[str, int]:
    """Closed windows that have no point yet in each of the other window measurements."""
    from labkit.influx import Influx

    if not closed:
        return {}
    start, stop = _iso(min(closed) - ledger.window_ms), _iso(max(closed) + ledger.window_ms)
    out = {}
    with Influx(settings) as db:
        for m in WINDOW_MEASUREMENTS:
            df = db.query(m, start=start, stop=stop, stream=ledger.topic)
            present = set(df["time"].astype("int64") // 10**6) if not df.empty else set()
            out[m] = len(closed - present)
    return out


def dead_letters(
    topic: str, dlq_topic: str, settings: Settings, timeout_s: float = 10, between_ms: tuple[int, int] | None = None
) -> Counter:
    """Dead letters for `topic` by reason, each source record once (the DLQ sink is at-least-once).

    `between_ms` keeps only records whose Kafka timestamp is in that range (one producer run)."""
    from kafka import KafkaConsumer, TopicPartition

    from labkit.kafka_clients import python_config

    c = KafkaConsumer(
        **python_config(settings), enable_auto_commit=False, consumer_timeout_ms=2000, client_id="labkit-verify"
    )
    try:
        parts = [TopicPartition(dlq_topic, p) for p in (c.partitions_for_topic(dlq_topic) or [])]
        if not parts:
            return Counter()
        c.assign(parts)
        c.seek_to_beginning(*parts)
        end = c.end_offsets(parts)
        seen: dict[tuple[int, int], str] = {}
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline and any(c.position(tp) < end[tp] for tp in parts):
            for batch in c.poll(timeout_ms=500, max_records=5000).values():
                for rec in batch:
                    d = json.loads(rec.value)
                    if d.get("source_topic") != topic:
                        continue
                    if between_ms is not None:
                        ts = int(pd.Timestamp(d["kafka_timestamp"]).timestamp() * 1000)
                        if not between_ms[0] <= ts <= between_ms[1]:
                            continue
                    seen[(d["source_partition"], d["source_offset"])] = d["reason"]
        return Counter(seen.values())
    finally:
        c.close()


def verify(
    ledger: Ledger | None = None,
    *,
    topic: str | None = None,
    settings: Settings | None = None,
    wait_s: float = 60,
    check_dlq: bool = True,
    poll_s: float = 2.0,
) -> Accounting:
    """Compare the ledger with InfluxDB and the DLQ; waits up to `wait_s` for windows still in flight."""
    settings = settings or get_settings()
    if ledger is None:
        from labkit.produce import load_ledger

        ledger = load_ledger(topic, settings)
    topic = ledger.topic
    dlq_topic = settings.dlq_topic_for(topic)
    expected = ledger.frame().set_index(["window_end", "status_code"])["expected"]
    closed = ledger.closed_windows()
    open_windows = {w for w, _ in ledger.on_time} - closed
    expected_closed = expected[expected.index.get_level_values(0).isin(closed)]
    late_expected = sum(ledger.late.values())
    dlq_expected = Counter({r: n for r, n in ledger.malformed.items() if n})
    span = (ledger.first_record_ms, ledger.last_record_ms) if ledger.first_record_ms is not None else None
    # windows with on-time events must also have their point in every other window measurement
    with_events = set(expected_closed[expected_closed > 0].index.get_level_values(0))
    deadline = time.monotonic() + wait_s
    while True:
        last_try = time.monotonic() >= deadline
        counted, late_n, late_w = counted_per_window(ledger, open_windows, settings)
        # every window but the open ones: a count in a window the ledger has only late events for is an error too
        counted_final = counted[~counted.index.get_level_values(0).isin(open_windows)] if len(counted) else counted
        j = expected_closed.to_frame().join(counted_final, how="outer").fillna(0).astype("int64")
        j["diff"] = j["counted"] - j["expected"]
        late_off = _late_windows_off(ledger, open_windows, late_w)
        done = bool((j["diff"] == 0).all()) and late_n == late_expected and not late_off
        # the costlier checks (a scan of the whole DLQ topic, four queries) only once the counts agree
        dlq_found = dlq_expected
        if check_dlq and (done or last_try):
            dlq_found = dead_letters(topic, dlq_topic, settings, between_ms=span)
        done = done and dlq_found == dlq_expected
        missing = missing_windows(ledger, with_events, settings) if done else {}
        done = done and not any(missing.values())
        values, value_diffs = metric_values(ledger, with_events, settings) if (done or last_try) else ({}, None)
        done = done and not any(values.values())
        if done or last_try:
            break
        time.sleep(poll_s)
    refused, refused_why = refused_points(ledger, settings)
    mism = j[j["diff"] != 0].reset_index()
    if not mism.empty:
        mism["window_end"] = pd.to_datetime(mism["window_end"], unit="ms", utc=True)
    return Accounting(
        topic=topic,
        windows=len(closed),
        open_windows=len(open_windows),
        expected=int(expected_closed.sum()),
        counted=int(j["counted"].sum()),
        lost=int(-j["diff"].clip(upper=0).sum()),
        duplicated=int(j["diff"].clip(lower=0).sum()),
        late_expected=late_expected,
        late_counted=late_n,
        late_windows_off=late_off,
        dlq_expected=dlq_expected,
        dlq_found=dlq_found,
        mismatches=mism,
        missing_windows=missing,
        value_mismatches=values if ledger.detail is not None else None,
        value_diffs=value_diffs if value_diffs is not None else pd.DataFrame(),
        dlq_checked=check_dlq,
        refused=refused,
        refused_why=refused_why,
        detail_dropped_at=ledger.detail_dropped_at,
    )
