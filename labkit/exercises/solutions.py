"""Answers to every exercise of the course, for instructors and CI. Attendees: try first!

`show(name)` prints one. Notebooks take these only when run with `use_solution=True` (CI's second pass).
docs/instructor.md has the answer key with explanations.
"""

from __future__ import annotations

import time

SOLUTIONS: dict[str, object] = {
    # 00
    "pipeline_order": ["producer", "kafka", "flink", "influxdb", "grafana"],
    "first_check": "c",
    # 01
    "error_share": "(df['http_status'] >= 400).mean()",
    "broken_url": "storm[storm['http_status'] == 404]['url'].value_counts().index[0]",
    # 02
    "partition_split": [2, 2],
    "keying_by_session": "b",
    "flink_consumer_group": "a",
    # 03
    "first_tumble": """SELECT window_end, http_status, COUNT(*) AS events
FROM TABLE(TUMBLE(TABLE events, DESCRIPTOR(rowtime), INTERVAL '10' SECOND))
GROUP BY window_start, window_end, http_status""",
    # late_share_5s: the stragglers arrive 2-25 s after they happened, so a 5 s delay still counts most of them
    # late; the measured windows favour the older ones, and runs measure about 0.9-0.96 (late at 5 s / at 0 s)
    "watermark_prediction": {"fewest_late": 30, "fastest_results": 0, "late_share_5s": 0.9},
    "watermark_in_ui": "c",
    # 04
    "tags_or_fields": {
        "status_code": "tag",
        "count": "field",
        "url": "tag",
        "p95": "field",
        "stream": "tag",
        "reason": "tag",
    },
    "error_pivot": """from(bucket: "{bucket}")
  |> range(start: {start}, stop: 1h)
  |> filter(fn: (r) => r._measurement == "error_rate" and r.stream == "{stream}")
  |> filter(fn: (r) => r._field == "errors_4xx" or r._field == "errors_5xx")
  |> pivot(rowKey: ["_time"], columnKey: ["_field"], valueColumn: "_value")
  |> keep(columns: ["_time", "errors_4xx", "errors_5xx"])""",
    "top_5xx_urls": """from(bucket: "{bucket}")
  |> range(start: {start}, stop: 1h)
  |> filter(fn: (r) => r._measurement == "url_counts" and r._field == "errors_5xx" and r.stream == "{stream}")
  |> group(columns: ["url"])
  |> sum()
  |> group()
  |> sort(columns: ["_value"], desc: true)
  |> limit(n: 5)""",
    # 05
    "checkout_p95_panel": """from(bucket: v.defaultBucket)
  |> range(start: v.timeRangeStart, stop: v.timeRangeStop)
  |> filter(fn: (r) => r._measurement == "latency" and r.stream == "${stream}")
  |> filter(fn: (r) => r.url == "/checkout" and r._field == "p95")""",
    "alert_condition": "a",
    # 06
    "failing_endpoint": """during = urls[urls["time"].isin(worst)].groupby("url")["errors_5xx"].mean()
before = urls[~urls["time"].isin(worst)].groupby("url")["errors_5xx"].mean()
(during - before.reindex(during.index).fillna(0)).idxmax()""",
    "latency_regression": {"metric": "p95", "endpoint": "/search"},
    # 07
    "error_rate_per_url": """SELECT window_end, url,
       COUNT(*) AS requests,
       CAST(SUM(CASE WHEN http_status >= 400 THEN 1 ELSE 0 END) AS DOUBLE) / COUNT(*) AS error_rate
FROM TABLE(TUMBLE(TABLE events, DESCRIPTOR(rowtime), INTERVAL '10' SECOND))
GROUP BY window_start, window_end, url""",
    "sessions_per_minute": """SELECT window_end, COUNT(DISTINCT session_id) AS sessions
FROM TABLE(TUMBLE(TABLE events, DESCRIPTOR(rowtime), INTERVAL '1' MINUTE))
GROUP BY window_start, window_end""",
    "broken_link": "job",
    "silent_partition": 1,
    "silent_why": "c",
    # 08
    "dlq_exactly_once": "c",
    "exactly_once_scope": "b",
    "savepoint_vs_checkpoint": "a",
    "counterfactual_prediction": "MISMATCH",
    "counterfactual_why": "b",
    "rescaled_readers": 4,
    "idle_readers": 2,  # parallelism 6 over 4 partitions
    # 09
    "bot_metric": """SELECT window_end,
       MAX(requests) AS max_requests_per_user
FROM (
  SELECT window_start, window_end, user_id, COUNT(*) AS requests
  FROM TABLE(TUMBLE(TABLE events, DESCRIPTOR(rowtime), INTERVAL '10' SECOND))
  GROUP BY window_start, window_end, user_id
)
GROUP BY window_start, window_end""",
    "bot_panel": """from(bucket: v.defaultBucket)
  |> range(start: v.timeRangeStart, stop: v.timeRangeStop)
  |> filter(fn: (r) => r._measurement == "custom_bot_activity" and r.stream == "${stream}")
  |> filter(fn: (r) => r._field == "max_requests_per_user")""",
    "bot_threshold": 100,
    # 10 (going further: Flink SQL patterns)
    "dedup_events": """SELECT event_id, session_id, url, event_timestamp
FROM (
  SELECT *,
    ROW_NUMBER() OVER (PARTITION BY event_id ORDER BY proctime ASC) AS row_num
  FROM clicks)
WHERE row_num = 1""",
    "top_urls_per_minute": """SELECT window_start, window_end, url, clicks, rownum
FROM (
  SELECT *,
    ROW_NUMBER() OVER (PARTITION BY window_start, window_end ORDER BY clicks DESC) AS rownum
  FROM (
    SELECT window_start, window_end, url, COUNT(*) AS clicks
    FROM TABLE(TUMBLE(TABLE clicks, DESCRIPTOR(rowtime), INTERVAL '1' MINUTE))
    GROUP BY window_start, window_end, url))
WHERE rownum <= 3""",
    "session_lengths": """SELECT session_id, window_start, window_end,
       COUNT(*) AS clicks,
       TIMESTAMPDIFF(SECOND, window_start, window_end) - 60 AS length_s
FROM TABLE(SESSION(TABLE clicks PARTITION BY session_id, DESCRIPTOR(rowtime), INTERVAL '1' MINUTE))
GROUP BY session_id, window_start, window_end""",
    "checkout_conversion": """SELECT c.session_id, c.event_timestamp AS checkout_ms,
       o.order_id, o.event_timestamp AS order_ms
FROM clicks AS c
LEFT JOIN orders AS o
  ON o.session_id = c.session_id
 AND o.rowtime BETWEEN c.rowtime AND c.rowtime + INTERVAL '10' MINUTE
WHERE c.url = '/checkout'""",
    # the running total of orders emits one +I, then a -U and a +U per later order (n_orders: the demo's orders)
    "changelog_rows": "2 * n_orders - 1",
    "url_changelog": """SELECT url, COUNT(*) AS cnt
FROM clicks
GROUP BY url""",
    "checkout_funnel": """SELECT *
FROM clicks
  MATCH_RECOGNIZE (
    PARTITION BY session_id
    ORDER BY rowtime
    MEASURES
      FIRST(P.event_timestamp) AS first_product_ms,
      LAST(C.event_timestamp) AS last_cart_ms,
      K.event_timestamp AS checkout_ms,
      COUNT(P.url) AS product_pages
    ONE ROW PER MATCH
    AFTER MATCH SKIP PAST LAST ROW
    PATTERN (P+ C+ K)
    DEFINE
      P AS P.url LIKE '/product/%',
      C AS C.url LIKE '/cart%',
      K AS K.url = '/checkout'
  )""",
}


