"""The Flux a panel carries: queries written with Grafana's macros (`v.timeRangeStart`, `${stream}`, ...), and
those macros substituted exactly as Grafana's InfluxDB (Flux) datasource does, so labkit runs the same query."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

from labkit.influx import LATE_EVENTS_FLUX
from labkit.settings import Settings

# Attendees' buckets are <this>-aNN (labkit.workshop names them after the instructor's LABKIT_INFLUX_BUCKET,
# whose default this is).
WORKSHOP_BUCKET = Settings.model_fields["influx_bucket"].default
# The attendee variable's values: one row per attendee bucket, in the `_value` column Grafana reads.
WORKSHOP_ATTENDEES = f"""buckets()
  |> filter(fn: (r) => r.name =~ /^{WORKSHOP_BUCKET}-a[0-9]+$/)
  |> rename(columns: {{name: "_value"}})
  |> keep(columns: ["_value"])"""

_SOURCE = """from(bucket: v.defaultBucket)
  |> range(start: v.timeRangeStart, stop: v.timeRangeStop)"""
_BASE = (
    _SOURCE
    + """
  |> filter(fn: (r) => r._measurement == "{m}" and r.stream == "${{stream}}")"""
)


def _q(measurement: str, rest: str = "") -> str:
    return _BASE.format(m=measurement) + ("\n" + rest if rest else "")


# late_events is derived from two measurements (labkit.influx.LATE_EVENTS_FLUX), so it filters by stream only
LATE_EVENTS = _SOURCE + '\n  |> filter(fn: (r) => r.stream == "${stream}")' + LATE_EVENTS_FLUX


def _top(measurement: str, field: str, n: int) -> str:
    """`field` summed per URL over the dashboard's range, the `n` largest first."""
    return _q(
        measurement,
        f'  |> filter(fn: (r) => r._field == "{field}")\n'
        '  |> group(columns: ["url"])\n  |> sum()\n  |> group()\n'
        f'  |> sort(columns: ["_value"], desc: true)\n  |> limit(n: {n})',
    )


def substitute_macros(
    flux: str,
    title: str,
    settings: Settings,
    start: datetime,
    stop: datetime,
    window: timedelta,
    stream: str | None = None,
    attendee: str | None = None,
) -> str:
    """Substitute Grafana's Flux macros in panel `title`'s `flux` exactly as its InfluxDB (Flux) datasource does."""
    q = flux
    if "${attendee}" in q:
        if not attendee:
            raise ValueError(f"panel {title!r} is a workshop panel: name the attendee (e.g. 'a01')")
        q = q.replace("${attendee}", attendee)
    q = q.replace("${stream}", settings.scoped(stream or settings.topic))
    q = q.replace("v.timeRangeStart", _rfc3339(start)).replace("v.timeRangeStop", _rfc3339(stop))
    q = q.replace("v.windowPeriod", _go_duration(window))
    q = q.replace("v.defaultBucket", json.dumps(settings.influx_bucket))
    return q.replace("v.organization", json.dumps(settings.influx_org))


def _rfc3339(t: datetime) -> str:
    return t.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _go_duration(d: timedelta) -> str:
    """Go's time.Duration.String() for whole milliseconds (e.g. 10s, 1m30s, 250ms)."""
    ms = int(d.total_seconds() * 1000)
    if ms < 1000:
        return f"{ms}ms"
    h, rem = divmod(ms, 3_600_000)
    m, rem = divmod(rem, 60_000)
    s = rem / 1000
    sec = f"{s:g}s"
    return f"{h}h{m}m{sec}" if h else f"{m}m{sec}" if m else sec
