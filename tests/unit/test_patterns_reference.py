"""The reference answers of notebook 10's patterns, on inputs small enough to work out by hand: each expected value
below was computed on paper from the rows above it, not by running the function."""

import math

import pandas as pd

from labkit import patterns_reference as pr


def clicks(*rows):
    """(session, url, event time[, event id]) tuples as records read from Kafka, in arrival order."""
    out = []
    for r in rows:
        d = {"session_id": r[0], "url": r[1], "event_timestamp": r[2], "kafka_ms": r[2] + 5}
        if len(r) > 3:
            d["event_id"] = r[3]
        out.append(d)
    return out


def marker(t, partition=None):
    """An end marker (a control message) with event time `t`: it moves the watermark, it is no click."""
    d = {"event_type": "watermark", "event_timestamp": t, "kafka_ms": t - 20_000}
    return d if partition is None else {**d, "partition": partition}


def test_frame_reads_what_peek_gives_and_leaves_control_and_broken_records_out():
    ts = pd.to_datetime([1_000, 1_600, 1_700], unit="ms", utc=True)
    records = pd.DataFrame(
        {
            "partition": [0, 0, 1],
            "offset": [7, 8, 3],
            "timestamp": ts,
            "value": [
                '{"event_type":"watermark","event_timestamp":5}',
                '{"session_id":"s1","url":"/","event_timestamp":1500}',
                "not json",
            ],
        }
    )
    df = pr.frame(records)
    assert len(df) == 1
    row = df.iloc[0]
    assert (row["session_id"], row["url"], row["event_timestamp"], row["kafka_ms"], row["arrival"]) == (
        "s1",
        "/",
        1500,
        1600,
        1,
    )


def test_deduplicate_keeps_the_first_per_id():
    recs = clicks(
        ("s1", "/", 10, "a"), ("s1", "/", 11, "b"), ("s1", "/", 10, "a"), ("s2", "/x", 12, "c"), ("s1", "/", 11, "b")
    )
    d = pr.deduplicate(recs)
    assert (d.before, d.after) == (5, 3)
    assert list(d.kept["event_id"]) == ["a", "b", "c"]
    assert list(d.dropped["arrival"]) == [2, 4]
    # by row time: the copy with the earlier event time wins though it was read second
    recs = clicks(("s1", "/", 20, "x"), ("s1", "/", 15, "x"))
    assert list(pr.deduplicate(recs).kept["event_timestamp"]) == [20]  # by arrival (PROCTIME): the first read
    assert list(pr.deduplicate(recs, order_by="event_timestamp").kept["event_timestamp"]) == [15]


def _topn_input():
    rows = []
    for url, n in (("/a", 4), ("/b", 3), ("/c", 2), ("/d", 2), ("/e", 1)):  # window 0: /c and /d tie for 3rd
        rows += [("s", url, 1_000)] * n
    rows += [("s", "/x", 60_000), ("s", "/x", 119_999), ("s", "/y", 61_000)]  # window 60 s: only two urls
    rows += [("s", u, 120_500) for u in ("/s", "/r", "/q", "/p")]  # window 120 s: four-way tie
    rows += [("s", "/a", 180_000)] * 3 + [("s", "/b", 180_000)] * 2 + [("s", "/c", 180_000)] * 2  # two tie, two seats
    return clicks(*rows) + [marker(245_000)]  # the run's end marker: the watermark passes the last window's end


def test_window_top_n_names_the_certain_rows_and_every_tied_candidate():
    top = pr.window_top_n(_topn_input(), n=3, size_ms=60_000)
    got = [
        tuple(r)
        for r in top[["window_start", "window_end", "url", "clicks", "rownum", "certain"]].itertuples(index=False)
    ]
    assert got == [
        (0, 60_000, "/a", 4, 1, True),
        (0, 60_000, "/b", 3, 2, True),
        (0, 60_000, "/c", 2, 3, False),
        (0, 60_000, "/d", 2, 4, False),
        (60_000, 120_000, "/x", 2, 1, True),
        (60_000, 120_000, "/y", 1, 2, True),
        (120_000, 180_000, "/p", 1, 1, False),
        (120_000, 180_000, "/q", 1, 2, False),
        (120_000, 180_000, "/r", 1, 3, False),
        (120_000, 180_000, "/s", 1, 4, False),
        (180_000, 240_000, "/a", 3, 1, True),
        (180_000, 240_000, "/b", 2, 2, True),
        (180_000, 240_000, "/c", 2, 3, True),
    ]


