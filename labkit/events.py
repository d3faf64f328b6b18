"""The clickstream event model and a fast, seeded, realistic generator.

Faker builds pools once (users, a shop's URL paths, user agents, referrers); per event the generator
only samples from them, so it stays fast. Event time is a simulated clock advancing at `rate` events per
simulated second. Named scenarios change traffic for a span of that clock. See docs/event-schema.md.
"""

from __future__ import annotations

import bisect
import dataclasses
import heapq
import json
import math
import random
import time
from collections.abc import Iterator
from dataclasses import dataclass, field

from labkit import badinput
from labkit.timing import WINDOW_MS  # noqa: F401 (re-exported: the ledger and tests use it from here)

METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS")
DEVICES = (("desktop", 0.52), ("mobile", 0.41), ("tablet", 0.07))
COUNTRIES = (
    ("US", 30),
    ("DE", 12),
    ("GB", 10),
    ("FR", 8),
    ("IN", 8),
    ("BR", 6),
    ("JP", 6),
    ("CA", 5),
    ("NL", 4),
    ("ES", 4),
    ("IT", 4),
    ("PL", 3),
)


def window_end(ts_ms: int, size_ms: int = WINDOW_MS) -> int:
    """End (exclusive) of the tumbling window holding `ts_ms`; windows are keyed by their end."""
    return ts_ms - ts_ms % size_ms + size_ms


@dataclass(frozen=True)
class Endpoint:
    path: str
    method: str
    median_ms: float  # lognormal latency median
    sigma: float
    statuses: tuple[tuple[int, float], ...]  # (status, probability)
    kind: str


def _mix(
    ok: int = 200,
    *,
    redirect: float = 0.0,
    not_found: float = 0.0,
    client: float = 0.0,
    server: float = 0.003,
    redirect_code: int = 302,
    client_code: int = 400,
) -> tuple[tuple[int, float], ...]:
    mix = [
        (301 if redirect_code == 301 else redirect_code, redirect),
        (404, not_found),
        (client_code, client),
        (500, server * 0.6),
        (502, server * 0.15),
        (503, server * 0.25),
    ]
    mix = [(s, p) for s, p in mix if p > 0]
    return ((ok, 1 - sum(p for _, p in mix)), *mix)


@dataclass
class Site:
    """A shop-like site: endpoints with their own latency and status behaviour, and page transitions."""

    endpoints: list[Endpoint]

    @classmethod
    def build(cls, rng: random.Random, n_categories: int = 8, n_products: int = 24) -> Site:
        from faker import Faker

        fake = Faker()
        fake.seed_instance(rng.randrange(2**31))
        cats = sorted({fake.word() for _ in range(n_categories * 3)})[:n_categories]
        products = sorted(
            {f"{fake.color_name()}-{fake.word()}".lower().replace(" ", "-") for _ in range(n_products * 3)}
        )
        products = products[:n_products]
        eps = [
            Endpoint("/", "GET", 45, 0.35, _mix(redirect=0.01), "home"),
            Endpoint("/search", "GET", 160, 0.5, _mix(client=0.01, server=0.004), "search"),
            Endpoint("/login", "POST", 120, 0.3, _mix(redirect=0.55, client=0.08, client_code=401), "account"),
            Endpoint("/account", "GET", 90, 0.35, _mix(redirect=0.2, client=0.05, client_code=401), "account"),
            Endpoint("/cart", "GET", 70, 0.35, _mix(), "cart"),
            Endpoint("/cart/items", "POST", 110, 0.4, _mix(ok=201, client=0.02), "cart"),
            Endpoint("/checkout", "POST", 340, 0.45, _mix(client=0.02, server=0.006), "checkout"),
            Endpoint("/api/recommendations", "GET", 60, 0.6, _mix(server=0.005), "api"),
            Endpoint("/static/app.js", "GET", 12, 0.3, _mix(ok=200, redirect=0.15, redirect_code=304), "static"),
        ]
        eps += [Endpoint(f"/category/{c}", "GET", 80, 0.4, _mix(not_found=0.005), "category") for c in cats]
        eps += [Endpoint(f"/product/{p}", "GET", 95, 0.45, _mix(not_found=0.012), "product") for p in products]
        return cls(eps)

    def by_kind(self, kind: str) -> list[int]:
        return [i for i, e in enumerate(self.endpoints) if e.kind == kind]


