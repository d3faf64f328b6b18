"""Checkers for the notebook exercises: they tell the attendee whether a metric is right, and why not."""

from __future__ import annotations

import html
from dataclasses import dataclass

import pandas as pd


@dataclass
class Feedback:
    ok: bool
    message: str

    def __bool__(self) -> bool:
        return self.ok

    def __repr__(self) -> str:
        return ("✅ " if self.ok else "❌ ") + self.message

    def _repr_html_(self) -> str:
        color = "#2e7d32" if self.ok else "#c62828"
        return (
            f"<div style='color:{color};font-weight:bold'>{'✅' if self.ok else '❌'} {html.escape(self.message)}</div>"
        )


def check_error_rate_per_url(metric, seconds: float = 600) -> Feedback:
    """Is `metric` the share of 4xx+5xx responses per URL per 10 s window? Compared with a reference
    computed over the same events."""
    from labkit.exercises.solutions import reference

    got = metric.preview(seconds=seconds, limit=5000)
    if got.empty:
        return Feedback(False, "your query returned no rows: produce some events first, or widen `seconds`")
    for col in ("window_end", "url"):
        if col not in got.columns:
            return Feedback(False, f"select `{col}` too: the metric is per URL and per window")
    want = reference("error_rate_per_url", metric.settings, metric.topic).preview(seconds=seconds, limit=5000)
    numeric = [
        c
        for c in got.columns
        if c not in ("window_end", "window_start", "url") and pd.api.types.is_numeric_dtype(got[c])
    ]
    merged = got.merge(want, on=["window_end", "url"], suffixes=("", "__ref"))
    if len(merged) < len(want) * 0.9:
        return Feedback(
            False,
            f"expected about {len(want)} (window, url) rows, found {len(merged)} matching ones: "
            "group by window_start, window_end, url",
        )
    for c in numeric:
        if ((merged[c] - merged["error_rate__ref"]).abs() < 1e-9).all():
            return Feedback(True, f"`{c}` is the error rate per URL and window: well done!")
    if any(
        ((merged[c] - merged["error_rate__ref"] * merged.get("requests__ref", 1)).abs() < 1e-9).all() for c in numeric
    ):
        return Feedback(False, "you have the error count, now divide it by the requests (as a DOUBLE)")
    return Feedback(
        False,
        "no column equals the share of 4xx+5xx responses; hint: "
        "CAST(SUM(CASE WHEN http_status >= 400 THEN 1 ELSE 0 END) AS DOUBLE) / COUNT(*)",
    )
