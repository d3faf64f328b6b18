"""Notebook 10's checkers (labkit.exercises.patterns), fed hand-built results without a stack: for each pattern the
solution's rows pass, the starter and at least two wrong answers of different shapes get a specific "not yet",
and a lab that failed (Kafka away, a preview that timed out) is the lab's problem, never the answer's.

Every expected row below was worked out by hand from the clicks above it, as in test_patterns_reference.py.
"""

from __future__ import annotations

import json
import re
import socket
from pathlib import Path

import pandas as pd
import pytest

from labkit.errors import JobError
from labkit.exercises import (
    Feedback,
    check_changelog_rows,
    check_checkout_conversion,
    check_checkout_funnel,
    check_dedup_events,
    check_session_lengths,
    check_top_urls_per_minute,
    check_url_changelog,
    checker,
    predictions,
)
from labkit.exercises import patterns as P
from labkit.exercises.solutions import SOLUTIONS, changelog_rows
from labkit.jobs.custom import PreviewTimeout
from labkit.jobs.patterns import REFERENCE_WATERMARK as W
from labkit.jobs.patterns import PatternStreams, changelog_table
from labkit.jobs.runner import row_kind_column
from labkit.settings import load

CHECKS = {
    "dedup_events": check_dedup_events,
    "top_urls_per_minute": check_top_urls_per_minute,
    "session_lengths": check_session_lengths,
    "checkout_conversion": check_checkout_conversion,
    "url_changelog": check_url_changelog,
    "checkout_funnel": check_checkout_funnel,
}


def not_yet(fb: Feedback, *words: str) -> Feedback:
    assert isinstance(fb, Feedback) and fb.state == "fail" and not fb.lab_problem, repr(fb)
    text = repr(fb)
    for w in words:
        assert w in text, text
    return fb


def passed(fb: Feedback, *words: str) -> Feedback:
    assert isinstance(fb, Feedback) and fb.ok and fb.state == "pass", repr(fb)
    for w in words:
        assert w in fb.message, fb.message
    return fb


def records(*rows, start_offset=0):
    """(session, url, event time[, event id]) as records read back from a one-partition topic, in offset order."""
    out = []
    for i, r in enumerate(rows):
        value = {"event_id": r[3] if len(r) > 3 else f"e{i}", "session_id": r[0], "url": r[1], "event_timestamp": r[2]}
        out.append({"partition": 0, "offset": start_offset + i, "kafka_ms": r[2] + 5, "value": json.dumps(value)})
    return pd.DataFrame(out)


def orders(*rows):
    out = [
        {"partition": 0, "offset": i, "kafka_ms": t + 5,
         "value": json.dumps({"order_id": oid, "session_id": sid, "event_timestamp": t})}
        for i, (oid, sid, t) in enumerate(rows)
    ]  # fmt: skip
    return pd.DataFrame(out)


def result(columns, *rows, op=None):
    df = pd.DataFrame(list(rows), columns=columns)
    df.insert(0, "op", op if op is not None else ["+I"] * len(df))
    return df


# ---- the preview's row kinds ---------------------------------------------------------------------------------------
def test_the_row_kind_column_is_op_unless_the_query_has_one():
    assert row_kind_column(["url", "cnt"]) == "op"
    assert row_kind_column(["op", "url"]) == "row_kind"
    assert row_kind_column(["op", "row_kind"]) == "_row_kind"


def test_a_changelog_leaves_the_rows_it_did_not_retract():
    log = result(
        ["url", "cnt"], ("/a", 1), ("/b", 1), ("/a", 1), ("/a", 2), ("/b", 1), op=["+I", "+I", "-U", "+U", "-D"]
    )
    assert [tuple(r) for r in changelog_table(log).itertuples(index=False)] == [("/a", 2)]
    plain = result(["url"], ("/a",), ("/a",))
    assert len(changelog_table(plain)) == 2  # insert-only: every row stays, duplicates included


# ---- 1. deduplication ----------------------------------------------------------------------------------------------
DEDUP_CLICKS = records(
    ("s1", "/", 1_000, "a"), ("s1", "/cart", 2_000, "b"), ("s1", "/", 1_000, "a"),  # a's retry
    ("s2", "/search", 3_000, "c"), ("s1", "/cart", 2_000, "b"),  # b's retry
)  # fmt: skip
DEDUP_COLS = ["event_id", "session_id", "url", "event_timestamp"]


def test_dedup_the_solutions_rows_pass_and_count_the_retries():
    sol = result(DEDUP_COLS, ("a", "s1", "/", 1_000), ("b", "s1", "/cart", 2_000), ("c", "s2", "/search", 3_000))
    passed(P.grade_dedup_events(sol, DEDUP_CLICKS, W), "5 records, 2 of them retries", "3 events, each once")


def test_dedup_the_starter_keeps_every_copy():
    starter = result(DEDUP_COLS, *[(json.loads(v)["event_id"], "s", "/", 0) for v in DEDUP_CLICKS["value"]])
    fb = not_yet(P.grade_dedup_events(starter, DEDUP_CLICKS, W), "a duplicate kept: 2 event ids", "ROW_NUMBER()")
    assert "partitioned by what makes two records copies of one event" in fb.hints[0]
    numbered = result([*DEDUP_COLS, "row_num"], *[(*r[:4], 1 + i % 2) for i, r in enumerate(starter.values[:, 1:])])
    not_yet(P.grade_dedup_events(numbered, DEDUP_CLICKS, W), "rows of your result have row_num 2 or more")


def test_dedup_keeping_the_last_copy_is_told_by_its_updates():
    last = result(
        DEDUP_COLS,
        ("a", "s1", "/", 1_000), ("b", "s1", "/cart", 2_000), ("a", "s1", "/", 1_000), ("a", "s1", "/", 1_000),
        ("c", "s2", "/search", 3_000), ("b", "s1", "/cart", 2_000), ("b", "s1", "/cart", 2_000),
        op=["+I", "+I", "-U", "+U", "+I", "-U", "+U"],
    )  # fmt: skip
    not_yet(P.grade_dedup_events(last, DEDUP_CLICKS, W), "keeps the last copy", "DESC puts the last copy first")


def test_dedup_partitioned_by_the_session_loses_events():
    per_session = result(DEDUP_COLS, ("a", "s1", "/", 1_000), ("c", "s2", "/search", 3_000))
    fb = not_yet(P.grade_dedup_events(per_session, DEDUP_CLICKS, W), "1 of the topic's 3 events are missing")
    assert "one row per session_id" in fb.message and "b (/cart at" in fb.message
    assert "partition by what identifies a single event" in fb.hints[0]


def test_dedup_without_event_id_says_so():
    not_yet(P.grade_dedup_events(result(["url"], ("/",)), DEDUP_CLICKS, W), "select event_id")


# ---- 2. window Top-N -----------------------------------------------------------------------------------------------
def _topn_clicks():
    rows = []
    for url, n in (("/a", 4), ("/b", 3), ("/c", 2), ("/d", 2), ("/e", 1)):  # minute 0: /c and /d tie for third
        rows += [("s", url, 1_000)] * n
    rows += [("s", "/x", 60_000), ("s", "/x", 119_999), ("s", "/y", 61_000)]  # minute 1: two URLs only
    return records(*rows)


TOPN_COLS = ["window_start", "window_end", "url", "clicks", "rownum"]


def _topn(rows):
    return result(TOPN_COLS, *[(w, w + 60_000, u, c, i) for i, (w, u, c) in enumerate(rows)])


SOLUTION_TOPN = [(0, "/a", 4), (0, "/b", 3), (0, "/c", 2), (60_000, "/x", 2), (60_000, "/y", 1)]


def test_topn_the_solution_passes_with_either_tied_url():
    passed(P.grade_top_urls_per_minute(_topn(SOLUTION_TOPN), _topn_clicks(), W), "2 one-minute windows")
    tie = [r if r[1] != "/c" else (0, "/d", 2) for r in SOLUTION_TOPN]
    passed(P.grade_top_urls_per_minute(_topn(tie), _topn_clicks(), W))
    as_times = _topn(SOLUTION_TOPN)  # the preview's datetimes, not milliseconds
    for c in ("window_start", "window_end"):
        as_times[c] = pd.to_datetime(as_times[c], unit="ms")
    passed(P.grade_top_urls_per_minute(as_times, _topn_clicks(), W))


def test_topn_the_starter_counts_every_url_and_ranks_nothing():
    starter = result(
        ["window_start", "window_end", "url", "clicks"],
        *[(0, 60_000, u, n) for u, n in (("/a", 4), ("/b", 3), ("/c", 2), ("/d", 2), ("/e", 1))],
        (60_000, 120_000, "/x", 2), (60_000, 120_000, "/y", 1),
    )  # fmt: skip
    fb = not_yet(P.grade_top_urls_per_minute(starter, _topn_clicks(), W), "window 00:00:00: 5 rows, expected 3")
    assert "your result has no rank" in fb.hints[0]


def test_topn_five_rows_a_window_and_the_least_busy_are_wrong_differently():
    five = SOLUTION_TOPN[:3] + [(0, "/d", 2), (0, "/e", 1)] + SOLUTION_TOPN[3:]
    not_yet(P.grade_top_urls_per_minute(_topn(five), _topn_clicks(), W), "5 rows, expected 3", "your rank (rownum)")
    least = [(0, "/e", 1), (0, "/c", 2), (0, "/d", 2), (60_000, "/y", 1), (60_000, "/x", 2)]
    not_yet(P.grade_top_urls_per_minute(_topn(least), _topn_clicks(), W), "/e is not among the top 3", "direction")


def test_topn_the_wrong_window_and_no_window_are_told_apart():
    ten_s = result(TOPN_COLS, (0, 10_000, "/a", 4, 1), (0, 10_000, "/b", 3, 2), (60_000, 70_000, "/x", 1, 1))
    not_yet(P.grade_top_urls_per_minute(ten_s, _topn_clicks(), W), "your windows are 10 s long, not one minute")
    overall = result(["url", "clicks", "rownum"], ("/a", 1, 1), ("/a", 1, 1), ("/a", 2, 1), op=["+I", "-U", "+U"])
    not_yet(P.grade_top_urls_per_minute(overall, _topn_clicks(), W), "updates its rows", "window's columns go in")