# Next-page kinds and weights: a session browses home → categories → products → cart → checkout.
FLOW = {
    "home": (("category", 5), ("search", 3), ("product", 2), ("account", 1), ("static", 2)),
    "search": (("product", 6), ("search", 2), ("category", 1)),
    "category": (("product", 6), ("category", 2), ("search", 1), ("api", 2)),
    "product": (("product", 3), ("cart", 2), ("category", 2), ("api", 2), ("search", 1)),
    "cart": (("checkout", 4), ("product", 2), ("cart", 1)),
    "checkout": (("home", 1), ("account", 1)),
    "account": (("home", 2), ("product", 1)),
    "api": (("product", 2), ("category", 1)),
    "static": (("home", 1), ("category", 1)),
}
BOT_AGENT = "Mozilla/5.0 (compatible; ScrapyBot/2.11; +http://scrapy.example/bot)"


@dataclass
class Scenario:
    """A named change in traffic, active from `start_s` for `duration_s` of simulated time."""

    name: str
    start_s: float = 20.0
    duration_s: float = 30.0
    target: str | None = None  # the endpoint path affected (chosen from the site when None)
    # incident: the share of the target's requests that fail. 0.6 on /api/recommendations (~10% of traffic)
    # lifts the site's error rate from ~1.3% to ~7%: over the 5% alert threshold, as an incident should be.
    intensity: float = 0.6

    NAMES = ("incident", "not_found_storm", "latency_regression", "bot_burst")

    def __post_init__(self) -> None:
        if self.name not in self.NAMES:
            from labkit.errors import ConfigError

            raise ConfigError(f"unknown scenario {self.name!r}.", f"use one of: {', '.join(self.NAMES)}")


@dataclass(slots=True)
class Emitted:
    """One Kafka record to send, and what the ledger needs to know about it."""

    key: bytes
    value: bytes | None
    timestamp_ms: int  # Kafka record timestamp: when the (simulated) client sent it
    kind: str  # valid | late | malformed
    status: int = 0
    event_ms: int = 0
    reason: str = ""
    # what the event says, for the ledger's per-metric accounts (valid events only)
    url: str = ""
    user: str = ""
    session: str = ""
    latency: float = 0.0


@dataclass
class _Session:
    sid: str
    user: int
    page: str
    left: int


