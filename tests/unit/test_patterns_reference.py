"""The reference answers of notebook 10's patterns, on inputs small enough to work out by hand: each expected value
below was computed on paper from the rows above it, not by running the function."""

import math

import pandas as pd
import pytest

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


def test_session_windows_mark_the_sessions_the_streams_edges_may_have_cut():
    # the stream spans 0 s .. 400 s; gap 30 s: a click within 30 s before its first or after its last could exist
    recs = clicks(
        ("a", "/", 0),  # starts with the stream
        ("b", "/", 30_000),  # starts exactly one gap after it: a click at 0 s would have joined it
        ("c", "/", 30_001), ("c", "/", 40_000),  # a millisecond more: whole
        ("d", "/", 200_000), ("d", "/", 369_999),  # (two windows) its second ends 30.001 s before the stream: whole
        ("e", "/", 370_000),  # exactly one gap before the end
        ("f", "/", 390_000), ("f", "/", 400_000),  # ends with the stream
    )  # fmt: skip
    got = pr.session_windows(recs, gap_ms=30_000, watermark=None)
    cut = {(r.session_id, r.window_start): r.partial for r in got.itertuples(index=False)}
    assert cut == {
        ("a", 0): True,
        ("b", 30_000): True,
        ("c", 30_001): False,
        ("d", 200_000): False,
        ("d", 369_999): False,
        ("e", 370_000): True,
        ("f", 390_000): True,
    }
    assert got["partial"].dtype == bool and got.attrs["partial"] == 4
    assert got.columns[-1] == "partial"  # after the columns a checker compares


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


def test_diff_rows_finds_the_overlapping_sessions_by_a_sorted_search():
    """Every session split in two: each reference window is found in the answer's windows of its session and each
    answer's window in the reference's. A scan of the whole frame per row took 40 s for 800 sessions."""
    import time

    key = ["session_id", "window_start", "window_end"]
    n = 2_000
    one = pd.DataFrame({"session_id": [f"s{i}" for i in range(n)], "window_start": 0, "window_end": 200_000})
    two = pd.concat([one.assign(window_end=70_000), one.assign(window_start=100_000)]).sample(frac=1, random_state=1)
    t0 = time.monotonic()
    d = pr.diff_rows(one.assign(clicks=3), two.assign(clicks=1), key)
    assert time.monotonic() - t0 < 30
    assert len(d) == 3 * n
    missing, unexpected = d[d["problem"] == "missing"], d[d["problem"] == "unexpected"]
    assert (missing["reason"] == "session split: the answer has 2 windows inside this one (gap too short?)").all()
    assert unexpected["reason"].str.startswith("session split: part of a longer session").all()
    other = pd.DataFrame([("x", 0, 70_000, 1)], columns=[*key, "clicks"])  # a session the reference lacks
    assert pr.diff_rows(one.assign(clicks=3).iloc[:1], other, key)["reason"].tolist() == ["", ""]


def test_diff_rows_names_a_late_order_joined_and_an_order_missed():
    ref = pr.interval_join(*_join_input()).checkouts
    act = ref[["session_id", "checkout_ms", "matched"]].copy()
    act.loc[1, "matched"] = True  # s2: its order came 10 min 1 ms after the checkout
    act.loc[0, "matched"] = False  # s1: its order came exactly 10 min after
    d = pr.diff_rows(ref, act, ["session_id", "checkout_ms"])
    assert list(d["session_id"]) == ["s1", "s2"]
    # the reference is sure of s1's pair: the watermark is no excuse, and the reason says when the order came
    assert d["reason"][0] == (
        "an order in the interval not joined: the session's next order came 10.0 min after the checkout, within "
        "10 min, and the reference is sure Flink joins it (the watermark cannot have dropped it)"
    )
    assert d["reason"][1] == "a late order joined: it came 10.0 min after the checkout"
    maybe = ref.assign(fires="maybe")  # a reference that says the watermark may have dropped the pair
    d = pr.diff_rows(maybe, act, ["session_id", "checkout_ms"])
    assert d["reason"][0] == "an order in the interval not joined (dropped as late by the watermark?)"


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


# --- the watermark ------------------------------------------------------------------------------------------------
# A 5 s delay throughout (the lab's, written out so the sums below read on paper). ON_EVENT is one partition with a
# watermark after every record: the exact case. PERIODIC is Flink's default emission: a row may have been read
# before the watermark of the rows ahead of it was emitted, so lateness is only sure with a timing assumption.