def test_accepts_top_n_takes_any_tie_order_and_nothing_else():
    ref = pr.window_top_n(_topn_input(), n=3)

    def answer(w0_third="/d", w120=("/s", "/q", "/p"), a_clicks=4):
        rows = [(0, "/a", a_clicks), (0, "/b", 3), (0, w0_third, {"/c": 2, "/d": 2, "/e": 1}[w0_third])]
        rows += [(60_000, "/x", 2), (60_000, "/y", 1)]
        rows += [(120_000, u, 1) for u in w120]
        rows += [(180_000, "/c", 2), (180_000, "/a", 3), (180_000, "/b", 2)]
        return pd.DataFrame(rows, columns=["window_start", "url", "clicks"])

    assert pr.accepts_top_n(ref, answer()) == []  # /d for /c, and another three of the four-way tie
    assert pr.accepts_top_n(ref, answer(w0_third="/c")) == []
    assert pr.accepts_top_n(ref, answer(w0_third="/e")) == ["window 0: /e is not among the top 3"]
    assert pr.accepts_top_n(ref, answer(a_clicks=5)) == ["window 0: /a has 4 clicks, not 5"]
    short = answer()
    short = short[~((short["window_start"] == 0) & (short["url"] == "/a"))]
    assert pr.accepts_top_n(ref, short) == [
        "window 0: 2 rows, expected 3",
        "window 0: /a missing (it is in every right answer)",
    ]


def test_session_windows_join_at_exactly_the_gap_and_split_past_it():
    recs = clicks(("s1", "/", 40_000), ("s2", "/", 5_000), ("s1", "/", 0), ("s1", "/", 70_001), ("s1", "/", 10_000))
    got = pr.session_windows(recs, gap_ms=30_000, watermark=None)  # the gap alone: read as a batch job would
    assert [tuple(r) for r in got[["session_id", "window_start", "window_end", "clicks"]].itertuples(index=False)] == [
        ("s1", 0, 70_000, 3),  # 10 s → 40 s is exactly the gap: one window, ending 30 s after its last event
        ("s1", 70_001, 100_001, 1),  # 30.001 s later: a new one
        ("s2", 5_000, 35_000, 1),
    ]


def _join_input():
    cl = clicks(
        ("s1", "/cart", -1_000),
        ("s1", "/checkout", 0),
        ("s2", "/checkout", 1_000),
        ("s3", "/checkout", 0),
        ("s4", "/checkout", 0),
        ("s4", "/checkout", 100_000),
    )
    orders = [
        {"order_id": "o1", "session_id": "s1", "event_timestamp": 600_000},  # exactly 10 min: in (BETWEEN)
        {"order_id": "o2", "session_id": "s2", "event_timestamp": 601_001},  # 10 min 1 ms after: out
        {"order_id": "o3", "session_id": "s3", "event_timestamp": -5},  # before its checkout: out
        {"order_id": "o4", "session_id": "s4", "event_timestamp": 150_000},  # after both of s4's checkouts
    ]
    return cl, orders


def test_interval_join_matches_within_ten_minutes_both_ends_included():
    j = pr.interval_join(*_join_input())
    c = j.checkouts
    assert list(zip(c["session_id"], c["checkout_ms"], c["matched"], c["order_ids"], strict=True)) == [
        ("s1", 0, True, ["o1"]),
        ("s2", 1_000, False, []),
        ("s3", 0, False, []),
        ("s4", 0, True, ["o4"]),
        ("s4", 100_000, True, ["o4"]),
    ]
    assert list(c["next_order_after_ms"][:2]) == [600_000, 600_001] and math.isnan(c["next_order_after_ms"][2])
    assert j.conversion_rate == 3 / 5
    assert sorted(zip(j.pairs["session_id"], j.pairs["order_id"], strict=True)) == [
        ("s1", "o1"),
        ("s4", "o4"),
        ("s4", "o4"),
    ]


