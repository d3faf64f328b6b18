"""The lab's dashboards: error monitoring, engagement, and the workshop instructor's view of the first (one
attendee's bucket and topic, picked by a variable)."""

from __future__ import annotations

from dataclasses import replace

from labkit.dashboards.flux import LATE_EVENTS, WORKSHOP_BUCKET, _q, _top
from labkit.dashboards.model import Dashboard, Panel
from labkit.timing import WINDOW_S

ERROR_RATE_THRESHOLD = 0.05  # the alert's threshold (labkit.alerts), drawn on the error-rate panels


ERRORS = Dashboard(
    "clickstream-errors",
    "Clickstream: error monitoring",
    (
        Panel(
            1,
            "Error rate",
            _q(
                "error_rate",
                '  |> filter(fn: (r) => r._field == "error_rate" or r._field == "rate_4xx" or r._field == "rate_5xx")',
            ),
            unit="percentunit",
            threshold=ERROR_RATE_THRESHOLD,
            grid=(0, 0, 16, 9),
            description=f"Share of 4xx and 5xx responses per {WINDOW_S} s window; red line: alert threshold",
        ),
        Panel(
            2,
            "Current error rate",
            _q("error_rate", '  |> filter(fn: (r) => r._field == "error_rate")\n  |> last()'),
            kind="stat",
            unit="percentunit",
            threshold=ERROR_RATE_THRESHOLD,
            grid=(16, 0, 8, 9),
        ),
        Panel(
            3,
            "4xx and 5xx by status",
            _q("http_counts", '  |> filter(fn: (r) => r.status_code >= "400")\n  |> group(columns: ["status_code"])'),
            stacked=True,
            grid=(0, 9, 12, 9),
            description="Error responses per status code per window",
        ),
        Panel(
            4,
            "Top failing URLs",
            _top("url_counts", "errors", 10),
            kind="bargauge",
            grid=(12, 9, 12, 9),
            description="4xx + 5xx responses per URL over the time range",
        ),
        Panel(
            5,
            "5xx per URL",
            _q(
                "url_counts",
                '  |> filter(fn: (r) => r._field == "errors_5xx")\n'
                '  |> group(columns: ["url"])\n  |> filter(fn: (r) => r._value > 0)',
            ),
            grid=(0, 18, 24, 8),
            description="Server errors per URL per window: where an incident lives",
        ),
    ),
)

ENGAGEMENT = Dashboard(
    "clickstream-engagement",
    "Clickstream: engagement",
    (
        Panel(
            1,
            "Events per URL",
            _top("url_counts", "count", 15),
            kind="bargauge",
            grid=(0, 0, 12, 10),
        ),
        Panel(2, "Active users and sessions", _q("active_users"), grid=(12, 0, 12, 10)),
        Panel(
            3,
            "Latency percentiles (whole site)",
            _q("latency", '  |> filter(fn: (r) => r.url == "ALL" and r._field != "count")'),
            unit="ms",
            grid=(0, 10, 12, 9),
        ),
        Panel(
            4,
            "Events per status",
            _q("http_counts", '  |> group(columns: ["status_code"])'),
            stacked=True,
            grid=(12, 10, 12, 9),
        ),
        Panel(
            5,
            "Dead letters by reason",
            _q("dlq_events", '  |> group(columns: ["reason"])\n  |> sum()\n  |> group()'),
            kind="bargauge",
            grid=(0, 19, 12, 8),
            description="Messages the job could not use, by reason",
        ),
        Panel(
            6,
            "Late events",
            LATE_EVENTS,
            grid=(12, 19, 12, 8),
            description="Valid events read after their window had closed (read minus counted), per window",
        ),
    ),
)


def for_workshop(d: Dashboard) -> Dashboard:
    """`d` for an instructor: the same panels over one attendee's bucket and topic, picked by a variable."""
    source = f'from(bucket: "{WORKSHOP_BUCKET}-${{attendee}}")'
    panels = tuple(
        replace(p, flux=p.flux.replace("from(bucket: v.defaultBucket)", source).replace(
            '"${stream}"', '"${attendee}.clickstream_events"'))
        for p in d.panels
    )  # fmt: skip
    return replace(d, uid=f"{d.uid}-workshop", title=f"{d.title} (workshop)", panels=panels, variable="attendee")


WORKSHOP_ERRORS = for_workshop(ERRORS)
DASHBOARDS = (ERRORS, ENGAGEMENT, WORKSHOP_ERRORS)
