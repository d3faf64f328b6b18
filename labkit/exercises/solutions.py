"""Solutions to the notebook exercises. Try first; `show("error_rate_per_url")` when stuck."""

from __future__ import annotations

SOLUTIONS = {
    "error_rate_per_url": """SELECT window_end, url,
       COUNT(*) AS requests,
       CAST(SUM(CASE WHEN http_status >= 400 THEN 1 ELSE 0 END) AS DOUBLE) / COUNT(*) AS error_rate
FROM TABLE(TUMBLE(TABLE events, DESCRIPTOR(rowtime), INTERVAL '10' SECOND))
GROUP BY window_start, window_end, url""",
    "sessions_per_minute": """SELECT window_end, COUNT(DISTINCT session_id) AS sessions
FROM TABLE(TUMBLE(TABLE events, DESCRIPTOR(rowtime), INTERVAL '1' MINUTE))
GROUP BY window_start, window_end""",
}


def show(name: str) -> str:
    print(SOLUTIONS[name])
    return SOLUTIONS[name]


def reference(name: str, settings=None, topic=None):
    from labkit.jobs.custom import CustomMetric

    return CustomMetric(f"ref_{name}", SOLUTIONS[name], topic=topic, settings=settings)
