"""The checkers of every exercise in the course, in notebook order.

Each grades an attendee's answer against the truth of *their* run (the producer's ledger, the real InfluxDB,
a reference computed over the same events) and says specifically what is missing. Every checker is wrapped by
`feedback.checker`, so a wrong answer of any shape gives "not yet" feedback with the real reason, never an
exception; and a lab that failed (a service that did not answer, a preview that timed out) gives the lab's
feedback ("the lab, not your answer" with what to do), never "not yet".

How they stay fair:
* an answer's shape is checked before any service is asked, so a wrong type says so even with the lab down;
* every call to a service is inside `talking_to(service, address)`, which names the service when it fails;
* harmless differences pass: whitespace around a string, the case of a metric's name (URLs: their case only
  when that still names one page), a whole number given as 4.0 or "4" (but not 4.9), Flink's DECIMAL columns;
* the grading itself is a pure function of DataFrames (`_grade_*`), unit-tested without a stack.
"""

from __future__ import annotations

import math
import numbers
import re
import socket
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import pandas as pd

from labkit.exercises.feedback import (
    Feedback,
    LabUnavailable,
    checker,
    lab_cause,
    lab_problem,
    not_yet,
    passed,
    talking_to,
)
from labkit.exercises.questions import QUESTIONS, Question, ask, check_choice  # noqa: F401  (re-exported)
from labkit.timing import WINDOW_MS, WINDOW_S

if TYPE_CHECKING:
    from labkit.settings import Settings

# The job's window in Flink SQL, as the hints spell it (the length from labkit.timing)
_TUMBLE = f"TUMBLE(TABLE events, DESCRIPTOR(rowtime), INTERVAL '{WINDOW_S}' SECOND)"


# ---- shared: answers ----------------------------------------------------------------------------------------
def _text(x: object) -> str | None:
    """A string answer without the whitespace around it; None when it is not a string."""
    return x.strip() if isinstance(x, str) else None


def _number(x: object) -> float | None:
    """A number answer as a float: numbers, numpy scalars, one-element Series, and strings spelling a number
    ("0.013", " 4 "); None for anything else (bools included: True is not 1 here)."""
    if isinstance(x, bool) or x is None:
        return None
    if isinstance(x, numbers.Number):
        try:
            return float(x)  # type: ignore[arg-type]
        except (TypeError, ValueError, OverflowError):
            return None
    if isinstance(x, str):
        if "_" in x:  # "1_000" is Python syntax, not a number an attendee writes as text
            return None
        try:
            return float(x.strip())
        except ValueError:
            return None
    if hasattr(x, "item"):  # numpy scalar / one-element Series
        try:
            v = x.item()
        except (ValueError, TypeError):
            return None
        return None if isinstance(v, bool) else _number(v)
    return None


def _whole(x: object, what: str) -> tuple[int | None, str | None]:
    """A whole-number answer (4, 4.0, "4"), or why it is not one. int(4.9) is 4, and must not pass for 4."""
    v = _number(x)
    if v is None:
        return None, f"give a number: {what}" + (f" (got {type(x).__name__})" if x is not None else "")
    if not math.isfinite(v):
        return None, f"{v} is not a count: {what}"
    if v != int(v):
        return None, f"{v:g} is not a whole number: {what} (a count of things is an integer)"
    return int(v), None


def _url(answer: str, paths: set[str] | list[str]) -> str | None:
    """`answer` as one of `paths`: as given (stripped), or, since a path's case matters, by a case-insensitive
    match only when exactly one path matches that way."""
    if answer in paths:
        return answer
    same = [p for p in paths if p.casefold() == answer.casefold()]
    return same[0] if len(same) == 1 else None


def _columns(df: pd.DataFrame, *names: str) -> pd.DataFrame:
    """`df` with columns named `names` when they differ only by case or spaces ("Window_End"): Flink keeps an
    alias's case, InfluxDB a column's, and neither changes what the column holds."""
    rename = {}
    for want in names:
        if want in df.columns:
            continue
        same = [c for c in df.columns if isinstance(c, str) and c.strip().casefold() == want]
        if len(same) == 1:
            rename[same[0]] = want
    return df.rename(columns=rename) if rename else df


def _numeric(s: pd.Series) -> bool:
    """A numeric column: numbers (not booleans), or Flink DECIMAL values the preview passed on as text."""
    from labkit.jobs.custom import decimal_column

    if pd.api.types.is_bool_dtype(s):
        return False
    return pd.api.types.is_numeric_dtype(s) or decimal_column(s)


def _as_numbers(df: pd.DataFrame) -> pd.DataFrame:
    from labkit.jobs.custom import decimals_to_float

    return decimals_to_float(df.copy())