# ---- 3. session windows --------------------------------------------------------------------------------------------
SESSION_CLICKS = records(
    ("s1", "/", 0), ("s2", "/", 5_000), ("s1", "/a", 10_000), ("s1", "/b", 40_000),
    ("s1", "/c", 200_000),  # s1 paused 160 s: a new session with a one-minute gap
)  # fmt: skip
SESSION_COLS = ["session_id", "window_start", "window_end", "clicks", "length_s"]
SOLUTION_SESSIONS = [("s1", 0, 100_000, 3, 40), ("s1", 200_000, 260_000, 1, 0), ("s2", 5_000, 65_000, 1, 0)]


def test_sessions_the_solution_passes():
    passed(
        P.grade_session_lengths(result(SESSION_COLS, *SOLUTION_SESSIONS), SESSION_CLICKS, W),
        "1 sessions are two windows",
    )


def test_sessions_the_medians_leave_out_the_windows_the_streams_edges_cut():
    edges = records(
        ("a", "/", 0),  # starts with the stream
        ("b", "/", 100_000), ("b", "/", 110_000), ("b", "/", 120_000),  # whole: 20 s, 3 clicks
        ("c", "/", 200_000), ("c", "/", 220_000), ("c", "/", 240_000),  # whole: 40 s, 3 clicks
        ("d", "/", 400_000),  # ends it
    )  # fmt: skip
    rows = [("a", 0, 60_000, 1, 0), ("b", 100_000, 180_000, 3, 20), ("c", 200_000, 300_000, 3, 40),
            ("d", 400_000, 460_000, 1, 0)]  # fmt: skip
    fb = passed(P.grade_session_lengths(result(SESSION_COLS, *rows), edges, W))  # every row still compared
    assert (
        "Median length 30 s, median 3 clicks (of the 2 windows the stream's start or end did not cut; 2 did)"
        in fb.message
    ), fb.message
    fb = passed(P.grade_session_lengths(result(SESSION_COLS, *SOLUTION_SESSIONS), SESSION_CLICKS, W))
    assert "(all 3 windows may be cut by the stream's start or end)" in fb.message, fb.message


def test_session_timeline_draws_the_cut_sessions_grey_and_counts_them():
    from labkit import patterns_reference as pr
    from labkit import plots

    edges = records(("a", "/", 0), ("b", "/", 100_000), ("b", "/", 120_000), ("d", "/", 400_000))
    windows = pr.session_windows(edges, gap_ms=60_000, watermark=None)
    frame = pd.DataFrame({"session_id": ["a", "b", "b", "d"], "event_timestamp": [0, 100_000, 120_000, 400_000]})
    for w in (windows, windows.drop(columns="partial")):  # the reference's column, or the edges of the clicks shown
        fig = plots.session_timeline(frame, w, gap_ms=60_000)
        bars = [t for t in fig.data if t.line.width == 10]
        assert [b.line.color == plots.PARTIAL_COLOR for b in bars] == [True, False, True]
        shown = [t.name for t in fig.data if t.showlegend is not False]
        assert shown == ["cut by the stream's start/end (2)", "click"]


def test_sessions_the_starters_group_by_updates_and_a_blank_is_empty():
    starter = result(["session_id", "clicks"], ("s1", 1), ("s1", 1), ("s1", 2), op=["+I", "-U", "+U"])
    not_yet(P.grade_session_lengths(starter, SESSION_CLICKS, W), "updates its rows", "SESSION windowing TVF")


def test_sessions_a_gap_too_long_or_too_short_is_named():
    five_min = [("s1", 0, 500_000, 4, 140), ("s2", 5_000, 305_000, 1, 0)]
    fb = not_yet(P.grade_session_lengths(result(SESSION_COLS, *five_min), SESSION_CLICKS, W), "a gap of 300 s")
    assert "joins sessions" in fb.message
    ten_s = [("s1", 0, 20_000, 2, 10), ("s1", 40_000, 50_000, 1, 0), ("s1", 200_000, 210_000, 1, 0),
             ("s2", 5_000, 15_000, 1, 0)]  # fmt: skip
    fb = not_yet(P.grade_session_lengths(result(SESSION_COLS, *ten_s), SESSION_CLICKS, W), "a gap of 10 s")
    assert "splits sessions" in fb.message


def test_sessions_a_split_session_and_a_length_with_the_gap_are_named():
    split = [("s1", 0, 70_000, 2, 10), ("s1", 40_000, 100_000, 1, 0)] + SOLUTION_SESSIONS[1:]
    fb = not_yet(P.grade_session_lengths(result(SESSION_COLS, *split), SESSION_CLICKS, W), "1 of 2 sessions differ")
    assert "session split" in fb.message
    with_gap = [(s, a, b, c, n + 60) for s, a, b, c, n in SOLUTION_SESSIONS]
    not_yet(P.grade_session_lengths(result(SESSION_COLS, *with_gap), SESSION_CLICKS, W), "it includes the gap")
    no_length = result(SESSION_COLS[:4], *[r[:4] for r in SOLUTION_SESSIONS])
    not_yet(P.grade_session_lengths(no_length, SESSION_CLICKS, W), "now add each session's length")


# ---- 4. interval join ----------------------------------------------------------------------------------------------
JOIN_CLICKS = records(
    ("s1", "/checkout", 0, "k1"), ("s1", "/checkout", 0, "k1"),  # a retried checkout: one checkout
    ("s2", "/checkout", 1_000, "k2"), ("s3", "/checkout", 0, "k3"), ("s4", "/checkout", 0, "k4"),
    ("s4", "/checkout", 100_000, "k5"), ("s3", "/cart", 50_000, "x"),
)  # fmt: skip
JOIN_ORDERS = orders(("o4", "s4", 150_000), ("o1", "s1", 600_000), ("o2", "s2", 601_001))  # o1: exactly 10 min
JOIN_COLS = ["session_id", "checkout_ms", "order_id", "order_ms"]
SOLUTION_JOIN = [
    ("s1", 0, "o1", 600_000), ("s1", 0, "o1", 600_000), ("s3", 0, None, None), ("s4", 0, "o4", 150_000),
    ("s4", 100_000, "o4", 150_000), ("s2", 1_000, None, None),
]  # fmt: skip


def test_join_the_solution_passes_and_states_the_rate():
    fb = passed(P.grade_checkout_conversion(result(JOIN_COLS, *SOLUTION_JOIN), JOIN_CLICKS, JOIN_ORDERS, W))
    assert "3 of 5 checkouts" in fb.message and "60.0%" in fb.message and "1 more got one later" in fb.message


def test_join_the_starters_inner_join_drops_the_checkouts_without_an_order():
    inner = [r for r in SOLUTION_JOIN if r[2]] + [("s2", 1_000, "o2", 601_001)]
    not_yet(P.grade_checkout_conversion(result(JOIN_COLS, *inner), JOIN_CLICKS, JOIN_ORDERS, W), "LEFT JOIN")


def _bound_in_where(sql: str) -> str:
    """The solution with its time bound moved from ON to WHERE (the checkout filter joined to it by AND)."""
    moved = re.sub(r"\n\s*AND (\S+\s+BETWEEN .+)\nWHERE (.+)$", r"\nWHERE \1\n  AND \2", sql, flags=re.S)
    assert moved != sql and re.search(r"WHERE \S+\s+BETWEEN", moved), moved
    return moved


def test_join_a_left_join_with_its_bound_in_where_is_told_where_the_bound_goes():
    """The bound in WHERE drops the NULL rows (Flink plans an inner join): the rows are an inner join's, the SQL
    says LEFT JOIN, and the feedback says why, without the bound itself."""
    inner = result(JOIN_COLS, *[r for r in SOLUTION_JOIN if r[2]])
    sql = _bound_in_where(str(SOLUTIONS["checkout_conversion"]))
    fb = not_yet(
        P.grade_checkout_conversion(inner, JOIN_CLICKS, JOIN_ORDERS, W, sql=sql),
        "says LEFT JOIN",
        "2 checkouts without one are missing",
        "o.rowtime",
        "both the key and the time bound go in ON",
        "in WHERE drops the unmatched rows",
    )
    assert not _leaks(fb, decisive_clauses("checkout_conversion")), repr(fb)
    # a filter on the checkouts in WHERE, or an IS NULL test on the orders, is not that mistake: the plain hint
    for other in (
        str(SOLUTIONS["checkout_conversion"]),
        str(SOLUTIONS["checkout_conversion"]) + " AND o.order_id IS NULL",
    ):
        fb = not_yet(P.grade_checkout_conversion(inner, JOIN_CLICKS, JOIN_ORDERS, W, sql=other), "an inner join")
        assert "in WHERE drops" not in repr(fb)
    # nor is an inner join that says so: it is told to keep the checkouts without an order
    fb = not_yet(
        P.grade_checkout_conversion(inner, JOIN_CLICKS, JOIN_ORDERS, W, sql=sql.replace("LEFT JOIN", "JOIN")),
        "a LEFT JOIN keeps every row",
    )
    assert "in WHERE drops" not in repr(fb)


def test_join_without_a_time_bound_retracts_and_a_longer_bound_joins_a_late_order():
    regular = result(
        JOIN_COLS, ("s2", 1_000, None, None), ("s2", 1_000, None, None), ("s2", 1_000, "o2", 601_001),
        op=["+I", "-D", "+I"],
    )  # fmt: skip
    not_yet(P.grade_checkout_conversion(regular, JOIN_CLICKS, JOIN_ORDERS, W), "regular join", "bounded on both sides")
    twenty = [r if r[0] != "s2" else ("s2", 1_000, "o2", 601_001) for r in SOLUTION_JOIN]
    fb = not_yet(P.grade_checkout_conversion(result(JOIN_COLS, *twenty), JOIN_CLICKS, JOIN_ORDERS, W))
    assert "a late order joined: it came 10.0 min after the checkout" in fb.message