ON_EVENT = pr.Watermark(delay_ms=5_000, emit="on-event")
PERIODIC = pr.Watermark(delay_ms=5_000)
INF = float("inf")


def at(partition, offset, session, url, t, kafka_ms=None):
    """A click read from `partition` at `offset` (Kafka timestamp: `kafka_ms`, else t + 5)."""
    d = {"session_id": session, "url": url, "event_timestamp": t, "partition": partition, "offset": offset}
    return {**d, "kafka_ms": t + 5 if kafka_ms is None else kafka_ms}


def test_the_model_defaults_to_the_labs_delay_and_refuses_what_it_cannot_model():
    from labkit.timing import WATERMARK_DELAY_MS

    assert pr.Watermark().delay_ms == WATERMARK_DELAY_MS == pr.FLINK.delay_ms
    with pytest.raises(ValueError, match="emit"):
        pr.Watermark(emit="sometimes")
    no_kafka = [{"session_id": "s", "url": "/", "event_timestamp": 1}]
    with pytest.raises(ValueError, match="kafka_ms"):
        pr.window_top_n(no_kafka, watermark=pr.Watermark(read_within_ms=1_000))


def test_the_watermark_a_row_meets_is_its_partitions_newest_time_before_it_minus_the_delay():
    recs = clicks(("s", "/", 10_000), ("s", "/", 20_000), ("s", "/", 12_000)) + [marker(40_000)]
    exact = pr._trace(recs, ON_EVENT)
    assert list(exact.events["wm_high"]) == [-INF, 5_000, 15_000]  # max so far - 5 s, no extra millisecond
    assert list(exact.events["wm_low"]) == [-INF, 5_000, 15_000]  # one partition, on-event: pinned
    assert (exact.final_low, exact.final_high) == (35_000, 35_000)  # the end marker moves it, and counts no click
    periodic = pr._trace(recs, PERIODIC)
    assert list(periodic.events["wm_high"]) == [-INF, 5_000, 15_000]
    assert list(periodic.events["wm_low"]) == [-INF, -INF, -INF]  # no emission need have come in between


def _late_topn_input():
    return clicks(
        ("s", "/a", 10_000), ("s", "/a", 20_000), ("s", "/b", 30_000),
        ("s", "/c", 70_000),  # the watermark goes to 65 s: window [0, 60 s) has fired
        ("s", "/b", 40_000), ("s", "/b", 50_000),  # late for it
    ) + [marker(200_000)]  # fmt: skip


def test_window_top_n_drops_a_click_that_comes_after_its_window_fired():
    cols = ["window_start", "url", "clicks", "rownum", "certain", "clicks_max", "late", "fires"]
    top = pr.window_top_n(_late_topn_input(), n=3, watermark=ON_EVENT)
    assert [tuple(r) for r in top[cols].itertuples(index=False)] == [
        (0, "/a", 2, 1, True, 2, 0, "yes"),
        (0, "/b", 1, 2, True, 1, 2, "yes"),  # two of its three clicks late
        (60_000, "/c", 1, 1, True, 1, 0, "yes"),
    ]
    assert list(top.attrs["late"]["arrival"]) == [4, 5]
    answer = pd.DataFrame([(0, "/a", 2), (0, "/b", 3), (60_000, "/c", 1)], columns=["window_start", "url", "clicks"])
    assert pr.accepts_top_n(top, answer) == ["window 0: /b has 1 clicks, not 3"]  # counted the late ones
    d = pr.diff_rows(top, answer, ["window_start", "url"])
    assert "2 of these clicks came after the watermark had passed the window" in d["reason"][0]
    # periodic emission: whether a watermark came between 70 s and the late ones is not in Kafka
    top = pr.window_top_n(_late_topn_input(), n=3, watermark=PERIODIC)
    assert list(top.loc[top["url"] == "/b", ["clicks", "clicks_max", "late"]].iloc[0]) == [1, 3, 0]
    assert pr.accepts_top_n(top, answer) == []
    assert pr.accepts_top_n(top, answer.replace({"clicks": {3: 4}})) == [
        "window 0: /b has 1 to 3 (some of its clicks may have been late) clicks, not 4"
    ]
    assert pr.diff_rows(top, answer, ["window_start", "url"]).empty  # 3 lies in the range


