"""`labkit doctor --pipeline`: walk a topic's recent traffic through every link of the pipeline and name the
first broken one, with what was seen and the fix. "Why is my panel empty?" has one answer per link:

1. producer      the topic holds records (else: where labkit's producer wrote recently instead)
2. event time    the events' own times are near the wall clock (a panel's "last 15 minutes" ends now)
3. job           the topic's pipeline job runs, and did not just restart (its last exception)
4. reading       the job's committed offsets follow the topic (checkpoints complete, offsets commit)
5. watermark     every partition has a watermark and the windows' watermark moves (a silent partition
                 holds every window back)
6. InfluxDB      the bucket answers with the lab's token (a wrong token or bucket is named)
7. counted       the events the job read were counted, not late, and not dead-lettered (their shares)
8. windows       window points of the topic exist in InfluxDB for the time range
9. panel         the dashboard's panel, run as Grafana runs it (its Flux, its datasource's bucket, its `stream`
                 variable), returns those windows: a variable pointing at another stream is named

Links after the first broken one are reported as not checked: what they would say depends on it. Each check
is a few REST calls or one query, so a healthy pipeline is walked in seconds.

The panel link reads the dashboard from Grafana's API when Grafana answers (docker mode: what the attendee
saved), else from the file Grafana provisions it from. The `stream` it shows is `shown_stream` when given (what
the attendee sees in the dashboard's box), else Grafana's saved value, else the topic being diagnosed (the
attendee is assumed to have pointed the panel at it). Grafana itself cannot run in this lab's CI, so its API
path is not tested there; the query, the bucket and the variable are.
"""

from __future__ import annotations

import html
import json
import time
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from labkit.settings import Settings
from labkit.settings import get as get_settings

LINKS = ("producer", "event time", "job", "reading", "watermark", "InfluxDB", "counted", "windows", "panel")
DASHBOARD = "clickstream-errors"  # the dashboard whose first panel an empty-panel complaint is usually about


@dataclass
class Link:
    name: str
    ok: bool | None  # None: not checked (an earlier link is broken)
    saw: str
    fix: str = ""


@dataclass
class Diagnosis:
    topic: str
    minutes: int
    links: list[Link] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return all(link.ok for link in self.links)

    @property
    def broken(self) -> Link | None:
        return next((link for link in self.links if link.ok is False), None)

    def __str__(self) -> str:
        out = [f"labkit doctor --pipeline: topic {self.topic}, the last {self.minutes} minutes"]
        for link in self.links:
            mark = {True: "ok", False: "BROKEN", None: "-"}[link.ok]
            out.append(f"  [{mark:>6}] {link.name}: {link.saw}")
            if link.ok is False and link.fix:
                out.append(f"           fix: {link.fix}")
        b = self.broken
        out.append("every link holds" if b is None else f"the events stop at: {b.name}")
        return "\n".join(out)

    def _repr_html_(self) -> str:
        icon = {True: "✅", False: "❌", None: "·"}
        rows = "".join(
            f"<tr><td>{icon[x.ok]}</td><td><b>{html.escape(x.name)}</b></td><td>{html.escape(x.saw)}</td>"
            f"<td>{html.escape(x.fix if x.ok is False else '')}</td></tr>"
            for x in self.links
        )
        b = self.broken
        head = "every link holds" if b is None else f"the events stop at <b>{html.escape(b.name)}</b>"
        return (
            f"<b>Pipeline doctor</b>: topic <code>{html.escape(self.topic)}</code>, last {self.minutes} min: {head}"
            f"<table><tr><th></th><th>link</th><th>what it saw</th><th>fix</th></tr>{rows}</table>"
        )


class _Broken(Exception):
    def __init__(self, saw: str, fix: str) -> None:
        super().__init__(saw)
        self.saw, self.fix = saw, fix