def test_join_an_interval_backwards_is_named():
    backwards = [(s, t, None, None) for s, t, _, _ in SOLUTION_JOIN]
    not_yet(
        P.grade_checkout_conversion(result(JOIN_COLS, *backwards), JOIN_CLICKS, JOIN_ORDERS, W),
        "does your interval run forward from the checkout",
    )
    before = [*SOLUTION_JOIN[:-1], ("s2", 1_000, "o0", 500)]
    not_yet(
        P.grade_checkout_conversion(result(JOIN_COLS, *before), JOIN_CLICKS, JOIN_ORDERS, W),
        "came before their checkout",
    )


def test_join_without_any_time_bound_is_told_by_orders_before_and_long_after():
    cl = records(("s1", "/checkout", 0, "k1"), ("s1", "/checkout", 700_000, "k2"), ("s2", "/checkout", 0, "k3"))
    od = orders(("o1", "s1", 300_000), ("o2", "s2", 900_000))
    unbounded = [("s1", 0, "o1", 300_000), ("s1", 700_000, "o1", 300_000), ("s2", 0, "o2", 900_000)]
    fb = not_yet(P.grade_checkout_conversion(result(JOIN_COLS, *unbounded), cl, od, W), "your join has no time bound")
    assert "1 from before the checkout" in fb.message and "1 from more than ten minutes after it" in fb.message
    passed(
        P.grade_checkout_conversion(
            result(JOIN_COLS, ("s1", 0, "o1", 300_000), ("s1", 700_000, None, None), ("s2", 0, None, None)), cl, od, W
        )
    )


# ---- 5. the changelog of a GROUP BY without a window ---------------------------------------------------------------
CHANGELOG_CLICKS = records(*[("s", u, i * 1_000) for i, u in enumerate(["/a", "/b", "/a", "/a", "/b", "/c"])])
SOLUTION_CHANGELOG = result(
    ["url", "cnt"],
    ("/a", 1), ("/b", 1), ("/a", 1), ("/a", 2), ("/a", 2), ("/a", 3), ("/b", 1), ("/b", 2), ("/c", 1),
    op=["+I", "+I", "-U", "+U", "-U", "+U", "-U", "+U", "+I"],
)  # fmt: skip


def test_changelog_the_solution_passes():
    passed(P.grade_url_changelog(SOLUTION_CHANGELOG, CHANGELOG_CLICKS), "9 changelog rows for 6 clicks on 3 URLs")


def test_changelog_a_windowed_count_only_inserts_and_distinct_sessions_count_otherwise():
    windowed = result(["window_end", "url", "cnt"], (60_000, "/a", 3), (60_000, "/b", 2), (60_000, "/c", 1))
    not_yet(P.grade_url_changelog(windowed, CHANGELOG_CLICKS), "only inserts rows (+I)", "window_end")
    distinct = result(["url", "cnt"], ("/a", 1), ("/b", 1), ("/c", 1), op=["+I", "+I", "+I"])
    distinct = pd.concat([distinct, result(["url", "cnt"], ("/a", 1), ("/a", 1), op=["-U", "+U"])])
    fb = not_yet(P.grade_url_changelog(distinct, CHANGELOG_CLICKS), "2 of 3 URLs end with another count")
    assert "/a: 1, the topic has 3" in fb.message


def test_changelog_without_the_url_says_so():
    not_yet(P.grade_url_changelog(result(["cnt"], (1,)), CHANGELOG_CLICKS), "select url")


def test_the_changelog_prediction_is_graded_as_recorded(tmp_path):
    demo = result(["orders", "revenue"], (1, 10.0), (1, 10.0), (2, 30.0), (2, 30.0), (3, 35.0),
                  op=["+I", "-U", "+U", "-U", "+U"])  # fmt: skip
    assert changelog_rows(3) == 5 and SOLUTIONS["changelog_rows"] == "2 * n_orders - 1"
    not_yet(check_changelog_rows(None, demo), "give a number")
    predictions.record("changelog_rows", 3)
    fb = not_yet(check_changelog_rows(3, demo), "5 rows for 3 orders, not 3")
    assert "one row out (-U), one row in (+U)" in fb.hints[0]
    not_yet(check_changelog_rows(5, "demo"), "run the demo cell first")


def test_the_right_changelog_prediction_passes(tmp_path):
    demo = result(["orders"], (1,), (1,), (2,), op=["+I", "-U", "+U"])
    predictions.record("changelog_rows", 3)
    passed(check_changelog_rows(3, demo), "2 × 2 − 1")


# ---- 6. MATCH_RECOGNIZE --------------------------------------------------------------------------------------------
FUNNEL_CLICKS = records(
    ("s1", "/product/x", 1), ("s1", "/cart", 2), ("s1", "/checkout", 3),
    ("s2", "/product/x", 1), ("s2", "/search", 2), ("s2", "/cart", 3), ("s2", "/checkout", 4),  # a page between
    ("s4", "/product/a", 1), ("s4", "/product/b", 2), ("s4", "/cart/items", 3), ("s4", "/cart", 4),
    ("s4", "/checkout", 5), ("s4", "/product/c", 6), ("s4", "/cart", 7), ("s4", "/checkout", 8),  # twice
    ("s6", "/product/y", 1), ("s6", "/cart/items", 2), ("s6", "/cart", 3), ("s6", "/checkout", 4),  # two carts
    ("s7", "/product/z", 1), ("s7", "/checkout", 2),  # no cart
)  # fmt: skip
FUNNEL_COLS = ["session_id", "checkout_ms"]
SOLUTION_FUNNEL = [("s1", 3), ("s4", 5), ("s4", 8), ("s6", 4)]


def test_funnel_the_solution_passes():
    passed(P.grade_checkout_funnel(result(FUNNEL_COLS, *SOLUTION_FUNNEL), FUNNEL_CLICKS, W), "3 sessions", "1 of them")


def test_funnel_a_pattern_that_finds_almost_nothing_asks_for_the_missing_step():
    many = records(*[(f"s{i}", u, t) for i in range(12) for t, u in enumerate(["/product/a", "/cart", "/checkout"])])
    fb = not_yet(P.grade_checkout_funnel(result(FUNNEL_COLS, ("s0", 2)), many, W), "matched 1 time(s) in 1 sessions")
    assert "12 sessions" in fb.message and "a step missing" in fb.message


def test_funnel_the_starter_finds_nothing():
    fb = not_yet(P.grade_checkout_funnel(result(FUNNEL_COLS), FUNNEL_CLICKS, W), "found no funnel", "3 sessions")
    assert "one or more cart pages" in fb.hints[0] and "DEFINE" in fb.hints[0]


def test_funnel_other_pages_between_or_a_step_missing_are_told_apart():
    relaxed = [*SOLUTION_FUNNEL, ("s2", 4)]
    fb = not_yet(P.grade_checkout_funnel(result(FUNNEL_COLS, *relaxed), FUNNEL_CLICKS, W), "other pages between")
    assert "s2: product → other → cart → checkout" in fb.message
    no_cart = [*SOLUTION_FUNNEL, ("s7", 2)]
    not_yet(P.grade_checkout_funnel(result(FUNNEL_COLS, *no_cart), FUNNEL_CLICKS, W), "a funnel step missing", "s7")


def test_funnel_one_of_each_step_misses_repeated_steps_and_no_session_is_named():
    single = [("s1", 3), ("s4", 8)]  # PATTERN (P C K): s6's two cart pages and s4's first funnel do not match
    fb = not_yet(P.grade_checkout_funnel(result(FUNNEL_COLS, *single), FUNNEL_CLICKS, W), "a step came twice in a row")
    assert "another number of funnels" in fb.message and "a quantifier on it" in " ".join(fb.hints)
    not_yet(P.grade_checkout_funnel(result(["checkout_ms"], (3,)), FUNNEL_CLICKS, W), "select session_id")


# ---- the answer's shape, and the lab ------------------------------------------------------------------------------
@pytest.fixture
def closed_port() -> int:
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def _settings(tmp_path, monkeypatch, port: int):
    monkeypatch.chdir(tmp_path)
    # every LABKIT_ setting but the home, which stays the test's own (conftest): a checker that records or reads a
    # prediction (labkit.settings.get()) must not touch the real lab home
    for k in [k for k in __import__("os").environ if k.startswith("LABKIT_") and k != "LABKIT_HOME"]:
        monkeypatch.delenv(k)
    addr = f"127.0.0.1:{port}"
    return load(mode="external", home=tmp_path / "home", kafka_bootstrap=addr, influx_url=f"http://{addr}",
                influx_token="t", flink_rest_url=f"http://{addr}")  # fmt: skip


def _streams(settings=None, cls=PatternStreams) -> PatternStreams:
    s = cls("lab10_clicks", "lab10_orders", settings) if settings else cls("lab10_clicks", "lab10_orders")
    s.clicks, s.orders = JOIN_CLICKS, JOIN_ORDERS
    return s


@pytest.mark.parametrize("name", sorted(CHECKS))
def test_a_wrong_shape_is_not_yet_before_any_preview(name, tmp_path, monkeypatch, closed_port):
    check, streams = CHECKS[name], _streams(_settings(tmp_path, monkeypatch, closed_port))
    for fb, word in (
        (check(None, streams), "SQL text"),
        (check("  -- ✍️ write it here\n", streams), "empty"),
        (check(str(SOLUTIONS[name]), None), "streams"),
        (check(str(SOLUTIONS[name]), "lab10_clicks"), "streams"),
    ):
        assert not_yet(fb, word).exercise == name


@pytest.mark.parametrize("name", sorted(CHECKS))
def test_kafka_away_is_the_labs_problem(name, tmp_path, monkeypatch, closed_port):
    s = _settings(tmp_path, monkeypatch, closed_port)
    fb = CHECKS[name](str(SOLUTIONS[name]), _streams(s))
    assert fb.state == "lab" and fb.lab_problem and not fb.ok, repr(fb)
    assert "not yet" not in repr(fb) and "Kafka" in fb.message and s.kafka in fb.message
    assert "connection refused" in fb.message and "run this cell again" in fb.message.lower()


class _Failing(PatternStreams):
    error: Exception = RuntimeError()

    def preview(self, sql, name="pattern", limit=200_000, timeout_s=180):
        raise self.error