@dataclass
class EventGenerator:
    """Seeded, deterministic clickstream. Iterate it for `Emitted` records, or call `sample()`."""

    seed: int = 42
    rate: float = 1000.0  # simulated events per second of event time
    start_ms: int | None = None
    late_fraction: float = 0.0
    malformed_fraction: float = 0.0
    scenario: Scenario | str | None = None
    n_users: int = 5000
    concurrent_sessions: int = 300
    late_min_s: float = 45.0
    late_max_s: float = 90.0
    # No late events in the first seconds of a run: a job that reads the topic from its first offset has no
    # watermark yet while it reads them, so "late" is undefined there (Flink would count them on time).
    late_warmup_s: float = 30.0
    # Nor does a late event reach back before the run's start: the windows before it belong to the previous
    # run on the topic (produce() starts a run in the window after it), whose counts must not mix with ours.
    # Pattern options (notebook 10, Flink SQL patterns; issue 24). All off by default, and off they draw nothing
    # from `rng`: every seed's stream stays byte-identical to what it was before they existed. On, each draws
    # from a Random of its own derived from the seed (see `_Extras`). True means the share given in brackets.
    orders: float = 0.0  # share of successful checkouts that get an order confirmation, see take_orders() [0.85]
    duplicates: float = 0.0  # share of click records sent twice, as an at-least-once producer's retry does [0.02]
    session_gaps: float = 0.0  # share of sessions that go idle once in their middle, for SESSION windows [0.2]
    event_ids: bool = False  # an "event_id" first in every click event; on whenever `duplicates` is
    order_delay_median_s: float = 60.0  # checkout click → order event time: log-normal, this median...
    # ...and this sigma: the distribution puts 2.75% of orders more than 10 minutes after their checkout
    # (P(Z > ln(600/60)/1.2)). The share notebook 10 measures in its stream is lower, about 1.5% (the time from a
    # checkout to its session's next order, as its chart and the interval join see it; labkit.jobs.patterns).
    order_delay_sigma: float = 1.2
    order_delay_max_s: float = 1800.0
    duplicate_delay_s: tuple[float, float] = (0.1, 3.0)  # a retry comes this long after the first send
    session_pause_s: tuple[float, float] = (90.0, 240.0)  # how long a pausing session stays idle
    site: Site = field(init=False)

    def __post_init__(self) -> None:
        from faker import Faker

        from labkit.errors import ConfigError

        for name in ("late_fraction", "malformed_fraction"):
            v = getattr(self, name)
            if not 0 <= v < 1:
                raise ConfigError(f"{name} must be between 0 and 1 (got {v}).", f"pass e.g. {name}=0.01")
        if self.rate <= 0:
            raise ConfigError(f"rate must be positive (got {self.rate}).", "pass e.g. rate=1000")
        for name, on in (("orders", 0.85), ("duplicates", 0.02), ("session_gaps", 0.2)):
            v = getattr(self, name)
            v = on if v is True else float(v)
            if not 0 <= v <= 1:
                raise ConfigError(f"{name} must be a share between 0 and 1 (got {v}).", f"pass e.g. {name}={on}")
            setattr(self, name, v)
        self.event_ids = bool(self.event_ids or self.duplicates)
        if isinstance(self.scenario, str):
            self.scenario = Scenario(self.scenario)
        self.rng = random.Random(self.seed)
        self.site = Site.build(self.rng)
        fake = Faker()
        fake.seed_instance(self.seed)
        countries = [c for c, _ in COUNTRIES]
        cweights = [w for _, w in COUNTRIES]
        agents = {d: [fake.user_agent() for _ in range(30)] for d, _ in DEVICES}
        self.referrers = [
            None,
            None,
            None,
            "https://www.google.com/",
            "https://www.bing.com/",
            "https://duckduckgo.com/",
            "https://t.co/",
            "https://www.facebook.com/",
            *[f"https://{fake.domain_name()}/" for _ in range(6)],
        ]
        self.users = []
        for i in range(self.n_users):
            device = self.rng.choices([d for d, _ in DEVICES], [w for _, w in DEVICES])[0]
            self.users.append(
                (f"u_{i:06d}", device, self.rng.choice(agents[device]), self.rng.choices(countries, cweights)[0])
            )
        self._by_kind = {k: self.site.by_kind(k) for k in FLOW}
        self._flow = {k: ([n for n, _ in v], list(_cum([w for _, w in v]))) for k, v in FLOW.items()}
        self._status_cum = [
            (tuple(s for s, _ in e.statuses), list(_cum([p for _, p in e.statuses]))) for e in self.site.endpoints
        ]
        self._sessions = [self._new_session() for _ in range(self.concurrent_sessions)]
        self._prefix: dict[str, bytes] = {}
        self._ep_head = [
            f'"url":"{e.path}","http_method":"{e.method}","http_status":'.encode() for e in self.site.endpoints
        ]
        self._ms_per_event = 1000.0 / self.rate
        self.count = 0
        self.clock_ms = float(self.start_ms if self.start_ms is not None else time.time() * 1000)
        self._start = self.clock_ms
        sc = self.scenario
        if sc is not None:
            self._target = self._scenario_target(sc)
        on = self.orders or self.duplicates or self.session_gaps or self.event_ids
        self._extras = _Extras(self) if on else None
        if on:  # the options' __next__ wraps the plain one; off, iteration pays nothing for them (see _WithOptions)
            self.__class__ = _WithOptions

    def start_at(self, start_ms: int) -> None:
        """Move the clock to `start_ms` before the first event (a live run anchors event time to the moment it starts
        sending). The stream is the same, only later: every time in it is relative to the start."""
        if self.count:
            raise RuntimeError("start_at() moves the clock before the first event only")
        self.start_ms = start_ms
        self.clock_ms = self._start = float(start_ms)

    def _scenario_target(self, sc: Scenario) -> int:
        paths = [e.path for e in self.site.endpoints]
        if sc.target:
            if sc.target not in paths:
                from labkit.errors import ConfigError

                raise ConfigError(f"scenario target {sc.target!r} is not a page of the site.", "pick one of site paths")
            return paths.index(sc.target)
        if sc.name == "incident":
            return paths.index("/api/recommendations")
        if sc.name == "latency_regression":
            return paths.index("/search")
        return self._by_kind["product"][0]

    def _new_session(self) -> _Session:
        r = self.rng
        return _Session(
            f"s_{r.getrandbits(48):012x}", r.randrange(self.n_users), "home", max(1, int(r.expovariate(1 / 8)))
        )

    def _session_prefix(self, s: _Session) -> bytes:
        p = self._prefix.get(s.sid)
        if p is None:
            uid, device, agent, country = self.users[s.user]
            ref = self.rng.choice(self.referrers)
            p = (
                f'{{"user_id":"{uid}","session_id":"{s.sid}","referrer":{json.dumps(ref)},'
                f'"user_agent":{json.dumps(agent)},"device":"{device}","country":"{country}",'
            ).encode()
            if len(self._prefix) > 20_000:
                self._prefix.clear()
            self._prefix[s.sid] = p
        return p

    def scenario_info(self) -> dict | None:
        """What the scenario did, in event time: the answer key the drills' checkers grade against."""
        sc = self.scenario
        if sc is None:
            return None
        return {
            "name": sc.name,
            "target": self.site.endpoints[self._target].path if sc.name != "bot_burst" else "u_bot",
            "start_ms": int(self._start + sc.start_s * 1000),
            "end_ms": int(self._start + (sc.start_s + sc.duration_s) * 1000),
        }

    def _active(self, now_ms: float) -> bool:
        sc = self.scenario
        if sc is None:
            return False
        t = (now_ms - self._start) / 1000
        return sc.start_s <= t < sc.start_s + sc.duration_s

    def __iter__(self) -> Iterator[Emitted]:
        return self

    def take_orders(self, until_ms: int | None = None) -> list[Emitted]:
        """The order confirmations (`orders` option) whose Kafka timestamp is at or before `until_ms`, oldest first,
        taken out of the generator; `until_ms=None`: all still pending (at the end of a run).

        Orders are a second stream with their own topic, so they are not part of the iteration (which is the click
        topic's records, what the ledger counts): a producer sends them alongside, when its clock reaches them."""
        return self._extras.take_orders(until_ms) if self._extras is not None else []

    @property
    def session_pauses(self) -> list[tuple[str, int, int]]:
        """The `session_gaps` answer key: (session id, event time of its last event before going idle, earliest
        event time it may come back at), one per pause. Its next event is at or a little after the latter."""
        return self._extras.pauses if self._extras is not None else []

    def __next__(self) -> Emitted:
        # The producer's hot path (a third of its time): draws are inlined (random() instead of choice,
        # randrange, expovariate) and the JSON is pasted from pre-encoded pieces.
        r = self.rng
        rnd = r.random
        self.count += 1
        self.clock_ms += -math.log(1.0 - rnd()) * self._ms_per_event
        now = int(self.clock_ms)
        active = self.scenario is not None and self._active(self.clock_ms)
        sc_name = self.scenario.name if active else None

        if sc_name == "bot_burst" and rnd() < 0.5:
            ep_i = r.choice(self._by_kind["product"])
            uid = "u_bot"
            sid, prefix = (
                "s_bot",
                (
                    f'{{"user_id":"u_bot","session_id":"s_bot","referrer":null,"user_agent":"{BOT_AGENT}",'
                    '"device":"desktop","country":"NL",'
                ).encode(),
            )
        else:
            sessions = self._sessions
            slot = int(rnd() * len(sessions))
            s = sessions[slot]
            names, cum = self._flow[s.page]
            s.page = names[bisect.bisect(cum, rnd() * cum[-1])]
            eps = self._by_kind[s.page]
            ep_i = eps[int(rnd() * len(eps))]
            if sc_name == "not_found_storm" and rnd() < 0.3:
                ep_i = self._target
            prefix, sid, uid = self._session_prefix(s), s.sid, self.users[s.user][0]
            s.left -= 1
            if s.left <= 0:
                self._prefix.pop(s.sid, None)
                self._sessions[slot] = self._new_session()
        ep = self.site.endpoints[ep_i]

        codes, cum = self._status_cum[ep_i]
        status = codes[bisect.bisect(cum, rnd() * cum[-1])]
        latency = ep.median_ms * math.exp(ep.sigma * r.gauss(0, 1))
        if active and ep_i == self._target:
            if sc_name == "incident" and rnd() < self.scenario.intensity:
                status = r.choice((500, 500, 502, 503))
                latency *= 3
            elif sc_name == "not_found_storm":
                status = 404
            elif sc_name == "latency_regression":
                latency *= 6
        if sc_name == "bot_burst" and sid == "s_bot":
            status = 429 if rnd() < 0.2 else status

        kind, event_ms = "valid", now
        if self.late_fraction and rnd() < self.late_fraction:
            since_start_s = (now - self._start) / 1000
            if since_start_s > self.late_warmup_s and since_start_s >= self.late_min_s:
                kind = "late"
                event_ms = now - int(r.uniform(self.late_min_s, min(self.late_max_s, since_start_s)) * 1000)
        latency = round(latency, 1)  # what the JSON carries (%.1f), so the ledger's percentiles are the job's
        value = (
            prefix + self._ep_head[ep_i] + b'%d,"latency_ms":%.1f,"event_timestamp":%d}' % (status, latency, event_ms)
        )
        if self.malformed_fraction and rnd() < self.malformed_fraction:
            bad = r.choice(badinput.MIX)
            # made bad from the on-time event: a late event time 30 s "ahead" would still trail its send time,
            # and the job would rightly find it valid (seen once in `make demo`: a dead letter short, a late too many)
            ev = {**json.loads(value), "event_timestamp": now}
            return Emitted(sid.encode(), bad.make(r, ev), now, "malformed", 0, now, bad.reason)
        return Emitted(sid.encode(), value, now, kind, status, event_ms, "", ep.path, uid, sid, latency)

    def sample(self, n: int = 20):
        """`n` events as a pandas DataFrame (for looking at, not for producing)."""
        import pandas as pd

        rows = []
        for _ in range(n):
            e = next(self)
            row = json.loads(e.value) if e.kind != "malformed" else {"raw": repr(e.value)[:80]}
            row["kind"] = e.kind
            row["sent_ms"] = e.timestamp_ms
            rows.append(row)
        df = pd.DataFrame(rows)
        if "event_timestamp" in df:
            df.insert(0, "event_time", pd.to_datetime(df["event_timestamp"], unit="ms", utc=True, errors="coerce"))
            df.insert(1, "sent_time", pd.to_datetime(df.pop("sent_ms"), unit="ms", utc=True))
        return df