def test_group_by_changelog_retracts_before_it_updates():
    recs = clicks(*[("s", u, i) for i, u in enumerate(["/a", "/b", "/a", "/a", "/b", "/c"])])
    log, final = pr.group_by_changelog(recs)
    assert [tuple(r) for r in log.itertuples(index=False)] == [
        ("+I", "/a", 1),
        ("+I", "/b", 1),
        ("-U", "/a", 1),
        ("+U", "/a", 2),
        ("-U", "/a", 2),
        ("+U", "/a", 3),
        ("-U", "/b", 1),
        ("+U", "/b", 2),
        ("+I", "/c", 1),
    ]
    assert [tuple(r) for r in final.itertuples(index=False)] == [("/a", 3), ("/b", 2), ("/c", 1)]


def test_replay_changelog_accepts_a_folded_log_and_names_a_bad_retraction():
    folded = pd.DataFrame(
        [
            ("+I", "/a", 1),
            ("+I", "/b", 1),
            ("-U", "/a", 1),
            ("+U", "/a", 3),
            ("-U", "/b", 1),
            ("+U", "/b", 2),
            ("+I", "/c", 1),
        ],
        columns=["op", "url", "cnt"],
    )
    table, problems = pr.replay_changelog(folded)
    assert problems == [] and [tuple(r) for r in table.itertuples(index=False)] == [("/a", 3), ("/b", 2), ("/c", 1)]
    _, problems = pr.replay_changelog([{"op": "+I", "url": "/a", "cnt": 1}, {"op": "-U", "url": "/a", "cnt": 2}])
    assert problems == ["row 1: -U /a 2 retracts a row the table does not have (1)"]


def _funnel_input():
    return clicks(
        ("s1", "/product/x", 1), ("s1", "/cart", 2), ("s1", "/checkout", 3),
        ("s2", "/product/x", 1), ("s2", "/search", 2), ("s2", "/cart", 3), ("s2", "/checkout", 4),
        ("s3", "/cart", 1), ("s3", "/product/x", 2), ("s3", "/checkout", 3),
        ("s4", "/product/a", 1), ("s4", "/product/b", 2), ("s4", "/cart/items", 3), ("s4", "/cart", 4),
        ("s4", "/checkout", 5), ("s4", "/product/c", 6), ("s4", "/cart", 7), ("s4", "/checkout", 8),
        ("s5", "/checkout", 30), ("s5", "/product/x", 10), ("s5", "/cart", 20),  # read out of event-time order
    ) + [marker(10_000)]  # fmt: skip


def test_funnel_sessions_contiguous_and_relaxed():
    strict = pr.funnel_sessions(_funnel_input())
    assert [
        tuple(r) for r in strict[["session_id", "match_start", "match_end", "matches"]].itertuples(index=False)
    ] == [
        ("s1", 1, 3, 1),
        ("s4", 1, 5, 2),  # the run of products starts the match; a second funnel follows
        ("s5", 10, 30, 1),
    ]
    relaxed = pr.funnel_sessions(_funnel_input(), contiguous=False)
    assert list(relaxed["session_id"]) == ["s1", "s2", "s4", "s5"]  # s2 searched between product and cart
    assert list(relaxed.loc[relaxed["session_id"] == "s2", ["match_start", "match_end"]].iloc[0]) == [1, 4]


def test_diff_rows_agreeing_frames_have_no_rows():
    top = pd.DataFrame({"url": ["/a", "/b"], "clicks": [3, 2]})
    assert pr.diff_rows(top, top.iloc[::-1], "url").empty


def test_diff_rows_names_a_kept_duplicate_and_a_wrong_count():
    exp = pd.DataFrame({"event_id": ["a", "b"], "url": ["/x", "/y"]})
    act = pd.DataFrame({"event_id": ["a", "a", "b"], "url": ["/x", "/x", "/y"]})
    d = pr.diff_rows(exp, act, "event_id")
    assert list(d["event_id"]) == ["a"] and d["reason"][0] == "a duplicate kept: 2 rows for one key"
    d = pr.diff_rows(pd.DataFrame({"url": ["/a"], "clicks": [4]}), pd.DataFrame({"url": ["/a"], "clicks": [5]}), "url")
    assert (d["problem"][0], d["reason"][0]) == ("different", "clicks: expected 4, got 5")