@pytest.fixture
def listening(tmp_path, monkeypatch):
    """Settings whose Kafka port accepts connections (the probe passes), so the preview itself is what fails."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen()
    yield _settings(tmp_path, monkeypatch, server.getsockname()[1])
    server.close()


def test_a_preview_that_timed_out_or_lost_kafka_is_the_lab_and_a_sql_error_the_answer(listening):
    streams = _streams(listening, _Failing)
    streams.error = PreviewTimeout("the preview of lab10-dedup returned no row within 180s.", "run it again")
    fb = check_dedup_events(str(SOLUTIONS["dedup_events"]), streams)
    assert fb.state == "lab" and "did not finish in time" in fb.message and "180s" in fb.message, repr(fb)
    assert "run this cell again" in fb.message.lower() and "not yet" not in repr(fb)
    streams.error = JobError(
        "your SQL for lab10-funnel failed: TimeoutException: Timed out waiting for a node assignment."
    )
    fb = check_checkout_funnel(str(SOLUTIONS["checkout_funnel"]), streams)
    assert fb.state == "lab" and "Kafka" in fb.message and "your SQL" not in fb.message, repr(fb)
    streams.error = JobError(
        "your SQL for lab10-sessions failed: SQL validation failed. From line 3, column 6 to line 3, column 12: "
        "Column 'no_such' not found in any table"
    )
    fb = not_yet(check_session_lengths("SELECT no_such FROM clicks", streams), "line 3, column 6", "no_such")
    assert any("solve(" in h for h in fb.hints)


def test_a_partial_preview_is_not_graded(listening):
    class Partial(PatternStreams):
        def preview(self, sql, name="pattern", limit=200_000, timeout_s=180):
            df = pd.DataFrame({"op": ["+I"], "url": ["/a"], "cnt": [1]})
            df.attrs["partial"] = True
            return df

    fb = check_url_changelog(str(SOLUTIONS["url_changelog"]), _streams(listening, Partial))
    assert fb.state == "lab" and "part of the result" in fb.message, repr(fb)


def test_streams_that_were_never_produced_are_the_labs_problem(listening):
    streams = PatternStreams("lab10_clicks", "lab10_orders", listening)
    fb = check_top_urls_per_minute(str(SOLUTIONS["top_urls_per_minute"]), streams)
    assert fb.state == "lab" and "setup cell" in fb.message, repr(fb)


def test_every_pattern_has_a_solution_that_is_no_one_token_edit_of_its_starter():
    import re

    from labkit.exercises.solutions import PREDICTIONS

    assert set(CHECKS) <= set(SOLUTIONS) and "changelog_rows" in PREDICTIONS
    for name in CHECKS:
        sql = str(SOLUTIONS[name])
        assert re.search(r"\bFROM\b", sql) and sql.strip() == sql


# ---- the tables ----------------------------------------------------------------------------------------------------
def test_the_tables_declare_the_events_fields_and_a_bounded_on_event_source():
    from labkit.events import EventGenerator
    from labkit.jobs.patterns import CLICK_COLUMNS, ORDER_COLUMNS, clicks_ddl, orders_ddl

    gen = EventGenerator(seed=1, rate=50, start_ms=1_800_000_000_000, orders=1.0, duplicates=0.1)
    events = [next(gen) for _ in range(2_000)]
    click = json.loads(next(e for e in events if e.kind == "valid").value)
    order = json.loads(gen.take_orders()[0].value)
    assert {c for c, _ in CLICK_COLUMNS} <= set(click) and {c for c, _ in ORDER_COLUMNS} <= set(order)
    ddl = clicks_ddl("lab10_clicks", "127.0.0.1:9092", group_id="g")
    for option in (
        "'scan.watermark.emit.strategy' = 'on-event'",
        "'scan.bounded.mode' = 'latest-offset'",
        "'scan.startup.mode' = 'earliest-offset'",
        "'format' = 'json'",
        "'json.ignore-parse-errors' = 'true'",
        "rowtime AS TO_TIMESTAMP_LTZ(event_timestamp, 3)",
        "WATERMARK FOR rowtime AS rowtime - INTERVAL '5' SECOND",
        "proctime AS PROCTIME()",
    ):
        assert option in ddl, option
    assert "CREATE TEMPORARY TABLE orders (" in orders_ddl("o", "b", group_id="g")
    assert "scan.bounded.mode" not in clicks_ddl("t", "b", group_id="g", bounded=False)
    assert W.emit == "on-event" and W.bounded and W.delay_ms == 5_000


def test_a_query_with_an_op_column_of_its_own_is_read_by_the_previews_row_kind():
    log = SOLUTION_CHANGELOG.rename(columns={"op": "row_kind"}).assign(op="mine")
    passed(P.grade_url_changelog(log, CHANGELOG_CLICKS))


def test_window_times_as_the_preview_passes_them_whole_seconds_or_not():
    # the runner's text of TIMESTAMP(3) values is str(datetime): "...:00" for a whole second, "...:00.018000" else;
    # read with one format inferred from the first row, the others became NaT (seen on a real session window run)
    text = pd.Series(["2027-01-15 08:00:00", "2027-01-15 08:00:00.018000"])
    assert P._to_ms(text).tolist() == [1_800_000_000_000, 1_800_000_000_018]
    sol = result(SESSION_COLS, *SOLUTION_SESSIONS)
    for c in ("window_start", "window_end"):
        sol[c] = [str(pd.Timestamp(v, unit="ms")) for v in sol[c]]
    passed(P.grade_session_lengths(sol, SESSION_CLICKS, W))


# ---- the changelog demo and its prediction: a demo that did not run, or ran part way, is the lab's ------------------
def is_lab(fb: Feedback, *words: str) -> Feedback:
    assert isinstance(fb, Feedback) and fb.state == "lab" and fb.lab_problem and not fb.ok, repr(fb)
    assert "not yet" not in repr(fb)
    for w in words:
        assert w in repr(fb), repr(fb)
    return fb


DEMO = result(["orders", "revenue"], (1, 10.0), (1, 10.0), (2, 30.0), (2, 30.0), (3, 35.0),
              op=["+I", "-U", "+U", "-U", "+U"])  # fmt: skip


def test_a_demo_that_did_not_run_is_the_labs_and_the_prediction_is_not_judged():
    predictions.record("changelog_rows", 4)  # wrong, but there is nothing to grade it on
    fb = is_lab(check_changelog_rows(4, None), "the demo did not run", "Run the demo cell again")
    assert fb.exercise == "changelog_rows" and "4" not in fb.message
    assert predictions.recorded("changelog_rows").locked_at is None  # not settled on a run that did not happen


def test_a_partial_or_empty_demo_is_the_labs_and_says_what_it_saw():
    partial = DEMO.iloc[:3].copy()
    partial.attrs["partial"] = True
    fb = is_lab(check_changelog_rows(5, partial), "stopped before it had read every order", "3 changelog rows")
    assert "for 2 orders" in fb.message and "Run the demo cell again" in fb.message
    is_lab(check_changelog_rows(5, DEMO.iloc[:0]), "changelog is empty", "setup cell")


@pytest.mark.parametrize(
    ("prediction", "words"),
    [
        (None, "give a number"),
        ("", "give a number"),
        ("five", "give a number"),
        ([5], "give a number"),
        ({"rows": 5}, "give a number"),
        (True, "give a number"),  # not 1
        (float("inf"), "give a number"),
        (float("nan"), "give a number"),
        (4.5, "not 4.5"),
        (-1, "not -1"),
        (3, "not 3"),  # the orders, not the rows
        ("6", "not 6"),
    ],
)
def test_a_changelog_prediction_of_any_shape_gets_a_specific_not_yet(prediction, words):
    not_yet(check_changelog_rows(prediction, DEMO), words)


@pytest.mark.parametrize("demo", ["demo", 5, [1, 2], pd.DataFrame({"orders": [1]})])
def test_a_demo_of_another_shape_asks_for_the_demo_cell(demo):
    fb = not_yet(check_changelog_rows(5, demo), "run the demo cell first")
    assert "changelog_demo(streams)" in fb.hints[0]


class _Demo(PatternStreams):
    """Streams whose preview returns `frame` (or raises `error`) and records how it was called."""

    frame: pd.DataFrame | None = None
    error: Exception | None = None

    def preview(self, sql, name="pattern", limit=200_000, timeout_s=180):
        self.called = (sql, name, timeout_s)
        if self.error is not None:
            raise self.error
        return self.frame


def test_the_changelog_demo_returns_the_previews_changelog(listening):
    from labkit.exercises import changelog_demo

    streams = _streams(listening, _Demo)
    streams.frame = DEMO
    got = changelog_demo(streams)
    assert got is DEMO
    assert streams.called == ("SELECT COUNT(*) AS orders, SUM(amount) AS revenue FROM orders", "total", 180)
    changelog_demo(streams, timeout=30)
    assert streams.called[2] == 30
    predictions.record("changelog_rows", 5)
    passed(check_changelog_rows(5, got))


@pytest.mark.parametrize(
    ("error", "words"),
    [
        (PreviewTimeout("the preview of lab10-total returned no row within 180s.", "run it again"), "did not finish"),
        (
            JobError("your SQL for lab10-total failed: TimeoutException: Timed out waiting for a node assignment."),
            "Kafka",
        ),
        (JobError("your SQL for lab10-total failed: OutOfMemoryError: Java heap space"), "ran out of memory"),
        (JobError("your SQL for lab10-total failed: Py4JNetworkError: Answer from Java side is empty"), "Java"),
        (JobError("your SQL for lab10-total failed: TableException: something the lab's query hit"), "lab's own"),
        (RuntimeError("anything else"), "lab's own"),
    ],
)
def test_the_changelog_demo_shows_a_labs_failure_and_returns_none(listening, capsys, error, words):
    from labkit.exercises import changelog_demo

    streams = _streams(listening, _Demo)
    streams.error = error
    assert changelog_demo(streams) is None  # never raises
    shown = capsys.readouterr().out
    assert "the lab, not your answer" in shown and words in shown and "not yet" not in shown, shown
    is_lab(check_changelog_rows(5, None), "the demo did not run")


def test_a_changelog_demo_whose_preview_returned_no_changelog_says_so(listening, capsys):
    from labkit.exercises import changelog_demo

    streams = _streams(listening, _Demo)
    for frame in (None, pd.DataFrame({"orders": [1]})):
        streams.frame = frame
        assert changelog_demo(streams) is None
        assert "returned no changelog" in capsys.readouterr().out


def test_the_changelog_demo_with_kafka_away_or_no_streams_says_so(tmp_path, monkeypatch, closed_port, capsys):
    from labkit.exercises import changelog_demo

    s = _settings(tmp_path, monkeypatch, closed_port)
    assert changelog_demo(_streams(s, _Demo)) is None
    shown = capsys.readouterr().out
    assert "Kafka" in shown and "connection refused" in shown and "run this cell again" in shown.lower(), shown
    for streams in (None, "streams", PatternStreams("lab10_clicks", "lab10_orders", s)):
        assert changelog_demo(streams) is None
        shown = capsys.readouterr().out
        assert "the lab, not your answer" in shown and "setup cell" in shown, shown


def test_a_changelog_demo_cut_short_returns_its_rows_and_says_so(listening, capsys):
    from labkit.exercises import changelog_demo

    streams = _streams(listening, _Demo)
    streams.frame = DEMO.iloc[:3].copy()
    streams.frame.attrs["partial"] = True
    got = changelog_demo(streams, timeout=20)
    assert got is streams.frame and got.attrs["partial"]
    assert "stopped after 20 s with part of the changelog (3 rows)" in capsys.readouterr().out
    is_lab(check_changelog_rows(5, got), "stopped before it had read every order")


def test_the_notebooks_demo_runs_the_demos_query():
    """Cell 40 runs `changelog_demo(streams)`, or (before it did) previews the very query the demo runs."""
    nb = json.loads((Path(__file__).resolve().parents[2] / "notebooks" / "10_sql_patterns.ipynb").read_text())
    cells = ["".join(c["source"]) for c in nb["cells"] if c["cell_type"] == "code"]
    demo = [c for c in cells if re.search(r"^demo = ", c, re.M)]
    assert len(demo) == 1, demo
    assert "changelog_demo(streams" in demo[0] or P.CHANGELOG_DEMO_SQL in demo[0], demo[0]


# ---- a join bounded on event_timestamp: a regular join, in milliseconds -------------------------------------------
PLAIN_JOIN = """SELECT c.session_id, c.event_timestamp AS checkout_ms, o.order_id, o.event_timestamp AS order_ms
FROM clicks AS c
LEFT JOIN orders AS o ON o.session_id = c.session_id
  AND o.event_timestamp BETWEEN c.event_timestamp AND c.event_timestamp + {bound}