def test_window_top_n_a_window_the_last_watermark_has_not_passed_is_not_emitted_yet():
    recs = clicks(("s", "/a", 10_000), ("s", "/b", 70_000))  # no end marker: the last watermark is 65 s
    top = pr.window_top_n(recs, watermark=ON_EVENT)
    assert list(zip(top["window_start"], top["fires"], strict=True)) == [(0, "yes"), (60_000, "no")]
    both = pd.DataFrame([(0, "/a", 1), (60_000, "/b", 1)], columns=["window_start", "url", "clicks"])
    assert pr.accepts_top_n(top, both.iloc[:1]) == []
    problems = pr.accepts_top_n(top, both)
    assert len(problems) == 1 and problems[0].startswith("window 60000: 1 rows, but Flink has not emitted")
    closed = pr.window_top_n(recs + [marker(200_000)], watermark=ON_EVENT)
    assert list(closed["fires"]) == ["yes", "yes"] and pr.accepts_top_n(closed, both) == []
    assert list(pr.window_top_n(recs, watermark=pr.Watermark(bounded=True))["fires"]) == ["yes", "yes"]


def test_the_last_watermark_of_two_partitions_lies_between_their_ends_when_idle_ones_drop_out():
    recs = [at(0, 0, "s", "/a", 10_000), at(1, 0, "s", "/b", 70_000), marker(200_000, partition=0)]
    # partition 0 ends at 195 s, partition 1 at 65 s: the minimum is 65 s, and once partition 1 idles, 195 s
    top = pr.window_top_n(recs, watermark=PERIODIC)
    assert list(top["fires"]) == ["yes", "maybe"]
    assert pr.accepts_top_n(top, pd.DataFrame([(0, "/a", 1)], columns=["window_start", "url", "clicks"])) == []
    no_idle = pr.window_top_n(recs, watermark=pr.Watermark(delay_ms=5_000, idle_timeout=False))
    assert list(no_idle["fires"]) == ["yes", "no"]


def test_a_lagging_partition_holds_the_watermark_back_and_one_ahead_makes_lateness_undecidable():
    ahead = [at(0, 0, "s", "/a", 100_000), at(0, 1, "s", "/a", 30_000)]  # partition 0 itself is at 95 s by then
    lagging = [at(1, 0, "s", "/b", 10_000), at(1, 1, "s", "/b", 20_000)]  # partition 1 never passes 15 s

    def window0_a(recs, model):
        top = pr.window_top_n(recs, watermark=model)
        row = top[(top["window_start"] == 0) & (top["url"] == "/a")]
        return (int(row["clicks"].iloc[0]), int(row["clicks_max"].iloc[0])) if len(row) else None

    # whatever the interleaving, the operator's watermark is at most 15 s: the 30 s click is surely on time
    assert window0_a(ahead + lagging, ON_EVENT) == (1, 1)
    # partition 1 reaches 195 s: had Flink read it before the 30 s click, the window had fired; Kafka cannot say
    moving = [at(1, 0, "s", "/b", 10_000), at(1, 1, "s", "/b", 200_000)]
    assert window0_a(ahead + moving, ON_EVENT) == (0, 1)
    # a live run read promptly: partition 1's 200 s (sent at 200 s) was read long before the 30 s click was sent
    live = [
        at(0, 0, "s", "/a", 100_000, kafka_ms=100_005),
        at(0, 1, "s", "/a", 30_000, kafka_ms=300_000),
        at(1, 0, "s", "/b", 10_000, kafka_ms=10_005),
        at(1, 1, "s", "/b", 200_000, kafka_ms=200_005),
    ]
    top = pr.window_top_n(live, watermark=pr.Watermark(delay_ms=5_000, read_within_ms=1_000))
    assert window0_a(live, pr.Watermark(delay_ms=5_000, read_within_ms=1_000)) is None  # surely late: gone
    assert list(top.attrs["late"]["event_timestamp"]) == [30_000]
    # ...but had partition 1's 200 s been sent after the 30 s click, only its 10 s is sure: still undecided
    live[3] = at(1, 1, "s", "/b", 200_000, kafka_ms=400_000)
    assert window0_a(live, pr.Watermark(delay_ms=5_000, read_within_ms=1_000)) == (0, 1)
    # and a click whose Kafka timestamp is unknown was read after nothing in particular: undecided too
    live[3] = at(1, 1, "s", "/b", 200_000, kafka_ms=200_005)
    live[1] = {**live[1], "kafka_ms": None}
    assert window0_a(live, pr.Watermark(delay_ms=5_000, read_within_ms=1_000)) == (0, 1)