# The pandas and Python exercises as functions, for CI's solution pass (the strings above are what to type).
def error_share(df):
    return float((df["http_status"] >= 400).mean())


def broken_url(storm):
    return storm[storm["http_status"] == 404]["url"].value_counts().index[0]


def failing_endpoint(urls, rates, n_worst: int = 3):
    worst = rates.nlargest(n_worst, "error_rate")["time"]
    during = urls[urls["time"].isin(worst)].groupby("url")["errors_5xx"].mean()
    before = urls[~urls["time"].isin(worst)].groupby("url")["errors_5xx"].mean()
    return (during - before.reindex(during.index).fillna(0)).idxmax()


def my_consumer(group: str, n: int = 500, settings=None) -> int:
    """Read `n` messages of the lab's topic in consumer group `group` and commit: the 02 exercise."""
    from kafka import KafkaConsumer

    from labkit.kafka_clients import python_config
    from labkit.settings import get

    s = settings or get()
    consumer = KafkaConsumer(
        s.topic,
        **python_config(s),
        group_id=s.scoped(group),
        auto_offset_reset="earliest",
        enable_auto_commit=False,
        consumer_timeout_ms=5000,
    )
    read = 0
    for _ in consumer:
        read += 1
        if read >= n:
            break
    consumer.commit()
    consumer.close()
    return read