def test_diff_rows_names_a_session_split_and_a_join():
    key = ["session_id", "window_start", "window_end"]
    one = pd.DataFrame([("s1", 0, 70_000, 3)], columns=[*key, "clicks"])
    two = pd.DataFrame([("s1", 0, 30_000, 2), ("s1", 40_000, 60_000, 1)], columns=[*key, "clicks"])
    d = pr.diff_rows(one, two, key)
    assert list(d["problem"]) == ["missing", "unexpected", "unexpected"]
    assert d["reason"][0].startswith("session split: the answer has 2 windows")
    assert all(r.startswith("session split: part of a longer session") for r in d["reason"][1:])
    d = pr.diff_rows(two, one, key)
    assert list(d["problem"]) == ["missing", "missing", "unexpected"]
    assert all(r.startswith("sessions joined") for r in d["reason"])


def test_diff_rows_names_a_late_order_joined_and_an_order_missed():
    ref = pr.interval_join(*_join_input()).checkouts
    act = ref[["session_id", "checkout_ms", "matched"]].copy()
    act.loc[1, "matched"] = True  # s2: its order came 10 min 1 ms after the checkout
    act.loc[0, "matched"] = False  # s1: its order came exactly 10 min after
    d = pr.diff_rows(ref, act, ["session_id", "checkout_ms"])
    assert list(d["session_id"]) == ["s1", "s2"]
    assert d["reason"][0] == "an order in the interval not joined (dropped as late by the watermark?)"
    assert d["reason"][1] == "a late order joined: it came 10.0 min after the checkout"


def _records(events):
    """Generator output as a consumer reads it: the JSON fields plus the Kafka timestamp, malformed ones left out."""
    import json

    return [{**json.loads(e.value), "kafka_ms": e.timestamp_ms} for e in events if e.kind != "malformed"]


def test_the_references_see_what_the_generator_options_put_in():
    from labkit.events import EventGenerator

    gen = EventGenerator(seed=21, start_ms=1_800_000_000_000, rate=200, orders=True, duplicates=0.03, session_gaps=0.2)
    events = [next(gen) for _ in range(60_000)]
    d = pr.deduplicate(_records(events))
    assert d.before - d.after == len(events) - len({e.value for e in events}) > 0  # exactly the retried records
    j = pr.interval_join(d.kept, _records(gen.take_orders()))
    c = j.checkouts
    assert 0.7 < j.conversion_rate < 0.95  # 85% of paid checkouts get an order; one order may match two checkouts
    assert (~c["matched"] & (c["next_order_after_ms"] > pr.TEN_MINUTES_MS)).sum() > 0  # orders after the 10 min
    end = events[-1].event_ms
    paused = {sid for sid, _, _ in gen.session_pauses}
    back_in_time = {sid for sid, _, back in gen.session_pauses if back + 30_000 < end}  # surely clicked again
    s = pr.session_windows(d.kept, gap_ms=60_000)
    split = set(s.loc[s["session_id"].duplicated(), "session_id"])
    assert back_in_time <= split <= paused  # a 60 s gap splits the sessions that paused (90-240 s), and only them
    assert s.groupby("session_id").size().max() == 2  # each pauses once
    whole = pr.session_windows(d.kept, gap_ms=300_000)
    assert not whole["session_id"].duplicated().any()  # a 5-minute gap, longer than any pause, joins them again


def test_interval_join_without_any_order_matches_nothing():
    # a short run, or the orders option off: the orders topic is empty, and no checkout converted
    clicks = [
        {"session_id": "s1", "url": "/checkout", "event_timestamp": 1_000},
        {"session_id": "s2", "url": "/cart", "event_timestamp": 2_000},
    ]
    result = pr.interval_join(clicks, [])
    assert result.conversion_rate == 0.0 and result.checkouts["matched"].tolist() == [False]
