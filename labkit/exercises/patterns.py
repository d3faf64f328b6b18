"""The checkers of notebook 10, Flink SQL patterns: one per pattern, each grading the rows an attendee's query gave
against a reference computed in Python from the records of the notebook's own topics (labkit.patterns_reference).

Each checker takes the attendee's SQL and the notebook's streams (labkit.jobs.patterns.PatternStreams), previews
the SQL (a bounded local Flink run over `clicks` and `orders`, rows with their kind in `op`), and hands the rows to
a pure `grade_*` function, unit-tested on hand-built frames without a stack. The references replay the watermark
of the previews (`PatternStreams.watermark`: one partition, a watermark after every record, a bounded run), so a
row Flink rightly dropped as late is not missing, and a window Flink has not fired is not expected.

The feedback says which rows differ and, where the rows show it, why: a duplicate kept, a session split or two
joined (the gap), an order joined after its ten minutes, a funnel with a step missing or other pages between,
an updating result where an append-only one was asked (or the reverse). Like every checker of the course
(`labkit.exercises.feedback`), none raises on a wrong answer, and a lab that failed (Kafka away, a preview that
timed out) is said as the lab's problem, never "not yet".
"""

from __future__ import annotations

import math
import re
from typing import TYPE_CHECKING, Any

import pandas as pd

from labkit import patterns_reference as pr
from labkit.errors import JobError
from labkit.exercises.checks import _as_numbers, _columns, _kafka_reachable, _number, _numeric, _sql_body
from labkit.exercises.feedback import (
    Feedback,
    _first_lines,
    checker,
    feedback_for,
    lab_cause,
    lab_problem,
    not_yet,
    passed,
    talking_to,
)

if TYPE_CHECKING:
    from labkit.jobs.patterns import PatternStreams

MINUTE_MS = 60_000
SESSION_GAP_MS = MINUTE_MS  # the exercise's gap: one minute
TOP_N = 3
WITHIN_MS = pr.TEN_MINUTES_MS
UPDATES = ("-U", "+U", "-D")
EXAMPLES = 3  # rows named in a message

# The hints point to these pages of the Flink docs (the release the lab runs) and name the clause to look at; they
# never write out the clause that completes an answer: that is what solve(name) is for (labkit.exercises.solutions).
FLINK_DOCS = "https://nightlies.apache.org/flink/flink-docs-release-2.2/docs/dev/table"
DOCS = {
    "dedup": f"{FLINK_DOCS}/sql/queries/deduplication/",
    "topn": f"{FLINK_DOCS}/sql/queries/window-topn/",
    "session": f"{FLINK_DOCS}/sql/queries/window-tvf/#session",
    "temporal": f"{FLINK_DOCS}/functions/systemfunctions/#temporal-functions",
    "join": f"{FLINK_DOCS}/sql/queries/joins/#interval-joins",
    "changelog": f"{FLINK_DOCS}/concepts/dynamic_tables/#table-to-stream-conversion",
    "match": f"{FLINK_DOCS}/sql/queries/match_recognize/",
}


def _docs(page: str) -> str:
    return f"the Flink docs: {DOCS[page]}"


def _rank_column(df: pd.DataFrame) -> str | None:
    """The answer's row number (row_num, rownum, rn, a rank), when it selects one."""
    for c in df.columns:
        if re.fullmatch(r"(row_?num(ber)?|rn|rank\w*|\w*_rank)", str(c), re.I) and _numeric(df[c]):
            return c
    return None


# ---- shared --------------------------------------------------------------------------------------------------
def _ask(sql: object, streams: object, exercise: str, example: str) -> Feedback | None:
    """A "not yet" (or the lab's feedback) for an answer that cannot be previewed; None when it can."""
    from labkit.jobs.patterns import PatternStreams

    if not isinstance(streams, PatternStreams):
        return not_yet(
            f"pass the notebook's streams too: {exercise}(MY_SQL, streams)",
            "run the setup cell that produces them (streams = PatternStreams.produce(...)) first",
        )
    if not isinstance(sql, str):
        return not_yet(f"give your query as SQL text (a string), not a {type(sql).__name__}", example)
    if not _sql_body(sql):
        return not_yet("your query is empty: write it where the ✍️ says", example)
    if streams.clicks is None or len(streams.clicks) == 0:
        return lab_problem(
            f"the notebook's topic {streams.clicks_topic} held no clicks when it was read, so there is nothing to "
            "grade your query on. Run the setup cell (it produces the streams and reads them back), then this one."
        )
    return None


def _preview(sql: str, streams: PatternStreams, name: str) -> pd.DataFrame:
    """The attendee's query over the notebook's topics, previewed once: Kafka is probed first, and a preview
    that fails for the lab's reasons (timeout, Kafka gone) is the lab's feedback, a SQL error the answer's."""
    s = streams.settings
    _kafka_reachable(s)
    with talking_to(f"the preview of your query (a local Flink run reading Kafka at {s.kafka})"):
        got = streams.preview(sql, name=name)
        if got.attrs.get("partial"):
            from labkit.jobs.custom import PreviewTimeout

            raise PreviewTimeout(
                f"the preview stopped with part of the result ({len(got)} rows), so your query cannot be graded on it",
                "the machine is busy: run this check again",
            )
    return got


def _frame(got: object) -> pd.DataFrame:
    if not isinstance(got, pd.DataFrame):
        raise TypeError(f"a result table (DataFrame) was expected, not a {type(got).__name__}")
    return _as_numbers(got.reset_index(drop=True))


KINDS = {"+I", "-U", "+U", "-D"}


def _kind_column(got: pd.DataFrame) -> str | None:
    """The preview's column of row kinds: `op`, or `row_kind` when the query has an `op` of its own
    (labkit.jobs.runner.row_kind_column)."""
    for c in ("op", "row_kind", "_row_kind"):
        if c in got.columns and set(got[c].dropna().astype(str)) <= KINDS:
            return c
    return None


def _ops(got: pd.DataFrame) -> pd.Series:
    """Each row's kind (+I when the result carries none)."""
    c = _kind_column(got)
    return got[c].astype(str) if c else pd.Series("+I", index=got.index)


def _updating(got: pd.DataFrame) -> int:
    """How many rows of the result retract or update (-U, +U, -D)."""
    return int(_ops(got).isin(UPDATES).sum())


def _final(got: pd.DataFrame) -> pd.DataFrame:
    """The table the result leaves once its changelog is applied (labkit.jobs.patterns.changelog_table)."""
    from labkit.jobs.patterns import changelog_table

    return changelog_table(got, op=_kind_column(got) or "op")