WHERE c.url = '/checkout'"""


def test_the_join_bound_is_read_from_the_condition():
    assert P._time_bound(str(SOLUTIONS["checkout_conversion"])) == "rowtime"
    assert P._time_bound(PLAIN_JOIN.format(bound="600000")) == "plain"
    starter = "SELECT c.session_id, c.event_timestamp AS checkout_ms, o.order_id FROM clicks AS c JOIN orders AS o "
    assert P._time_bound(starter + "ON o.session_id = c.session_id WHERE c.url = '/checkout'") is None
    commented = starter + "ON o.session_id = c.session_id -- o.rowtime BETWEEN c.rowtime AND ...\n"
    assert P._time_bound(commented + "AND o.event_timestamp <= c.event_timestamp + 600000") == "plain"
    assert P._time_bound(None) is None and P._time_bound(42) is None


def test_a_join_bounded_on_event_timestamp_is_told_to_bound_the_time_attributes():
    # Flink runs it as a regular LEFT JOIN: a checkout without an order at once, then -D/+I when its order comes
    regular = result(
        JOIN_COLS,
        ("s2", 1_000, None, None),
        ("s4", 0, None, None),
        ("s4", 0, None, None),
        ("s4", 0, "o4", 150_000),
        op=["+I", "+I", "-D", "+I"],
    )
    sql = PLAIN_JOIN.format(bound="600000")
    fb = not_yet(
        P.grade_checkout_conversion(regular, JOIN_CLICKS, JOIN_ORDERS, W, sql=sql),
        "retracts rows (1 -U/+U/-D rows)",
        "event_timestamp, a plain BIGINT",
        "time attributes (rowtime)",
        "regular join",
        "keeps every checkout and order in state",
        "milliseconds",
    )
    assert "without a time bound" not in fb.message  # it has one: on the wrong columns
    assert "600,000 milliseconds" not in fb.message  # its number is right: ten minutes in milliseconds
    assert fb.hints[0].startswith("bound the tables' time attributes instead: the order's rowtime between")
    # the same rows without the SQL: the rows alone say a regular join (no time bound)
    not_yet(P.grade_checkout_conversion(regular, JOIN_CLICKS, JOIN_ORDERS, W), "without a time bound")


def test_a_plain_bound_in_seconds_names_the_units_and_an_append_only_one_is_still_a_regular_join():
    inner = [r for r in SOLUTION_JOIN if r[2]]
    sql = PLAIN_JOIN.format(bound="600").replace("LEFT JOIN", "JOIN")
    fb = not_yet(P.grade_checkout_conversion(result(JOIN_COLS, *inner), JOIN_CLICKS, JOIN_ORDERS, W, sql=sql))
    assert "your bound adds 600 to it: 600 milliseconds (0.01 min), while ten minutes are 600,000" in fb.message
    assert "regular join" in fb.message and "retracts" not in fb.message
    not_yet(P.grade_checkout_conversion(result(JOIN_COLS), JOIN_CLICKS, JOIN_ORDERS, W, sql=sql), "event_timestamp")
    # the solution's rows with the solution's SQL pass; a bound on rowtime that still retracts is not "no bound"
    passed(
        P.grade_checkout_conversion(
            result(JOIN_COLS, *SOLUTION_JOIN), JOIN_CLICKS, JOIN_ORDERS, W, sql=str(SOLUTIONS["checkout_conversion"])
        )
    )
    retracting = result(JOIN_COLS, ("s2", 1_000, None, None), ("s2", 1_000, None, None), op=["+I", "-D"])
    fb = not_yet(
        P.grade_checkout_conversion(retracting, JOIN_CLICKS, JOIN_ORDERS, W, sql=str(SOLUTIONS["checkout_conversion"])),
        "did not take your bound as an interval join's",
    )
    assert "without a time bound" not in fb.message


def test_flink_refusing_bigint_plus_interval_is_told_as_the_bound_on_the_wrong_columns(listening):
    streams = _streams(listening, _Failing)
    sql = PLAIN_JOIN.format(bound="INTERVAL '10' MINUTE")
    streams.error = JobError(
        "your SQL for lab10-conversion failed: SQL validation failed. From line 4, column 46 to line 4, column 86: "
        "Cannot apply '+' to arguments of type '<BIGINT> + <INTERVAL MINUTE>'. Supported form(s): "
        "'<NUMERIC> + <NUMERIC>'"
    )
    fb = not_yet(check_checkout_conversion(sql, streams), "Flink refused it", "Cannot apply '+'", "rowtime")
    assert "BIGINT + INTERVAL is a type error" in fb.message and fb.exercise == "checkout_conversion"
    # the lab failing under the same SQL is still the lab's
    streams.error = JobError(
        "your SQL for lab10-conversion failed: TimeoutException: Timed out waiting for a node "
        "assignment. Call: describeTopics"
    )
    is_lab(check_checkout_conversion(sql, streams), "Kafka")
    # a SQL error that is not about the bound keeps Flink's own message
    streams.error = JobError(
        "your SQL for lab10-conversion failed: SQL validation failed. From line 1, column 8 to "
        "line 1, column 14: Column 'no_such' not found in any table"
    )
    fb = not_yet(check_checkout_conversion(str(SOLUTIONS["checkout_conversion"]), streams), "no_such", "line 1")
    assert "event_timestamp, a plain BIGINT" not in fb.message


# ---- a preview's failures: the lab's (with what to do), or the answer's (with Flink's message) --------------------
LAB_FAILURES = [
    # Kafka unreachable
    ("TimeoutException: Timed out waiting for a node assignment. Call: describeTopics", "failed while reading Kafka"),
    ("TimeoutException: Timed out waiting to send the call. Call: listOffsets(api=LIST_OFFSETS)", "reading Kafka"),
    ("KafkaException: Failed to construct kafka consumer", "failed while reading Kafka"),
    (
        "Connection to node -1 (localhost/127.0.0.1:9092) could not be established. Broker may not be available.",
        "failed while reading Kafka",
    ),
    # the topic missing
    ("UnknownTopicOrPartitionException: This server does not host this topic-partition.", "no such Kafka topic"),
    ("RuntimeException: Failed to get metadata for topics [lab10_clicks].", "no such Kafka topic"),
    ("TimeoutException: Topic lab10_clicks not present in metadata after 60000 ms.", "no such Kafka topic"),
    # PyFlink's py4j gateway
    ("Exception: Java gateway process exited before sending its port number", "py4j gateway"),
    ("Py4JNetworkError: Answer from Java side is empty", "py4j gateway"),
    ("Py4JNetworkError: An error occurred while trying to connect to the Java server (127.0.0.1:40475)", "py4j"),
    ("RuntimeException: Failed to create stage bundle factory!", "py4j gateway"),
    # out of memory
    ("OutOfMemoryError: Java heap space", "ran out of memory"),
    ("OutOfMemoryError: Metaspace", "ran out of memory"),
    ("IOException: Insufficient number of network buffers: required 65, but only 12 available.", "out of memory"),
    (
        "its process was killed by SIGKILL (SIGKILL: most often the machine ran out of memory); its last output: x",
        "ran out of memory",
    ),
    # the JVM crashed
    (
        "A fatal error has been detected by the Java Runtime Environment (then: Py4JNetworkError: Error while "
        "receiving)",
        "crashed",
    ),
    ("its process was killed by SIGSEGV; its last output: no output", "crashed"),
    ("Error occurred during initialization of VM: Could not reserve enough space for object heap", "crashed"),
    # Flink short of resources, and timeouts
    ("NoResourceAvailableException: Could not acquire the minimum required resources.", "short of resources"),
    ("IOException: No space left on device", "short of resources"),
    ("TimeoutException: Heartbeat of TaskManager with id 1234 timed out.", "did not finish in time"),
]


@pytest.mark.parametrize(("cause", "words"), LAB_FAILURES, ids=[c[:40] for c, _ in LAB_FAILURES])
def test_a_previews_lab_failure_is_the_labs_with_what_to_do(cause, words):
    @checker("t")
    def grade():
        raise JobError(f"your SQL for lab10-dedup failed: {cause}", "fix the SQL")

    fb = is_lab(grade(), words)
    assert "your SQL" not in fb.message  # it was not the SQL
    assert "then run this cell again" in fb.message or "this cell again" in fb.message, fb.message


SQL_ERRORS = [
    ('SqlParserException: SQL parse failed. Encountered "FORM" at line 3, column 1.', "line 3, column 1"),
    (
        "SQL validation failed. From line 1, column 8 to line 1, column 16: Column 'timed_out' not found in any table",
        "timed_out",
    ),  # words a lab failure uses, in a SQL error: still the answer's
    (
        "ValidationException: SQL validation failed. From line 2, column 6 to line 2, column 10: Object 'click' not "
        "found",
        "Object 'click' not found",
    ),
    (
        "SQL validation failed. From line 3, column 13 to line 3, column 52: No match found for function signature "
        "TUMBL(<TABLE>, <COLUMN_LIST>, <INTERVAL MINUTE>)",
        "TUMBL",
    ),
    (
        "SQL validation failed. From line 4, column 6 to line 4, column 40: Cannot apply '+' to arguments of type "
        "'<BIGINT> + <INTERVAL MINUTE>'",
        "Cannot apply '+'",
    ),
    ("TableException: Rowtime attributes must not be in the input rows of a regular join.", "regular join"),
    (
        'SqlParserException: SQL parse failed. Encountered "<EOF>" at line 1, column 30. Was expecting: Heap space ...',
        "Encountered",
    ),
]


@pytest.mark.parametrize(("cause", "words"), SQL_ERRORS, ids=[c[:40] for c, _ in SQL_ERRORS])
def test_a_sql_error_stays_the_answers_with_flinks_message(cause, words):
    @checker("t")
    def grade():
        raise JobError(f"your SQL for lab10-dedup failed: {cause}", "fix the SQL at the line and column shown")

    fb = not_yet(grade(), "could not be graded", words)
    assert "JobError" in fb.message and fb.hints[0] == "fix the SQL at the line and column shown"


def test_the_kernels_own_memory_and_disk_errors_are_the_labs():
    import errno

    @checker("t")
    def memory():
        raise MemoryError()

    @checker("t")
    def fork():
        raise OSError(errno.ENOMEM, "Cannot allocate memory")

    @checker("t")
    def disk():
        raise OSError(errno.ENOSPC, "No space left on device")

    assert "Free memory" in is_lab(memory(), "ran out of memory").message
    is_lab(fork(), "ran out of memory")
    is_lab(disk(), "short of resources")


def _completed(returncode: int, stdout: str = "", stderr: str = ""):
    import subprocess

    return subprocess.CompletedProcess(["runner.py"], returncode, stdout, stderr)


def test_a_crashed_or_killed_preview_run_says_so_and_a_sql_error_stays_the_sql(tmp_path):
    from labkit.exercises.feedback import feedback_for
    from labkit.jobs.custom import _preview_rows

    def failure(r) -> JobError:
        with pytest.raises(JobError) as e:
            _preview_rows(r, "lab10-dedup", 180, "run it again")
        return e.value

    crash = _completed(
        1,
        'LABKIT_COLUMNS ["op", "url"]\n#\n# A fatal error has been detected by the Java Runtime Environment:\n#\n'
        "#  SIGSEGV (0xb) at pc=0x00007f, pid=1234\n",
        'Traceback (most recent call last):\n  File "runner.py", line 1\npy4j.protocol.Py4JNetworkError: Answer from '
        "Java side is empty\n",
    )
    e = failure(crash)
    assert e.message.startswith("the preview of lab10-dedup failed: A fatal error has been detected"), e.message
    assert "Py4JNetworkError" in e.message and "not your SQL" in e.hint
    is_lab(feedback_for(e), "crashed")
    oom = _completed(1, 'Exception in thread "main" java.lang.OutOfMemoryError: Java heap space\n\tat a.b(C.java:1)\n')
    is_lab(feedback_for(failure(oom)), "ran out of memory", "Java heap space")
    killed = failure(_completed(-9, 'LABKIT_COLUMNS ["op"]\n'))
    assert "killed by SIGKILL" in killed.message
    is_lab(feedback_for(killed), "ran out of memory", "Free memory")
    is_lab(feedback_for(failure(_completed(-11))), "crashed", "SIGSEGV")
    sql = failure(
        _completed(
            1,
            "",
            "org.apache.flink.table.api.ValidationException: SQL validation failed. From line "
            "1, column 8 to line 1, column 14: Column 'no_such' not found in any table\n",
        )
    )
    assert sql.message.startswith("your SQL for lab10-dedup failed: SQL validation failed"), sql.message
    not_yet(feedback_for(sql), "no_such")


# ---- previews run without checkpoints; the lab's jobs keep theirs ------------------------------------------------------
def test_a_preview_drops_the_jobs_checkpoints_and_restarts_and_the_pipeline_keeps_them(tmp_path, monkeypatch):
    import subprocess

    from labkit import jobs
    from labkit.jobs import custom
    from labkit.stack import provision

    s = load(mode="docker", home=tmp_path)
    job = jobs.base_spec(s, "clickstream-metrics")["config"]
    assert job["execution.checkpointing.interval"] == "10 s" and job["execution.checkpointing.mode"] == "EXACTLY_ONCE"
    spec, _ = jobs.pipeline_spec(s)
    assert spec["config"]["execution.checkpointing.interval"] == "10 s"  # the lab's pipeline keeps its checkpoints

    written = {}

    def run(cmd, **kw):
        written.update(json.loads(Path(cmd[-1]).read_text()))
        return subprocess.CompletedProcess(cmd, 0, 'LABKIT_COLUMNS ["op", "n"]\nLABKIT_ROW {"op": "+I", "n": 1}\n', "")

    monkeypatch.setattr(provision, "provision_client", lambda: None)
    monkeypatch.setattr(provision.flink, "connector_jar", lambda: tmp_path / "kafka.jar")
    monkeypatch.setattr(provision.udf, "jar_path", lambda: tmp_path / "udf.jar")
    monkeypatch.setattr(custom.subprocess, "run", run)
    monkeypatch.setenv("LABKIT_WARM_CLIENT", "0")  # the one-shot runner: its spec is what this test reads
    got = PatternStreams("lab10_clicks", "lab10_orders", s).preview("SELECT COUNT(*) AS n FROM orders", name="total")
    assert got.to_dict("records") == [{"op": "+I", "n": 1}]
    config = written["config"]
    assert not [k for k in config if k.startswith("execution.checkpointing.")], config
    assert config["restart-strategy.type"] == "none"
    assert not [k for k in config if k.startswith("restart-strategy.") and k != "restart-strategy.type"]
    assert config["pipeline.name"] == job["pipeline.name"].replace("clickstream-metrics", "preview-lab10-total")


# ---- row kinds have colours of their own ---------------------------------------------------------------------------
def test_row_kinds_have_their_own_colours_not_the_status_classes():
    from labkit import plots

    assert set(plots.ROW_KIND_COLORS) == {"+I", "-U", "+U", "-D"}
    taken = {*plots.FAMILY_COLORS.values(), *plots.STATUS_COLORS.values(), *plots.SERIES_COLORS.values()}
    assert not {c.lower() for c in plots.ROW_KIND_COLORS.values()} & {c.lower() for c in taken}
    assert len(set(plots.ROW_KIND_COLORS.values())) == 4
    fig = plots.changelog_steps(DEMO, "orders")
    shown = {t.name: t.marker.color for t in fig.data if t.mode == "markers"}
    assert shown == {k: plots.ROW_KIND_COLORS[k] for k in ("+I", "-U", "+U")}


def test_retry_gaps_and_order_delays_take_neutral_colours_not_status_ones():
    from labkit import plots

    taken = {*plots.FAMILY_COLORS.values(), *plots.STATUS_COLORS.values(), *plots.SERIES_COLORS.values()}
    taken |= set(plots.ROW_KIND_COLORS.values())
    taken = {c.lower() for c in taken}
    gaps = plots.retry_gaps(pd.Series([1, 2, 2, 5]))
    delays = plots.order_delays(pd.Series([0.5, 1.0, 12.0]))
    bars = [t.marker.color for fig in (gaps, delays) for t in fig.data]
    assert bars == [plots.NEUTRAL_BAR] * 2 and plots.NEUTRAL_BAR.lower() not in taken
    (bound,) = delays.layout.shapes
    assert (bound.line.color, bound.line.dash) == ("black", "dash")


# ---- every checker, wrong answers of every shape: a specific "not yet", never an exception --------------------------
class _Returning(PatternStreams):
    """Streams whose preview returns `frame`, as the attendee's query would have it (or raises `error`)."""

    frame: pd.DataFrame | None = None
    error: Exception | None = None

    def preview(self, sql, name="pattern", limit=200_000, timeout_s=180):
        if self.error is not None:
            raise self.error
        return self.frame