def diagnose(
    topic: str | None = None,
    minutes: int = 15,
    settings: Settings | None = None,
    token: str | None = None,
    *,
    shown_stream: str | None = None,
    dashboard: str | Path | dict = DASHBOARD,
) -> Diagnosis:
    """Walk `topic`'s last `minutes` of traffic (default: the lab's topic, a panel's 15 minutes) link by link.
    `token`: the InfluxDB token to read with (default: the stack's read token). `shown_stream`: the stream the
    dashboard's box shows; `dashboard`: its uid, a JSON file or the dashboard itself."""
    settings = settings or get_settings()
    topic = settings.scoped(topic or settings.topic)
    ctx = _Context(settings, topic, minutes, token)
    ctx.shown_stream, ctx.dashboard = shown_stream, dashboard
    d = Diagnosis(topic, minutes)
    checks = (
        ctx.producer,
        ctx.event_time,
        ctx.job_link,
        ctx.reading,
        ctx.watermark,
        ctx.influx,
        ctx.counted,
        ctx.windows,
        ctx.panel,
    )
    for name, check in zip(LINKS, checks, strict=True):
        if d.broken is not None:
            d.links.append(Link(name, None, "not checked: an earlier link is broken"))
            continue
        try:
            d.links.append(Link(name, True, check()))
        except _Broken as b:
            d.links.append(Link(name, False, b.saw, b.fix))
    return d