def _to_ms(s: pd.Series) -> pd.Series:
    """Times as epoch milliseconds: numbers are taken as such, timestamps (naive ones as UTC) converted."""
    if _numeric(s):
        return pd.to_numeric(s, errors="coerce").astype("Int64")
    t = pd.to_datetime(s, utc=True, errors="coerce", format="ISO8601")  # "…08:00:00" and "…08:00:00.018" alike
    return ((t - pd.Timestamp("1970-01-01", tz="UTC")) // pd.Timedelta(1, "ms")).astype("Int64")


def _count_column(df: pd.DataFrame, *prefer: str, skip: tuple[str, ...] = ()) -> str | None:
    """The answer's count: a column named as preferred, else the first numeric one that is no rank, time or id."""
    for p in prefer:
        if p in df.columns and _numeric(df[p]):
            return p
    for c in df.columns:
        name = str(c).lower()
        if c in skip or name in ("op", "row_kind", "http_status", "event_timestamp", "latency_ms", "items", "amount"):
            continue
        if any(w in name for w in ("row", "rank", "window", "length", "duration", "_ms", "time", "_s")):
            continue
        if _numeric(df[c]):
            return c
    return None


def _when(ms: object) -> str:
    v = _number(ms)
    return "?" if v is None or math.isnan(v) else pd.Timestamp(int(v), unit="ms", tz="UTC").strftime("%H:%M:%S")


def _window_times(text: str) -> str:
    """A reference's message with its windows' epoch milliseconds as times ("window 09:41:00: ...")."""
    return re.sub(r"\bwindow (\d+)\b", lambda m: f"window {_when(int(m.group(1)))}", text)


def _some(items: list, n: int = EXAMPLES) -> str:
    shown = ", ".join(str(x) for x in items[:n])
    return shown + (f" and {len(items) - n} more" if len(items) > n else "")


# ---- 1. deduplication --------------------------------------------------------------------------------------------
DEDUP_EXAMPLE = (
    "SELECT ... FROM (SELECT *, ROW_NUMBER() OVER (PARTITION BY <the key> ORDER BY <a time attribute>) AS row_num "
    "FROM clicks) WHERE <the first row of each key>"
)


@checker("dedup_events")
def check_dedup_events(sql: object, streams: object) -> Feedback:
    """Each click event once: the first copy read of every event_id (a deduplication with ROW_NUMBER())."""
    bad = _ask(sql, streams, "check_dedup_events", DEDUP_EXAMPLE)
    if bad is not None:
        return bad
    return grade_dedup_events(_preview(sql, streams, "dedup"), streams.clicks, streams.watermark)  # type: ignore[union-attr,arg-type]


def grade_dedup_events(got: pd.DataFrame, clicks: pd.DataFrame, watermark: pr.Watermark | None = pr.FLINK) -> Feedback:
    got = _columns(_frame(got), "event_id")
    first = pr.deduplicate(clicks)  # ORDER BY proctime: the first copy read
    if got.empty:
        return not_yet(
            f"your query returned no rows; the topic holds {first.after:,} events, and each must come out once",
            "select from clicks, one row per event: if your WHERE compares the row number, check the value it keeps "
            "(ROW_NUMBER() counts from 1)",
        )
    if "event_id" not in got.columns:
        return not_yet(
            "select event_id: it names the event, and the retries of one event carry the same one",
            "the exercise's columns, in the outer SELECT: event_id, session_id, url, event_timestamp (the starter "
            "selects them)",
        )
    n_up = _updating(got)
    if n_up:
        return not_yet(
            f"your result updates its rows ({n_up:,} -U/+U rows): it keeps the last copy of each event, and Flink "
            "retracts the row it emitted whenever a later copy comes. Keep the first copy instead: that row is final "
            "as soon as it is read, and the result is insert-only",
            "the ORDER BY inside your ROW_NUMBER() decides which copy is number 1: DESC puts the last copy first; "
            "the first copy read must come first",
            _docs("dedup"),
        )
    table = _final(got)
    counts = table["event_id"].value_counts()
    twice = counts[counts > 1]
    retries = first.before - first.after
    if len(twice):
        rank = _rank_column(table)
        later = int((pd.to_numeric(table[rank], errors="coerce") > 1).sum()) if rank else 0
        kept = (
            f"; {later:,} rows of your result have {rank} 2 or more: later copies, which nothing filters out"
            if later
            else ""
        )
        hint = (
            "keep only the copy numbered 1 of each event: a WHERE on the row number, in the query around the one "
            "that numbers the rows (Flink recognises a deduplication only in that shape)"
            if later
            else "number the copies of each event with ROW_NUMBER(), partitioned by what makes two records copies "
            "of one event and ordered by a time attribute, then keep only the copy numbered 1"
        )
        return not_yet(
            f"a duplicate kept: {len(twice):,} event ids appear more than once in your result (e.g. "
            f"{_some(list(twice.index))}); the topic holds {first.before:,} records of {first.after:,} events "
            f"({retries:,} retries){kept}",
            hint,
            _docs("dedup"),
        )
    want = set(first.kept["event_id"])
    have = set(table["event_id"])
    extra = sorted(have - want, key=str)
    if extra:
        return not_yet(
            f"{len(extra):,} event ids in your result are not in the topic (e.g. {_some(extra)})",
            "select event_id as it is, from clicks",
        )
    missing = sorted(want - have, key=str)
    if missing:
        by_time = pr.deduplicate(clicks, order_by="event_timestamp", watermark=watermark)  # ORDER BY rowtime
        if have == set(by_time.kept["event_id"]):
            late = first.after - len(have)  # events, not records: a late event's retry is late too
            return passed(
                f"{first.before:,} records, {retries:,} of them retries: {len(have):,} events, each once. You ordered "
                f"by event time, so Flink also dropped {late:,} late event(s) (behind the watermark); ordered by "
                "proctime, every event is kept, late or not"
            )
        kept = first.kept.set_index("event_id")
        lost = [f"{e} ({kept.at[e, 'url']} at {_when(kept.at[e, 'event_timestamp'])})" for e in missing[:EXAMPLES]]
        hint = (
            "the PARTITION BY of your ROW_NUMBER() decides which records count as copies of one event: partition "
            "by what identifies a single event (a session, or a URL, has many events, and only one is kept)"
        )
        one_per = [c for c in ("session_id", "user_id", "url") if c in table.columns and table[c].is_unique]
        where = f" (your result has one row per {one_per[0]}: that is what it partitions by?)" if one_per else ""
        return not_yet(
            f"{len(missing):,} of the topic's {first.after:,} events are missing from your result{where}, e.g. "
            f"{_some(lost)}; each event must be kept once",
            hint,
        )
    return passed(
        f"{first.before:,} records, {retries:,} of them retries of an earlier send: {first.after:,} events, each "
        f"once, the first copy kept. Counting clicks before this would count {retries:,} clicks twice"
    )


# ---- 2. window Top-N ---------------------------------------------------------------------------------------------
TOPN_EXAMPLE = (
    "SELECT * FROM (SELECT *, ROW_NUMBER() OVER (PARTITION BY <the window> ORDER BY <the ranking>) AS rownum "
    "FROM (<the starter's clicks per URL and minute>)) WHERE <the first 3 of each window>"
)


@checker("top_urls_per_minute")
def check_top_urls_per_minute(sql: object, streams: object) -> Feedback:
    """The 3 busiest URLs of each one-minute tumbling window, with their clicks (a window Top-N)."""
    bad = _ask(sql, streams, "check_top_urls_per_minute", TOPN_EXAMPLE)
    if bad is not None:
        return bad
    return grade_top_urls_per_minute(_preview(sql, streams, "topn"), streams.clicks, streams.watermark)  # type: ignore[union-attr,arg-type]


def grade_top_urls_per_minute(
    got: pd.DataFrame, clicks: pd.DataFrame, watermark: pr.Watermark | None = pr.FLINK
) -> Feedback:
    got = _columns(_frame(got), "window_start", "window_end", "url")
    if got.empty:
        return not_yet("your query returned no rows", TOPN_EXAMPLE)
    n_up = _updating(got)
    if n_up:
        return not_yet(
            f"your result updates its rows ({n_up:,} -U/+U rows): a Top-N that is not per window ranks the whole "
            "stream again with every click. Rank inside each window: its result is final when the window fires",
            "rank inside each window: the window's columns go in the ROW_NUMBER()'s PARTITION BY, over the "
            "starter's one-minute window aggregation",
            _docs("topn"),
        )
    for c in ("window_start", "window_end", "url"):
        if c not in got.columns:
            return not_yet(f"select {c}: each row says which window and URL it ranks", TOPN_EXAMPLE)
    count = _count_column(got, "clicks", "cnt", "count")
    if count is None:
        return not_yet("select each URL's clicks in the window: COUNT(*) AS clicks", TOPN_EXAMPLE)
    start, end = _to_ms(got["window_start"]), _to_ms(got["window_end"])
    sizes = sorted({int(x) for x in (end - start).dropna()})
    if sizes != [MINUTE_MS]:
        said = ", ".join(f"{s / 1000:g} s" for s in sizes[:3]) or "unreadable"
        return not_yet(
            f"your windows are {said} long, not one minute",
            "keep the starter's window: its TUMBLE is one minute long",
        )
    act = pd.DataFrame({"window_start": start.astype("int64"), "url": got["url"], "clicks": got[count]})
    ref = pr.window_top_n(clicks, n=TOP_N, size_ms=MINUTE_MS, by="url", watermark=watermark)
    problems = [_window_times(p) for p in pr.accepts_top_n(ref, act, n=TOP_N)]
    if problems:
        per_window = act.groupby("window_start").size()
        hints = []
        rank = _rank_column(got)
        if (per_window > TOP_N).any():
            hints.append(
                f"keep the first {TOP_N} of each window: your rank ({rank}) goes up to "
                f"{int(pd.to_numeric(got[rank], errors='coerce').max())}; filter on it in the query around the one "
                "that computes it"
                if rank
                else f"your result has no rank: number the URLs of each window with ROW_NUMBER() (the window in its "
                f"PARTITION BY), then keep the first {TOP_N}"
            )
        if rank and any("not among the top" in p or "left out" in p for p in problems):  # a ranking, the wrong one
            hints.append(
                "rank by clicks, busiest first: check what the ORDER BY of your ROW_NUMBER() sorts by, and in which "
                "direction (ascending, unless it says otherwise)"
            )
        if any(" clicks, not " in p for p in problems):
            hints.append("count every click of the URL in the window: COUNT(*), grouped by window and url")
        return not_yet(
            f"{len(problems)} problem(s) in {act['window_start'].nunique()} windows: {_some(problems)}",
            *(hints or [TOPN_EXAMPLE]),
            _docs("topn"),
        )
    late = int(ref["late"].sum()) if "late" in ref.columns else 0
    return passed(
        f"the {TOP_N} busiest URLs of each of {ref['window_start'].nunique()} one-minute windows, with their clicks"
        + (f" (Flink dropped {late} late click(s): their windows had fired)" if late else "")
        + ". Ties may come in any order: ROW_NUMBER picks one"
    )


# ---- 3. session windows ------------------------------------------------------------------------------------------
SESSION_EXAMPLE = (
    "SELECT session_id, window_start, window_end, COUNT(*) AS clicks, ... AS length_s "
    "FROM TABLE(SESSION(TABLE clicks PARTITION BY <whose sessions>, DESCRIPTOR(<a time attribute>), <the gap>)) "
    "GROUP BY <the key and the window's bounds>"
)


@checker("session_lengths")
def check_session_lengths(sql: object, streams: object) -> Feedback:
    """One row per session window (gap: one minute): session_id, window_start, window_end, clicks, length_s."""
    bad = _ask(sql, streams, "check_session_lengths", SESSION_EXAMPLE)
    if bad is not None:
        return bad
    return grade_session_lengths(_preview(sql, streams, "sessions"), streams.clicks, streams.watermark)  # type: ignore[union-attr,arg-type]


def grade_session_lengths(
    got: pd.DataFrame, clicks: pd.DataFrame, watermark: pr.Watermark | None = pr.FLINK
) -> Feedback:
    got = _columns(_frame(got), "session_id", "window_start", "window_end")
    if got.empty:
        return not_yet("your query returned no rows", SESSION_EXAMPLE)
    n_up = _updating(got)
    if n_up:
        return not_yet(
            f"your result updates its rows ({n_up:,} -U/+U rows): a GROUP BY without a window keeps counting "
            "forever, and a session that paused stays one row. A SESSION window closes after a minute without a "
            "click, and its row is final",
            "read clicks through the SESSION windowing TVF (in FROM, wrapped in TABLE(...)): partitioned by whose "
            "sessions they are, with the gap as its last argument; then group by that key and the window's bounds",
            _docs("session"),
        )
    for c in ("session_id", "window_start", "window_end"):
        if c not in got.columns:
            return not_yet(f"select {c}: a row per session window says whose window it is and when", SESSION_EXAMPLE)
    length = next((c for c in got.columns if any(w in str(c).lower() for w in ("length", "duration"))), None)
    count = _count_column(got, "clicks", "cnt", "count", skip=(length,) if length else ())
    if count is None:
        return not_yet("select the clicks of each session: COUNT(*) AS clicks", SESSION_EXAMPLE)
    key = ["session_id", "window_start", "window_end"]
    act = pd.DataFrame(
        {
            "session_id": got["session_id"],
            "window_start": _to_ms(got["window_start"]).astype("int64"),
            "window_end": _to_ms(got["window_end"]).astype("int64"),
            "clicks": pd.to_numeric(got[count], errors="coerce"),
        }
    )
    ref = pr.session_windows(clicks, gap_ms=SESSION_GAP_MS, watermark=watermark)
    ref = ref[ref["fires"] != "no"]
    if act.duplicated(key).any():
        twice = act[act.duplicated(key, keep=False)].drop_duplicates(key)
        e = twice.iloc[0]
        kind = _kind_column(got)
        more = [c for c in got.columns if c not in (*key, count, length, kind)]
        why = (
            f": your result also has {', '.join(map(str, more))}, and each of its values is a row of its own"
            if more
            else ""
        )
        return not_yet(
            f"{len(twice):,} session windows have more than one row in your result (e.g. {e['session_id']}'s from "
            f"{_when(e['window_start'])} to {_when(e['window_end'])}){why}",
            "one row per session window: group by the SESSION's partition key and the window's start and end, "
            "and by nothing else",
        )
    gaps = (act["window_end"] - act["window_start"])[act["clicks"] == 1]  # a one-click session is as long as the gap
    gap = int(gaps.mode().iloc[0]) if len(gaps) else None
    if gap is not None and gap != SESSION_GAP_MS:
        joined_or_split = "splits sessions a reader would call one" if gap < SESSION_GAP_MS else "joins sessions"
        return not_yet(
            f"your sessions end {gap / 1000:g} s after their last click: a gap of {gap / 1000:g} s, not one minute, "
            f"which {joined_or_split}",
            "the gap is SESSION's last argument, an INTERVAL: check its number and its unit against the "
            "exercise's gap of one minute",
            _docs("session"),
        )
    merged = ref[[*key, "clicks", "ambiguous"]].merge(act, on=key, how="outer", suffixes=("", "_got"), indicator=True)
    bad_sessions = set(merged.loc[merged["_merge"] != "both", "session_id"])
    both = merged[merged["_merge"] == "both"]
    bad_sessions |= set(both.loc[both["clicks"] != both["clicks_got"], "session_id"])
    unsure = set(ref.loc[ref["ambiguous"].astype(bool), "session_id"])
    bad_sessions -= unsure
    if bad_sessions:
        pick = sorted(bad_sessions, key=str)[:20]  # diff_rows names the reason; a few sessions are enough
        d = pr.diff_rows(ref[ref["session_id"].isin(pick)], act[act["session_id"].isin(pick)], key)
        reasons = [f"{r.session_id}: {r.reason or r.problem}" for r in d.itertuples() if r.reason or r.problem]
        reasons = list(dict.fromkeys(reasons))
        split = sum("split" in r for r in reasons)
        joined = sum("joined" in r for r in reasons)
        hint = (
            "the PARTITION BY inside SESSION(...) says whose clicks form a session: without it, or with another "
            "column, sessions of different visitors are joined, or one visit's clicks split"
            if split or joined
            else "count every click of the session window: COUNT(*), grouped by the window's key and bounds"
        )
        return not_yet(
            f"{len(bad_sessions):,} of {ref['session_id'].nunique():,} sessions differ from the topic's, e.g. "
            f"{_some(reasons)}",
            hint,
        )
    if length is None:
        return not_yet(
            "your session windows are right; now add each session's length, from its first to its last click, in "
            "seconds (length_s)",
            "window_start is the first click's time, but window_end is the last click's time plus the gap: "
            "measure between the two in seconds with a temporal function, and leave out what is not the session's",
            _docs("temporal"),
        )
    want = (act["window_end"] - act["window_start"] - SESSION_GAP_MS) / 1000
    said = pd.to_numeric(got[length], errors="coerce")
    off = (said - want).abs() > 1
    if off.any():
        ahead = (said - want)[off]
        ratio = (said / want)[off & (want > 0)]
        why = (
            "it includes the gap: window_end is the last click plus the gap"
            if ((ahead - SESSION_GAP_MS / 1000).abs() <= 1).all()
            else "they look like milliseconds: give it in seconds"
            if len(ratio) and ((ratio - 1000).abs() <= 10).all()
            else "give it in seconds, from the first click to the last"
        )
        rows = [
            f"{s}: {v:g} s, not {w:g} s" for s, v, w in zip(got["session_id"][off], said[off], want[off], strict=True)
        ]
        return not_yet(f"{int(off.sum()):,} session lengths differ ({_some(rows)}): {why}")
    split = int(act.loc[act["session_id"].duplicated(), "session_id"].nunique())
    # the medians are of whole sessions: a window the stream's start or end may have cut (the reference's
    # `partial`) is a row like any other above, but its length and clicks are not a session's
    cut = act.merge(ref[[*key, "partial"]], on=key, how="left")["partial"].fillna(False).astype(bool).to_numpy()
    whole = ~cut
    if not whole.any():  # a short stream: every window may be cut, the medians are of them all
        whole, note = cut, f" (all {len(act):,} windows may be cut by the stream's start or end)"
    elif cut.any():
        note = f" (of the {int(whole.sum()):,} windows the stream's start or end did not cut; {int(cut.sum()):,} did)"
    else:
        note = ""
    medians = (
        f"Median length {float(want[whole].median()):.0f} s, median {float(act['clicks'][whole].median()):.0f} "
        f"clicks{note}"
    )
    return passed(
        f"{len(act):,} session windows of {act['session_id'].nunique():,} sessions; {split} sessions are two windows "
        f"or more (a pause longer than the gap, or a late click). {medians}"
    )


# ---- 4. interval join -------------------------------------------------------------------------------------------
JOIN_EXAMPLE = (
    "SELECT c.session_id, c.event_timestamp AS checkout_ms, o.order_id, o.event_timestamp AS order_ms "
    "FROM clicks AS c [LEFT] JOIN orders AS o ON o.session_id = c.session_id AND <a bound on both sides of "
    "o.rowtime> WHERE c.url = '/checkout'"
)


@checker("checkout_conversion")
def check_checkout_conversion(sql: object, streams: object) -> Feedback:
    """Every checkout click with the order that confirmed it within 10 minutes (NULL when none): a LEFT interval
    join; the conversion rate is the share of checkouts with an order."""
    bad = _ask(sql, streams, "check_checkout_conversion", JOIN_EXAMPLE)
    if bad is not None:
        return bad
    try:
        got = _preview(sql, streams, "conversion")
    except JobError as e:
        # Flink refuses `c.event_timestamp + INTERVAL ...` (BIGINT + INTERVAL): say what the bound must be on,
        # with Flink's words, instead of the validator's message alone. The lab's failures go on to `checker`.
        if lab_cause(e) is None and _time_bound(sql) == "plain":
            return _plain_time_bound(
                sql, flink_said=_first_lines(re.sub(r"^your SQL for \S+ failed: ", "", e.message), 1)
            )
        raise
    return grade_checkout_conversion(got, streams.clicks, streams.orders, streams.watermark, sql=sql)  # type: ignore[union-attr,arg-type]


_JOIN_ON = re.compile(r"\bON\b", re.I)


def _time_bound(sql: object) -> str | None:
    """What the join's condition (the SQL after its first ON, a WHERE included) bounds time on: "rowtime" when it
    names a time attribute (rowtime, proctime), "plain" when it names only the raw `event_timestamp` (a BIGINT of
    epoch milliseconds), None when neither (no time bound, or no ON). Read from the text: the preview's rows can show
    that a join is a regular one (it retracts), not why."""
    if not isinstance(sql, str):
        return None
    m = _JOIN_ON.search(_sql_body(sql))
    if m is None:
        return None
    condition = _sql_body(sql)[m.end() :]
    if re.search(r"\b(rowtime|proctime)\b", condition, re.I):
        return "rowtime"
    if re.search(r"\bevent_timestamp\b", condition, re.I):
        return "plain"
    return None


_LEFT_JOIN = re.compile(r"\bLEFT\s+(?:OUTER\s+)?JOIN\s+(\w+)(?:\s+(?:AS\s+)?(?!ON\b)(\w+))?", re.I)
_WHERE = re.compile(r"\bWHERE\b(.*?)(?=\bGROUP\s+BY\b|\bORDER\s+BY\b|\bHAVING\b|\)|\Z)", re.I | re.S)


def _right_side_in_where(sql: object) -> list[str]:
    """The right side's columns (`o.rowtime`, `orders.order_id`) that a LEFT JOIN's WHERE puts a condition on, in
    the order they come: such a condition is NULL, so false, on a row without a partner, and the WHERE drops exactly
    the rows the LEFT JOIN kept (Flink then plans an inner join). `IS NULL` tests are left out: they keep those
    rows. [] when the SQL has no LEFT JOIN or its WHERE is on the left side only."""
    if not isinstance(sql, str):
        return []
    body = _sql_body(sql)
    m = _LEFT_JOIN.search(body)
    if m is None:
        return []
    names = {m.group(1).lower(), (m.group(2) or m.group(1)).lower()}
    seen: list[str] = []
    for where in _WHERE.finditer(body, m.end()):
        condition = re.sub(r"\b\w+\.\w+\s+IS\s+NULL\b", "", where.group(1), flags=re.I)
        for q, col in re.findall(r"\b(\w+)\.(\w+)\b", condition):
            if q.lower() in names and f"{q}.{col}" not in seen:
                seen.append(f"{q}.{col}")
    return seen


def _plain_time_bound(sql: str, n_up: int = 0, flink_said: str = "") -> Feedback:
    """The "not yet" for a join bounded on `event_timestamp` instead of the time attributes: what Flink makes of it
    (a regular join, or a type error for BIGINT + INTERVAL) and the units (milliseconds, not an INTERVAL)."""
    added = re.search(r"event_timestamp\s*\+\s*([\d_]+)\b", _sql_body(sql), re.I)
    n = int(added.group(1).replace("_", "")) if added else None
    units = (
        f"; your bound adds {n:,} to it: {n:,} milliseconds ({n / 60_000:g} min), while ten minutes are 600,000"
        if n is not None and n != WITHIN_MS
        else ""
    )
    seen = (
        f"Flink refused it ({flink_said}): "
        if flink_said
        else (f"your result retracts rows ({n_up:,} -U/+U/-D rows): " if n_up else "")
    )
    return not_yet(
        f"{seen}your join bounds time on event_timestamp, a plain BIGINT column (epoch milliseconds), not on the "
        "tables' time attributes (rowtime). Flink runs an interval join, whose state is cleaned up once the "
        "watermark passes a checkout's ten minutes, only when the bound compares time attributes; on plain columns "
        "it is a regular join, which keeps every checkout and order in state forever and takes back a checkout "
        "emitted without an order when one comes. And the units differ: event_timestamp counts milliseconds, so an "
        f"INTERVAL cannot be added to it (BIGINT + INTERVAL is a type error) and a number added to it counts "
        f"milliseconds{units}",
        "bound the tables' time attributes instead: the order's rowtime between two times relative to the "
        "checkout's rowtime, the upper one an INTERVAL later (and keep selecting c.event_timestamp AS checkout_ms "
        "as it is)",
        _docs("join"),
    )


def reference_checkouts(
    clicks: pd.DataFrame, orders: pd.DataFrame, watermark: pr.Watermark | None = pr.FLINK
) -> tuple[pd.DataFrame, pr.IntervalJoin]:
    """The reference's checkouts, one row per checkout click (a retried click counted once): session_id,
    checkout_ms, matched, order_ids, next_order_after_ms, ambiguous; and the whole IntervalJoin."""
    j = pr.interval_join(clicks, orders, within_ms=WITHIN_MS, watermark=watermark)
    c = j.checkouts
    if c.empty:
        return c.assign(order_ids=pd.Series(dtype=object)), j
    out = (
        c.groupby(["session_id", "checkout_ms"], sort=True)
        .agg(
            matched=("matched", "any"),
            order_ids=("order_ids", lambda s: sorted({o for ids in s for o in ids})),
            next_order_after_ms=("next_order_after_ms", "first"),
            ambiguous=("ambiguous", "any"),
        )
        .reset_index()
    )
    return out, j


def grade_checkout_conversion(
    got: pd.DataFrame,
    clicks: pd.DataFrame,
    orders: pd.DataFrame,
    watermark: pr.Watermark | None = pr.FLINK,
    sql: object = None,
) -> Feedback:
    """`sql` (the answer's text, when known) tells a time bound on the plain `event_timestamp` column, which the rows
    alone show only as a regular join's retractions."""
    got = _columns(_frame(got), "session_id", "checkout_ms", "checkout_time", "order_id", "order_ms")
    bound = _time_bound(sql)
    n_up = _updating(got) if not got.empty else 0
    if bound == "plain":  # never an interval join, whatever its rows: say so before anything the rows show
        return _plain_time_bound(str(sql), n_up)
    if got.empty:
        return not_yet("your query returned no rows", JOIN_EXAMPLE)
    if n_up:
        without = (
            "Flink did not take your bound as an interval join's (it must compare o.rowtime with c.rowtime, each "
            "as it is, joined by AND), so it is a regular join"
            if bound == "rowtime"
            else "without a time bound it is a regular join"
        )
        return not_yet(
            f"your join retracts rows ({n_up:,} -U/+U/-D rows): {without}, which "
            "emits a checkout without an order at once, then takes it back when an order comes, whenever that is, "
            "and keeps every row in state forever. A time bound makes it an interval join: a checkout waits ten "
            "minutes for its order, then its row is final",
            "Flink takes a bound as an interval join's only when it compares the two sides' time attributes as they "
            "are (no function around them), in conditions joined by AND"
            if bound == "rowtime"
            else "add a time bound to the join's condition: the order's rowtime bounded on both sides by the "
            "checkout's rowtime, from the checkout to ten minutes after it (an INTERVAL)",
            _docs("join"),
        )
    for c, why in (("session_id", "whose checkout it is"), ("order_id", "the order that confirmed it, NULL if none")):
        if c not in got.columns:
            return not_yet(f"select {c}: {why}", JOIN_EXAMPLE)
    when = (
        "checkout_ms" if "checkout_ms" in got.columns else ("checkout_time" if "checkout_time" in got.columns else None)
    )
    if when is None:
        return not_yet("select the checkout's time: c.event_timestamp AS checkout_ms", JOIN_EXAMPLE)
    ref, j = reference_checkouts(clicks, orders, watermark)
    rows = pd.DataFrame(
        {"session_id": got["session_id"], "checkout_ms": _to_ms(got[when]), "order_id": got["order_id"]}
    ).dropna(subset=["checkout_ms"])
    rows["checkout_ms"] = rows["checkout_ms"].astype("int64")
    problems, hints = [], []
    if "order_ms" in got.columns:
        rows["order_ms"] = _to_ms(got["order_ms"])
        paired = rows[rows["order_ms"].notna()]
        before = paired[paired["order_ms"] < paired["checkout_ms"]]
        after = paired[paired["order_ms"] > paired["checkout_ms"] + WITHIN_MS]
        if len(before):
            e = before.iloc[0]
            example = f"(e.g. session {e['session_id']}: checkout at {_when(e['checkout_ms'])}, order at {_when(e['order_ms'])})"
            if len(after):
                problems.append(
                    f"your join has no time bound: it pairs a checkout with every order of its session, "
                    f"{len(before):,} from before the checkout {example} and {len(after):,} from more than ten "
                    "minutes after it"
                )
                hints.append(
                    "bound the order's rowtime on both sides: not before the checkout's, and not more than ten "
                    "minutes after it"
                )
            else:
                problems.append(
                    f"{len(before):,} orders in your result came before their checkout {example}: your interval "
                    "points backwards; an order confirms a checkout after it"
                )
                hints.append(
                    "the interval starts at the checkout and runs ten minutes forward: check which end of your "
                    "bound is the lower one"
                )
    act = (
        rows.groupby(["session_id", "checkout_ms"], sort=True)["order_id"]
        .agg(lambda s: sorted({o for o in s if isinstance(o, str)}))
        .rename("order_ids")
        .reset_index()
    )
    act["matched"] = act["order_ids"].map(bool)
    not_checkouts = act.merge(ref[["session_id", "checkout_ms"]], how="left", indicator=True)
    not_checkouts = not_checkouts[not_checkouts["_merge"] == "left_only"]
    if len(not_checkouts) and len(not_checkouts) > len(act) // 2:
        return not_yet(
            f"{len(not_checkouts):,} of your {len(act):,} rows are no checkout click (e.g. session "
            f"{not_checkouts['session_id'].iloc[0]} at {_when(not_checkouts['checkout_ms'].iloc[0])})",
            "keep the checkout clicks only: WHERE c.url = '/checkout'",
        )
    missing = ref.merge(act[["session_id", "checkout_ms"]], how="left", indicator=True)
    missing = missing[missing["_merge"] == "left_only"]
    in_where = _right_side_in_where(sql) if len(missing) and act["matched"].all() else []
    if in_where:
        return not_yet(
            f"your query says LEFT JOIN, yet your result has only checkouts with an order: the {len(missing):,} "
            f"checkouts without one are missing. Your WHERE has a condition on the orders' side "
            f"({', '.join(in_where)}): WHERE filters after the join, and on a checkout without an order those "
            "columns are NULL, so the condition is not true and drops exactly the rows the LEFT JOIN kept (Flink "
            "then plans an inner join)",
            "with a LEFT JOIN, both the key and the time bound go in ON, the join's condition; a condition on the "
            "right side's columns in WHERE drops the unmatched rows. Keep only conditions on the checkout clicks in "
            "WHERE",
            _docs("join"),
        )
    if len(missing) and act["matched"].all():
        problems.append(
            f"your result has only checkouts with an order: the {len(missing):,} checkouts without one are missing "
            "(an inner join drops them), and the conversion rate needs them in its denominator"
        )
        hints.append(
            "keep the checkouts without an order: a LEFT JOIN keeps every row of its left side, with NULLs in the "
            "right side's columns where no partner came in the interval"
        )
    if problems:
        return not_yet("; ".join(problems), *hints, _docs("join"))
    key = ["session_id", "checkout_ms"]
    d = pr.diff_rows(ref[[*key, "matched", "next_order_after_ms", "ambiguous"]], act[[*key, "matched"]], key, WITHIN_MS)
    if len(d):
        lost = d["reason"].str.startswith("an order in the interval not joined").sum()
        late = d["reason"].str.startswith("a late order joined").sum()
        if lost >= max(2, int(ref["matched"].sum()) / 2):
            return not_yet(
                f"{lost:,} checkouts that got an order within ten minutes are unmatched in your result: does your "
                "interval run forward from the checkout, ten minutes long, on the same session?",
                "the bound compares the order's rowtime with the checkout's: from the checkout to ten minutes after "
                "it; and the join's condition pairs a checkout only with the orders of its own session",
                _docs("join"),
            )
        shown = [f"session {r.session_id} at {_when(r.checkout_ms)}: {r.reason or r.problem}" for r in d.itertuples()]
        hint = (
            "an order counts only within ten minutes after its checkout: check the upper end of your bound (its "
            "INTERVAL's number and unit)"
            if late
            else "join on the session and the ten minutes after the checkout"
        )
        return not_yet(f"{len(d):,} checkouts differ from the topic's: {_some(shown)}", hint, _docs("join"))
    rate = float(ref["matched"].mean()) if len(ref) else 0.0
    later = int((~ref["matched"] & (ref["next_order_after_ms"] > WITHIN_MS)).sum())
    return passed(
        f"{int(ref['matched'].sum()):,} of {len(ref):,} checkouts got their order within ten minutes: a conversion "
        f"rate of {rate:.1%}; {later} more got one later than that, which an interval of ten minutes rightly misses"
    )


# ---- 5. an updating result: GROUP BY without a window -------------------------------------------------------------
CHANGELOG_EXAMPLE = "your query's columns: url, and cnt (that URL's clicks so far)"


@checker("url_changelog")
def check_url_changelog(sql: object, streams: object) -> Feedback:
    """Clicks per URL so far, over the whole stream (a GROUP BY without a window): its changelog must end in the
    topic's counts, with the -U/+U pairs of an updating result."""
    bad = _ask(sql, streams, "check_url_changelog", CHANGELOG_EXAMPLE)
    if bad is not None:
        return bad
    return grade_url_changelog(_preview(sql, streams, "changelog"), streams.clicks)  # type: ignore[union-attr,arg-type]


def grade_url_changelog(got: pd.DataFrame, clicks: pd.DataFrame) -> Feedback:
    got = _columns(_frame(got), "url")
    log, final = pr.group_by_changelog(clicks, by="url")
    if got.empty:
        return not_yet(
            f"your query returned no rows; the topic holds {int(final['cnt'].sum()):,} clicks on {len(final)} URLs",
            f"the result has a row for each of those {len(final)} URLs, updated with every click: is a WHERE (or "
            "HAVING) dropping every row?",
        )
    if "url" not in got.columns:
        return not_yet("select url: one count per URL", "the exercise's columns: url and cnt, one row per URL")
    count = _count_column(got, "cnt", "clicks", "count")
    if count is None:
        return not_yet("select each URL's clicks so far: COUNT(*) AS cnt")
    if not _updating(got):
        windowed = [c for c in got.columns if str(c).startswith("window_")]
        return not_yet(
            "your result only inserts rows (+I), it never updates one"
            + (
                f" ({', '.join(windowed)}: a window's count is final once the window fires, so nothing is updated)"
                if windowed
                else ""
            )
            + ". The exercise asks for each URL's count so far, over the whole stream: that count changes with every "
            "click, and Flink says so with -U (the old row) and +U (the new one)",
            "the window comes from the windowing TVF in FROM: read the table itself instead, and take the window's "
            "columns out of every clause that still names them"
            if windowed
            else "a count so far updates only when it is an aggregate per URL over the whole stream, with no window",
            _docs("changelog"),
        )
    log_got = pd.DataFrame({"op": _ops(got), "url": got["url"], "cnt": pd.to_numeric(got[count], errors="coerce")})
    table, problems = pr.replay_changelog(log_got, by="url")
    if problems:
        return not_yet(f"your changelog does not add up: {_some(problems, 2)}")
    both = final.merge(table, on="url", how="outer", suffixes=("", "_got"))
    wrong = both[both["cnt"].fillna(-1) != both["cnt_got"].fillna(-1)]
    if len(wrong):
        shown = [
            f"{r.url}: {'nothing' if pd.isna(r.cnt_got) else int(r.cnt_got)}, the topic has "
            f"{'none' if pd.isna(r.cnt) else int(r.cnt)}"
            for r in wrong.itertuples()
        ]
        return not_yet(
            f"{len(wrong)} of {len(final)} URLs end with another count than their clicks: {_some(shown)}",
            "COUNT(*) counts every click of the URL (the retries are clicks too: this count does not deduplicate)",
        )
    return passed(
        f"{len(got):,} changelog rows for {int(final['cnt'].sum()):,} clicks on {len(final)} URLs: a +I for each "
        "URL's first click, then a -U (the old count) and a +U (the new one) for every other; applied in order, "
        "they leave one row per URL with its count"
    )


#: the demo of section 6: the running total of every order, an updating result with one key (notebook 10's cell
#: `demo = changelog_demo(streams)`)
CHANGELOG_DEMO_SQL = "SELECT COUNT(*) AS orders, SUM(amount) AS revenue FROM orders"
CHANGELOG_DEMO_TIMEOUT_S = 180.0  # PatternStreams.preview's own default, as the cell used it


def changelog_demo(streams: PatternStreams, timeout: float = CHANGELOG_DEMO_TIMEOUT_S) -> pd.DataFrame | None:
    """The changelog of the running total of all orders (`CHANGELOG_DEMO_SQL`), previewed over the notebook's
    `orders` (streams.preview, name "total"): one row per change, its kind in `op`.

    The query is the lab's own, so whatever makes it fail is the lab's problem (Kafka or Java away, a preview that
    timed out, a job error): this shows what failed and what to do, in the amber "the lab, not your answer" box the
    checkers use, and returns None, never raising; check_changelog_rows(prediction, None) then says the demo did not
    run. A preview cut short (`timeout`, in seconds) returns the rows it had, with `attrs["partial"]` True, and says
    so: the checker does not grade a prediction on part of the changelog."""
    from labkit.jobs.patterns import PatternStreams

    if not isinstance(streams, PatternStreams):
        fb = lab_problem(
            f"the demo needs the notebook's streams, not a {type(streams).__name__}: run the setup cell (streams = "
            "PatternStreams.produce(...)) first, then demo = changelog_demo(streams)"
        )
    elif streams.orders is None or len(streams.orders) == 0:
        fb = lab_problem(
            f"the notebook's topic {streams.orders_topic} held no orders when it was read, so the demo has nothing to "
            "total. Run the setup cell again (it produces the orders and reads them back), then this one."
        )
    else:
        try:
            _kafka_reachable(streams.settings)
            with talking_to(f"the demo's preview (a local Flink run reading Kafka at {streams.settings.kafka})"):
                demo = streams.preview(CHANGELOG_DEMO_SQL, name="total", timeout_s=timeout)
        except Exception as e:  # the lab's query: every failure is the lab's, shown, never raised
            fb = feedback_for(e)
            if not fb.lab_problem:
                said = getattr(e, "message", None) or str(e)
                fb = lab_problem(
                    f"the demo's preview failed ({type(e).__name__}: {_first_lines(said, 1)}); its query is the "
                    "lab's own, so this is the lab, not you. Run this cell again; if it fails again, `labkit doctor` "
                    "and `labkit status` say what is wrong."
                )
        else:
            if not isinstance(demo, pd.DataFrame) or "op" not in demo.columns:
                fb = lab_problem(
                    f"the demo's preview returned no changelog (a {type(demo).__name__} without row kinds): the lab's "
                    "preview is broken, not you. Run this cell again; `labkit doctor` checks the lab's setup."
                )
            else:
                if demo.attrs.get("partial"):
                    _show(
                        lab_problem(
                            f"the demo's preview stopped after {timeout:g} s with part of the changelog "
                            f"({len(demo):,} rows): the machine is busy. Run this cell again (or give it longer: "
                            "changelog_demo(streams, timeout=...)); your prediction is not graded on part of the "
                            "changelog.",
                        ),
                    )
                return demo
    _show(fb)
    return None


def _show(fb: Feedback) -> None:
    """Show `fb` in the notebook (its HTML box), or print it outside IPython."""
    fb.exercise = fb.exercise or "changelog_demo"
    try:
        from IPython.display import display
    except ImportError:
        print(repr(fb))
        return
    display(fb)


@checker("changelog_rows")
def check_changelog_rows(prediction: object, demo: object, settings: Any = None) -> Feedback:
    """The prediction of how many rows the running total of orders emits (the demo's changelog), graded as
    recorded before the demo ran (labkit.exercises.predictions).

    The demo's count is graded only when it is the whole changelog: a demo that did not run (`changelog_demo` gave
    None) or stopped early (`attrs["partial"]`) is the lab's shortfall, said so, and the prediction is not judged."""
    from labkit.exercises import predictions

    if demo is None:
        return lab_problem(
            "the demo did not run (its preview failed: the message under the demo cell says why), so there is no "
            "changelog to grade your prediction on; it is not judged. Run the demo cell again (demo = "
            "changelog_demo(streams)), then this one."
        )
    if not isinstance(demo, pd.DataFrame) or "op" not in demo.columns:
        return not_yet(
            "run the demo cell first: it previews the running total of orders and returns its changelog",
            "demo = changelog_demo(streams), then check_changelog_rows(prediction, demo)",
        )
    ops = demo["op"].astype(str)
    seen = int(ops.isin(["+I", "+U"]).sum())  # one +I or +U per order read
    if demo.attrs.get("partial"):
        return lab_problem(
            f"the demo's preview stopped before it had read every order (it had {len(demo):,} changelog rows, for "
            f"{seen:,} orders, when it stopped), so that count is not the whole changelog and your prediction is not "
            "judged on it. Run the demo cell again (the machine was busy), then this one."
        )
    if demo.empty:
        return lab_problem(
            "the demo's changelog is empty: the orders topic held no orders when it ran. Run the setup cell again "
            "(it produces the orders), then the demo cell, then this one."
        )
    graded, note = predictions.graded_prediction("changelog_rows", predictions._normal(prediction), demo, settings)
    if graded is predictions.UNREADABLE:
        return not_yet(note, "record it again with predictions.record('changelog_rows', ...) and run the demo again")
    v = _number(graded)
    if v is None or not math.isfinite(v):
        return not_yet(f"{note}give a number: how many rows the changelog has".strip())
    actual = len(demo)
    orders = seen
    if int(v) != v or int(v) != actual:
        hint = (
            "each order after the first updates the total: one row out (-U), one row in (+U)"
            if int(v) in (orders, orders + 1)
            else "one +I for the first order, then two rows for each later one"
        )
        return not_yet(f"{note}the changelog had {actual:,} rows for {orders:,} orders, not {v:g}", hint)
    return passed(
        f"{note}{actual:,} rows for {orders:,} orders: 2 × {orders:,} − 1. A GROUP BY without a window emits every "
        "change to its result; a sink that upserts by key keeps only the last"
    )


# ---- 6. MATCH_RECOGNIZE -------------------------------------------------------------------------------------------
FUNNEL_EXAMPLE = (
    "SELECT * FROM clicks MATCH_RECOGNIZE (PARTITION BY ... ORDER BY rowtime MEASURES ... "
    "ONE ROW PER MATCH AFTER MATCH SKIP PAST LAST ROW PATTERN (...) DEFINE ...)"
)
FUNNEL_STEPS = (
    "three steps, one right after the other: one or more product pages, one or more cart pages (/cart or "
    "/cart/items), the checkout; each step a variable in PATTERN, with its condition on url in DEFINE, and a "
    "quantifier where a step may repeat"
)


@checker("checkout_funnel")
def check_checkout_funnel(sql: object, streams: object) -> Feedback:
    """A row per funnel a session went through: one or more product pages, then one or more cart pages, then
    the checkout, one right after the other (MATCH_RECOGNIZE)."""
    bad = _ask(sql, streams, "check_checkout_funnel", FUNNEL_EXAMPLE)
    if bad is not None:
        return bad
    return grade_checkout_funnel(_preview(sql, streams, "funnel"), streams.clicks, streams.watermark)  # type: ignore[union-attr,arg-type]


def _steps(clicks: pd.DataFrame, sessions: list, spans: dict | None = None) -> dict:
    """Per session: its clicks' steps in event-time order as a word (p product, c cart, k checkout, . other);
    with `spans` (session → (first, last) event time), only the clicks in that span (a reference's match)."""
    df = pr.frame(clicks)
    df = df[df["session_id"].isin(sessions)].sort_values(["session_id", "event_timestamp", "arrival"], kind="stable")
    if spans:
        lo = df["session_id"].map({k: v[0] for k, v in spans.items()})
        hi = df["session_id"].map({k: v[1] for k, v in spans.items()})
        df = df[(df["event_timestamp"] >= lo) & (df["event_timestamp"] <= hi)]
    rx = [(ch, pr._like(p)) for ch, p in zip("pck", pr.FUNNEL, strict=True)]

    def letter(u: object) -> str:
        return next((ch for ch, r in rx if isinstance(u, str) and r.match(u)), ".")

    return {k: "".join(letter(u) for u in g["url"]) for k, g in df.groupby("session_id", sort=False)}


def grade_checkout_funnel(
    got: pd.DataFrame, clicks: pd.DataFrame, watermark: pr.Watermark | None = pr.FLINK
) -> Feedback:
    got = _columns(_frame(got), "session_id")
    ref = pr.funnel_sessions(clicks, watermark=watermark)
    if got.empty:
        return not_yet(
            f"your query found no funnel; {len(ref):,} sessions of this stream went product → cart → checkout",
            FUNNEL_STEPS,
            _docs("match"),
        )
    if "session_id" not in got.columns:
        return not_yet(
            "select session_id: a funnel is one session's clicks (PARTITION BY session_id, and SELECT * shows it)",
            FUNNEL_EXAMPLE,
        )
    table = _final(got)
    have = table.groupby("session_id").size()
    want = ref.set_index("session_id")["matches"]
    unsure = set(ref.loc[ref["ambiguous"].astype(bool), "session_id"])
    extra = sorted(set(have.index) - set(want.index) - unsure, key=str)
    missing = sorted(set(want.index) - set(have.index) - unsure, key=str)
    both = sorted((set(have.index) & set(want.index)) - unsure, key=str)
    counts = [s for s in both if int(have[s]) != int(want[s])]
    if not (extra or missing or counts):
        multi = int((want > 1).sum())
        return passed(
            f"{len(want):,} sessions went product → cart → checkout, one page right after the other"
            + (f"; {multi} of them twice or more (AFTER MATCH SKIP PAST LAST ROW finds the next)" if multi else "")
        )
    if len(want) >= 10 and len(set(have.index) & set(want.index)) <= 0.1 * len(want):
        return not_yet(
            f"your pattern matched {len(table):,} time(s) in {len(have):,} sessions; the clicks hold {len(want):,} "
            "sessions that went product → cart → checkout, one page right after the other: is a step missing from "
            "your PATTERN, or a quantifier?",
            FUNNEL_STEPS,
            _docs("match"),
        )
    words = _steps(clicks, extra + missing + counts)
    spans = ref.set_index("session_id")[["match_start", "match_end"]]
    matched_words = _steps(clicks, missing, {k: tuple(spans.loc[k]) for k in missing})
    problems, hints = [], []
    if extra:
        relaxed = set(pr.funnel_sessions(clicks, contiguous=False, watermark=watermark)["session_id"])
        between = [s for s in extra if s in relaxed]
        no_cart = [
            s for s in extra if "pk" in words.get(s, "") or ("c" not in words.get(s, "") and "k" in words.get(s, ""))
        ]
        if between and len(between) >= len(extra) / 2:
            problems.append(
                f"{len(extra)} sessions matched with other pages between the steps (e.g. {between[0]}: "
                f"{_word(words.get(between[0], ''))})"
            )
            hints.append(
                "consecutive variables in PATTERN match consecutive rows: a variable between the steps that matches "
                "any page (one without a condition in DEFINE) lets other pages in; the funnel has none between them"
            )
        elif no_cart:
            problems.append(
                f"{len(extra)} sessions matched without every step: a funnel step missing (e.g. {no_cart[0]}: "
                f"{_word(words.get(no_cart[0], ''))})"
            )
            hints.append(
                "three steps: a product page, a cart page, the checkout; each a variable in PATTERN, with its "
                "condition in DEFINE"
            )
        else:
            problems.append(f"{len(extra)} sessions matched that never went product → cart → checkout: {_some(extra)}")
            hints.append("one session at a time: PARTITION BY session_id, ORDER BY rowtime")
    if missing:
        repeated = [s for s in missing if "pp" in matched_words.get(s, "") or "cc" in matched_words.get(s, "")]
        if repeated:
            problems.append(
                f"{len(missing)} funnels missing, where a step came twice in a row (e.g. {repeated[0]}: "
                f"{_word(matched_words.get(repeated[0], ''))})"
            )
            hints.append(
                "a step may come more than once in a row (two product pages, or /cart/items then /cart): a variable "
                "matches one row unless a quantifier on it in PATTERN allows more"
            )
        else:
            s = missing[0]
            pages = _pages(clicks, s, tuple(spans.loc[s]))
            problems.append(f"{len(missing)} sessions' funnels missing: {_some(missing)} ({s} went {pages})")
            hints.append(
                "check each DEFINE condition against those pages: every page of a step must meet its variable's "
                "condition (a cart page is /cart or /cart/items)"
            )
    if counts:
        s = counts[0]
        problems.append(
            f"{len(counts)} sessions with another number of funnels (e.g. {s}: {int(have[s])} in your result, "
            f"{int(want[s])} in its clicks: {_word(words.get(s, ''))})"
        )
        hints.append("ONE ROW PER MATCH, and AFTER MATCH SKIP PAST LAST ROW to look for the next")
    return not_yet("; ".join(problems), *dict.fromkeys(hints), _docs("match"))


def _pages(clicks: pd.DataFrame, session: object, span: tuple) -> str:
    """The URLs of `session`'s clicks from span[0] to span[1] (event time), in order: a funnel the answer missed."""
    df = pr.frame(clicks)
    df = df[(df["session_id"] == session) & df["event_timestamp"].between(*span)]
    urls = df.sort_values(["event_timestamp", "arrival"], kind="stable")["url"].tolist()
    return " → ".join(map(str, urls[:8])) + (" → …" if len(urls) > 8 else "")


def _word(word: str) -> str:
    """A session's steps, readable: product → cart → checkout (· for another page)."""
    names = {"p": "product", "c": "cart", "k": "checkout", ".": "other"}
    return " → ".join(names[ch] for ch in word[:12]) + (" → …" if len(word) > 12 else "")