def test_window_top_n_a_window_fires_when_the_watermark_reaches_its_end_minus_one_millisecond():
    def window0(newest):  # a click at `newest` moves the watermark to newest - 5 s; then a click for window 0
        recs = clicks(("s", "/a", 10_000), ("s", "/b", newest), ("s", "/a", 20_000))
        top = pr.window_top_n(recs, watermark=ON_EVENT)
        a = top[(top["window_start"] == 0) & (top["url"] == "/a")].iloc[0]
        return int(a["clicks"]), int(a["late"]), a["fires"]

    assert window0(64_999) == (1, 1, "yes")  # the watermark at 59.999 s: window [0, 60 s) has fired
    assert window0(64_998) == (2, 0, "no")  # at 59.998 s it has not


def test_session_windows_a_late_event_cannot_bridge_two_sessions_that_fired():
    recs = clicks(("s1", "/", 0), ("s1", "/", 50_000), ("x", "/", 200_000), ("s1", "/", 25_000)) + [marker(400_000)]
    cols = ["session_id", "window_start", "window_end", "clicks", "fires", "ambiguous"]
    got = pr.session_windows(recs, gap_ms=30_000, watermark=ON_EVENT)
    assert [tuple(r) for r in got[cols].itertuples(index=False)] == [
        ("s1", 0, 30_000, 1, "yes", False),
        ("s1", 50_000, 80_000, 1, "yes", False),  # 25 s touched both, but both had fired: dropped as late
        ("x", 200_000, 230_000, 1, "yes", False),
    ]
    assert list(got.attrs["late"]["event_timestamp"]) == [25_000]
    batch = pr.session_windows(recs, gap_ms=30_000, watermark=None)
    assert [tuple(r) for r in batch[cols[:4]].itertuples(index=False)][0] == ("s1", 0, 80_000, 3)  # bridged
    d = pr.diff_rows(got[cols[:4]], batch[cols[:4]], ["session_id", "window_start", "window_end"])
    assert list(d["problem"]) == ["missing", "missing", "unexpected"]
    # periodic: the 25 s click may have been read before the 195 s watermark was emitted: s1 is undecided
    periodic = pr.session_windows(recs, gap_ms=30_000, watermark=PERIODIC)
    assert list(zip(periodic["session_id"], periodic["ambiguous"], strict=True)) == [("s1", True), ("x", False)]
    assert pr.diff_rows(periodic, batch, ["session_id", "window_start", "window_end"]).empty


def test_session_windows_the_watermark_judges_the_merged_window_not_the_event():
    # 80 s alone would be late ([80 s, 110 s) is behind the 115 s watermark), but it touches the open session
    recs = clicks(("s1", "/", 100_000), ("x", "/", 120_000), ("s1", "/", 80_000)) + [marker(400_000)]
    got = pr.session_windows(recs, gap_ms=30_000, watermark=ON_EVENT)
    assert [tuple(r) for r in got[["session_id", "window_start", "window_end", "clicks"]].itertuples(index=False)] == [
        ("s1", 80_000, 130_000, 2),  # joined, and its start stretched back
        ("x", 120_000, 150_000, 1),
    ]
    # 120 s touches only a fired session (its end - 1 is behind the 135 s watermark), and its own window is not
    recs = clicks(("s1", "/", 100_000), ("x", "/", 140_000), ("s1", "/", 120_000)) + [marker(400_000)]
    got = pr.session_windows(recs, gap_ms=30_000, watermark=ON_EVENT)
    s1 = got[got["session_id"] == "s1"]
    assert list(zip(s1["window_start"], s1["window_end"], s1["clicks"], strict=True)) == [
        (100_000, 130_000, 1),
        (120_000, 150_000, 1),  # a new session, overlapping the one that fired
    ]


def test_session_windows_an_open_session_is_not_emitted_and_an_answer_with_it_is_told_why():
    recs = clicks(("s1", "/", 0), ("s1", "/", 10_000), ("s2", "/", 100_000))
    got = pr.session_windows(recs, gap_ms=30_000, watermark=ON_EVENT)  # last watermark: 95 s
    assert list(zip(got["session_id"], got["fires"], strict=True)) == [("s1", "yes"), ("s2", "no")]
    key = ["session_id", "window_start", "window_end"]
    answer = got[[*key, "clicks"]].copy()
    d = pr.diff_rows(got, answer, key)
    assert list(d["session_id"]) == ["s2"] and list(d["problem"]) == ["unexpected"]
    assert d["reason"][0].startswith("Flink has not emitted this window yet")
    assert pr.diff_rows(got, answer.iloc[:1], key).empty