class _Context:
    """What the links learn on the way (the recent records, the job), so that no link asks twice."""

    def __init__(self, settings: Settings, topic: str, minutes: int, token: str | None) -> None:
        self.settings, self.topic, self.minutes, self.token = settings, topic, minutes, token
        self.now = pd.Timestamp.now(tz="UTC")
        self.since = self.now - pd.Timedelta(minutes=minutes)
        self.records = pd.DataFrame()
        self.job = None
        self.span: tuple[pd.Timestamp, pd.Timestamp] | None = None  # the recent events' event times
        self._cache: dict[str, pd.DataFrame] = {}
        self.shown_stream: str | None = None
        self.dashboard: str | Path | dict = DASHBOARD

    # 1
    def producer(self) -> str:
        from labkit import kafka_info

        parts = kafka_info.offsets(self.topic, self.settings)
        if parts.empty:
            raise _Broken(
                f"the topic {self.topic} does not exist",
                "produce to it (`labkit produce --topic ...`), or point the doctor at the topic you produce to",
            )
        total = int((parts["end"] - parts["start"]).sum())
        if total == 0:
            elsewhere = _recent_runs(self.settings, self.since, exclude=self.topic)
            where = f"; labkit's producer wrote recently to: {', '.join(elsewhere)}" if elsewhere else ""
            raise _Broken(
                f"the topic {self.topic} holds no records{where}",
                "check the topic your producer writes to (`labkit produce --topic`, LABKIT_TOPIC), or produce now",
            )
        # the newest records by offset: their Kafka timestamps are the producer's (CreateTime), which a
        # simulated or replaying producer sets in the past or future, so they cannot say when they were written
        self.records = kafka_info.peek(self.topic, n=200, settings=self.settings)
        return f"{total:,} records in {len(parts)} partition(s); the newest {len(self.records)} are read below"

    # 2
    def event_time(self) -> str:
        times = []
        for v in self.records["value"]:
            try:
                t = json.loads(v).get("event_timestamp")
            except (ValueError, AttributeError, TypeError):
                continue
            if isinstance(t, int | float) and not isinstance(t, bool):
                times.append(t)
        if not times:
            return "the newest records carry no event time (malformed?): the 'counted' link will say"
        lo, hi = pd.to_datetime(min(times), unit="ms", utc=True), pd.to_datetime(max(times), unit="ms", utc=True)
        self.span = (lo, hi)
        skew = hi - self.now
        limit = pd.Timedelta(minutes=self.minutes)
        if skew < -limit or skew > limit:
            side = "behind" if skew < pd.Timedelta(0) else "ahead of"
            raise _Broken(
                f"the newest events happened at {hi:%Y-%m-%d %H:%M:%S} UTC, {_span(abs(skew))} {side} the wall clock: "
                f"windows are stamped in event time, so a panel on the last {self.minutes} minutes shows none of them",
                "widen the panel's time range to the events' times, or produce with event times near now",
            )
        return (
            f"newest event time {_span(abs(skew))} {'behind' if skew < pd.Timedelta(0) else 'ahead of'} the wall clock"
        )

    # 3
    def job_link(self) -> str:
        from labkit.jobs import pipeline_name
        from labkit.jobs.control import Flink, Job

        flink = Flink(self.settings.flink)
        name = pipeline_name(self.settings, self.topic)
        jobs = [j for j in flink.jobs() if j["name"] == name]
        live = [j for j in jobs if j["state"] not in ("CANCELED", "FINISHED", "FAILED")]
        if not live:
            last = f" (its last run is {jobs[0]['state']})" if jobs else ""
            raise _Broken(
                f"no job reads {self.topic}: the pipeline {name} is not running{last}",
                f"submit it: `labkit submit{'' if self.topic == self.settings.topic else ' --topic ' + self.topic}` "
                "or jobs.submit_pipeline(topic=...)",
            )
        self.job = Job(live[0]["jid"], name, flink, self.settings)
        info = self.job.info()
        state = info["state"]
        idle = [v["name"][:40] for v in info.get("vertices", []) if v["status"] != "RUNNING"]
        if state != "RUNNING" or idle:
            cause = flink.exception(self.job.id) or "no exception recorded"
            restarts = self.job.restarts()
            raise _Broken(
                f"the job is {state}{' (tasks not running: ' + ', '.join(idle) + ')' if idle else ''}"
                f"{f', {restarts} restart(s) so far' if restarts else ''}; last error: {cause}",
                "read `labkit logs taskmanager`; a job that keeps restarting fails on the same cause each time",
            )
        recent = _last_failure_s(flink, self.job.id)
        restarts = self.job.restarts()
        if recent is not None and recent < 60:
            raise _Broken(
                f"the job restarted {recent:.0f} s ago ({restarts} restarts so far): {flink.exception(self.job.id)}",
                "read `labkit logs taskmanager`; if it keeps restarting, fix the cause and resubmit",
            )
        return (
            f"{name} RUNNING for {_span(pd.Timedelta(seconds=info.get('duration', 0) / 1000))}, {restarts} restart(s)"
        )

    # 4
    def reading(self) -> str:
        from labkit import kafka_info

        lag = int(kafka_info.lag(self.settings.pipeline_group(self.topic), self.topic, self.settings)["lag"].sum())
        latest = ((self.job.checkpoints().get("latest") or {}).get("completed")) or {}
        age_s = (time.time() * 1000 - latest["latest_ack_timestamp"]) / 1000 if latest else None
        # no checkpoint yet is normal for a job that started less than a minute ago (the first comes after 10 s)
        waiting_s = age_s if age_s is not None else self.job.info().get("duration", 0) / 1000
        if lag > 0 and waiting_s > 60:
            raise _Broken(
                f"{lag:,} messages not committed, and "
                + (
                    "no checkpoint has completed yet"
                    if age_s is None
                    else f"the last checkpoint completed {age_s:.0f} s ago"
                )
                + ": the job commits offsets only when a checkpoint completes",
                "look at the job's Checkpoints tab (failures, durations near the timeout); a blocked sink blocks them",
            )
        cp = f"last checkpoint {age_s:.0f} s ago" if age_s is not None else "no checkpoint yet"
        return f"{lag:,} messages not yet committed ({cp}; commits come with checkpoints)"

    # 5
    def watermark(self) -> str:
        # Flink's REST API serves metrics from a store it refreshes every 10 s (metrics.fetcher.update-interval):
        # a job that just started shows no watermark yet, so "none" counts only once a refresh has passed
        deadline = time.monotonic() + 12
        while True:
            marks = self.job.partition_watermarks(self.topic)
            window = self.job.window_watermark()
            if not pd.isna(window) or time.monotonic() > deadline:
                break
            time.sleep(2)
        silent = [int(p) for p in marks.loc[marks["watermark"].isna(), "partition"]]
        if pd.isna(window):
            who = f"partition(s) {', '.join(map(str, silent))} have none" if silent else "no partition reports one"
            raise _Broken(
                f"the windows have no watermark, so none can fire: {who} (a partition that sent nothing since the job "
                "started has no watermark, and the windows wait for the minimum)",
                "end each run with end markers (`labkit produce --close-windows`); the job's idle timeout leaves a "
                "silent partition out once it has passed",
            )
        if self.span is not None and window < self.span[1] - pd.Timedelta(minutes=self.minutes):
            raise _Broken(
                f"the windows' watermark is at {window:%H:%M:%S}, {_span(self.span[1] - window)} behind the newest "
                f"event: {'partition(s) ' + ', '.join(map(str, silent)) + ' have no watermark' if silent else 'a partition lags'}",
                "a partition that stopped receiving holds the minimum back: end markers, or wait for the idle timeout",
            )
        note = f"; partition(s) {', '.join(map(str, silent))} silent, left out" if silent else ""
        return f"the windows' watermark is at {window:%H:%M:%S} UTC{note}"

    # 6
    def influx(self) -> str:
        from labkit.errors import ServiceError
        from labkit.influx import Influx

        s = self.settings
        try:
            with Influx(s, token=self.token) as db:
                db.flux(f'from(bucket: "{s.influx_bucket}") |> range(start: -1m) |> limit(n: 1)')
        except ServiceError as e:
            msg = e.message
            if "401" in msg or "unauthorized" in msg.lower():
                raise _Broken(
                    f"InfluxDB refused the token ({msg})",
                    "use the token the stack wrote (`labkit status` names its file); in external mode set "
                    "LABKIT_INFLUX_TOKEN",
                ) from None
            if "404" in msg or "not found" in msg.lower():
                raise _Broken(
                    f"InfluxDB has no bucket {s.influx_bucket} in org {s.influx_org} ({msg})",
                    "set LABKIT_INFLUX_BUCKET / LABKIT_INFLUX_ORG to the ones the job writes to",
                ) from None
            raise _Broken(msg, e.hint or "start the stack with `labkit up`") from None
        return f"bucket {s.influx_bucket} (org {s.influx_org}) answers"

    def _range(self) -> tuple[str, str]:
        lo, hi = self.span if self.span is not None else (self.since, self.now)
        lo = min(lo, self.since) - pd.Timedelta(seconds=30)
        hi = max(hi, self.now) + pd.Timedelta(minutes=2)
        return lo.isoformat(), hi.isoformat()

    def _points(self, measurement: str) -> pd.DataFrame:
        """One query per measurement per walk: the 'counted' and 'windows' links read the same points."""
        from labkit.influx import Influx

        if measurement not in self._cache:
            start, stop = self._range()
            with Influx(self.settings, token=self.token) as db:
                self._cache[measurement] = db.query(measurement, start=start, stop=stop, stream=self.topic)
        return self._cache[measurement]

    # 7
    def counted(self) -> str:
        valid, dlq, counts = self._points("valid_events"), self._points("dlq_events"), self._points("http_counts")
        read = int(valid["count"].sum()) if not valid.empty else 0
        dead = int(dlq["count"].sum()) if not dlq.empty else 0
        counted = int(counts["count"].sum()) if not counts.empty else 0
        if read + dead == 0:
            raise _Broken(
                "the job reported reading no event of this time range (no valid_events or dlq_events points)",
                "the job reads but writes nothing: see `labkit logs taskmanager` for the sink's errors",
            )
        if dead > read:
            reasons = dlq.groupby("reason")["count"].sum().sort_values(ascending=False) if "reason" in dlq else None
            top = f" (mostly: {reasons.index[0]})" if reasons is not None and len(reasons) else ""
            raise _Broken(
                f"{dead / (read + dead):.0%} of the events were malformed and went to the dead-letter topic{top}",
                "`labkit dlq` shows them with their reasons: fix the producer's payloads",
            )
        late = max(0, read - counted)
        if read and late > read / 2:
            raise _Broken(
                f"{late / read:.0%} of the {read:,} events read were late: their windows had fired already",
                "events sent long after they happened are late; a longer watermark delay waits for them",
            )
        return f"{read:,} read, {late:,} late, {dead:,} dead-lettered"

    # 8
    def windows(self) -> str:
        counts = self._points("http_counts")
        if counts.empty:
            raise _Broken(
                f"no window of {self.topic} reached InfluxDB in this time range",
                "windows fire when the watermark passes their end: send end markers, or more events",
            )
        last = counts["time"].max()
        return f"{counts['time'].nunique()} window(s) written, the last ending {last:%H:%M:%S} UTC"

    # 9
    def panel(self) -> str:
        from labkit.influx import Influx

        board, source = _dashboard(self.dashboard, self.settings)
        variable = next((v for v in board.get("templating", {}).get("list", []) if v.get("name") == "stream"), None)
        saved = ((variable or {}).get("current") or {}).get("value")
        stream = self.shown_stream or (saved if source.startswith("Grafana") else None) or self.topic
        target = next((t for p in board.get("panels", []) for t in p.get("targets", []) if t.get("query")), None)
        if target is None:
            return f"{source} has no Flux panel to check"
        title = next(p.get("title", "?") for p in board["panels"] if target in p.get("targets", []))
        start, stop = self._range()
        flux = (
            target["query"]
            .replace("v.defaultBucket", json.dumps(self.settings.influx_bucket))
            .replace("v.timeRangeStart", f"time(v: {json.dumps(start)})")
            .replace("v.timeRangeStop", f"time(v: {json.dumps(stop)})")
            .replace("${stream}", json.dumps(stream)[1:-1])  # inside the panel's own quotes
            .replace("${attendee}", self.settings.namespace or "")
        )
        from labkit.errors import ServiceError

        try:
            with Influx(self.settings, token=self.token) as db:
                rows = db.flux(flux)
        except ServiceError as e:
            raise _Broken(
                f"InfluxDB refused panel {title!r}'s query ({source}): {e.message}",
                "open the panel in Grafana's editor: its query or a variable it uses is not one this lab defines",
            ) from None
        if rows.empty:
            raise _Broken(
                f"panel {title!r} ({source}) shows stream {stream!r}, where this range has no windows; the windows "
                f"of this run are under stream {self.topic!r}",
                f"type {self.topic} in the dashboard's stream box (or open it with ?var-stream={self.topic})",
            )
        return f"panel {title!r} ({source}) shows stream {stream!r}: {len(rows)} point(s) in this range"