class _WithOptions(EventGenerator):
    """An EventGenerator with pattern options on: `__post_init__` makes an instance one. A subclass rather than a
    test in `__next__`, because that test, and the call it leads to, cost the default stream's hot path 4%."""

    __qualname__ = "EventGenerator"  # what repr() and tracebacks name: the class the caller made
    _click = EventGenerator.__next__

    def __next__(self) -> Emitted:
        return self._extras.next()


class _SlotList(list):
    """The generator's session slots when `session_gaps` is on: remembers which slot `_click` read last, so the
    options know which session clicked without the hot path storing it for everyone."""

    last = 0

    def __getitem__(self, i):
        self.last = i
        return list.__getitem__(self, i)


class _Extras:
    """The pattern options' side of the generator: wraps `EventGenerator._click` and never touches its `rng`.

    Each option has a Random of its own, seeded from the generator's seed and the option's name, so turning one
    on does not move another's draws: with `orders` on, the click stream is still the seed's usual one, byte for
    byte; `event_ids`/`duplicates` only add to it; only `session_gaps` changes which session clicks when."""

    def __init__(self, gen: EventGenerator) -> None:
        self.gen = gen
        self.ids = random.Random(f"{gen.seed}:event_ids")
        self.dup_rng = random.Random(f"{gen.seed}:duplicates")
        self.order_rng = random.Random(f"{gen.seed}:orders")
        self.gap_rng = random.Random(f"{gen.seed}:session_gaps")
        self.seq = 0  # tie-breaker for the heaps: equal times come out in the order they went in
        self.retries: list[tuple[float, int, Emitted]] = []  # (due on the click clock, seq, the record again)
        self.orders: list[tuple[int, int, Emitted]] = []  # (Kafka timestamp, seq, order)
        self.plans: dict[str, int] = {}  # live session → events left before it pauses (-1: it will not, or did)
        self.parked: list[tuple[int, int, _Session]] = []  # (may resume at, seq, session)
        self.pauses: list[tuple[str, int, int]] = []
        if gen.session_gaps:
            gen._sessions = _SlotList(gen._sessions)

    def next(self) -> Emitted:
        gen = self.gen
        if self.retries and self.retries[0][0] <= gen.clock_ms:
            return dataclasses.replace(heapq.heappop(self.retries)[2])
        e = gen._click()
        if gen.session_gaps and e.key != b"s_bot":  # malformed draws too: they count as a page of the session
            self._pause_or_resume(e)
        if e.kind == "malformed":
            return e  # no id, no retry, no order: bytes the job dead-letters (a checkout it never sees)
        if gen.event_ids:
            e.value = b'{"event_id":"e_%016x",' % self.ids.getrandbits(64) + e.value[1:]
        if gen.duplicates and self.dup_rng.random() < gen.duplicates:
            lo, hi = gen.duplicate_delay_s
            self.seq += 1
            heapq.heappush(self.retries, (gen.clock_ms + self.dup_rng.uniform(lo, hi) * 1000, self.seq, e))
        if gen.orders and e.kind == "valid" and e.url == "/checkout" and 200 <= e.status < 300:
            self._maybe_order(e)
        return e

    def _maybe_order(self, checkout: Emitted) -> None:
        """A paid checkout becomes an order some time later, or never (abandoned payment): a log-normal delay in
        event time, so most orders come within a few minutes and a few after more than 10 (an interval join of
        10 minutes misses those). Arrival (Kafka timestamp) trails the order's event time by a few milliseconds."""
        gen, r = self.gen, self.order_rng
        if r.random() >= gen.orders:
            return
        delay_s = min(
            gen.order_delay_max_s, max(1.0, gen.order_delay_median_s * math.exp(gen.order_delay_sigma * r.gauss(0, 1)))
        )
        order_ms = checkout.event_ms + int(delay_s * 1000)
        arrival_ms = order_ms + r.randrange(5, 250)
        items = 1 + int(r.expovariate(1 / 1.5))
        order = {
            "order_id": f"o_{r.getrandbits(48):012x}",
            "session_id": checkout.session,
            "user_id": checkout.user,
            "items": items,
            "amount": round(sum(r.lognormvariate(3.3, 0.7) for _ in range(items)), 2),
            "currency": "EUR",
            "event_timestamp": order_ms,
        }
        value = json.dumps(order, separators=(",", ":")).encode()
        self.seq += 1
        o = Emitted(checkout.key, value, arrival_ms, "order", 0, order_ms, "", "", checkout.user, checkout.session)
        heapq.heappush(self.orders, (arrival_ms, self.seq, o))

    def take_orders(self, until_ms: int | None) -> list[Emitted]:
        out = []
        while self.orders and (until_ms is None or self.orders[0][0] <= until_ms):
            out.append(heapq.heappop(self.orders)[2])
        return out

    def _pause_or_resume(self, e: Emitted) -> None:
        """Park some sessions for a while in their middle, so one session id has an idle gap inside.

        A parked session leaves its slot (a new session takes it, as when a session ends) and comes back into the
        slot of the next session that ends once its pause is over. Its events are otherwise as usual, a few tenths
        of a second apart at 1,000 events/s (about concurrent_sessions / rate seconds), so a SESSION window whose
        gap lies between that spacing and `session_pause_s[0]` splits exactly the paused sessions in two, and a
        gap above `session_pause_s[1]` joins them again."""
        gen, r, sid = self.gen, self.gap_rng, e.key.decode()
        slot = gen._sessions.last
        s = gen._sessions[slot]
        if s.sid != sid:  # the session ended with this event: its slot goes to a paused one whose pause is over
            self.plans.pop(sid, None)
            if self.parked and self.parked[0][0] <= gen.clock_ms:
                gen._sessions[slot] = heapq.heappop(self.parked)[2]
            return
        left = self.plans.get(sid)
        if left is None:  # the session's first event: will it pause, and after how many more events?
            left = r.randrange(s.left) if r.random() < gen.session_gaps else -1
        if left == 0:
            lo, hi = gen.session_pause_s
            resume_ms = e.timestamp_ms + int(r.uniform(lo, hi) * 1000)  # from now: a late draw's time is older
            self.seq += 1
            heapq.heappush(self.parked, (resume_ms, self.seq, s))
            self.pauses.append((sid, e.timestamp_ms, resume_ms))
            gen._sessions[slot] = gen._new_session()
            left = -1
        elif left > 0:
            left -= 1
        self.plans[sid] = left


def _cum(weights):
    total = 0.0
    for w in weights:
        total += w
        yield total
