"""The checkers that grade against the real stack, fed wrong answers of every shape an attendee writes first:
a typo in SQL or Flux, a missing column, the wrong field, an empty result. Each must give "not yet" feedback
with a specific message, never raise; and pass the solution."""

import contextlib
import uuid

import pytest

from labkit import jobs, kafka_info
from labkit.dashboards import Panel
from labkit.exercises import (
    check_checkout_p95_panel,
    check_error_pivot,
    check_error_rate_per_url,
    check_first_tumble,
    check_my_consumer,
    check_top_5xx_urls,
    solutions,
)
from labkit.exercises.solutions import SOLUTIONS
from labkit.jobs.custom import CustomMetric
from labkit.produce import produce
from labkit.verify import verify

pytestmark = pytest.mark.stack


def not_yet(fb):
    assert not fb.ok, fb
    assert "data-state='fail'" in fb._repr_html_()
    return fb


@pytest.fixture(scope="module")
def run(settings, stack):
    """A topic of its own with the job on it, 6,000 events, every window closed and verified."""
    topic = kafka_info.fresh_topic(f"t_chk_{uuid.uuid4().hex[:8]}", settings)
    s = settings.model_copy(update={"topic": topic, "dlq_topic": settings.dlq_topic_for(topic)})
    # The settings make this topic the lab's (the checkers read `settings.topic`), but the job keeps the name a
    # scratch topic's job has (named from the lab's own settings): under the lab pipeline's name, a `labkit demo`
    # run beside these tests (make test runs suites side by side) took this job for the lab's and counted nothing.
    name = jobs.pipeline_name(settings, topic)
    job = jobs.submit_pipeline(s, topic=topic, from_earliest=True, parallelism=1, name=name)
    summary = produce(6_000, seed=5, topic=topic, sim_rate=100, close_windows=True, settings=s, progress=False)
    assert verify(summary.ledger, settings=s, wait_s=120).exact
    yield s, summary
    with contextlib.suppress(Exception):
        job.cancel()


def test_my_consumer_checker(run):
    s, _ = run
    group = f"g_{uuid.uuid4().hex[:6]}"
    before = kafka_info.lag(group, settings=s)
    assert "no committed offsets" in not_yet(check_my_consumer(group, before, settings=s)).message
    for odd in (None, "", 7, ["g"]):
        not_yet(check_my_consumer(odd, before, settings=s))
    assert solutions.my_consumer(group, 300, settings=s) == 300
    assert check_my_consumer(group, before, settings=s).ok
    # run again without reading further: nothing new committed since `lag_before`
    after = kafka_info.lag(group, settings=s)
    assert "nothing new" in not_yet(check_my_consumer(group, after, settings=s)).message


def test_first_tumble_checker_against_the_ledger(run):
    s, summary = run

    def metric(sql):
        return CustomMetric("first_tumble", sql, topic=s.topic, settings=s)

    typo = metric("SELEC window_end FROM events")
    assert "could not be graded" in not_yet(check_first_tumble(typo, summary.ledger)).message
    no_status = metric(
        "SELECT window_end, COUNT(*) AS n FROM TABLE(TUMBLE(TABLE events, DESCRIPTOR(rowtime), "
        "INTERVAL '10' SECOND)) GROUP BY window_start, window_end"
    )
    assert "http_status" in not_yet(check_first_tumble(no_status, summary.ledger)).message
    assert check_first_tumble(metric(SOLUTIONS["first_tumble"]), summary.ledger).ok


def test_flux_checkers(run):
    s, _ = run
    start = "-2h"
    fmt = {"bucket": s.influx_bucket, "start": start, "stream": s.topic}
    for odd in (None, "", 42, "from(bucket: ", 'from(bucket: "nope") |> range(start: -1m)'):
        not_yet(check_error_pivot(odd, start, settings=s))
        not_yet(check_top_5xx_urls(odd, start, settings=s))
    unpivoted = SOLUTIONS["error_pivot"].format(**fmt).split("  |> pivot")[0]
    assert "pivot" in not_yet(check_error_pivot(unpivoted, start, settings=s)).message
    assert check_error_pivot(SOLUTIONS["error_pivot"].format(**fmt), start, settings=s).ok

    all_errors = SOLUTIONS["top_5xx_urls"].format(**fmt).replace('"errors_5xx"', '"errors"')
    assert "4xx+5xx" in not_yet(check_top_5xx_urls(all_errors, start, settings=s)).message
    unsorted = SOLUTIONS["top_5xx_urls"].format(**fmt).replace("desc: true", "desc: false")
    not_yet(check_top_5xx_urls(unsorted, start, settings=s))
    assert check_top_5xx_urls(SOLUTIONS["top_5xx_urls"].format(**fmt), start, settings=s).ok


def test_panel_checker(run):
    s, _ = run
    sol = SOLUTIONS["checkout_p95_panel"]
    for odd in (None, "flux", 3, {}):
        not_yet(check_checkout_p95_panel(odd, "2h", settings=s))
    no_macros = Panel(1, "p", sol.replace("v.timeRangeStart", "-1h"))
    assert "macros" in not_yet(check_checkout_p95_panel(no_macros, "2h", settings=s)).message
    site_wide = Panel(1, "p", sol.replace('"/checkout"', '"ALL"'))
    assert "/checkout" in not_yet(check_checkout_p95_panel(site_wide, "2h", settings=s)).message
    two_fields = Panel(1, "p", sol.replace(' and r._field == "p95"', ""))
    assert "several fields" in not_yet(check_checkout_p95_panel(two_fields, "2h", settings=s)).message
    broken = Panel(1, "p", sol + "\n  |> nosuchfunction()")
    not_yet(check_checkout_p95_panel(broken, "2h", settings=s))
    assert check_checkout_p95_panel(Panel(1, "p", sol), "2h", settings=s).ok


def test_error_rate_per_url_checker_on_the_starter_and_integer_division(run):
    """The starter query raised KeyError: 'error_rate__ref' before (every attendee's first try)."""
    s, _ = run

    def metric(sql):
        return CustomMetric("error_rate_per_url", sql, topic=s.topic, settings=s)

    starter = metric(
        "SELECT window_end, url, COUNT(*) AS requests FROM TABLE(TUMBLE(TABLE events, DESCRIPTOR(rowtime), "
        "INTERVAL '10' SECOND)) GROUP BY window_start, window_end, url"
    )
    assert "share of 4xx+5xx" in not_yet(check_error_rate_per_url(starter, seconds=None)).message
    int_div = metric(
        "SELECT window_end, url, SUM(CASE WHEN http_status >= 400 THEN 1 ELSE 0 END) / COUNT(*) AS error_rate "
        "FROM TABLE(TUMBLE(TABLE events, DESCRIPTOR(rowtime), INTERVAL '10' SECOND)) "
        "GROUP BY window_start, window_end, url"
    )
    assert "integer division" in not_yet(check_error_rate_per_url(int_div, seconds=None)).message