def _late_funnel_input():
    return clicks(
        ("s1", "/product/x", 10_000), ("s1", "/cart", 20_000),
        ("s3", "/product/x", 94_000), ("s3", "/cart", 94_500),
        ("x", "/home", 100_000),  # the watermark goes to 95 s
        ("s1", "/checkout", 30_000),  # late: s1's funnel loses its last step
        ("s3", "/checkout", 95_000),  # at the watermark, not above it: late for MATCH_RECOGNIZE too
        ("s2", "/product/y", 110_000), ("s2", "/cart", 120_000), ("s2", "/checkout", 130_000),
    )  # fmt: skip


def test_funnel_sessions_drops_late_rows_and_waits_for_the_watermark():
    cols = ["session_id", "match_start", "match_end", "matches", "ambiguous"]
    got = pr.funnel_sessions(_late_funnel_input() + [marker(200_000)], watermark=ON_EVENT)
    assert [tuple(r) for r in got[cols].itertuples(index=False)] == [("s2", 110_000, 130_000, 1, False)]
    assert list(got.attrs["late"]["event_timestamp"]) == [30_000, 95_000]
    # periodic: the late rows may have beaten the watermark's emission: s1 and s3 may match, s2 surely does
    got = pr.funnel_sessions(_late_funnel_input() + [marker(200_000)], watermark=PERIODIC)
    assert list(zip(got["session_id"], got["ambiguous"], strict=True)) == [("s1", True), ("s2", False), ("s3", True)]
    # no end marker: the last watermark (125 s) has not reached s2's checkout, which waits in the buffer
    got = pr.funnel_sessions(_late_funnel_input(), watermark=ON_EVENT)
    assert got.empty and list(got.attrs["waiting"]["event_timestamp"]) == [130_000]


def test_deduplicate_on_row_time_drops_late_copies_and_waits_to_emit():
    recs = clicks(
        ("s", "/", 10_000, "a"), ("s", "/", 100_000, "b"),  # the watermark goes to 95 s
        ("s", "/", 9_000, "a"),  # late: below the watermark (and the earlier copy): dropped, not kept
        ("s", "/", 95_000, "c"),  # at the watermark: not late (rowtime < watermark is)
        ("s", "/", 94_999, "d"),  # late, and its only copy: no row at all
    )  # fmt: skip
    d = pr.deduplicate(recs, order_by="event_timestamp", watermark=ON_EVENT)
    assert list(zip(d.kept["event_id"], d.kept["event_timestamp"], d.kept["fires"], strict=True)) == [
        ("a", 10_000, "yes"),
        ("b", 100_000, "no"),  # the last watermark (95 s) has not reached it: not emitted yet
        ("c", 95_000, "no"),  # its timer (95 s) is not above the watermark: it waits for the next advance
    ]
    assert list(d.late["arrival"]) == [2, 4] and d.open == {"b", "c"} and d.ambiguous == set()
    assert (d.before, d.after, d.after_range) == (5, 3, (1, 1))
    moved_on = pr.deduplicate(recs + [marker(100_001)], order_by="event_timestamp", watermark=ON_EVENT)
    assert list(moved_on.kept["fires"]) == ["yes", "no", "yes"]  # 95.001 s: c's timer fires, b's (100 s) not yet
    assert pr.deduplicate(recs).after == 4  # by PROCTIME: no watermark, the first copy of each id
    periodic = pr.deduplicate(recs, order_by="event_timestamp", watermark=PERIODIC)
    assert periodic.ambiguous == {"a", "d"}  # a's 9 s copy may have been in time (and earlier); d may have a row


def _ambiguous_join_input():
    cl = clicks(("s1", "/checkout", 400_000), ("s2", "/checkout", 1_000_000)) + [marker(3_000_000)]
    orders = [
        {"order_id": "o2", "session_id": "s2", "event_timestamp": 1_100_000, "kafka_ms": 1_100_005},
        {"order_id": "ox", "session_id": "s9", "event_timestamp": 2_000_000, "kafka_ms": 2_000_005},
        # the orders' watermark was at 1,995 s when o1 was read: it is behind it, and the join may drop it
        {"order_id": "o1", "session_id": "s1", "event_timestamp": 500_000, "kafka_ms": 2_100_000},
    ]
    return cl, orders