def _dashboard(which: str | Path | dict, settings: Settings) -> tuple[dict, str]:
    """The dashboard and where it came from: Grafana's API when Grafana answers, else its provisioning file."""
    import httpx

    from labkit.paths import GRAFANA_DIR

    if isinstance(which, dict):
        return which, "the dashboard given"
    if isinstance(which, Path) or str(which).endswith(".json"):
        return json.loads(Path(which).read_text()), f"file {Path(which).name}"
    try:
        r = httpx.get(f"{settings.grafana_url.rstrip('/')}/api/dashboards/uid/{which}", timeout=3)
        if r.status_code == 200:
            return r.json()["dashboard"], f"Grafana at {settings.grafana_url}"
    except httpx.HTTPError:
        pass  # no Grafana here (local mode, or CI): the file Grafana would load
    return json.loads((GRAFANA_DIR / "dashboards" / f"{which}.json").read_text()), f"dashboard file {which}.json"


def _last_failure_s(flink, job_id: str) -> float | None:
    """Seconds since the job's newest recorded failure (None: none)."""
    ex = flink._req("GET", f"/jobs/{job_id}/exceptions").json()
    entries = (ex.get("exceptionHistory") or {}).get("entries") or []
    stamps = [e.get("timestamp") for e in entries if e.get("timestamp")]
    return (time.time() * 1000 - max(stamps)) / 1000 if stamps else None


def _recent_runs(settings: Settings, since: pd.Timestamp, exclude: str) -> list[str]:
    """Topics labkit's producer wrote to since `since` (its ledgers, `<home>/runs/last-<topic>.json`), newest
    first; in a workshop only this attendee's home is read."""
    runs = settings.home / "runs"
    found = []
    for f in runs.glob("last-*.json") if runs.is_dir() else []:
        t = pd.to_datetime(f.stat().st_mtime, unit="s", utc=True)
        topic = f.stem.removeprefix("last-")
        if t >= since and topic != exclude:
            found.append((t, f"{topic} ({_ago(t, pd.Timestamp.now(tz='UTC'))})"))
    return [x for _, x in sorted(found, reverse=True)]


def _ago(t: pd.Timestamp, now: pd.Timestamp) -> str:
    return f"{_span(now - t)} ago"


def _span(d: pd.Timedelta) -> str:
    s = int(abs(d.total_seconds()))
    if s < 120:
        return f"{s} s"
    if s < 7200:
        return f"{s // 60} min"
    return f"{s // 3600} h {s % 3600 // 60} min"