def _topn_starter():
    return result(
        ["window_start", "window_end", "url", "clicks"],
        *[(0, 60_000, u, n) for u, n in (("/a", 4), ("/b", 3), ("/c", 2), ("/d", 2), ("/e", 1))],
        (60_000, 120_000, "/x", 2),
        (60_000, 120_000, "/y", 1),
    )


# per checker: its clicks, then (what the answer's preview returns, words of the feedback) for the starter, a query
# returning the wrong columns, and a right-looking but subtly wrong one
SWEEP = {
    "dedup_events": (
        DEDUP_CLICKS,
        [
            (
                result(DEDUP_COLS, *[(json.loads(v)["event_id"], "s", "/", 0) for v in DEDUP_CLICKS["value"]]),
                "a duplicate kept",
            ),
            (result(["session_id", "url"], ("s1", "/")), "select event_id"),
            (result(DEDUP_COLS, ("a", "s1", "/", 1_000), ("c", "s2", "/search", 3_000)), "are missing"),
        ],
    ),
    "top_urls_per_minute": (
        _topn_clicks(),
        [
            (_topn_starter(), "5 rows, expected 3"),
            (result(["url", "clicks"], ("/a", 4)), "select window_start"),
            (
                _topn([(0, "/e", 1), (0, "/c", 2), (0, "/d", 2), (60_000, "/y", 1), (60_000, "/x", 2)]),
                "not among the top 3",
            ),
        ],
    ),
    "session_lengths": (
        SESSION_CLICKS,
        [
            (result(["session_id", "clicks"], ("s1", 1), ("s1", 1), ("s1", 2), op=["+I", "-U", "+U"]), "updates"),
            (result(["session_id", "clicks"], ("s1", 4), ("s2", 1)), "select window_start"),
            (result(SESSION_COLS, *[(s, a, b, c, n + 60) for s, a, b, c, n in SOLUTION_SESSIONS]), "includes the gap"),
        ],
    ),
    "checkout_conversion": (
        JOIN_CLICKS,
        [
            (result(JOIN_COLS, *[r for r in SOLUTION_JOIN if r[2]], ("s2", 1_000, "o2", 601_001)), "LEFT JOIN"),
            (result(["checkout_ms", "order_id"], (0, "o1")), "select session_id"),
            (
                result(JOIN_COLS, *[r if r[0] != "s2" else ("s2", 1_000, "o2", 601_001) for r in SOLUTION_JOIN]),
                "a late order joined",
            ),
        ],
    ),
    "url_changelog": (
        CHANGELOG_CLICKS,
        [
            (result(["window_end", "url", "cnt"], (60_000, "/a", 3), (60_000, "/b", 2)), "only inserts rows"),
            (result(["cnt"], (1,)), "select url"),
            (
                pd.concat(
                    [
                        result(["url", "cnt"], ("/a", 1), ("/b", 1), ("/c", 1)),
                        result(["url", "cnt"], ("/a", 1), ("/a", 1), op=["-U", "+U"]),
                    ]
                ),
                "end with another count",
            ),
        ],
    ),
    "checkout_funnel": (
        FUNNEL_CLICKS,
        [
            (result(FUNNEL_COLS, ("s7", 2)), "a funnel step missing"),  # the starter's PATTERN (P K)
            (result(["checkout_ms"], (3,)), "select session_id"),
            (result(FUNNEL_COLS, *SOLUTION_FUNNEL, ("s2", 4)), "other pages between"),
        ],
    ),
}


