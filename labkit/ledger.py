"""What the producer sent, per 10 s event-time window: the expected side of the accounts.

Per window and status (http_counts, and from it error_rate), and, for valid on-time events, the detail every
other built-in measurement needs (`Detail`): per-URL counts, errors and 5xx (url_counts), distinct users and
sessions (active_users) and the latencies per URL (latency: the job's PERCENTILE is exact, with linear
interpolation between the two nearest values, which `numpy.percentile`'s default method computes too).
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from labkit.events import WINDOW_MS, window_end
from labkit.timing import WATERMARK_DELAY_MS


class Detail:
    """Valid on-time events per window, as the job's other measurements see them.

    The producer only appends a tuple per event (its hot path: ~1 µs); the counts are built when first read.
    Counters, not sets, so a send the broker refused can be taken out again."""

    def __init__(self) -> None:
        self._rows: list[tuple] = []  # (window_end, status, url, user, session, latency, sign)
        self._built: dict | None = None
        self.mergeable = True

    def __len__(self) -> int:
        """Events added (the rows the detail keeps in memory)."""
        return len(self._rows)

    def add(self, w: int, status: int, url: str, user: str, session: str, latency: float, sign: int = 1) -> int:
        """Keep one event's detail; returns how many the detail holds (the ledger's cap is checked against it)."""
        self._rows.append((w, status, url, user, session, latency, sign))
        self._built = None
        return len(self._rows)

    def _build(self) -> dict:
        if self._built is None:
            url, err, e5, users, sessions = Counter(), Counter(), Counter(), Counter(), Counter()
            lat: dict = {}
            for w, status, u, user, session, latency, sign in self._rows:
                k = (w, u)
                url[k] += sign
                if status >= 400:
                    err[k] += sign
                    if status >= 500:
                        e5[k] += sign
                users[(w, user)] += sign
                sessions[(w, session)] += sign
                vals = lat.setdefault(k, [])
                if sign > 0:
                    vals.append(latency)
                elif latency in vals:
                    vals.remove(latency)
            self._built = {
                "url": url,
                "url_errors": err,
                "url_5xx": e5,
                "users": users,
                "sessions": sessions,
                "latencies": lat,
            }
        return self._built

    def __getattr__(self, name: str):
        if name in ("url", "url_errors", "url_5xx", "users", "sessions", "latencies"):
            return self._build()[name]
        raise AttributeError(name)

    def extend(self, other: Detail) -> None:
        self._rows.extend(other._rows)
        self._built = None

    def to_json(self) -> dict:
        return {
            "url": [[w, u, n, self.url_errors[(w, u)], self.url_5xx[(w, u)]] for (w, u), n in self.url.items() if n],
            "users": [[w, u, n] for (w, u), n in self.users.items() if n],
            "sessions": [[w, u, n] for (w, u), n in self.sessions.items() if n],
            "latencies": [[w, u, v] for (w, u), v in self.latencies.items() if v],
        }

    @classmethod
    def from_json(cls, d: dict) -> Detail:
        det = cls()
        det._built = {
            "url": Counter({(w, u): n for w, u, n, _e, _e5 in d["url"]}),
            "url_errors": Counter({(w, u): e for w, u, _n, e, _e5 in d["url"]}),
            "url_5xx": Counter({(w, u): e5 for w, u, _n, _e, e5 in d["url"]}),
            "users": Counter({(w, u): n for w, u, n in d["users"]}),
            "sessions": Counter({(w, u): n for w, u, n in d["sessions"]}),
            "latencies": {(w, u): v for w, u, v in d["latencies"]},
        }
        det.mergeable = False  # built from totals: it cannot take more events or be merged
        return det


DETAIL_CAP = 1_000_000
"""Events whose detail a ledger keeps (~150 bytes each: ~150 MB at the cap). A course run sends tens of
thousands; an unbounded `labkit produce` (no -n) would otherwise grow a tuple per event for as long as it runs.
Past the cap the ledger drops its detail and keeps status counts, which are bounded by windows x statuses, so
`verify` then checks http_counts only, and says so (`detail_dropped_at`)."""


@dataclass
class Ledger:
    topic: str
    window_ms: int = WINDOW_MS
    on_time: Counter = field(default_factory=Counter)  # (window_end_ms, status) -> count
    late: Counter = field(default_factory=Counter)  # window_end_ms -> count
    malformed: Counter = field(default_factory=Counter)  # reason -> count
    failed: int = 0  # sends the broker did not acknowledge (not expected anywhere)
    first_event_ms: int | None = None
    last_event_ms: int | None = None
    closed_until_ms: int | None = None  # windows ending at or before this have fired (end markers sent)
    first_record_ms: int | None = None  # Kafka timestamps of this run's records (to find its dead letters)
    last_record_ms: int | None = None
    scenario: dict | None = None  # name, target, start_ms, end_ms (EventGenerator.scenario_info)
    detail: Detail | None = field(default_factory=Detail)  # None: status counts only (e.g. other clients' runs)
    detail_dropped_at: int | None = None  # events sent when the detail passed DETAIL_CAP and was dropped

    def add(
        self, kind: str, event_ms: int, status: int, reason: str, record_ms: int | None = None, detail: bool = False
    ) -> int | None:
        """Count one event; returns its window's end (None for a malformed event). Without its detail (`add_event`
        gives it), a valid event leaves the per-metric detail incomplete, so the ledger stops claiming it: verify
        then checks status counts only. The producer calls this once per event (its hot path): the window is
        computed once, and the counts are plain dict updates (a Counter's `+=` costs a second lookup)."""
        if record_ms is not None:
            if self.first_record_ms is None:
                self.first_record_ms = record_ms
            self.last_record_ms = record_ms
        if kind != "valid" and kind != "late":
            self.malformed[reason] += 1
            return None
        w = window_end(event_ms, self.window_ms)
        if kind == "valid":
            if not detail:
                self.detail = None
            key = (w, status)
            self.on_time[key] = self.on_time.get(key, 0) + 1
        else:
            self.late[w] = self.late.get(w, 0) + 1
        if self.first_event_ms is None or event_ms < self.first_event_ms:
            self.first_event_ms = event_ms
        if self.last_event_ms is None or event_ms > self.last_event_ms:
            self.last_event_ms = event_ms
        return w

    def add_event(self, e, sign: int = 1) -> None:
        """An `events.Emitted`, with the detail of a valid event (`sign=-1` takes a refused send out again)."""
        if sign > 0:
            w = self.add(e.kind, e.event_ms, e.status, e.reason, e.timestamp_ms, detail=bool(e.url))
        else:
            self.remove(e.kind, e.event_ms, e.status, e.reason)
            w = window_end(e.event_ms, self.window_ms)
        detail = self.detail
        if (
            e.kind == "valid"
            and detail is not None
            and e.url
            and detail.add(w, e.status, e.url, e.user, e.session, e.latency, sign) > DETAIL_CAP
        ):
            self.detail, self.detail_dropped_at = None, len(detail)

    def remove(self, kind: str, event_ms: int, status: int, reason: str) -> None:
        """Undo `add` for a send that failed: the broker never had it, so nobody should count it."""
        self.failed += 1
        if kind == "valid":
            self.on_time[(window_end(event_ms, self.window_ms), status)] -= 1
        elif kind == "late":
            self.late[window_end(event_ms, self.window_ms)] -= 1
        else:
            self.malformed[reason] -= 1

    @property
    def valid(self) -> int:
        return sum(self.on_time.values())

    def closed_windows(self, watermark_delay_ms: int = WATERMARK_DELAY_MS) -> set[int]:
        """Windows whose results must be final in InfluxDB by now."""
        if self.closed_until_ms is not None:
            limit = self.closed_until_ms
        elif self.last_event_ms is not None:
            limit = self.last_event_ms - watermark_delay_ms - 1000  # margin for partition skew
        else:
            return set()
        return {w for w, _ in self.on_time if w <= limit}

    def frame(self) -> pd.DataFrame:
        """Expected on-time counts: one row per window and status."""
        rows = [{"window_end": w, "status_code": s, "expected": n} for (w, s), n in self.on_time.items() if n]
        df = pd.DataFrame(rows, columns=["window_end", "status_code", "expected"])
        return df.sort_values(["window_end", "status_code"]).reset_index(drop=True)

    def merge(self, other: Ledger) -> Ledger:
        if self.detail is not None and other.detail is not None and self.detail.mergeable and other.detail.mergeable:
            self.detail.extend(other.detail)
        else:
            self.detail = None  # a ledger loaded from disk cannot be merged in detail: status counts only
        self.on_time.update(other.on_time)
        self.late.update(other.late)
        self.malformed.update(other.malformed)
        self.failed += other.failed
        for a in ("first_event_ms", "first_record_ms"):
            vals = [v for v in (getattr(self, a), getattr(other, a)) if v is not None]
            setattr(self, a, min(vals) if vals else None)
        for a in ("last_event_ms", "closed_until_ms", "last_record_ms"):
            vals = [v for v in (getattr(self, a), getattr(other, a)) if v is not None]
            setattr(self, a, max(vals) if vals else None)
        return self

    def to_json(self) -> str:
        return json.dumps(
            {
                "topic": self.topic,
                "window_ms": self.window_ms,
                "on_time": [[w, s, n] for (w, s), n in self.on_time.items()],
                "late": [[w, n] for w, n in self.late.items()],
                "malformed": dict(self.malformed),
                "failed": self.failed,
                "first_event_ms": self.first_event_ms,
                "last_event_ms": self.last_event_ms,
                "closed_until_ms": self.closed_until_ms,
                "first_record_ms": self.first_record_ms,
                "last_record_ms": self.last_record_ms,
                "scenario": self.scenario,
                "detail": self.detail.to_json() if self.detail is not None else None,
                "detail_dropped_at": self.detail_dropped_at,
            }
        )

    @classmethod
    def from_json(cls, text: str) -> Ledger:
        d = json.loads(text)
        return cls(
            topic=d["topic"],
            window_ms=d["window_ms"],
            on_time=Counter({(w, s): n for w, s, n in d["on_time"]}),
            late=Counter({w: n for w, n in d["late"]}),
            malformed=Counter(d["malformed"]),
            failed=d["failed"],
            first_event_ms=d["first_event_ms"],
            last_event_ms=d["last_event_ms"],
            closed_until_ms=d["closed_until_ms"],
            first_record_ms=d.get("first_record_ms"),
            last_record_ms=d.get("last_record_ms"),
            scenario=d.get("scenario"),
            detail=Detail.from_json(d["detail"]) if d.get("detail") else None,
            detail_dropped_at=d.get("detail_dropped_at"),
        )

    def save(self, path: Path) -> Path:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(self.to_json())
        return path