def test_interval_join_a_pair_whose_order_came_behind_the_watermark_is_ambiguous():
    j = pr.interval_join(*_ambiguous_join_input(), watermark=PERIODIC)
    c = j.checkouts
    assert list(zip(c["session_id"], c["matched"], c["ambiguous"], strict=True)) == [
        ("s1", True, True),
        ("s2", True, False),  # o2 came first, above every watermark: joined whatever the order
    ]
    assert list(zip(j.pairs["order_id"], j.pairs["ambiguous"], strict=True)) == [("o1", True), ("o2", False)]
    assert (j.conversion_rate, j.conversion_range) == (1.0, (0.5, 1.0))
    assert pr.interval_join(*_ambiguous_join_input(), watermark=None).conversion_range == (1.0, 1.0)
    missed = c[["session_id", "checkout_ms", "matched"]].assign(matched=False)
    d = pr.diff_rows(c, missed, ["session_id", "checkout_ms"])
    assert list(d["session_id"]) == ["s2"]  # s1 may rightly be missing; s2 may not
    assert d["reason"][0].startswith("an order in the interval not joined: the session's next order came 1.7 min")
    assert "the watermark cannot have dropped it" in d["reason"][0]


def test_interval_join_a_live_run_can_show_a_pair_was_surely_dropped():
    cl = [
        {"session_id": "s2", "url": "/home", "event_timestamp": 1_200_000, "kafka_ms": 1_200_005},
        {"session_id": "s1", "url": "/checkout", "event_timestamp": 400_000, "kafka_ms": 1_300_000},
    ]
    orders = [
        {"order_id": "ox", "session_id": "s9", "event_timestamp": 1_200_000, "kafka_ms": 1_200_005},
        {"order_id": "o1", "session_id": "s1", "event_timestamp": 500_000, "kafka_ms": 1_300_100},
    ]
    # read within 1 s: both inputs stood at 1,195 s when each of the pair arrived; the checkout needed one below
    # 1,000 s (its time + 10 min) to be cached, the order one below 500 s: neither was, so no pair
    j = pr.interval_join(cl, orders, watermark=pr.Watermark(delay_ms=5_000, read_within_ms=1_000))
    assert list(zip(j.checkouts["matched"], j.checkouts["ambiguous"], strict=True)) == [(False, False)]
    assert j.pairs.empty and j.conversion_range == (0.0, 0.0)
    assert pr.interval_join(cl, orders, watermark=PERIODIC).checkouts["ambiguous"].tolist() == [True]


def test_a_run_that_has_sent_only_its_markers_has_no_answers_yet():
    only = [marker(10_000)]
    assert pr.window_top_n(only).empty and pr.session_windows(only, 30_000).empty and pr.funnel_sessions(only).empty
    d = pr.deduplicate(only, order_by="event_timestamp")
    assert (d.before, d.after, d.after_range) == (0, 0, (0, 0))
    assert pr.interval_join(only, []).conversion_range == (0.0, 0.0)
    log, final = pr.group_by_changelog(only)
    assert log.empty and final.empty


def test_session_windows_a_session_spread_over_partitions_is_exact_only_while_no_watermark_can_reach_it():
    quiet = [at(0, 0, "s1", "/", 0), at(1, 0, "s1", "/", 20_000)]  # nothing ahead: no watermark reaches 29.999 s
    got = pr.session_windows(quiet, gap_ms=30_000, watermark=ON_EVENT)
    assert [tuple(r) for r in got[["window_start", "window_end", "clicks", "ambiguous"]].itertuples(index=False)] == [
        (0, 50_000, 2, False)
    ]
    # partition 0 is at 95 s when its s1 click comes: had Flink read partition 1 (up to 195 s) first, [0, 30 s)
    # was late; which partition Flink read first is not in Kafka
    busy = [at(0, 0, "x", "/", 100_000), at(0, 1, "s1", "/", 0), at(1, 0, "s1", "/", 20_000)]
    busy += [at(1, 1, "y", "/", 200_000)]
    got = pr.session_windows(busy, gap_ms=30_000, watermark=ON_EVENT)
    assert got.loc[got["session_id"] == "s1", "ambiguous"].tolist() == [True]