@pytest.mark.parametrize("name", sorted(CHECKS))
def test_every_checker_gives_a_specific_not_yet_for_every_wrong_shape(name, listening):
    check = CHECKS[name]
    clicks, answers = SWEEP[name]
    streams = _streams(listening, _Returning)
    streams.clicks = clicks
    for sql, words in (
        ("", "empty"),
        ("   \n", "empty"),
        ("-- ✍️ write it here", "empty"),
        (None, "SQL text"),
        (42, "not a int"),
        (["SELECT 1"], "not a list"),
        (pd.DataFrame({"x": [1]}), "not a DataFrame"),
    ):
        assert not_yet(check(sql, streams), words).exercise == name
    streams.error = JobError(
        f'your SQL for lab10-{name} failed: SQL parse failed. Encountered "FORM" at line 2, column 1.',
        "fix the SQL at the line and column shown, then preview again",
    )
    fb = not_yet(check("SELECT *\nFORM clicks", streams), 'Encountered "FORM" at line 2, column 1')
    assert fb.hints[0] == "fix the SQL at the line and column shown, then preview again"
    streams.error = None
    for frame, words in answers:  # the starter, the wrong columns, the subtly wrong
        streams.frame = frame
        fb = not_yet(check(str(SOLUTIONS[name]), streams), words)
        assert fb.exercise == name and fb.message
    streams.frame = "not a frame"  # a preview of another shape is graded as the answer's, never raised
    not_yet(check(str(SOLUTIONS[name]), streams), "could not be graded")


# ---- the feedback guides, it never hands over the answer -----------------------------------------------------------
def _squash(text: object) -> str:
    """Lower case without whitespace: `ORDER  BY proctime` and `order by\nproctime` read alike."""
    return re.sub(r"\s+", "", str(text)).lower()


def _grab(sql: str, rx: str, flags: int = 0) -> str:
    """The first group of `rx` in `sql` (case-insensitive; ^ and $ at each line)."""
    m = re.search(rx, sql, re.I | re.M | flags)
    assert m, f"{rx!r} not in the solution:\n{sql}"
    return m.group(1).strip()


def _row_number_clauses(sql: str) -> list[str]:
    """The ROW_NUMBER()'s OVER (...) whole, its PARTITION BY, its ORDER BY (ASC, the default, left off) and the
    WHERE on the row number."""
    over = _grab(sql, r"ROW_NUMBER\(\)\s+OVER\s*\(([^)]*)\)")
    return [
        over,
        _grab(over, r"(PARTITION BY .+?)\s+ORDER BY"),
        re.sub(r"\s+ASC$", "", _grab(over, r"(ORDER BY .+)$"), flags=re.I),
        _grab(sql, r"^\s*WHERE\s+(.+)$"),
    ]


def decisive_clauses(name: str) -> list[str]:
    """The clauses of notebook 10's solution of `name` that decide it (from solutions.py, so they follow it): what
    no "not yet" may write out, since with them the exercise is done. Clauses the starter already has (the TUMBLE
    of exercise 2, the funnel's PARTITION BY) are the attendee's already and are not in it."""
    sql = str(SOLUTIONS[name])
    if name in ("dedup_events", "top_urls_per_minute"):
        clauses = _row_number_clauses(sql)
    elif name == "session_lengths":
        call = _grab(sql, r"(SESSION\(TABLE .*?INTERVAL '[^']*' \w+\))")
        clauses = [
            call,
            _grab(call, r"(PARTITION BY \w+)"),
            _grab(call, r"(INTERVAL '[^']*' \w+)"),
            _grab(sql, r"(TIMESTAMPDIFF\(.*?)\s+AS length_s"),
            _grab(sql, r"(TIMESTAMPDIFF\([^)]*\))"),
            _grab(sql, r"^(GROUP BY .+)$"),
        ]
    elif name == "checkout_conversion":
        bound = _grab(sql, r"^\s*AND\s+(\S+\s+BETWEEN\s+.+)$")
        clauses = [
            bound,
            _grab(bound, r"(BETWEEN .+)$"),
            _grab(bound, r"AND\s+(.+)$"),  # the upper bound
            _grab(bound, r"(INTERVAL '[^']*' \w+)"),
            _grab(sql, r"(LEFT JOIN \w+)"),
        ]
    elif name == "url_changelog":
        clauses = [_grab(sql, r"^(GROUP BY .+)$"), _grab(sql, r"^(FROM .+?GROUP BY .+)$", re.S)]
    elif name == "checkout_funnel":
        defines = re.findall(r"^\s*(\w+ AS .+?),?$", _grab(sql, r"DEFINE(.*?)\)\s*\Z", re.S), re.M)
        assert len(defines) == 3, defines
        unqualified = [re.sub(r"^\w+ AS \w+\.", "", d) for d in defines]  # `C AS C.url LIKE ...` → `url LIKE ...`
        clauses = [_grab(sql, r"(PATTERN\s*\(.*?\))"), _grab(sql, r"PATTERN\s*\((.*?)\)"), *defines, *unqualified]
    elif name == "changelog_rows":
        clauses = [sql]
    else:
        raise AssertionError(name)
    return [sql, *clauses]


def test_the_decisive_clauses_are_read_from_the_solutions():
    assert {_squash(c) for c in decisive_clauses("dedup_events")[1:]} == {
        _squash("PARTITION BY event_id ORDER BY proctime ASC"),
        "partitionbyevent_id",
        "orderbyproctime",
        "row_num=1",
    }
    assert "rownum<=3" in map(_squash, decisive_clauses("top_urls_per_minute"))
    assert "orderbyclicksdesc" in map(_squash, decisive_clauses("top_urls_per_minute"))
    assert "interval'1'minute" in map(_squash, decisive_clauses("session_lengths"))
    assert "c.rowtime+interval'10'minute" in map(_squash, decisive_clauses("checkout_conversion"))
    assert "groupbyurl" in map(_squash, decisive_clauses("url_changelog"))
    funnel = list(map(_squash, decisive_clauses("checkout_funnel")))
    assert "pattern(p+c+k)" in funnel and "urllike'/cart%'" in funnel and "casc.urllike'/cart%'" in funnel