def _ms(ts: pd.Series) -> pd.Series:
    """Window ends (datetimes or strings, naive UTC or aware) as epoch milliseconds."""
    t = pd.to_datetime(ts, utc=True)
    return (t.astype("int64") // 10**6).astype("int64") if len(t) else pd.Series([], dtype="int64")


def _window_ends(ts: pd.Series) -> pd.Series:
    """Window ends as naive UTC datetime64[ns]: the preview's and the reference's must compare equal."""
    return pd.to_datetime(ts, utc=True).dt.tz_localize(None).astype("datetime64[ns]")


# ---- shared: the lab ------------------------------------------------------------------------------------------
def _settings(settings: Settings | None) -> Settings:
    from labkit.settings import get

    return settings or get()


def _kafka_reachable(settings: Settings) -> None:
    """Raise LabUnavailable unless a bootstrap server accepts a connection. A preview with Kafka down would
    start a JVM and wait a minute and a half before failing; this says so at once, and names Kafka."""
    last: OSError | None = None
    for server in settings.kafka.split(","):
        host, _, port = server.strip().rpartition(":")
        try:
            socket.create_connection((host.strip("[]"), int(port)), timeout=3).close()
            return
        except ValueError:
            raise LabUnavailable(
                f"Kafka's address {settings.kafka!r} is not host:port",
                "Fix LABKIT_KAFKA_BOOTSTRAP (or LABKIT_KAFKA_PORT), then run this cell again.",
            ) from None
        except OSError as e:
            last = e
    cause = (lab_cause(last) if last else None) or f"did not accept a connection ({last})"
    raise LabUnavailable(f"Kafka at {settings.kafka} {cause}") from last


def _not_a_metric(metric: object, example: str) -> Feedback | None:
    """A "not yet" when `metric` is not a CustomMetric, else None (callers test `is not None`: a "not yet"
    Feedback is falsy)."""
    from labkit.jobs.custom import CustomMetric

    if isinstance(metric, CustomMetric):
        return None
    if isinstance(metric, str):
        return not_yet("that is the SQL text: pass the metric made from it", f"{example}(CustomMetric('name', MY_SQL))")
    return not_yet(f"pass your CustomMetric, not a {type(metric).__name__}", f"{example}(CustomMetric('name', MY_SQL))")


def _preview(metric: Any, **kw: Any) -> pd.DataFrame:
    """The attendee's query, previewed once: Kafka is probed first, and a preview that fails for the lab's
    reasons (timeout, Kafka gone) is the lab's feedback, while a SQL error stays the answer's."""
    s = metric.settings
    _kafka_reachable(s)
    kw.setdefault("timeout_s", 180)  # a busy machine (CI) is slow to start a preview; a fast one never waits it
    with talking_to(f"the preview of your query (a local Flink run reading Kafka at {s.kafka})"):
        got = metric.preview(**kw)
        if got.attrs.get("partial"):
            from labkit.jobs.custom import PreviewTimeout

            raise PreviewTimeout(
                f"the preview stopped after {kw['timeout_s']:.0f} s with part of the result ({len(got)} rows), "
                "so your query cannot be graded on it",
                "the machine is busy: run this check again",
            )
    return _as_numbers(got)


# ---- 00 -----------------------------------------------------------------------------------------------------
STAGES = ["producer", "kafka", "flink", "influxdb", "grafana"]
_ALIASES = {"influx": "influxdb", "notebook": "grafana", "notebooks": "grafana", "dashboard": "grafana"}


@checker("pipeline_order")
def check_pipeline_order(answer: object) -> Feedback:
    if isinstance(answer, str) and re.search(r"[,>→|]", answer):  # "producer -> kafka -> ...": the same list
        answer = [a for a in re.split(r"\s*(?:,|->|→|>|\|)\s*", answer.strip()) if a]
    if not isinstance(answer, (list, tuple)) or not answer:
        return not_yet("give a list of the stages, e.g. ['producer', ...]", f"the stages are {sorted(STAGES)}")
    got = [_ALIASES.get(str(a).strip().lower(), str(a).strip().lower()) for a in answer]
    unknown = [a for a in got if a not in STAGES]
    if unknown:
        return not_yet(f"unknown stage(s) {unknown}", f"use these names: {sorted(STAGES)}")
    if len(got) != len(STAGES) or set(got) != set(STAGES):
        missing = [s for s in STAGES if s not in got]
        return not_yet(f"every stage once: missing {missing}" if missing else "every stage exactly once")
    for i, (g, want) in enumerate(zip(got, STAGES, strict=True)):
        if g != want:
            return not_yet(
                f"position {i + 1} should not be {g!r}", "follow the arrows in the picture from the producer on"
            )
    return passed("producer → Kafka → Flink → InfluxDB → Grafana/notebooks: the path of every event")


# ---- 01 -----------------------------------------------------------------------------------------------------
@checker("error_share")
def check_error_share(answer: object, df: pd.DataFrame) -> Feedback:
    v = _number(answer)
    if v is None or math.isnan(v):
        return not_yet(f"expected a number (a share between 0 and 1), got {type(answer).__name__}")
    statuses = df["http_status"]
    truth = float((statuses >= 400).mean())
    if abs(v - truth) < 1e-9:
        return passed(f"{truth:.2%} of the sampled events are 4xx or 5xx: most of them 4xx (client errors)")
    if abs(v / 100 - truth) < 1e-9:
        return not_yet("that is a percentage: give the share as a fraction (0.013, not 1.3)")
    if abs(v - float((statuses >= 500).mean())) < 1e-9:
        return not_yet("that is the 5xx share only: errors are 4xx and 5xx (http_status >= 400)")
    if abs(v - float((statuses >= 400).sum())) < 1e-9:
        return not_yet("that is the number of errors: divide by the number of events (or use .mean())")
    if abs(v - float((statuses >= 300).mean())) < 1e-9:
        return not_yet("3xx responses (redirects, not modified) are not errors: count http_status >= 400")
    if isinstance(answer, str) and abs(v - truth) < 5e-4:
        return not_yet(
            f"{answer.strip()} is the share rounded: compute it (the checker compares to the last digit)",
            "(df['http_status'] >= 400).mean()",
        )
    return not_yet(f"{v:.4g} is not the share of 4xx+5xx in `df`", "(df['http_status'] >= 400).mean()")


@checker("broken_url")
def check_broken_url(answer: object, generator: Any) -> Feedback:
    info = generator.scenario_info()
    if info is None:
        return not_yet("this generator has no scenario: build it with scenario=Scenario('not_found_storm', ...)")
    text = _text(answer)
    if not text:
        return not_yet("give the URL as a string, e.g. '/product/...'")
    paths = {e.path for e in generator.site.endpoints}
    url = _url(text, paths)
    if url is None:
        return not_yet(f"{text!r} is not a page of the site", "take the url column's value as it is")
    if url != info["target"]:
        return not_yet(
            f"{url} has some 404s, but it is not the page the storm broke",
            "compare each URL's 404 count (or share) during the storm",
        )
    return passed(f"{url} answers 404 to every request while the storm lasts: a broken link")


# ---- 02 -----------------------------------------------------------------------------------------------------
@checker("my_consumer")
def check_my_consumer(
    group: object, lag_before: pd.DataFrame | None = None, settings: Settings | None = None
) -> Feedback:
    from labkit import kafka_info

    if not isinstance(group, str) or not group.strip():
        return not_yet("set `my_group` to your consumer group's name (a string)")
    s = _settings(settings)
    _kafka_reachable(s)
    with talking_to("Kafka", s.kafka):
        after = kafka_info.lag(group, settings=s)
        if int(after["committed"].sum()) == 0 and group != group.strip():
            # "my-group " is a group of its own; the attendee most likely meant (and used) "my-group"
            group = group.strip()
            after = kafka_info.lag(group, settings=s)
    committed = int(after["committed"].sum())
    if committed == 0:
        return not_yet(
            f"group {group!r} has no committed offsets: Kafka does not know how far it read",
            "call consumer.commit() after reading (enable_auto_commit is off)",
            "and read at least one message: check that the loop runs",
        )
    if (
        isinstance(lag_before, pd.DataFrame)
        and "committed" in lag_before.columns
        and int(lag_before["committed"].sum()) >= committed
    ):
        return not_yet("your group committed nothing new since `lag_before`: read some messages and commit again")
    return passed(
        f"group {group!r} committed {committed:,} offsets over {len(after)} partitions; its lag is "
        f"{int(after['lag'].sum()):,} messages (the end offsets minus what it committed)"
    )


@checker("partition_split")
def check_partition_split(prediction: object, assignment: object, partitions: int = 4) -> Feedback:
    """The attendee's predicted split of the topic's partitions between two consumers of one group, against the
    assignment Kafka made (`kafka_info.join_group`): one row per consumer with its partition count."""
    if not isinstance(assignment, pd.DataFrame) or "count" not in assignment.columns:
        return not_yet("run the cell that starts the consumers first: it returns who got which partition")
    actual = sorted(int(n) for n in assignment["count"])
    if len(actual) < 2:
        return not_yet(
            "only one consumer joined the group, so it got every partition",
            "start a second KafkaConsumer with the same topic and the same group_id, then run the cell again",
        )
    if not isinstance(prediction, (list, tuple)) or not prediction:
        return not_yet("record your prediction first: a list with one number per consumer, like [a, b]")
    got = []
    for x in prediction:
        v, why = _whole(x, "a number of partitions")
        if why is not None:
            return not_yet(f"{x!r} in your prediction: {why}")
        got.append(v)
    if len(got) != len(actual):
        return not_yet(f"your prediction has {len(got)} numbers, for {len(actual)} consumers: one per consumer")
    if sum(got) != partitions:
        return not_yet(
            f"your prediction shares out {sum(got)} partitions; the topic has {partitions}",
            "each partition goes to exactly one member of the group: the numbers add up to the partition count",
        )
    if sorted(got) != actual:
        return not_yet(
            f"the group split them {actual}, not {sorted(got)}",
            "Kafka's assignors spread a topic's partitions as evenly as they can over the group's members",
        )
    return passed(
        f"{actual}: each partition to exactly one member, spread evenly. A third consumer would get {partitions // 3} "
        f"or more, a fifth none: members beyond the partition count idle (the same rule as Flink's source subtasks)"
    )


# ---- 03 -----------------------------------------------------------------------------------------------------
@checker("first_tumble")
def check_first_tumble(metric: Any, ledger: Any) -> Feedback:
    """The attendee's TUMBLE (events per window and status) against the scratch run's ledger."""
    bad = _not_a_metric(metric, "check_first_tumble")
    if bad is not None:
        return bad
    if not hasattr(ledger, "frame"):
        return not_yet("pass the scratch run's ledger too: check_first_tumble(metric, scratch.ledger)")
    if not _sql_body(metric.sql):  # a blank starter: say so at once, without a 20 s preview
        return not_yet(
            "your query is empty: write it from scratch",
            f"SELECT ... FROM TABLE({_TUMBLE}) GROUP BY ...",
        )
    got = _preview(metric, seconds=None, limit=10_000)
    return _grade_first_tumble(got, ledger.frame())


def _sql_body(sql: str) -> str:
    """The SQL without its comments and blanks ('' for a starter that holds only a comment)."""
    return re.sub(r"--[^\n]*|/\*.*?\*/", "", sql or "", flags=re.S).strip()


def _grade_first_tumble(got: pd.DataFrame, want: pd.DataFrame) -> Feedback:
    """`got` (the preview) against `want` (Ledger.frame(): window_end ms, status_code, expected)."""
    got = _as_numbers(_columns(got, "window_end", "window_start", "http_status"))
    if got.empty:
        return not_yet("your query returned no rows", "read from `events` and produce to the scratch topic first")
    if "window_end" not in got.columns:
        return not_yet("select window_end: each row must say which window it counts")
    if "http_status" not in got.columns:
        return not_yet("select http_status and group by it: one row per window and status")
    nums = [c for c in got.columns if c not in ("window_start", "window_end", "http_status") and _numeric(got[c])]
    if not nums:
        return not_yet("add a count: COUNT(*) AS events")
    status = pd.to_numeric(got["http_status"], errors="coerce")  # CAST(http_status AS STRING) is still the status
    got = got.assign(window_end=_ms(got["window_end"]), http_status=status)
    if got.duplicated(["window_end", "http_status"]).any():
        extra = [c for c in got.columns if c not in ("window_start", "window_end", "http_status") and c not in nums]
        return not_yet(
            "several rows for one window and status: "
            + (f"you also group by {', '.join(extra)}; " if extra else "")
            + "group by the window and http_status only",
            "GROUP BY window_start, window_end, http_status",
        )
    ends = pd.Series(sorted(got["window_end"].unique()))
    steps = ends.diff().dropna()
    if len(steps) and (steps % WINDOW_MS != 0).any():
        return not_yet(
            f"your windows end {int(steps.min() / 1000)} s apart somewhere: the windows are not {WINDOW_S} s tumbling ones",
            _TUMBLE,
        )
    if len(steps) and steps.min() > WINDOW_MS and len(ends) < len(want["window_end"].unique()) / 2:
        return not_yet(
            f"your windows are {int(steps.min() / 1000)} s long, not {WINDOW_S} s",
            f"INTERVAL '{WINDOW_S}' SECOND in the TUMBLE",
        )
    if want.empty:
        return lab_problem(
            "the scratch run's ledger has no events, so there is nothing to grade your query on. Run the cells "
            "above that produce to the scratch topic, then run this cell again."
        )
    want = want.rename(columns={"status_code": "http_status", "expected": "__want"})
    merged = want.merge(got, on=["window_end", "http_status"], how="outer")
    if merged["__want"].isna().any() or merged[nums[0]].isna().any():
        return not_yet(
            f"your rows cover {len(got)} (window, status) pairs; the producer sent {len(want)}",
            "GROUP BY window_start, window_end, http_status",
        )
    for c in nums:
        if (merged[c] == merged["__want"]).all():
            return passed(
                f"{len(got)} (window, status) counts, every one equal to what the producer sent: "
                "this is the job's http_counts query"
            )
    return not_yet(
        f"the counts differ from what the producer sent in {int((merged[nums[0]] != merged['__want']).sum())} rows",
        f"count every event of the window and status: COUNT(*), with a {WINDOW_S} s TUMBLE on rowtime",
    )


def _since(seconds: float | None) -> int | None:
    """Where the preview and the reference start reading: the same instant, on a minute boundary, so the
    attendee's query and the reference see the same records and the same (complete) windows."""
    if seconds is None:
        return None
    return int((time.time() - seconds) // 60 * 60 * 1000)


def _mostly(ok: pd.Series, share: float = 0.9) -> bool:
    """At least `share` of the rows agree. The preview and the reference read the same records and decide
    lateness alike (per Kafka partition, in order: see `_events`); the margin is for what a checker cannot
    control, records written between the preview's reading and the reference's. A wrong formula misses nearly
    every row."""
    return len(ok) > 0 and float(ok.mean()) >= share


def _agrees(got: pd.Series, ref: pd.Series) -> bool:
    """Mostly equal, over all rows and over the rows where the reference is not 0 (most URLs have no error in
    most windows: an answer that is always 0 must not pass on those)."""
    ok = _close(got, ref)
    nonzero = ref.astype(float) != 0
    return _mostly(ok) and (not nonzero.any() or _mostly(ok[nonzero]))


def _close(a: pd.Series, b: pd.Series, rel: float = 0.02) -> pd.Series:
    """Equal up to 2% (and float rounding): the noise above, far below any wrong formula's error."""
    return (a.astype(float) - b.astype(float)).abs() <= rel * b.astype(float).abs() + 1e-9


# ---- 04 -----------------------------------------------------------------------------------------------------
_KINDS = {"tag": "tag", "tags": "tag", "field": "field", "fields": "field"}


@checker("tags_or_fields")
def check_tags_or_fields(answer: object) -> Feedback:
    from labkit.exercises.solutions import SOLUTIONS

    want: dict = SOLUTIONS["tags_or_fields"]  # type: ignore[assignment]
    if not isinstance(answer, dict):
        return not_yet("give a dict: {'status_code': 'tag' or 'field', ...}")
    # " Tag", "FIELD", a key with a space: the same answer
    given = {str(k).strip().lower(): _KINDS.get(str(v).strip().lower()) for k, v in answer.items()}
    missing = [k for k in want if given.get(k) is None]
    if missing:
        return not_yet(f"say 'tag' or 'field' for {missing}")
    wrong = [k for k in want if given[k] != want[k]]
    if wrong:
        k = wrong[0]
        why = (
            "tags are what you filter and group by (indexed, few distinct values): each distinct value makes a "
            "new series"
            if want[k] == "tag"
            else "fields are the measured values: numbers that change every window, not indexed"
        )
        return not_yet(f"{len(wrong)} wrong, e.g. {k!r} is a {want[k]}", why)
    return passed(
        "tags (status_code, url, stream, reason) identify a series and are indexed; fields (count, p95) are the "
        "values. A tag with unbounded values (user_id!) would create a series per user: high cardinality"
    )


def _flux_answer(flux: object) -> str | None:
    return flux if isinstance(flux, str) and flux.strip() else None


def _flux_frame(flux: str, settings: Settings) -> pd.DataFrame:
    from labkit.influx import Influx

    with talking_to("InfluxDB", settings.influx), Influx(settings) as db:
        return db.flux(flux)


def _grade_flux(flux: object, settings: Settings | None, reference, grade, no_rows_hint: str) -> Feedback:
    """The common path of the Flux exercises: the attendee's query and the reference each read once from
    InfluxDB (a service error is the lab's), then `grade(got, reference)`."""
    if _flux_answer(flux) is None:
        return not_yet("your query is empty: write a Flux query as a string", 'from(bucket: "...") |> range(...)')
    s = _settings(settings)
    got = _flux_frame(flux, s)  # type: ignore[arg-type]
    if got.empty:
        return not_yet("your query returned no rows", no_rows_hint)
    with talking_to("InfluxDB", s.influx):
        ref = reference(s)
    return grade(got, ref)


@checker("error_pivot")
def check_error_pivot(flux: object, start: str, settings: Settings | None = None) -> Feedback:
    from labkit import influx

    return _grade_flux(
        flux,
        settings,
        lambda s: influx.error_rate(start, settings=s),
        _grade_error_pivot,
        "check range(start: ...) and the measurement name error_rate",
    )


def _grade_error_pivot(got: pd.DataFrame, ref: pd.DataFrame) -> Feedback:
    """`got` (the attendee's Flux result) against `ref` (labkit.influx.error_rate over the same range)."""
    got = _columns(got, "_time", "errors_4xx", "errors_5xx", "_field", "_value")
    if got.empty:
        return not_yet("your query returned no rows", "check range(start: ...) and the measurement name error_rate")
    cols = set(got.columns)
    if "_field" in cols and "_value" in cols:
        return not_yet("one row per field and time: pivot them into columns", 'pivot(rowKey: ["_time"], ...)')
    need = {"_time", "errors_4xx", "errors_5xx"}
    if not need <= cols:
        return not_yet(f"missing column(s) {sorted(need - cols)}", "filter both fields, then pivot on _field")
    if got.duplicated("_time").any():
        return not_yet(
            "several rows per time: other streams' windows are in the bucket too",
            'filter r.stream == "<your topic>", and pivot on rowKey: ["_time"]',
        )
    ref = ref.rename(columns={"time": "_time"})
    m = ref.merge(got, on="_time", suffixes=("__ref", ""))
    same = (m["errors_4xx"].astype(float) == m["errors_4xx__ref"].astype(float)) & (
        m["errors_5xx"].astype(float) == m["errors_5xx__ref"].astype(float)
    )
    if len(m) < len(ref) or not same.all():
        return not_yet(
            f"{int(same.sum())} of {len(ref)} windows match",
            "filter on stream too: other runs' topics are in the same bucket",
        )
    return passed(f"{len(m)} windows, errors_4xx and errors_5xx side by side: that is what pivot is for")


@checker("top_5xx_urls")
def check_top_5xx_urls(flux: object, start: str, settings: Settings | None = None) -> Feedback:
    from labkit import influx

    return _grade_flux(
        flux,
        settings,
        lambda s: influx.url_counts(start, settings=s),
        _grade_top_5xx,
        "check the range and the measurement name url_counts",
    )


def _grade_top_5xx(got: pd.DataFrame, urls: pd.DataFrame) -> Feedback:
    """`got` (the attendee's Flux result) against `urls` (labkit.influx.url_counts over the same range)."""
    got = _columns(got, "url", "_value")
    if got.empty:
        return not_yet("your query returned no rows", "check the range and the measurement name url_counts")
    if "url" not in got.columns or "_value" not in got.columns:
        return not_yet("the result needs a url column and a _value column", 'group(columns: ["url"]) |> sum()')
    if not _numeric(got["_value"]):
        return not_yet("_value must be the 5xx count per URL (a number)", 'filter r._field == "errors_5xx", then sum()')
    ref = urls.groupby("url")["errors_5xx"].sum().sort_values(ascending=False)
    if len(got) != min(5, len(ref)):
        return not_yet(f"expected 5 rows, got {len(got)}", "group() then sort(desc: true) |> limit(n: 5)")
    vals = [float(v) for v in got["_value"]]
    if any(abs(v - float(ref.get(u, -1))) > 1e-9 for u, v in zip(got["url"], vals, strict=True)):
        errors = urls.groupby("url")["errors"].sum() if "errors" in urls.columns else pd.Series(dtype=float)
        if any(abs(v - float(errors.get(u, -1))) < 1e-9 for u, v in zip(got["url"], vals, strict=True)):
            return not_yet("those are all errors (4xx+5xx): filter the field errors_5xx")
        return not_yet("the per-URL sums differ from the metric", 'filter r._field == "errors_5xx", then sum() per url')
    if sorted(vals, reverse=True) != list(ref.head(5).values.astype(float)) or vals != sorted(vals, reverse=True):
        return not_yet("not the 5 largest, largest first", 'group() |> sort(columns: ["_value"], desc: true)')
    return passed(f"the top 5 by 5xx: {', '.join(got['url'])}")


# ---- 05 -----------------------------------------------------------------------------------------------------
# aggregateWindow(...) with up to two levels of parentheses inside (fn: (tables=<-, column) => ...)
_AGGREGATE_WINDOW = re.compile(r"aggregateWindow\s*\((?:[^()]|\((?:[^()]|\([^()]*\))*\))*\)")
_NOT_FIELDS = {"time", "_time", "_start", "_stop", "table", "result"}


def _span(start: object) -> str:
    """A dashboard range as Panel.data takes it ("30m"): "-30m" (Flux's spelling) means the same."""
    return str(start).strip().lstrip("-")


def _reference_panel(flux: str, attendee_flux: str):
    """The reference panel, drawn the way the attendee's is: with their `aggregateWindow(...)` when they use
    one (notebook 05 teaches `aggregateWindow(every: v.windowPeriod, fn: ...)`). It shifts every point to its
    window's stop and adds empty windows, so the raw metric is not what such a panel shows; the same Flux
    over the reference is."""
    from labkit.dashboards import Panel

    agg = _AGGREGATE_WINDOW.search(attendee_flux)
    return Panel(0, "reference", flux + (f"\n  |> {agg.group(0)}" if agg else ""))


def _panel_values(got: pd.DataFrame, field: str) -> tuple[pd.DataFrame | None, Feedback | None]:
    """(time, value) of a panel's result, or "not yet" saying why it is not one series of `field`.

    Grafana draws `_value` per table; a pivoted result has the field as a column of its own instead, which is
    graded too (a panel of one pivoted field draws the same line)."""
    got = _as_numbers(_columns(got, "time", "_value", "_field", "url", field))
    if "time" not in got.columns:
        return None, not_yet(
            "the panel's rows have no time: a time series needs _time",
            "do not aggregate the time away (a bare mean() or sum()): aggregateWindow keeps it",
        )
    if "_value" in got.columns:
        if "_field" in got.columns and got["_field"].nunique() > 1:
            return None, not_yet(f"the panel shows several fields {sorted(got['_field'].unique())}: keep only {field}")
        if "_field" in got.columns and set(got["_field"].dropna()) - {field}:
            return None, not_yet(f"the panel shows the field {sorted(set(got['_field'].dropna()))}, not {field!r}")
        value = "_value"
    else:  # pivoted: one column per field
        fields = [c for c in got.columns if c not in _NOT_FIELDS and not str(c).startswith("_") and _numeric(got[c])]
        if len(fields) > 1:
            return None, not_yet(
                f"the panel shows several fields {sorted(fields)} (pivoted into columns): keep only {field!r}",
                f'filter r._field == "{field}" before the pivot (or drop the pivot: Grafana draws _value)',
            )
        if fields != [field]:
            return None, not_yet(
                f"the panel shows {fields or 'no numeric column'}, not the field {field!r}",
                f'filter r._field == "{field}"',
            )
        value = field
    return got[["time", value]].rename(columns={value: "__v"}).assign(__v=lambda d: d["__v"].astype(float)), None


def _grade_panel(got: pd.DataFrame, ref: pd.DataFrame, field: str, what: str) -> tuple[Feedback | None, int]:
    """(None, windows matched) when `got` draws the series `ref` has (same times, same values); else ("not
    yet" saying why, 0). Empty windows (aggregateWindow's createEmpty) are left out on both sides."""
    series, why = _panel_values(got, field)
    if why is not None:
        return why, 0
    a = series.dropna()  # type: ignore[union-attr]
    if a["time"].duplicated().any():
        tags = [c for c in got.columns if c not in _NOT_FIELDS and got[c].dtype == object and got[c].nunique() > 1]
        return not_yet(
            f"the panel draws several lines{f' (one per {tags})' if tags else ''}: it should draw one",
            "filter the tags down to one series",
        ), 0
    ref_series, _ = _panel_values(ref, field)
    if ref_series is None or ref_series.dropna().empty:
        return lab_problem(
            f"there is no {what} in this range to compare your panel with. Produce events (the cells above), "
            "or pass a longer range, then run this cell again."
        ), 0
    b = ref_series.dropna()
    m = b.merge(a, on="time", suffixes=("__ref", ""))
    if m.empty:
        return not_yet(f"the panel's times do not match {what}'s windows", "do not shift or re-window the times"), 0
    same = (m["__v"] - m["__v__ref"]).abs() <= 1e-6 * m["__v__ref"].abs().clip(lower=1)
    if not same.all() or len(m) < 0.9 * len(b):
        return not_yet(f"the values are not {what}: {int(same.sum())} of {len(b)} windows match"), 0
    return None, len(m)


@checker("checkout_p95_panel")
def check_checkout_p95_panel(panel: object, start: str = "30m", settings: Settings | None = None) -> Feedback:
    from labkit.dashboards import Panel
    from labkit.exercises.solutions import SOLUTIONS

    if not isinstance(panel, Panel):
        return not_yet("make `my_panel` a labkit.dashboards.Panel(id, title, flux)")
    if "v.timeRangeStart" not in panel.flux or "${stream}" not in panel.flux:
        return not_yet(
            "use Grafana's macros so the panel follows the dashboard: range(start: v.timeRangeStart, "
            'stop: v.timeRangeStop) and r.stream == "${stream}"'
        )
    s = _settings(settings)
    with talking_to("InfluxDB", s.influx):
        got = panel.data(_span(start), s)
        ref = _reference_panel(str(SOLUTIONS["checkout_p95_panel"]), panel.flux).data(_span(start), s)
    return _grade_p95_panel(got, ref)


def _grade_p95_panel(got: pd.DataFrame, ref: pd.DataFrame) -> Feedback:
    """`got` (the panel's data) against `ref` (the solution panel's, drawn the same way)."""
    if got.empty:
        return not_yet(
            "the panel's query returned no rows", "latency has url and _field tags: filter /checkout and p95"
        )
    got = _columns(got, "url", "_field")
    if "url" in got.columns and set(got["url"].dropna()) != {"/checkout"}:
        return not_yet(f'the panel shows URL(s) {sorted(set(got["url"].dropna()))[:4]}: filter r.url == "/checkout"')
    why, n = _grade_panel(got, ref, "p95", "/checkout's p95 latency")
    if why is not None:
        if not why.lab_problem:
            why.hints = why.hints or ['r._field == "p95" and r.url == "/checkout"']
        return why
    return passed(f"your panel shows /checkout's p95 latency over {n} windows, from the same Flux Grafana runs")


# ---- 06 -----------------------------------------------------------------------------------------------------
def _endpoint(answer: str, target: str) -> bool:
    """`answer` names `target`: exactly, or but for its case (the site's paths are all lowercase, see
    labkit.events, so a case-insensitive match names one page)."""
    return answer == target or answer.casefold() == target.casefold()


@checker("failing_endpoint")
def check_failing_endpoint(answer: object, ledger: Any) -> Feedback:
    info = getattr(ledger, "scenario", None)
    if not info:
        return not_yet("this run had no scenario: run the drill's produce cell first")
    text = _text(answer)
    if not text:
        return not_yet("set `my_suspect` to a URL (a string), found with a query over url_counts")
    if not text.startswith("/"):
        return not_yet(f"{text!r} is not a URL path", "the url tag's values look like '/search'")
    if not _endpoint(text, info["target"]):
        return not_yet(
            f"{text} is not the endpoint that failed in this run",
            "compare each URL's errors_5xx in the worst windows with its usual level: a busy URL has many 5xx "
            "even on a good day",
        )
    return passed(
        f"{info['target']} failed from {_t(info['start_ms'])} to {_t(info['end_ms'])}: found from the metrics alone"
    )


@checker("latency_regression")
def check_latency_regression(answer: object, ledger: Any) -> Feedback:
    info = getattr(ledger, "scenario", None)
    if not info or info.get("name") != "latency_regression":
        return not_yet("run the latency_regression round's produce cell first")
    if not isinstance(answer, dict):
        return not_yet("give a dict: {'metric': ..., 'endpoint': ...}")
    given = {str(k).strip().lower(): v for k, v in answer.items()}
    raw = given.get("metric")
    metric = str(raw or "").strip().lower()
    # "latency p95", "p95_latency": the percentile is what is asked
    tokens = set(re.findall(r"p(?:50|95|99)", metric))
    if len(tokens) == 1:
        metric = tokens.pop()
    if metric not in ("p50", "p95", "p99", "latency"):
        return not_yet(
            f"metric {raw!r}: which measurement changes? (error_rate does not: the requests succeed)",
            "the latency measurement's p95 (or p99) per URL",
        )
    endpoint = _text(given.get("endpoint"))
    if not endpoint or not _endpoint(endpoint, info["target"]):
        return not_yet(f"{given.get('endpoint')!r} is not the slow endpoint", "compare p95 per URL before and during")
    # Every request to the endpoint is slower by the same factor, so its p50, p95 and p99 all jump: any percentile
    # *per URL* shows it. Site-wide, only the tail moves (the endpoint is a small share of requests).
    return passed(
        f"{info['target']} slowed down: every percentile of that URL jumps ({metric} included), while error_rate "
        "stays flat. On the whole site only p95/p99 rise: the median request is still a fast one"
    )


def _t(ms: int) -> str:
    return pd.to_datetime(ms, unit="ms", utc=True).strftime("%H:%M:%S")


# ---- 07 -----------------------------------------------------------------------------------------------------
# The reference of notebook 07's checkers is computed here, in Python, from the very records the attendee's
# preview read: one Flink preview per check instead of two (the attendee's and a reference query), each once
# more on a mismatch. It applies the job's rules: ParseClick's validation (labkit/jobs/java, ported below) and
# the on-time filter (labkit.jobs.sql.on_time_view: a row is late when its event time is at or behind the
# newest event time its Kafka partition has shown minus the delay). Lateness is decided per partition in the
# partition's order, so a reading of the same records decides exactly as the preview did.
from labkit.click_rules import parse_click as _parse_click  # noqa: E402  (the port lives there)


def _on_time(records: pd.DataFrame, delay_ms: int) -> pd.DataFrame:
    """The valid rows of `records` (partition, offset, kind, t, ...) that on_time_view lets through: per
    partition in offset order, the newest time of valid events and end markers (a marker without a plausible
    time counts as epoch 0, as ClickEventTime makes it), including the row itself; a valid row passes when its
    time is after that newest time minus the delay, or is the newest itself."""
    keep = []
    for _, part in records.sort_values(["partition", "offset"]).groupby("partition", sort=False):
        newest = -math.inf
        for i, kind, t in zip(part.index, part["kind"], part["t"], strict=True):
            if kind == "bad":
                continue
            t = 0 if t is None or (isinstance(t, float) and math.isnan(t)) else int(t)
            newest = max(newest, t)
            if kind == "valid" and (t > newest - delay_ms or t == newest):
                keep.append(i)
    return records.loc[keep]


def _events(settings: Settings, topic: str, since_ms: int | None, read_timeout_s: float = 120) -> pd.DataFrame:
    """The events the view `events` holds for a bounded preview of `topic` from `since_ms` (Kafka time; None:
    the whole topic): url, http_status, session_id, user_id and event time ms, read with kafka-python and
    judged by the job's rules (above). The same start as the preview (offsets for the time; the end where a
    partition has nothing newer), up to the end offsets of now."""
    from kafka import KafkaConsumer

    from labkit import kafka_info
    from labkit.kafka_clients import python_config
    from labkit.timing import WATERMARK_DELAY_MS

    rows: list[tuple] = []
    with talking_to("Kafka", settings.kafka):
        c = KafkaConsumer(
            **python_config(settings),
            enable_auto_commit=False,
            client_id="labkit-check",
            max_poll_records=5000,
        )
        try:
            if not c.partitions_for_topic(topic):
                raise LabUnavailable(
                    f"Kafka at {settings.kafka} has no topic {topic!r}",
                    "Run the produce cell above (it creates the topic), then this cell again.",
                )
            _parts, end, remaining = kafka_info.start_at(c, topic, since_ms)
            # Every record up to the end offsets, or none: a reference missing a partition's tail would grade a
            # right answer wrong. An empty poll is not the end (a fetch can take longer); the deadline is.
            deadline = time.monotonic() + read_timeout_s
            while remaining:
                if time.monotonic() > deadline:
                    raise LabUnavailable(
                        f"Kafka at {settings.kafka} did not deliver {topic}'s records within {read_timeout_s:.0f} s "
                        "(the checker reads them to compute the reference)"
                    )
                batch = c.poll(timeout_ms=1000)
                for tp, msgs in batch.items():
                    for m in msgs:
                        if m.offset >= end[tp]:
                            break
                        kind, t, detail = _parse_click(m.value, m.timestamp)
                        rows.append((m.partition, m.offset, kind, t, *(detail or (None,) * 4)))
                    if c.position(tp) >= end[tp]:
                        remaining.discard(tp)
        finally:
            c.close()
    cols = ["partition", "offset", "kind", "t", "url", "http_status", "session_id", "user_id"]
    df = pd.DataFrame(rows, columns=cols)
    return _on_time(df, WATERMARK_DELAY_MS) if not df.empty else df


def _per_url(events: pd.DataFrame, window_s: int = 10) -> pd.DataFrame:
    e = _windowed(events, window_s)
    cols = ["window_end", "url", "__requests", "__errors", "__rate"]
    if e.empty:
        return pd.DataFrame(columns=cols)
    g = e.assign(err=e["http_status"] >= 400).groupby(["window_end", "url"])
    out = g.agg(__requests=("err", "size"), __errors=("err", "sum")).reset_index()
    out["__rate"] = out["__errors"] / out["__requests"]
    return out[cols]


def _per_window(events: pd.DataFrame, window_s: int = 60) -> pd.DataFrame:
    e = _windowed(events, window_s)
    cols = ["window_end", "__events", "__s", "__users"]
    if e.empty:
        return pd.DataFrame(columns=cols)
    g = e.groupby("window_end")
    return g.agg(__events=("url", "size"), __s=("session_id", "nunique"), __users=("user_id", "nunique")).reset_index()[
        cols
    ]


def _windowed(events: pd.DataFrame, window_s: int) -> pd.DataFrame:
    """`events` with the end of its tumbling event-time window of `window_s` (naive UTC, as the preview's)."""
    if events.empty:
        return events.assign(window_end=pd.Series(dtype="datetime64[ns]"))
    w = window_s * 1000
    ends = (events["t"].astype("int64") // w + 1) * w
    return events.assign(window_end=pd.to_datetime(ends, unit="ms").astype("datetime64[ns]"))


def _topic_events(metric: Any, since_ms: int | None) -> pd.DataFrame:
    s = metric.settings
    return _events(s, s.scoped(metric.topic or s.topic), since_ms)


#: a reference frame, or a function computing it (read only when the answer's shape asks for a comparison)
Reference = pd.DataFrame | Callable[[], pd.DataFrame]


def _reference(want: Reference) -> pd.DataFrame:
    want = want() if callable(want) else want
    return want.assign(window_end=_window_ends(want["window_end"]))


def _comparable(got: pd.DataFrame, want: pd.DataFrame, limit: int) -> pd.DataFrame:
    """The reference's windows the preview could have seen: none after the preview's newest window (records
    written after the preview read the topic), only the preview's windows when it stopped at `limit` rows."""
    if got.empty or want.empty:
        return want
    want = want[want["window_end"] <= got["window_end"].max()]
    if len(got) >= limit:
        want = want[want["window_end"].isin(set(got["window_end"]))]
    return want


def _no_events_anywhere(metric: Any, seconds: float | None) -> Feedback:
    where = "the whole topic" if seconds is None else f"the last {seconds:.0f} s"
    return lab_problem(
        f"topic {metric.topic or metric.settings.topic} has no valid events in {where}, so there is nothing to "
        "grade your query on. Run the produce cell above again, then run this cell again.",
    )


@checker("error_rate_per_url")
def check_error_rate_per_url(metric: Any, seconds: float | None = 600) -> Feedback:
    """Is `metric` the share of 4xx+5xx responses per URL per 10 s window?

    One Flink preview: the attendee's query. The reference is computed in Python from the same records
    (`_events`: read from the same start, judged by the job's rules), not by a second preview of the solution,
    and there is no second look: lateness is decided per Kafka partition in the partition's order, so readings
    of the same bounded records agree (before session 9 it depended on how the reads interleaved, and previews
    were retried)."""
    bad = _not_a_metric(metric, "check_error_rate_per_url")
    if bad is not None:
        return bad
    since, limit = _since(seconds), 5000
    got = _preview(metric, since_ms=since, seconds=seconds, limit=limit)
    if got.empty and _topic_events(metric, since).empty:
        return _no_events_anywhere(metric, seconds)
    # the reference is read only once the answer's shape is right (a missing column needs no Kafka reading)
    return _grade_error_rate(got, lambda: _per_url(_topic_events(metric, since)), limit)


def _grade_error_rate(got: pd.DataFrame, want: Reference, limit: int = 5000) -> Feedback:
    """`got` (the preview) against `want` (`_per_url` of the same records, or a function computing it)."""
    got = _as_numbers(_columns(got, "window_end", "window_start", "url"))
    if got.empty:
        return not_yet(
            "your query returned no rows, although the topic has events: check its WHERE clause and its windows"
        )
    for col in ("window_end", "url"):
        if col not in got.columns:
            return not_yet(f"select `{col}` too: the metric is per URL and per window")
    numeric = [c for c in got.columns if c not in ("window_end", "window_start", "url") and _numeric(got[c])]
    if not numeric:
        return not_yet("add a numeric column: the error rate", "CAST(... AS DOUBLE) / COUNT(*) AS error_rate")
    got = got.assign(window_end=_window_ends(got["window_end"]))
    if got.duplicated(["window_end", "url"]).any():
        return not_yet(
            "several rows for one window and URL: group by the window and url only",
            "GROUP BY window_start, window_end, url",
        )
    want = _comparable(got, _reference(want), limit)
    merged = got.merge(want, on=["window_end", "url"])
    if len(merged) < len(want) * 0.9 or merged.empty:
        return not_yet(
            f"expected about {len(want)} (window, url) rows, found {len(merged)} matching ones",
            f"group by window_start, window_end, url, with a {WINDOW_S} s TUMBLE on rowtime",
        )
    for c in numeric:
        if _agrees(merged[c], merged["__rate"]):
            return passed(f"`{c}` is the error rate per URL and window: well done!")
    for c in numeric:
        if _agrees(merged[c], merged["__errors"]) and (merged["__errors"] != merged["__rate"]).any():
            return not_yet("you have the error count, now divide it by the requests (as a DOUBLE)")
        if (merged[c] == 0).all() and (merged["__rate"] > 0).any():
            return not_yet(
                f"`{c}` is always 0: integer division (INT / INT) rounds down",
                "CAST the error count AS DOUBLE before dividing",
            )
    for c in numeric:
        if _agrees(merged[c], merged["__rate"] * 100):
            return not_yet(f"`{c}` is a percentage: give the share (0.05, not 5)")
    return not_yet(
        "no column equals the share of 4xx+5xx responses",
        "CAST(SUM(CASE WHEN http_status >= 400 THEN 1 ELSE 0 END) AS DOUBLE) / COUNT(*)",
    )


@checker("sessions_per_minute")
def check_sessions_per_minute(metric: Any, seconds: float | None = 600) -> Feedback:
    """Distinct sessions per 1-minute window: one preview, the reference in Python from the same records
    (see check_error_rate_per_url for why that is the same as a preview of the solution)."""
    bad = _not_a_metric(metric, "check_sessions_per_minute")
    if bad is not None:
        return bad
    since, limit = _since(seconds), 5000
    got = _preview(metric, since_ms=since, seconds=seconds, limit=limit)
    if got.empty and _topic_events(metric, since).empty:
        return _no_events_anywhere(metric, seconds)
    return _grade_sessions(got, lambda: _per_window(_topic_events(metric, since)), limit)


def _grade_sessions(got: pd.DataFrame, want: Reference, limit: int = 5000) -> Feedback:
    """`got` (the preview) against `want` (`_per_window` of the same records, or a function computing it)."""
    got = _as_numbers(_columns(got, "window_end", "window_start"))
    if got.empty:
        return not_yet("your query returned no rows, although the topic has events: check its WHERE clause")
    if "window_end" not in got.columns:
        return not_yet("select window_end")
    got = got.assign(window_end=_window_ends(got["window_end"]))
    ends = got["window_end"].drop_duplicates().sort_values()
    if len(ends) > 1 and (ends.diff().dropna() % pd.Timedelta("1min") != pd.Timedelta(0)).any():
        return not_yet("windows should be 1 minute apart", "INTERVAL '1' MINUTE in the TUMBLE")
    if got["window_end"].duplicated().any():
        return not_yet("one row per window: group by the window only", "GROUP BY window_start, window_end")
    nums = [c for c in got.columns if c not in ("window_end", "window_start") and _numeric(got[c])]
    if not nums:
        return not_yet("add a numeric column: the number of sessions", "COUNT(DISTINCT session_id) AS sessions")
    want = _comparable(got, _reference(want), limit)
    m = got.merge(want, on="window_end")
    if m.empty or len(m) < 0.9 * len(want):
        return not_yet(
            f"expected about {len(want)} one-minute windows, found {len(m)} matching ones",
            "a 1 minute TUMBLE on rowtime: TUMBLE(TABLE events, DESCRIPTOR(rowtime), INTERVAL '1' MINUTE)",
        )
    for c in nums:
        if _agrees(m[c], m["__s"]):
            return passed(f"`{c}`: distinct sessions per minute over {len(m)} windows")
    for c in nums:
        if _agrees(m[c], m["__events"]):
            return not_yet(f"`{c}` counts events: count each session once", "COUNT(DISTINCT session_id)")
        if _agrees(m[c], m["__users"]):
            return not_yet(f"`{c}` counts users: a user has several sessions", "COUNT(DISTINCT session_id)")
    return not_yet("no column equals the distinct sessions per minute", "COUNT(DISTINCT session_id)")


# ---- 08 -----------------------------------------------------------------------------------------------------
@checker("idle_readers")
def check_idle_readers(answer: object, job: Any, partitions: int = 4) -> Feedback:
    """How many of the rescaled job's source subtasks read no partition at all? Kafka's partitions are the unit
    of parallelism for reading: a source subtask gets whole partitions, so subtasks beyond the partition count
    idle (and, without an idle timeout, would hold back the watermark)."""
    v, why = _whole(answer, "how many source subtasks read no partition?")
    if why is not None:
        return not_yet(why)
    if not hasattr(job, "info") or not hasattr(job, "flink"):
        return not_yet("`job` is not a Flink job: run the cells above that rescale it, then this one")
    with talking_to("Flink", job.flink.url):
        info = job.info()
    return _grade_idle(v, info, partitions)  # type: ignore[arg-type]


def _grade_idle(v: int, info: dict, partitions: int = 4) -> Feedback:
    """`v` (a whole number) against the job's vertices (Flink's /jobs/<id>) and the topic's partitions."""
    src = [x for x in info.get("vertices", []) if "Source" in x.get("name", "")]
    if not src:
        return lab_problem("the job has no source vertex: run the cells above that rescale it, then this one.")
    p = int(src[0]["parallelism"])
    truth = max(0, p - partitions)
    if v == truth:
        return passed(
            f"{p} source subtasks, {partitions} partitions: {truth} subtask(s) get no partition and idle. A source "
            "subtask reads whole partitions, so reading parallelism beyond the partition count buys nothing"
        )
    if v == p:
        return not_yet(f"{p} is how many source subtasks run, not how many of them have nothing to read")
    if v == partitions:
        return not_yet(f"{partitions} is the number of partitions: how many subtasks are left without one?")
    return not_yet(
        f"not {v}: each partition is read by exactly one source subtask ({partitions} partitions, {p} subtasks)",
        "count the subtasks that cannot get a partition",
    )


# ---- 05: the empty panel, walked link by link -----------------------------------------------------------------
@checker("broken_link")
def check_broken_link(answer: object, diagnosis: Any) -> Feedback:
    """Which link of the pipeline is broken for the empty panel? Graded against the pipeline doctor's walk of
    the same topic (`notebook.doctor(topic)`), which the attendee runs after answering."""
    from labkit.pipeline_doctor import LINKS

    if not isinstance(answer, str) or not answer.strip():
        return not_yet(f"name one link: {', '.join(LINKS)}")
    said = answer.strip().lower()
    names = {n.lower(): n for n in LINKS}
    if said not in names:
        return not_yet(f"{answer!r} is not a link of this pipeline: {', '.join(LINKS)}")
    if diagnosis is None or not hasattr(diagnosis, "links"):
        return not_yet("run the doctor's cell first (`d = notebook.doctor(...)`), then this check")
    broken = diagnosis.broken
    if broken is None:
        return lab_problem(
            f"the doctor found every link holding for {diagnosis.topic}, so this panel is not empty any more",
            "run the cells of this section again from the top",
        )
    if names[said] == broken.name:
        return passed(f"Right: the events stop at '{broken.name}': {broken.saw}. The fix: {broken.fix}")
    held = [x.name for x in diagnosis.links if x.ok]
    if names[said] in held:
        return not_yet(
            f"'{names[said]}' holds for this topic",
            "walk the links in order from the producer: the first one that fails is where the events stop",
        )
    return not_yet(
        f"'{names[said]}' comes after the first broken link, so nothing reaches it to check",
        "walk the links in order from the producer",
    )


# ---- 03, "break it": the silent partition ----------------------------------------------------------------------
def _is_lab(lab: object) -> bool:
    return all(hasattr(lab, a) for a in ("watermarks", "run", "source_ddl", "topic"))


@checker("silent_partition")
def check_silent_partition(answer: object, lab: Any) -> Feedback:
    """Which partition holds the lab job's watermark back? Graded against the per-partition watermarks Flink
    reports now: the one with no watermark at all (it never sent an event)."""
    v, why = _whole(answer, "which partition (0 or 1) holds the watermark back?")
    if why is not None:
        return not_yet(why)
    if not _is_lab(lab):
        return not_yet("`lab` is not the silent-partition lab: run the cells above that create and run it")
    if lab.job is None:
        return not_yet("the lab's job has not run yet: run the cell above that calls lab.run()")
    with talking_to("Flink", lab.job.flink.url):
        wm = lab.watermarks()
    parts = [int(p) for p in wm["partition"]]
    if v not in parts:
        return not_yet(f"the lab's topic has partitions {', '.join(map(str, parts))}: {v} is not one of them")
    silent = [int(p) for p in wm.loc[wm["watermark"].isna(), "partition"]]
    if not silent:
        return lab_problem(
            "every partition of the lab's topic has a watermark now, so there is nothing left to diagnose "
            "(was the job fixed already?)",
            "run the cells from `lab = SilentPartitionLab()` again, then this one",
        )
    if v in silent:
        return passed(
            f"Partition {v} has no watermark: it never sent an event, so its split has nothing to derive one from. "
            "The source emits the minimum over its partitions, and the minimum of 'none yet' and anything is none "
            "yet: no window can fire"
        )
    return not_yet(
        f"partition {v} has a watermark ({wm.set_index('partition').loc[v, 'watermark']}): it is moving",
        "the source emits the minimum of its partitions' watermarks: which partition has none to give?",
    )


@checker("silent_fix")
def check_silent_fix(fixed_ddl: object, lab: Any, windows: pd.DataFrame | None = None) -> Feedback:
    """The attendee's fix of the lab's source: the job must stop waiting for the silent partition (an idle
    timeout), and windows must come out."""
    from labkit.jobs.silent_partition import has_idle_timeout

    if fixed_ddl is None or (isinstance(fixed_ddl, str) and not fixed_ddl.strip()):
        return not_yet("`fixed_ddl` is empty: start from lab.source_ddl() and change it")
    if not isinstance(fixed_ddl, str):
        return not_yet(f"`fixed_ddl` must be the SQL text of the source table, not a {type(fixed_ddl).__name__}")
    if not re.search(r"CREATE\s+(TEMPORARY\s+)?TABLE\s+clicks\b", fixed_ddl, re.I):
        return not_yet("`fixed_ddl` must still create the table `clicks`: start from lab.source_ddl()")
    if not _is_lab(lab):
        return not_yet("`lab` is not the silent-partition lab: run the cells above that create and run it")
    if getattr(lab, "ddl", None) != fixed_ddl:
        return not_yet("the lab's job does not run your DDL yet: run lab.run(fixed_ddl), then this check")
    got = windows if isinstance(windows, pd.DataFrame) else pd.DataFrame()
    if not has_idle_timeout(fixed_ddl, getattr(lab, "config", None)):
        if "WATERMARK" not in fixed_ddl.upper():
            return not_yet(
                "without a WATERMARK the table has no event time, so an event-time window cannot be computed",
                "keep the watermark; change how the source treats a partition that sends nothing",
            )
        return not_yet(
            "the job still waits for the silent partition: nothing in your source tells Flink to stop waiting for "
            "a partition that sends nothing",
            "Flink SQL has a per-table idle timeout, set in the source's WITH clause (section 3 above; the docs: "
            "Time attributes, Advanced watermark features)",
        )
    if got.empty:
        return not_yet(
            "your source has an idle timeout, but no window has come out yet: a partition counts as idle only after "
            "that long without data",
            "run the cell with lab.windows(...) again once the timeout has passed, or choose a timeout of seconds",
        )
    return passed(
        f"{len(got)} windows came out. With an idle timeout, a partition that sends nothing for that long is "
        "marked idle and left out of the minimum, so the watermark follows the partitions that do send"
    )


@checker("counterfactual")
def check_counterfactual(
    prediction: object, accounts: Any, fresh_job: Any, settings: Any = None, mid_stream: bool | None = None
) -> Feedback:
    """Notebook 08's counterfactual: the attendee cancels the pipeline (no savepoint) mid-stream, starts it
    fresh from the committed offsets with empty state, and predicts, before the run, whether `verify` says
    EXACT or MISMATCH. Graded as recorded (`predictions.record("counterfactual", ...)` before the run)."""
    word = _verdict_word(prediction)
    if word is None:
        return not_yet(
            f'{_show_answer(prediction)} is not a prediction: answer "EXACT" or "MISMATCH"',
            "EXACT: every event counted once in the right window; MISMATCH: some counts differ from the ledger",
        )
    if fresh_job is None or not hasattr(fresh_job, "checkpoints"):
        return not_yet(
            "the drill has not run yet: cancel `job` (no savepoint), start the pipeline with "
            "jobs.submit_pipeline(fresh=True), keep the job it returns in `fresh_job`, then run the accounts cell"
        )
    if accounts is None or not hasattr(accounts, "verdict"):
        return not_yet("`accounts4` holds no accounts yet: run the cell that verifies the drill's traffic")
    if mid_stream is False:
        return not_yet(
            "your cancel came after the drill's traffic had ended, so nothing was in flight and this run cannot "
            "test your prediction",
            "run the traffic cell again and cancel as soon as it returns, while events still flow",
        )
    with talking_to("Flink", fresh_job.flink.url):
        restored = ((fresh_job.checkpoints().get("latest") or {}).get("restored")) or None
    return _grade_counterfactual(word, accounts, restored, settings)


def _grade_counterfactual(word: str, accounts: Any, restored: dict | None, settings: Any = None) -> Feedback:
    """`word` (EXACT or MISMATCH, the current answer) against the drill's accounts; `restored` is what Flink
    says the new job was restored from (None: it started fresh)."""
    from labkit.exercises.predictions import UNREADABLE, graded_prediction

    if restored:
        where = restored.get("external_path") or f"checkpoint {restored.get('id')}"
        return not_yet(
            f"your new job did not start fresh: Flink restored it from {where}, so its windows came back with the "
            f"offsets (the accounts say {accounts.verdict.split(':')[0]}). That is the normal way, and why the lab "
            "retains checkpoints when a job is cancelled",
            "for the counterfactual, cancel it again and submit with fresh=True: offsets only, empty state",
        )
    actual = accounts.verdict.split(":")[0].strip()
    if actual not in ("EXACT", "MISMATCH"):
        return lab_problem(
            f"the accounts are {actual}, so the run cannot grade a prediction: {accounts.verdict}",
            "run the accounts cell again once the pipeline runs (`labkit jobs`)",
        )
    graded, note = graded_prediction("counterfactual", word, accounts.verdict, settings)
    if graded is UNREADABLE:
        return not_yet(note, "record it again with predictions.record('counterfactual', ...) and run the drill again")
    if graded not in ("EXACT", "MISMATCH"):
        return not_yet(
            f"{note}What was recorded before the run, {_show_answer(graded)}, is not a prediction, so this run "
            "cannot grade it",
            'record "EXACT" or "MISMATCH" with predictions.record(\'counterfactual\', ...), then run the drill again',
        )
    if graded != actual:
        return not_yet(
            f"{note}You predicted {graded}; this run says {accounts.verdict}",
            "what did the fresh job get back: the offsets the group committed at the last checkpoint, and what else?",
            "which windows were open at that checkpoint, and where were the events they had counted so far?",
        )
    return passed(
        f"{note}Right: {accounts.verdict}. Now say why in the next question: which part of the snapshot was missing?"
        if actual == "MISMATCH"
        else f"{note}Right for this run: {accounts.verdict}. Rare: the cancel fell where no window was open."
    )


def _verdict_word(answer: object) -> str | None:
    if not isinstance(answer, str):
        return None
    w = answer.strip().upper()
    return w if w in ("EXACT", "MISMATCH") else None


def _show_answer(answer: object) -> str:
    return repr(answer) if not isinstance(answer, str) else f'"{answer}"'


@checker("rescaled_readers")
def check_rescaled_readers(answer: object, job: Any) -> Feedback:
    v, why = _whole(answer, "how many parallel source subtasks read Kafka now?")
    if why is not None:
        return not_yet(why)
    if not hasattr(job, "info") or not hasattr(job, "flink"):
        return not_yet("`job` is not a Flink job: run the cells above that start and rescale it, then this one")
    with talking_to("Flink", job.flink.url):
        info = job.info()
    return _grade_rescaled(v, info)  # type: ignore[arg-type]


def _grade_rescaled(v: int, info: dict) -> Feedback:
    """`v` (a whole number) against the job's vertices (Flink's /jobs/<id>)."""
    src = [x for x in info.get("vertices", []) if "Source" in x.get("name", "")]
    truth = src[0]["parallelism"] if src else None
    if truth is None:
        return lab_problem(
            "the job has no source vertex, so it is not running the pipeline. "
            "Run the cells above that start and rescale it, then this one."
        )
    if v != truth:
        return not_yet(f"not {v}: look at the job graph's source vertex", "job.graph() lists each vertex's parallelism")
    return passed(f"{truth} source subtasks share the 4 partitions: one partition each")


# ---- 09 -----------------------------------------------------------------------------------------------------
@checker("bot_metric")
def check_bot_metric(metric: Any, ledger: Any) -> Feedback:
    bad = _not_a_metric(metric, "check_bot_metric")
    if bad is not None:
        return bad
    info = getattr(ledger, "scenario", None) or {}
    if not info.get("start_ms"):
        return not_yet("the capstone run has no bot burst: run its produce cell, then pass summary.ledger")
    got = _preview(metric, seconds=None, limit=10_000)
    return _grade_bot_metric(got, info)


def _grade_bot_metric(got: pd.DataFrame, info: dict) -> Feedback:
    """`got` (the preview of the whole capstone topic) against the burst in `info` (the ledger's scenario)."""
    got = _as_numbers(_columns(got, "window_end", "window_start"))
    if got.empty:
        return not_yet("your metric returned no rows on the capstone topic")
    if "window_end" not in got.columns:
        return not_yet("select window_end")
    nums = [c for c in got.columns if c not in ("window_start", "window_end") and _numeric(got[c])]
    if not nums:
        return not_yet("add a numeric column that is high when a bot is active")
    if got["window_end"].duplicated().any():
        return not_yet(
            "one row per window: the alert needs one value per window",
            "aggregate per user in a subquery, then take MAX over users per window",
        )
    ends = _ms(got["window_end"])
    start, end = info.get("start_ms", 0), info.get("end_ms", 0)
    # windows wholly inside the burst, and wholly outside it; the two at its edges hold a bit of both
    during = ((ends - WINDOW_MS >= start) & (ends <= end)).values
    outside = ((ends <= start) | (ends - WINDOW_MS >= end)).values
    if not during.any() or not outside.any():
        return not_yet("the capstone run must include time before the bot burst: run its produce cell")
    for c in nums:
        hi, lo = got.loc[during, c].min(), got.loc[outside, c].max()
        if pd.notna(hi) and pd.notna(lo) and hi > 2 * lo:
            return passed(
                f"`{c}` separates the burst cleanly: at least {hi:g} in every burst window, at most {lo:g} otherwise"
            )
    return not_yet(
        "no column separates the burst windows from the others (burst minimum > 2 × normal maximum)",
        "a bot sends many requests from one user: count requests per user per window, then take the MAX",
    )


@checker("bot_panel")
def check_bot_panel(panel: object, metric: Any, field: str, start: str = "2h") -> Feedback:
    from labkit.dashboards import Panel
    from labkit.jobs.custom import CustomMetric

    if not isinstance(panel, Panel):
        return not_yet("make `my_panel` a labkit.dashboards.Panel(id, title, flux)")
    if "v.timeRangeStart" not in panel.flux:
        return not_yet("use Grafana's macros: range(start: v.timeRangeStart, stop: v.timeRangeStop)")
    if not isinstance(metric, CustomMetric):
        return not_yet("pass the capstone's metric too: check_bot_panel(my_panel, metric, field)")
    name = _text(field)
    if not name:
        return not_yet("name the field the panel draws (a string, e.g. 'max_requests_per_user')")
    s = metric.settings
    with talking_to("InfluxDB", s.influx):
        got = panel.data(_span(start), s, stream=metric.topic)
        ref = _reference_panel(metric.panel(name).flux, panel.flux).data(_span(start), s, stream=metric.topic)
    return _grade_bot_panel(got, ref, name, metric.measurement, metric.topic or s.topic)


def _grade_bot_panel(got: pd.DataFrame, ref: pd.DataFrame, field: str, measurement: str, topic: str) -> Feedback:
    """`got` (the panel's data) against `ref` (the metric's own panel of `field`, drawn the same way)."""
    if got.empty:
        return not_yet(
            f"the panel's query returned no rows for topic {topic}",
            f'filter r._measurement == "{measurement}" and r.stream == "${{stream}}"',
        )
    why, n = _grade_panel(got, ref, field, f"your metric's {field}")
    if why is not None:
        if not why.lab_problem:
            why.hints = why.hints or [f"read the measurement {measurement}, field {field}"]
        return why
    return passed(f"your panel draws {measurement}.{field} over {n} windows")


@checker("bot_alert")
def check_bot_alert(rule: object, df: pd.DataFrame, ledger: Any) -> Feedback:
    import dataclasses

    from labkit.alerts import AlertRule

    info = getattr(ledger, "scenario", None) or {}
    if not isinstance(rule, AlertRule):
        return not_yet("make `my_rule` a labkit.alerts.AlertRule(title, measurement, field, threshold, ...)")
    threshold = _number(rule.threshold)
    if threshold is None or math.isnan(threshold):
        return not_yet(f"the threshold must be a number, not {rule.threshold!r}")
    for name in ("for_s", "lookback_s"):
        seconds = _number(getattr(rule, name))
        if seconds is None or not seconds >= 0:
            return not_yet(f"{name} must be a number of seconds, not {getattr(rule, name)!r}")
    if not isinstance(df, pd.DataFrame) or df.empty:
        return not_yet(f"no data for field {rule.field!r}: deploy the metric and query it first")
    field = rule.field
    if field not in df.columns:
        same = [c for c in df.columns if isinstance(c, str) and c.casefold() == str(field).strip().casefold()]
        if len(same) != 1:
            return not_yet(
                f"no data for field {field!r}: the values have {sorted(map(str, df.columns))}",
                "name the field as the metric's column is named",
            )
        field = same[0]
    rule = dataclasses.replace(rule, field=field, threshold=threshold)
    if "time" not in df.columns:
        return not_yet("the values need their `time` column: pass what metric.query() returned")
    if not hasattr(ledger, "on_time"):
        return not_yet("pass the capstone run's ledger too: check_bot_alert(my_rule, values, summary.ledger)")
    from labkit.influx import in_run

    tl = rule.timeline(in_run(df, ledger))  # this run's windows only: the topic keeps earlier runs' points
    start = pd.to_datetime(info.get("start_ms", 0), unit="ms", utc=True)
    end = pd.to_datetime(info.get("end_ms", 0), unit="ms", utc=True)
    if tl.fired is None:
        return not_yet(
            f"the rule never fires on this run (threshold {rule.threshold:g}, for {rule.for_s}s)",
            "lower the threshold below the burst's values, or shorten for_s/lookback_s",
        )
    if tl.fired < start:
        return not_yet(
            f"the rule fires at {tl.fired:%H:%M:%S}, before the burst began: a false alarm",
            "raise the threshold above normal traffic's values",
        )
    if tl.fired > end + pd.Timedelta(seconds=rule.lookback_s):
        return not_yet("the rule fires only after the burst is over: too slow", "shorten for_s or lookback_s")
    return passed(
        f"fires at {tl.fired:%H:%M:%S}, {(tl.fired - start).total_seconds():.0f} s after the burst began, "
        "and never before it"
    )


@checker("accounts")
def check_accounts(accounts: object) -> Feedback:
    if accounts is None or not hasattr(accounts, "exact"):
        return not_yet("run verify(summary.ledger) and pass its result")
    if not accounts.exact:
        return not_yet(
            f"the accounts are not exact: {accounts.verdict}", "wait for the last windows, then verify again"
        )
    return passed(f"{accounts.expected:,} events in {accounts.windows} windows: every one accounted for")