def operate_rescale(job, stack, parallelism: int = 6, via_shortage: bool = True):
    """Notebook 08's drill 3, as an attendee types it: stop with a savepoint, try a parallelism above the free
    slots, meet the shortage, add a TaskManager, resubmit from the savepoint. Returns (savepoint, parallelism,
    new job, whether a TaskManager was added). With `via_shortage=False`, the plain rescale to `parallelism`."""
    from labkit import jobs
    from labkit.errors import JobError

    savepoint = job.stop()  # 1. stop with a savepoint: Flink returns its path
    print(f"savepoint: {savepoint}")
    added = False
    try:
        new_job = jobs.submit_pipeline(savepoint=savepoint, parallelism=parallelism)  # 2.-3.
    except JobError as e:
        if not via_shortage or "free task slot" not in str(e.message):
            raise
        print(f"as expected, a slot shortage: {e.message}")
        stack.add_taskmanager()  # what `labkit taskmanager add` does
        added = True
        new_job = jobs.submit_pipeline(savepoint=savepoint, parallelism=parallelism)
    return savepoint, parallelism, new_job, added


def changelog_rows(n_orders: int) -> int:
    """Notebook 10's prediction: the rows of the running total of `n_orders` orders (one +I, then -U/+U each)."""
    return 2 * int(n_orders) - 1


def silent_fix(ddl: str) -> str:
    """Notebook 03's "break it" lab: the lab's source DDL with an idle timeout, so that a partition that sends
    nothing for 5 s is left out of the watermark's minimum."""
    return ddl.replace("'format' = 'json',", "'scan.watermark.idle-timeout' = '5 s',\n  'format' = 'json',")


def crash_taskmanager(stack) -> None:
    """Notebook 08's drill 1, as an attendee types it: SIGKILL the TaskManager's process (`kill -9 <pid>`);
    in docker mode `docker compose kill taskmanager`, which is what the stack does there."""
    import os
    import signal

    if stack.mode == "local":
        os.kill(stack.pid("taskmanager"), signal.SIGKILL)
    else:
        stack.take_down("taskmanager", "kill")


def stop_influxdb(stack) -> None:
    """Notebook 08's drill 2, as an attendee types it: stop InfluxDB cleanly (`kill <pid>`, SIGTERM); in docker
    mode `docker compose stop influxdb`, which is what the stack does there. `stack.up()` brings it back."""
    import os
    import signal

    if stack.mode == "local":
        os.kill(stack.pid("influxdb"), signal.SIGTERM)
        deadline = time.monotonic() + 30
        while stack.pid("influxdb") is not None and time.monotonic() < deadline:  # a clean stop takes a moment
            time.sleep(0.2)
    else:
        stack.take_down("influxdb", "stop")


def operate_counterfactual(job):
    """Notebook 08's drill 4, as an attendee types it: cancel the pipeline without a savepoint, then start it
    fresh (committed offsets, empty state). Returns the new job."""
    from labkit import jobs

    job.cancel()  # no savepoint: `labkit cancel <id>`, or PATCH /jobs/<id>?mode=cancel
    return jobs.submit_pipeline(fresh=True)


def second_consumer(group: str, settings=None):
    """Notebook 02, exercise 2: a second member of `group` on the lab's topic (same topic, same group_id)."""
    from kafka import KafkaConsumer

    from labkit.kafka_clients import python_config
    from labkit.settings import get

    s = settings or get()
    return KafkaConsumer(
        s.topic, **python_config(s), group_id=group, auto_offset_reset="earliest", enable_auto_commit=False
    )


def solve(name: str) -> object:
    """The way out when stuck: show the solution of exercise `name`, with why it is right, and return it, so that
    assigning it (`answer = solve("alert_condition")`) puts the notebook's state right for the cells after it.
    Questions show the explanation an instructor would give; the rest, the answer itself."""
    from labkit.exercises.questions import QUESTIONS

    key = name if name in SOLUTIONS else None
    if key is None:
        print(f"no solution called {name!r}; exercises: {', '.join(sorted(SOLUTIONS))}")
        return None
    value = SOLUTIONS[key]
    print(f"the solution of {name}:\n{value}")
    if name in QUESTIONS:
        print(f"\nwhy: {QUESTIONS[name].why}")
    return value


def show(name: str) -> object:
    """Print (and return) the solution of exercise `name`."""
    if name not in SOLUTIONS:
        print(f"no exercise called {name!r}; exercises: {', '.join(SOLUTIONS)}")
        return None
    print(SOLUTIONS[name])
    return SOLUTIONS[name]


def reference(name: str, settings=None, topic=None):
    """The solution of a SQL exercise as a CustomMetric (checkers compare attendees' results with it)."""
    from labkit.jobs.custom import CustomMetric

    return CustomMetric(f"ref_{name}", str(SOLUTIONS[name]), topic=topic, settings=settings)


# A prediction's answer is worth something only before the run: the checkers of predictions do not offer solve().
PREDICTIONS = {"watermark_prediction", "partition_split", "counterfactual_prediction", "changelog_rows"}


def _offer_solve() -> None:
    from labkit.exercises import feedback

    feedback.WITH_SOLUTION.update(k for k in SOLUTIONS if k not in PREDICTIONS)


_offer_solve()