def _wrong_answers() -> dict:
    """Per checker: (clicks, orders, [(the answer's SQL, what its preview returns, or the error it raises)]), the
    wrong answers of every shape the sections above grade: the starter, wrong columns, an empty result, an updating
    result where an append-only one was asked (or the reverse), each kind of subtly wrong rows."""
    sql = "SELECT * FROM clicks  -- an attempt"
    dedup_copies = [(json.loads(v)["event_id"], "s", "/", 0) for v in DEDUP_CLICKS["value"]]
    five = SOLUTION_TOPN[:3] + [(0, "/d", 2), (0, "/e", 1)] + SOLUTION_TOPN[3:]
    refused = JobError(
        "your SQL for lab10-conversion failed: SQL validation failed. From line 4, column 46 to line 4, column 86: "
        "Cannot apply '+' to arguments of type '<BIGINT> + <INTERVAL MINUTE>'. Supported form(s): "
        "'<NUMERIC> + <NUMERIC>'"
    )
    regular = result(
        JOIN_COLS, ("s2", 1_000, None, None), ("s4", 0, None, None), ("s4", 0, None, None), ("s4", 0, "o4", 150_000),
        op=["+I", "+I", "-D", "+I"],
    )  # fmt: skip
    cl = records(("s1", "/checkout", 0, "k1"), ("s1", "/checkout", 700_000, "k2"), ("s2", "/checkout", 0, "k3"))
    od = orders(("o1", "s1", 300_000), ("o2", "s2", 900_000))
    many = records(*[(f"s{i}", u, t) for i in range(12) for t, u in enumerate(["/product/a", "/cart", "/checkout"])])
    return {
        "dedup_events": (
            DEDUP_CLICKS,
            JOIN_ORDERS,
            [
                (sql, result(DEDUP_COLS, *dedup_copies)),  # the starter: every copy
                (sql, result([*DEDUP_COLS, "row_num"], *[(*r, 1 + i % 2) for i, r in enumerate(dedup_copies)])),
                (sql, result(DEDUP_COLS)),  # no rows
                (sql, result(["url"], ("/",))),
                (
                    sql,
                    result(
                        DEDUP_COLS,
                        ("a", "s1", "/", 1_000),
                        ("b", "s1", "/cart", 2_000),
                        ("a", "s1", "/", 1_000),
                        ("a", "s1", "/", 1_000),
                        ("c", "s2", "/search", 3_000),
                        op=["+I", "+I", "-U", "+U", "+I"],
                    ),
                ),  # the last copy kept
                (sql, result(DEDUP_COLS, ("a", "s1", "/", 1_000), ("c", "s2", "/search", 3_000))),  # per session
                (sql, result(DEDUP_COLS, ("a", "s1", "/", 1_000), ("b", "s1", "/cart", 2_000), ("zz", "s9", "/", 0))),
            ],
        ),
        "top_urls_per_minute": (
            _topn_clicks(),
            JOIN_ORDERS,
            [
                (sql, _topn_starter()),
                (sql, _topn(five)),
                (sql, _topn([(0, "/e", 1), (0, "/c", 2), (0, "/d", 2), (60_000, "/y", 1), (60_000, "/x", 2)])),
                (sql, _topn([(w, u, c + 1) for w, u, c in SOLUTION_TOPN])),  # counts off
                (sql, _topn([])),
                (
                    sql,
                    result(TOPN_COLS, (0, 10_000, "/a", 4, 1), (0, 10_000, "/b", 3, 2), (60_000, 70_000, "/x", 1, 1)),
                ),
                (
                    sql,
                    result(
                        ["url", "clicks", "rownum"], ("/a", 1, 1), ("/a", 1, 1), ("/a", 2, 1), op=["+I", "-U", "+U"]
                    ),
                ),
                (sql, result(["url", "clicks"], ("/a", 4))),
                (sql, result(["window_start", "window_end", "url"], (0, 60_000, "/a"))),
            ],
        ),
        "session_lengths": (
            SESSION_CLICKS,
            JOIN_ORDERS,
            [
                (sql, result(["session_id", "clicks"], ("s1", 1), ("s1", 1), ("s1", 2), op=["+I", "-U", "+U"])),
                (sql, result(SESSION_COLS)),
                (sql, result(["session_id", "clicks"], ("s1", 4), ("s2", 1))),
                (sql, result(SESSION_COLS[:3], *[r[:3] for r in SOLUTION_SESSIONS])),  # no count
                (sql, result(SESSION_COLS, ("s1", 0, 500_000, 4, 140), ("s2", 5_000, 305_000, 1, 0))),  # 5 min gap
                (
                    sql,
                    result(
                        SESSION_COLS,
                        ("s1", 0, 20_000, 2, 10),
                        ("s1", 40_000, 50_000, 1, 0),
                        ("s1", 200_000, 210_000, 1, 0),
                        ("s2", 5_000, 15_000, 1, 0),
                    ),
                ),  # 10 s gap
                (
                    sql,
                    result(
                        SESSION_COLS, ("s1", 0, 70_000, 2, 10), ("s1", 40_000, 100_000, 1, 0), *SOLUTION_SESSIONS[1:]
                    ),
                ),  # a session split
                (
                    sql,
                    result(SESSION_COLS, *[(s, a, b, c + 1, n) for s, a, b, c, n in SOLUTION_SESSIONS]),
                ),  # counts off
                (sql, result(["url", *SESSION_COLS], *[(u, *r) for r in SOLUTION_SESSIONS for u in ("/a", "/b")])),
                (sql, result(SESSION_COLS[:4], *[r[:4] for r in SOLUTION_SESSIONS])),  # no length
                (sql, result(SESSION_COLS, *[(s, a, b, c, n + 60) for s, a, b, c, n in SOLUTION_SESSIONS])),
                (sql, result(SESSION_COLS, *[(s, a, b, c, n * 1000 + 7) for s, a, b, c, n in SOLUTION_SESSIONS])),
            ],
        ),
        "checkout_conversion": (
            JOIN_CLICKS,
            JOIN_ORDERS,
            [
                (sql, result(JOIN_COLS, *[r for r in SOLUTION_JOIN if r[2]], ("s2", 1_000, "o2", 601_001))),  # inner
                (
                    _bound_in_where(str(SOLUTIONS["checkout_conversion"])),
                    result(JOIN_COLS, *[r for r in SOLUTION_JOIN if r[2]]),
                ),
                (sql, result(JOIN_COLS)),
                (sql, result(["checkout_ms", "order_id"], (0, "o1"))),
                (sql, result(["session_id", "order_id"], ("s1", "o1"))),
                (sql, regular),  # no time bound
                (str(SOLUTIONS["checkout_conversion"]).replace("BETWEEN", "> c.rowtime OR o.rowtime BETWEEN"), regular),
                (PLAIN_JOIN.format(bound="600000"), regular),
                (
                    PLAIN_JOIN.format(bound="600").replace("LEFT JOIN", "JOIN"),
                    result(JOIN_COLS, *[r for r in SOLUTION_JOIN if r[2]]),
                ),
                (PLAIN_JOIN.format(bound="INTERVAL '10' MINUTE"), refused),
                (sql, result(JOIN_COLS, *[r if r[0] != "s2" else ("s2", 1_000, "o2", 601_001) for r in SOLUTION_JOIN])),
                (sql, result(JOIN_COLS, *[(s, t, None, None) for s, t, _, _ in SOLUTION_JOIN])),  # backwards
                (sql, result(JOIN_COLS, *SOLUTION_JOIN[:-1], ("s2", 1_000, "o0", 500))),  # an order before
                (sql, result(JOIN_COLS, ("s3", 50_000, None, None), ("s9", 5, None, None), ("s1", 0, "o1", 600_000))),
                (
                    sql,
                    result(
                        JOIN_COLS, ("s1", 0, "o1", 300_000), ("s1", 700_000, "o1", 300_000), ("s2", 0, "o2", 900_000)
                    ),
                    cl,
                    od,
                ),  # no bound at all: orders before and long after
            ],
        ),
        "url_changelog": (
            CHANGELOG_CLICKS,
            JOIN_ORDERS,
            [
                (sql, result(["window_end", "url", "cnt"], (60_000, "/a", 3), (60_000, "/b", 2), (60_000, "/c", 1))),
                (sql, result(["url", "cnt"], ("/a", 3), ("/b", 2), ("/c", 1))),  # insert-only, no window
                (sql, result(["url", "cnt"])),
                (sql, result(["cnt"], (1,))),
                (sql, result(["url"], ("/a",))),
                (
                    sql,
                    pd.concat(
                        [
                            result(["url", "cnt"], ("/a", 1), ("/b", 1), ("/c", 1)),
                            result(["url", "cnt"], ("/a", 1), ("/a", 1), op=["-U", "+U"]),
                        ]
                    ),
                ),
                (sql, result(["url", "cnt"], ("/a", 2), ("/a", 3), op=["-U", "+U"])),  # does not add up
            ],
        ),
        "checkout_funnel": (
            FUNNEL_CLICKS,
            JOIN_ORDERS,
            [
                (sql, result(FUNNEL_COLS, ("s7", 2))),  # the starter's PATTERN (P K)
                (sql, result(FUNNEL_COLS)),
                (sql, result(["checkout_ms"], (3,))),
                (sql, result(FUNNEL_COLS, *SOLUTION_FUNNEL, ("s2", 4))),  # pages between
                (sql, result(FUNNEL_COLS, ("s1", 3), ("s4", 8))),  # one of each step
                (sql, result(FUNNEL_COLS, *SOLUTION_FUNNEL[1:])),  # s1 missing
                (sql, result(FUNNEL_COLS, *SOLUTION_FUNNEL, ("s3", 1))),  # a session that never went through
                (sql, result(FUNNEL_COLS, ("s0", 2)), many),  # almost nothing found
            ],
        ),
    }


def _leaks(fb: Feedback, forbidden: list[str]) -> list[str]:
    text = _squash(repr(fb))
    return [c for c in forbidden if _squash(c) in text]


def test_no_feedback_hands_over_the_solutions_decisive_clause(listening):
    """Every checker of notebook 10, on wrong answers of every shape: its message and hints say what is wrong and
    where to look, and none writes out a clause of the solution that completes the answer."""
    leaks = []
    for name, (clicks, order_rows, answers) in _wrong_answers().items():
        check, forbidden = CHECKS[name], decisive_clauses(name)
        streams = _streams(listening, _Returning)
        feedback = [check(None, streams), check("-- ✍️ write it here", streams), check("SELECT 1", None)]
        for sql, got, *data in answers:
            streams.clicks = data[0] if data else clicks
            streams.orders = data[1] if len(data) > 1 else order_rows
            streams.frame, streams.error = (None, got) if isinstance(got, Exception) else (got, None)
            feedback.append(check(sql, streams))
        for fb in feedback:
            assert fb.state == "fail" and fb.exercise == name, repr(fb)
            leaks += [f"{name}: {c!r} in\n{fb!r}" for c in _leaks(fb, forbidden)]
    assert not leaks, "\n\n".join(leaks)


def test_a_wrong_changelog_prediction_is_told_why_not_the_formula():
    """The prediction's "not yet" comes after the demo (it is graded as recorded before it): it may say what each
    order does to the changelog, never the solution's formula."""
    predictions.record("changelog_rows", 3)
    for prediction in (3, 4, None, "many"):
        fb = check_changelog_rows(prediction, DEMO)
        assert fb.state == "fail", repr(fb)
        assert not _leaks(fb, decisive_clauses("changelog_rows")), repr(fb)
