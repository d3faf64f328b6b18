"""Checkers are fair: a lab that does not answer is the lab's problem (named, with what to do), never "not yet";
an answer that raised shows the real reason; harmless differences (whitespace, case, 4.0 for 4, Flink's DECIMAL
columns) pass and 4.9 does not; every checker turns wrong answers of several shapes into specific "not yet".

No service runs here, and none is mocked: an unreachable lab is real clients pointed at a port on 127.0.0.1 that
nothing listens on; grading is tested through the checkers' pure `_grade_*` functions on DataFrames shaped like
what the services return.
"""

from __future__ import annotations

import decimal
import json
import math
import socket
import zlib

import numpy as np
import pandas as pd
import pytest

from labkit.alerts import AlertRule
from labkit.dashboards import Panel
from labkit.errors import JobError, ServiceError
from labkit.events import EventGenerator
from labkit.exercises import (
    Feedback,
    check_bot_alert,
    check_bot_metric,
    check_bot_panel,
    check_broken_link,
    check_broken_url,
    check_checkout_p95_panel,
    check_counterfactual,
    check_error_pivot,
    check_error_rate_per_url,
    check_error_share,
    check_failing_endpoint,
    check_first_tumble,
    check_idle_readers,
    check_latency_regression,
    check_my_consumer,
    check_pipeline_order,
    check_rescaled_readers,
    check_sessions_per_minute,
    check_silent_fix,
    check_silent_partition,
    check_tags_or_fields,
    check_top_5xx_urls,
    checker,
)
from labkit.exercises import checks as C
from labkit.exercises.feedback import lab_problem, not_yet, passed
from labkit.exercises.solutions import SOLUTIONS
from labkit.jobs.control import Flink, Job
from labkit.jobs.custom import CustomMetric, PreviewTimeout, decimal_column, decimals_to_float
from labkit.ledger import Ledger
from labkit.settings import load


# ---- what each state looks like -------------------------------------------------------------------------------
def is_not_yet(fb: Feedback) -> Feedback:
    assert isinstance(fb, Feedback), fb
    assert fb.state == "fail" and not fb.ok and not fb.lab_problem, repr(fb)
    assert fb.message and "not yet" in repr(fb)
    assert "data-state='fail'" in fb._repr_html_()
    return fb


def is_lab(fb: Feedback, service: str, where: str | None = None) -> Feedback:
    """The lab's state: not a pass, not the attendee-blaming "not yet"; names the service and what to do."""
    assert isinstance(fb, Feedback), fb
    assert fb.state == "lab" and fb.lab_problem and not fb.ok and not fb, repr(fb)
    text = repr(fb)
    assert "not yet" not in text and text.startswith("⚠️ the lab, not your answer:"), text
    assert service in fb.message, fb.message
    if where:
        assert where in fb.message, fb.message
    assert "run this cell again" in fb.message.lower() or "then this one" in fb.message, fb.message
    page = fb._repr_html_()
    assert "data-state='lab'" in page and "data-state='fail'" not in page
    assert "#b26a00" in page  # amber: neutral, neither the pass green nor the not-yet red
    return fb


def is_pass(fb: Feedback) -> Feedback:
    assert isinstance(fb, Feedback) and fb.ok and fb.state == "pass", repr(fb)
    assert "data-state='pass'" in fb._repr_html_()
    return fb


def test_the_three_states_render_apart():
    assert is_pass(passed("yes")).hints == []
    assert "❌ not yet: no" in repr(is_not_yet(not_yet("no", "a hint")))
    fb = lab_problem(
        "InfluxDB at http://127.0.0.1:8086 did not answer (connection refused). Run `labkit up`, then run this cell again."
    )
    fb.exercise = "x"
    is_lab(fb, "InfluxDB", "http://127.0.0.1:8086")
    assert "data-exercise='x'" in fb._repr_html_()
    assert Feedback(True, "contradiction", lab_problem=True).ok is False  # a lab problem is never a pass


# ---- an unreachable lab: real clients, a port nothing listens on ---------------------------------------------
@pytest.fixture
def closed_port() -> int:
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(("127.0.0.1", port), timeout=1).close()
    return port


@pytest.fixture
def down(closed_port, tmp_path, monkeypatch):
    """Settings whose Kafka, InfluxDB and Flink are all on `closed_port` (external mode: no local stack's files)."""
    monkeypatch.chdir(tmp_path)  # no .env of the working directory
    for k in [k for k in __import__("os").environ if k.startswith("LABKIT_")]:
        monkeypatch.delenv(k)
    addr = f"127.0.0.1:{closed_port}"
    return load(
        mode="external",
        home=tmp_path / "home",
        kafka_bootstrap=addr,
        influx_url=f"http://{addr}",
        influx_token="t",
        flink_rest_url=f"http://{addr}",
    )


def _metric(name: str, settings, sql: str | None = None) -> CustomMetric:
    return CustomMetric(name, sql or str(SOLUTIONS[name]), settings=settings)


def _silent_lab(settings, ddl: str | None = None):
    """The break-it lab of 03 as the notebook holds it, its job on `settings`' Flink (no topic is made)."""
    from labkit.jobs.silent_partition import SilentPartitionLab

    lab = SilentPartitionLab.__new__(SilentPartitionLab)
    lab.settings, lab.run_id, lab.topic, lab.sent = settings, "abc123", "silent_abc123", None
    lab.job, lab.ddl = Job("0123abcd", "silent-partition-lab", Flink(settings.flink)), ddl
    return lab


_SILENT_DDL = """CREATE TEMPORARY TABLE clicks (
  url STRING, http_status INT, event_timestamp BIGINT,
  rowtime AS TO_TIMESTAMP_LTZ(event_timestamp, 3),
  WATERMARK FOR rowtime AS rowtime - INTERVAL '5' SECOND
) WITH ('connector' = 'kafka', 'topic' = 'silent_abc123', 'format' = 'json',
  'json.ignore-parse-errors' = 'true')"""


def _acc(**kw):
    """Accounts as verify returns them (EXACT unless `kw` changes a number)."""
    from collections import Counter

    from labkit.verify import Accounting

    base = dict(topic="t", windows=12, open_windows=0, expected=1000, counted=1000, lost=0, duplicated=0,
                late_expected=5, late_counted=5, dlq_expected=Counter(), dlq_found=Counter(),
                mismatches=pd.DataFrame())  # fmt: skip
    return Accounting(**{**base, **kw})


_BURST = Ledger("t", scenario={"name": "bot_burst", "target": "u_bot", "start_ms": 1_000_000, "end_ms": 1_060_000})

# every checker that talks to a service, called with the right answer on a lab that is down
LAB_CALLS = {
    "my_consumer": ("Kafka", lambda s: check_my_consumer("g", None, settings=s)),
    "first_tumble": ("Kafka", lambda s: check_first_tumble(_metric("first_tumble", s), Ledger("t"))),
    "error_pivot": ("InfluxDB", lambda s: check_error_pivot(SOLUTIONS["error_pivot"], "-1h", settings=s)),
    "top_5xx_urls": ("InfluxDB", lambda s: check_top_5xx_urls(SOLUTIONS["top_5xx_urls"], "-1h", settings=s)),
    "checkout_p95_panel": (
        "InfluxDB",
        lambda s: check_checkout_p95_panel(Panel(1, "p", str(SOLUTIONS["checkout_p95_panel"])), "30m", settings=s),
    ),
    "error_rate_per_url": ("Kafka", lambda s: check_error_rate_per_url(_metric("error_rate_per_url", s))),
    "sessions_per_minute": ("Kafka", lambda s: check_sessions_per_minute(_metric("sessions_per_minute", s))),
    "rescaled_readers": ("Flink", lambda s: check_rescaled_readers(4, Job("0123abcd", "pipeline", Flink(s.flink)))),
    "idle_readers": ("Flink", lambda s: check_idle_readers(2, Job("0123abcd", "pipeline", Flink(s.flink)))),
    "silent_partition": ("Flink", lambda s: check_silent_partition(1, _silent_lab(s))),
    "counterfactual": (
        "Flink",
        lambda s: check_counterfactual("MISMATCH", _acc(lost=40), Job("0123abcd", "pipeline", Flink(s.flink)), s),
    ),
    "bot_metric": ("Kafka", lambda s: check_bot_metric(_metric("bot_metric", s), _BURST)),
    "bot_panel": (
        "InfluxDB",
        lambda s: check_bot_panel(
            Panel(20, "Bot activity", str(SOLUTIONS["bot_panel"])),
            _metric("bot_metric", s),
            "max_requests_per_user",
        ),
    ),
}


@pytest.mark.parametrize("name", sorted(LAB_CALLS))
def test_an_unreachable_service_is_the_labs_problem_not_the_answers(name, down):
    service, call = LAB_CALLS[name]
    address = down.kafka if service == "Kafka" else (down.influx if service == "InfluxDB" else down.flink)
    fb = is_lab(call(down), service, address)
    assert fb.exercise == name
    assert "connection refused" in fb.message
    assert "labkit status" in fb.message and "labkit up" in fb.message


def test_an_influxdb_that_was_never_set_up_says_so(closed_port, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    s = load(mode="local", home=tmp_path / "fresh", influx_port=closed_port)
    fb = is_lab(check_error_pivot(SOLUTIONS["error_pivot"], "-1h", settings=s), "InfluxDB")
    assert "onboarded" in fb.message and "labkit up" in fb.message


def test_every_client_library_failing_on_a_closed_port_is_the_lab(closed_port):
    """The decorator classifies the clients' own errors too (a call a checker did not wrap)."""
    import httpx
    from confluent_kafka.admin import AdminClient
    from influxdb_client import InfluxDBClient
    from kafka import KafkaConsumer

    addr = f"127.0.0.1:{closed_port}"

    @checker("t")
    def kafka_python():
        KafkaConsumer(bootstrap_servers=addr, bootstrap_timeout_ms=500)

    @checker("t")
    def librdkafka():
        AdminClient({"bootstrap.servers": addr, "log_level": 0}).list_topics(timeout=1)

    @checker("t")
    def influxdb_client():
        InfluxDBClient(url=f"http://{addr}", token="t", org="o").query_api().query("buckets()")

    @checker("t")
    def http():
        httpx.get(f"http://{addr}/v1/overview", timeout=2)

    @checker("t")
    def a_socket_that_never_answers():
        server = socket.socket()
        server.bind(("127.0.0.1", 0))
        server.listen()
        with server, socket.create_connection(server.getsockname(), timeout=0.2) as c:
            c.recv(1)

    is_lab(kafka_python(), "Kafka")
    is_lab(librdkafka(), "Kafka")
    is_lab(influxdb_client(), "InfluxDB")
    assert "connection refused" in is_lab(http(), str(closed_port)).message
    assert "timed out" in is_lab(a_socket_that_never_answers(), "service").message


def test_a_preview_that_timed_out_or_lost_kafka_is_the_lab():
    @checker("t")
    def timed_out():
        raise PreviewTimeout("the preview of x returned no row within 90s.", "preview fewer events")

    @checker("t")
    def kafka_gone():
        raise JobError("your SQL for x failed: TimeoutException: Timed out waiting for a node assignment.")

    @checker("t")
    def job_gone():
        raise JobError("Flink does not know 0123abcd.", "list jobs with `labkit jobs`")

    @checker("t")
    def no_java():
        raise JobError("your SQL for x failed: Exception: Java gateway process exited before sending its port number")

    assert "labkit doctor" in is_lab(no_java(), "preview").message
    fb = is_lab(timed_out(), "preview")
    assert "90s" in fb.message and "seconds=" in fb.message and "labkit doctor" in fb.message
    fb = is_lab(kafka_gone(), "Kafka")
    assert "your SQL" not in fb.message  # it was not the SQL
    assert "start the job" in is_lab(job_gone(), "Flink").message
    assert issubclass(PreviewTimeout, JobError)  # callers catching JobError still catch it


def test_influxdb_refusing_the_token_is_the_lab_but_refusing_the_flux_is_the_answer():
    from influxdb_client.rest import ApiException

    def rejected(status: int):
        @checker("t")
        def run():
            try:
                raise ApiException(status=status, reason="x")
            except ApiException:
                raise ServiceError(
                    f"InfluxDB rejected the query (HTTP {status}): error @3:6-3:20: undefined identifier nosuch"
                ) from None

        return run()

    assert "token" in is_lab(rejected(401), "InfluxDB").message
    fb = is_not_yet(rejected(400))
    assert "error @3:6-3:20" in fb.message and "undefined identifier" in fb.message
    assert any("line:column" in h for h in fb.hints)


# ---- an answer that raised: the real reason --------------------------------------------------------------------
def test_a_raised_answer_shows_its_type_message_and_a_fitting_hint():
    @checker("t")
    def sql_typo():
        raise JobError(
            "your SQL for x failed: SQL validation failed. From line 2, column 8 to line 2, column 21: "
            "Column 'no_such_column' not found in any table",
            "fix the SQL at the line and column shown, then preview again",
        )

    fb = is_not_yet(sql_typo())
    assert "JobError" in fb.message and "line 2, column 8" in fb.message and "no_such_column" in fb.message
    assert fb.hints == ["fix the SQL at the line and column shown, then preview again"]
    assert "error above" not in repr(fb)  # the decorator swallowed it: there is nothing above

    # a real checker: the attendee's DataFrame lacks the column the exercise is about
    fb = is_not_yet(check_error_share(0.1, pd.DataFrame({"status": [200, 404]})))
    assert "KeyError: 'http_status'" in fb.message and "'http_status'" in fb.hints[0]

    @checker("t")
    def java_dump():
        raise RuntimeError(
            "\n\nTraceback (most recent call last):\norg.apache.flink.SomeError: the reason\n  at a.b(C.java:1)\n"
        )

    fb = is_not_yet(java_dump())
    assert "RuntimeError: org.apache.flink.SomeError: the reason" in fb.message and "C.java" not in fb.message


# ---- answers of the wrong shape, never reaching a service ------------------------------------------------------
# (checker name, call on a lab that is down, a word the message must contain)
SHAPES = [
    ("silent_partition", lambda s: check_silent_partition(None, _silent_lab(s)), "number"),
    ("silent_partition", lambda s: check_silent_partition(0.5, _silent_lab(s)), "whole number"),
    ("silent_partition", lambda s: check_silent_partition("one", _silent_lab(s)), "number"),
    ("silent_partition", lambda s: check_silent_partition(1, None), "silent-partition lab"),
    ("counterfactual", lambda s: check_counterfactual("?", _acc(lost=40), None, s), "EXACT"),
    ("counterfactual", lambda s: check_counterfactual(None, _acc(lost=40), None, s), "prediction"),
    ("counterfactual", lambda s: check_counterfactual(["MISMATCH"], _acc(lost=40), None, s), "prediction"),
    ("counterfactual", lambda s: check_counterfactual("too few", _acc(lost=40), None, s), "MISMATCH"),
    ("counterfactual", lambda s: check_counterfactual(" mismatch ", _acc(lost=40), None, s), "not run yet"),
    (
        "counterfactual",
        lambda s: check_counterfactual("MISMATCH", _acc(), Job("0123abcd", "p", Flink(s.flink)), s, mid_stream=False),
        "after the drill's traffic had ended",
    ),
    (
        "counterfactual",
        lambda s: check_counterfactual("MISMATCH", None, Job("0123abcd", "pipeline", Flink(s.flink)), s),
        "accounts",
    ),
    ("my_consumer", lambda s: check_my_consumer(None, settings=s), "my_group"),
    ("my_consumer", lambda s: check_my_consumer("   ", settings=s), "my_group"),
    ("my_consumer", lambda s: check_my_consumer(["g"], settings=s), "string"),
    ("first_tumble", lambda s: check_first_tumble(None, Ledger("t")), "CustomMetric"),
    ("first_tumble", lambda s: check_first_tumble(str(SOLUTIONS["first_tumble"]), Ledger("t")), "SQL text"),
    ("first_tumble", lambda s: check_first_tumble(_metric("first_tumble", s), None), "ledger"),
    ("error_pivot", lambda s: check_error_pivot(None, "-1h", settings=s), "empty"),
    ("error_pivot", lambda s: check_error_pivot("  \n ", "-1h", settings=s), "empty"),
    ("error_pivot", lambda s: check_error_pivot(42, "-1h", settings=s), "Flux"),
    ("top_5xx_urls", lambda s: check_top_5xx_urls("", "-1h", settings=s), "empty"),
    ("top_5xx_urls", lambda s: check_top_5xx_urls(["from"], "-1h", settings=s), "Flux"),
    ("top_5xx_urls", lambda s: check_top_5xx_urls(None, "-1h", settings=s), "empty"),
    ("checkout_p95_panel", lambda s: check_checkout_p95_panel(None, settings=s), "Panel"),
    ("checkout_p95_panel", lambda s: check_checkout_p95_panel("from(bucket: ...)", settings=s), "Panel"),
    (
        "checkout_p95_panel",
        lambda s: check_checkout_p95_panel(
            Panel(1, "p", str(SOLUTIONS["checkout_p95_panel"]).replace("v.timeRangeStart", "-1h")), settings=s
        ),
        "macros",
    ),
    ("error_rate_per_url", lambda s: check_error_rate_per_url(None), "CustomMetric"),
    ("error_rate_per_url", lambda s: check_error_rate_per_url(str(SOLUTIONS["error_rate_per_url"])), "SQL text"),
    ("error_rate_per_url", lambda s: check_error_rate_per_url(pd.DataFrame()), "DataFrame"),
    ("sessions_per_minute", lambda s: check_sessions_per_minute(42), "CustomMetric"),
    ("sessions_per_minute", lambda s: check_sessions_per_minute("SELECT 1"), "SQL text"),
    ("sessions_per_minute", lambda s: check_sessions_per_minute({}), "CustomMetric"),
    ("rescaled_readers", lambda s: check_rescaled_readers(4.9, Job("j", "j", Flink(s.flink))), "whole number"),
    ("rescaled_readers", lambda s: check_rescaled_readers("four", Job("j", "j", Flink(s.flink))), "number"),
    ("rescaled_readers", lambda s: check_rescaled_readers(None, Job("j", "j", Flink(s.flink))), "number"),
    ("rescaled_readers", lambda s: check_rescaled_readers(True, Job("j", "j", Flink(s.flink))), "number"),
    ("rescaled_readers", lambda s: check_rescaled_readers(math.inf, Job("j", "j", Flink(s.flink))), "count"),
    ("rescaled_readers", lambda s: check_rescaled_readers(4, None), "job"),
    ("idle_readers", lambda s: check_idle_readers(2.5, Job("j", "j", Flink(s.flink))), "whole number"),
    ("idle_readers", lambda s: check_idle_readers("two", Job("j", "j", Flink(s.flink))), "number"),
    ("idle_readers", lambda s: check_idle_readers(None, Job("j", "j", Flink(s.flink))), "number"),
    ("idle_readers", lambda s: check_idle_readers(2, None), "job"),
    ("bot_metric", lambda s: check_bot_metric(None, _BURST), "CustomMetric"),
    ("bot_metric", lambda s: check_bot_metric(str(SOLUTIONS["bot_metric"]), _BURST), "SQL text"),
    ("bot_metric", lambda s: check_bot_metric(_metric("bot_metric", s), Ledger("t")), "burst"),
    ("bot_panel", lambda s: check_bot_panel(None, _metric("bot_metric", s), "m"), "Panel"),
    (
        "bot_panel",
        lambda s: check_bot_panel(
            Panel(1, "p", 'from(bucket: "x") |> range(start: -1h)'), _metric("bot_metric", s), "m"
        ),
        "macros",
    ),
    ("bot_panel", lambda s: check_bot_panel(Panel(1, "p", str(SOLUTIONS["bot_panel"])), None, "m"), "metric"),
    (
        "bot_panel",
        lambda s: check_bot_panel(Panel(1, "p", str(SOLUTIONS["bot_panel"])), _metric("bot_metric", s), " "),
        "field",
    ),
]


@pytest.mark.parametrize(("name", "call", "word"), SHAPES, ids=[f"{n}-{i}" for i, (n, _, _) in enumerate(SHAPES)])
def test_a_wrong_shape_is_not_yet_before_any_service_is_asked(name, call, word, down):
    fb = is_not_yet(call(down))
    assert fb.exercise == name
    assert word.lower() in repr(fb).lower(), repr(fb)


def test_every_checker_of_the_course_is_fed_wrong_shapes():
    """Here (the ones that talk to a service: three shapes or more, and the lab down) or in test_checkers.py
    (the ones graded in Python: every odd shape)."""
    import inspect

    served = {n for n, _, _ in SHAPES}
    assert all(sum(n == name for n, _, _ in SHAPES) >= 3 for name in served)
    assert served == set(LAB_CALLS)
    pure = {"pipeline_order", "error_share", "broken_url", "tags_or_fields", "failing_endpoint"}
    pure |= {"latency_regression", "bot_alert", "accounts", "partition_split", "silent_fix", "broken_link"}
    checkers = {
        f.exercise
        for n, f in inspect.getmembers(C, inspect.isfunction)
        if n.startswith("check_") and f.__module__ == C.__name__ and hasattr(f, "exercise")
    }
    assert checkers == served | pure


# ---- harmless differences pass, 4.9 does not -------------------------------------------------------------------
def test_whitespace_and_case_are_forgiven_where_harmless():
    is_pass(check_pipeline_order("Producer -> Kafka -> Flink -> InfluxDB -> Grafana"))
    is_pass(check_pipeline_order([" producer", "KAFKA ", "flink", "influx", "dashboard"]))
    is_pass(check_tags_or_fields({f" {k.upper()} ": f" {v.title()}s " for k, v in SOLUTIONS["tags_or_fields"].items()}))

    led = Ledger("t", scenario={"name": "latency_regression", "target": "/search", "start_ms": 0, "end_ms": 60_000})
    is_pass(check_latency_regression({"metric": "P95 ", "endpoint": " /search "}, led))
    is_pass(check_latency_regression({" Metric": "latency p99", "Endpoint ": "/Search"}, led))
    is_pass(check_latency_regression({"metric": "P50 ", "endpoint": "/search"}, led))  # per URL, p50 jumps too
    is_not_yet(check_latency_regression({"metric": "P95 ", "endpoint": "/cart"}, led))

    incident = Ledger("t", scenario={"name": "incident", "target": "/api/recommendations", "start_ms": 0, "end_ms": 1})
    is_pass(check_failing_endpoint(" /api/recommendations\n", incident))
    is_pass(check_failing_endpoint("/API/Recommendations", incident))  # the site's paths are lowercase: one page

    from labkit.events import Scenario

    gen = EventGenerator(seed=4, rate=1000, scenario=Scenario("not_found_storm", start_s=0, duration_s=60))
    target = gen.scenario_info()["target"]
    is_pass(check_broken_url(f" {target} ", gen))
    is_pass(check_broken_url(target.upper(), gen))  # a unique case-insensitive match
    assert C._url("/x", {"/X", "/x"}) == "/x"
    assert C._url("/X ".strip(), {"/x", "/x/"}) == "/x"
    assert C._url("/A", {"/a", "/A/", "/a/"}) == "/a"
    assert C._url("/Ab", {"/ab", "/AB"}) is None  # two pages differ only by case: the case decides, not us

    df = EventGenerator(seed=1).sample(500)
    share = float((df["http_status"] >= 400).mean())
    is_pass(check_error_share(f" {share!r} ", df))


def test_a_whole_number_is_whole_and_4_point_9_is_not_4():
    assert C._whole(4, "n") == (4, None)
    assert C._whole(4.0, "n") == (4, None)
    assert C._whole(np.int64(4), "n") == (4, None)
    assert C._whole(" 4 ", "n") == (4, None)
    for bad in (4.9, 3.5, "4.2", math.nan, -math.inf, True, None, "four", [4]):
        v, why = C._whole(bad, "n")
        assert v is None and why, bad
    assert "whole number" in C._whole(4.9, "n")[1]

    info = {"vertices": [{"name": "Source: events_raw -> Calc", "parallelism": 4}, {"name": "Sink", "parallelism": 1}]}
    is_pass(C._grade_rescaled(4, info))
    six = {"vertices": [{"name": "Source: events", "parallelism": 6}, {"name": "Sink", "parallelism": 1}]}
    is_pass(C._grade_idle(2, six))
    assert "not how many" in is_not_yet(C._grade_idle(6, six)).message  # the subtasks, not the idle ones
    assert "number of partitions" in is_not_yet(C._grade_idle(4, six)).message
    assert "exactly one source subtask" in is_not_yet(C._grade_idle(3, six)).message
    is_pass(C._grade_idle(0, info))  # parallelism 4 over 4 partitions: none idle
    is_lab(C._grade_idle(2, {"vertices": [{"name": "Sink", "parallelism": 1}]}), "job", None)
    assert "not 2" in is_not_yet(C._grade_rescaled(2, info)).message
    is_lab(C._grade_rescaled(4, {"vertices": [{"name": "Sink", "parallelism": 1}]}), "job", None)


def test_4_point_0_passes_the_number_check_and_4_point_9_does_not(down):
    job = Job("0123abcd", "pipeline", Flink(down.flink))
    assert "4.9 is not a whole number" in is_not_yet(check_rescaled_readers(4.9, job)).message
    for fine in (4.0, "4 ", np.float64(4.0)):
        is_lab(check_rescaled_readers(fine, job), "Flink")  # past the answer's check: now it is Flink's turn


# ---- DECIMAL columns ---------------------------------------------------------------------------------------------
def test_decimal_columns_of_the_preview_are_numbers():
    # what Flink's SUM(CASE ... 1.0 ...) / COUNT(*) looks like after the preview: text, one scale per column
    df = pd.DataFrame(
        {
            "url": ["/a", "/b", "/c"],
            "rate": ["0.333333333333333333333", "0E-21", "1.000000000000000000000"],
            "ids": ["123", "7", "42"],  # integer-looking text: ids more likely, left alone
            "prices": [decimal.Decimal("1.50"), None, decimal.Decimal("2.25")],
            "mixed_scale": ["0.5", "0.25", "1.125"],  # text of floats, not a DECIMAL column
        }
    )
    assert decimal_column(df["rate"]) and decimal_column(df["prices"])
    assert not decimal_column(df["url"]) and not decimal_column(df["ids"]) and not decimal_column(df["mixed_scale"])
    out = decimals_to_float(df.copy())
    assert out["rate"].dtype == float and out["rate"].tolist() == pytest.approx([1 / 3, 0.0, 1.0])
    assert out["prices"].dtype == float and math.isnan(out["prices"][1])
    assert out["url"].dtype == object and out["ids"].dtype == object
    assert C._numeric(df["rate"]) and not C._numeric(df["url"]) and not C._numeric(pd.Series([True, False]))


# ---- 07: the reference is Python's reading of the same records, by the job's rules ----------------------------
def _records(n: int = 6000, seed: int = 5, partitions: int = 4) -> pd.DataFrame:
    """Generator events as a topic would hold them: a partition by key, offsets in send order."""
    gen = EventGenerator(
        seed=seed, rate=300, late_fraction=0.1, malformed_fraction=0.02, late_warmup_s=0, late_min_s=6, late_max_s=20
    )
    rows, offsets = [], {}
    for _, e in zip(range(n), gen, strict=False):
        p = zlib.crc32(e.key) % partitions
        offsets[p] = offsets.get(p, -1) + 1
        kind, t, detail = C._parse_click(e.value, e.timestamp_ms)
        rows.append((p, offsets[p], kind, t, *(detail or (None,) * 4), e.timestamp_ms, e.kind))
    cols = ["partition", "offset", "kind", "t", "url", "http_status", "session_id", "user_id", "kafka_ms", "sent"]
    return pd.DataFrame(rows, columns=cols)


@pytest.fixture(scope="module")
def records():
    return _records()


def test_the_python_reading_validates_like_the_job(records):
    from labkit import badinput

    assert (records["kind"] == "bad").sum() == (records["sent"] == "malformed").sum() > 0
    assert (records.loc[records["sent"] != "malformed", "kind"] == "valid").all()
    ev = json.loads(next(iter(EventGenerator(seed=1))).value)
    rng = __import__("random").Random(1)
    for cls in badinput.CLASSES:  # every class the job dead-letters (tests/pipeline checks the job itself)
        for _ in range(3):
            assert C._parse_click(cls.make(rng, ev), ev["event_timestamp"])[0] == "bad", cls.name
    kafka_ms = ev["event_timestamp"]
    # what the job's ParseClick takes that a strict reading would not: numbers as text, a status of 404.0
    lenient = {**ev, "http_status": " 404 ", "latency_ms": "12.5", "event_timestamp": str(kafka_ms)}
    assert C._parse_click(json.dumps(lenient).encode(), kafka_ms)[0] == "valid"
    assert C._parse_click(json.dumps({**ev, "http_status": 404.0}).encode(), kafka_ms)[2][1] == 404
    assert C._parse_click(b'{"event_type": "watermark", "event_timestamp": 5}', 5)[:2] == ("control", 5)
    assert C._parse_click(b'{"event_type": "watermark", "event_timestamp": 1}', 10**13)[:2] == (
        "bad",
        None,
    )  # 8+ days old
    assert C._parse_click(json.dumps({**ev, "latency_ms": True}).encode(), kafka_ms)[0] == "bad"
    assert C._parse_click(json.dumps(ev).replace("}", ', "x": NaN}').encode(), kafka_ms)[0] == "bad"


def test_the_python_on_time_filter_agrees_with_the_lateness_picture(records):
    """eventtime.watermark_trace is notebook 03's reading of the job's lateness (compared with the job in
    tests/pipeline); the checkers' reference must decide the same for every record."""
    from labkit.eventtime import watermark_trace
    from labkit.timing import WATERMARK_DELAY_MS

    kept = C._on_time(records, WATERMARK_DELAY_MS)
    trace = watermark_trace(records.assign(event_ms=records["t"].where(records["kind"] == "valid")))
    on_time = trace[~trace["late"]]
    assert set(zip(kept["partition"], kept["offset"], strict=True)) == set(
        zip(on_time["partition"], on_time["offset"], strict=True)
    )
    assert 0 < len(kept) < (records["kind"] == "valid").sum()  # some were late: the filter did something


def test_an_end_marker_moves_its_partitions_newest_time():
    rows = [
        (0, 0, "valid", 100_000),
        (0, 1, "control", 200_000),  # the marker: everything of partition 0 before 195 s is late from now on
        (0, 2, "valid", 150_000),
        (1, 0, "valid", 150_000),  # another partition: on time
    ]
    df = pd.DataFrame(rows, columns=["partition", "offset", "kind", "t"])
    kept = C._on_time(df, 5000)
    assert list(zip(kept["partition"], kept["offset"], strict=True)) == [(0, 0), (1, 0)]


@pytest.fixture(scope="module")
def per_url(records):
    from labkit.timing import WATERMARK_DELAY_MS

    return C._per_url(C._on_time(records, WATERMARK_DELAY_MS))


def _answer(per_url: pd.DataFrame, **cols) -> pd.DataFrame:
    """A preview-like result: window_end, url and the given columns computed from the reference."""
    out = per_url[["window_end", "url"]].copy()
    for name, f in cols.items():
        out[name] = f(per_url)
    return out.reset_index(drop=True)


def test_error_rate_per_url_grading(per_url):
    rate = lambda r: r["__rate"]  # noqa: E731
    is_pass(C._grade_error_rate(_answer(per_url, requests=lambda r: r["__requests"], error_rate=rate), per_url))
    # DECIMAL as the preview passes it on: SUM(CASE ... 1.0 ...) / COUNT(*)
    dec = _answer(per_url, error_rate=lambda r: [f"{v:.6f}" if v else "0E-6" for v in r["__rate"]])
    assert dec["error_rate"].dtype == object
    is_pass(C._grade_error_rate(dec, per_url))
    # case and spaces of column names
    is_pass(C._grade_error_rate(_answer(per_url, ERROR_RATE=rate).rename(columns={"url": "URL"}), per_url))

    wrong = {
        "divide it": _answer(per_url, errors=lambda r: r["__errors"]),
        "integer division": _answer(per_url, error_rate=lambda r: (r["__rate"] * 0).astype(int)),
        "percentage": _answer(per_url, error_rate=lambda r: r["__rate"] * 100),
        "select `url`": _answer(per_url, error_rate=rate).drop(columns="url"),
        "select `window_end`": _answer(per_url, error_rate=rate).drop(columns="window_end"),
        "numeric column": _answer(per_url, label=lambda r: "x"),
        "several rows": pd.concat([_answer(per_url, error_rate=rate)] * 2),
        "no column equals": _answer(per_url, error_rate=lambda r: r["__rate"] / 2 + 0.01),
        "no rows": pd.DataFrame(),
        "(window, url) rows": _answer(per_url, error_rate=rate).assign(
            window_end=lambda d: d["window_end"] + pd.Timedelta("5s")
        ),
    }
    for word, got in wrong.items():
        assert word in is_not_yet(C._grade_error_rate(got, per_url)).message, word


def test_the_reference_ignores_windows_written_after_the_preview(per_url):
    early = per_url[per_url["window_end"] < per_url["window_end"].quantile(0.5)]
    is_pass(C._grade_error_rate(_answer(early, error_rate=lambda r: r["__rate"]), per_url))


def test_sessions_per_minute_grading(records):
    from labkit.timing import WATERMARK_DELAY_MS

    want = C._per_window(C._on_time(records, WATERMARK_DELAY_MS))
    got = want[["window_end"]].assign(sessions=want["__s"])
    is_pass(C._grade_sessions(got, want))
    is_pass(C._grade_sessions(got.assign(sessions=got["sessions"].map(lambda v: f"{v}.000")), want))  # DECIMAL
    wrong = {
        "counts events": want[["window_end"]].assign(n=want["__events"]),
        "counts users": want[["window_end"]].assign(n=want["__users"]),
        "1 minute apart": pd.DataFrame(
            {"window_end": want["window_end"].iloc[0] + pd.to_timedelta(np.arange(6) * 10, unit="s"), "n": 5}
        ),
        "numeric column": want[["window_end"]].assign(n="x"),
        "one row per window": pd.concat([got, got]),
        "select window_end": got.drop(columns="window_end"),
        "no column equals": got.assign(sessions=got["sessions"] * 3),
    }
    for word, g in wrong.items():
        assert word in is_not_yet(C._grade_sessions(g, want)).message, word


# ---- 03 and 09: the preview against the ledger ---------------------------------------------------------------------
def test_first_tumble_grading():
    want = pd.DataFrame(
        {"window_end": [10_000, 10_000, 20_000], "status_code": [200, 404, 200], "expected": [50, 2, 48]}
    )
    t = pd.to_datetime(pd.Series([10_000, 10_000, 20_000]), unit="ms")
    got = pd.DataFrame({"window_end": t, "http_status": [200, 404, 200], "events": [50, 2, 48]})
    is_pass(C._grade_first_tumble(got, want))
    is_pass(C._grade_first_tumble(got.assign(http_status=["200", "404", "200"]), want))  # CAST AS STRING
    is_pass(C._grade_first_tumble(got.rename(columns={"window_end": "Window_End"}), want))
    wrong = {
        "no rows": got.iloc[0:0],
        "select window_end": got.drop(columns="window_end"),
        "select http_status": got.drop(columns="http_status"),
        "add a count": got.drop(columns="events"),
        "several rows": pd.concat([got, got]),
        "differ": got.assign(events=[49, 2, 48]),
        "cover": got.iloc[:2],
    }
    for word, g in wrong.items():
        assert word in is_not_yet(C._grade_first_tumble(g, want)).message, word
    # a run that produced nothing: nothing to grade on, which is not the query's fault
    assert "ledger has no events" in is_lab(C._grade_first_tumble(got, want.iloc[0:0]), "scratch").message


def test_bot_metric_grading():
    info = {"start_ms": 100_000, "end_ms": 160_000}
    ends = pd.to_datetime(pd.Series(range(10_000, 300_001, 10_000)), unit="ms")
    burst = ((ends.astype("int64") // 10**6 - 10_000 >= 100_000) & (ends.astype("int64") // 10**6 <= 160_000)).values
    got = pd.DataFrame({"window_end": ends, "max_requests": np.where(burst, 300, 12)})
    is_pass(C._grade_bot_metric(got, info))
    is_pass(C._grade_bot_metric(got.assign(max_requests=[f"{v}.0" for v in got["max_requests"]]), info))
    wrong = {
        "no rows": got.iloc[0:0],
        "select window_end": got.drop(columns="window_end"),
        "numeric column": got.assign(max_requests="x"),
        "one row per window": pd.concat([got, got]),
        "separates": got.assign(max_requests=12),
        "before the bot burst": got[burst],
    }
    for word, g in wrong.items():
        assert word in is_not_yet(C._grade_bot_metric(g, info)).message, word


# ---- 04: Flux results --------------------------------------------------------------------------------------------
def _times(n: int = 6) -> pd.Series:
    return pd.Series(pd.date_range("2026-01-01", periods=n, freq="10s", tz="UTC"))


def test_error_pivot_grading():
    ref = pd.DataFrame({"time": _times(), "errors_4xx": [1, 2, 0, 3, 1, 0], "errors_5xx": [0, 1, 0, 0, 2, 0]})
    got = ref.rename(columns={"time": "_time"})
    is_pass(C._grade_error_pivot(got, ref))
    long = got.melt(id_vars="_time", var_name="_field", value_name="_value")
    wrong = {
        "pivot them": long,
        "missing column": got.drop(columns="errors_5xx"),
        "several rows per time": pd.concat([got, got]),
        "windows match": got.assign(errors_4xx=got["errors_4xx"] + 1),
        "no rows": got.iloc[0:0],
    }
    for word, g in wrong.items():
        assert word in is_not_yet(C._grade_error_pivot(g, ref)).message, word


def test_top_5xx_urls_grading():
    urls = pd.DataFrame(
        {
            "time": list(_times(2)) * 7,
            "url": [f"/u{i}" for i in range(7)] * 2,
            "errors_5xx": [9, 7, 5, 4, 3, 2, 1] * 2,
            "errors": [20, 17, 11, 10, 8, 6, 2] * 2,
        }
    )
    top = pd.DataFrame({"url": [f"/u{i}" for i in range(5)], "_value": [18.0, 14.0, 10.0, 8.0, 6.0]})
    is_pass(C._grade_top_5xx(top, urls))
    wrong = {
        "url column": top.drop(columns="url"),
        "a number": top.assign(_value="many"),
        "expected 5 rows": top.head(3),
        "all errors": top.assign(_value=[40.0, 34.0, 22.0, 20.0, 16.0]),
        "largest first": top.iloc[::-1],
        "differ": top.assign(_value=[1.0, 2.0, 3.0, 4.0, 5.0]),
    }
    for word, g in wrong.items():
        assert word in is_not_yet(C._grade_top_5xx(g, urls)).message, word


# ---- 05 and 09: panels -------------------------------------------------------------------------------------------
def _panel_frame(values, field: str = "p95", url: str = "/checkout", times=None) -> pd.DataFrame:
    """What Panel.data returns for one series: time, _value, _field and the tags (not pivoted)."""
    t = _times(len(values)) if times is None else times
    return pd.DataFrame({"time": t, "_value": values, "_field": field, "url": url, "stream": "s"})


def test_p95_panel_grading_plain_aggregated_and_pivoted():
    values = [120.0, 130.5, 110.0, 180.0, 95.0, 101.0]
    ref = _panel_frame(values)
    is_pass(C._grade_p95_panel(ref.copy(), ref))
    # aggregateWindow(every: v.windowPeriod, fn: mean): each point moves to its window's stop, and empty windows
    # come back without a value. The reference is drawn with the same call (below), so both move alike.
    aggregated = _panel_frame([math.nan, *values], times=_times(7) + pd.Timedelta("10s"))
    is_pass(C._grade_p95_panel(aggregated, aggregated.assign(_value=[math.nan, *values])))
    # pivoted: the field is a column of its own, no _value (this raised KeyError: '_value' before)
    pivoted = ref.drop(columns=["_value", "_field"]).assign(p95=values)
    is_pass(C._grade_p95_panel(pivoted, ref))
    wrong = {
        "several fields": pd.concat([ref, _panel_frame(values, field="p50")]),
        "pivoted into columns": pivoted.assign(p50=1.0, p99=2.0),
        "not the field": ref.drop(columns=["_value", "_field"]).assign(p50=values),
        "URL(s)": _panel_frame(values, url="ALL"),
        "no rows": ref.iloc[0:0],
        "no time": ref.drop(columns="time"),
        "values are not": _panel_frame([v + 1 for v in values]),
        "times do not match": _panel_frame(values, times=_times(6) + pd.Timedelta("5s")),
    }
    for word, g in wrong.items():
        assert word in is_not_yet(C._grade_p95_panel(g, ref)).message, word
    # nothing to compare with: the lab (no events in the range), not the panel
    is_lab(C._grade_p95_panel(ref, ref.iloc[0:0]), "p95", None)


def test_the_reference_panel_is_drawn_the_way_the_attendees_is():
    sol = str(SOLUTIONS["checkout_p95_panel"])
    mine = sol + "\n  |> aggregateWindow(every: v.windowPeriod, fn: mean, createEmpty: false)"
    assert C._reference_panel(sol, mine).flux.endswith(
        "|> aggregateWindow(every: v.windowPeriod, fn: mean, createEmpty: false)"
    )
    custom = sol + "\n  |> aggregateWindow(every: 1m, fn: (column, tables=<-) => tables |> quantile(q: 0.5))"
    assert C._reference_panel(sol, custom).flux.endswith("fn: (column, tables=<-) => tables |> quantile(q: 0.5))")
    assert C._reference_panel(sol, sol).flux == sol


def test_bot_panel_grading():
    values = [5.0, 6.0, 300.0, 280.0, 7.0]
    ref = _panel_frame(values, field="max_requests_per_user", url=None).drop(columns="url")
    args = ("max_requests_per_user", "custom_bot_activity", "t")
    is_pass(C._grade_bot_panel(ref.copy(), ref, *args))
    is_pass(C._grade_bot_panel(ref.drop(columns=["_value", "_field"]).assign(max_requests_per_user=values), ref, *args))
    wrong = {
        "no rows": ref.iloc[0:0],
        "several fields": pd.concat([ref, ref.assign(_field="other")]),
        "not your metric": ref.assign(_value=1.0),
        "not 'max_requests_per_user'": ref.assign(_field="other"),
    }
    for word, g in wrong.items():
        assert word in is_not_yet(C._grade_bot_panel(g, ref, *args)).message, word


def test_bot_alert_forgives_spaces_and_names_a_bad_threshold():
    times = pd.date_range("2026-01-01", periods=30, freq="10s", tz="UTC")
    values = pd.DataFrame({"time": times, "m": [5.0] * 10 + [900.0] * 6 + [6.0] * 14})
    start_ms = int(times[10].value // 10**6) - 10_000
    led = Ledger("t", scenario={"name": "bot_burst", "target": "u", "start_ms": start_ms, "end_ms": start_ms + 60_000})
    for t in times:
        led.on_time[(int(t.value // 10**6), 200)] = 1
    is_pass(check_bot_alert(AlertRule("bot", "custom_x", " m ", 100, lookback_s=20, for_s=10), values, led))
    is_pass(check_bot_alert(AlertRule("bot", "custom_x", "M", " 100 ", lookback_s=20, for_s=10), values, led))
    assert "threshold" in is_not_yet(check_bot_alert(AlertRule("bot", "x", "m", "high"), values, led)).message
    assert "for_s" in is_not_yet(check_bot_alert(AlertRule("bot", "x", "m", 100, for_s=-5), values, led)).message
    assert (
        "time" in is_not_yet(check_bot_alert(AlertRule("bot", "x", "m", 100), values.drop(columns="time"), led)).message
    )
    assert "ledger" in is_not_yet(check_bot_alert(AlertRule("bot", "x", "m", 100), values, None)).message


def test_first_tumble_names_the_key_or_window_that_is_wrong():
    want = pd.DataFrame({"window_end": [10_000, 10_000, 20_000], "status_code": [200, 404, 200], "expected": [5, 1, 4]})
    right = pd.DataFrame({"window_end": pd.to_datetime([10_000, 10_000, 20_000], unit="ms"),
                          "http_status": [200, 404, 200], "events": [5, 1, 4]})  # fmt: skip
    is_pass(C._grade_first_tumble(right, want))
    by_url = right.assign(url=["/a", "/b", "/a"])
    by_url = pd.concat([by_url, by_url.assign(url="/c")])
    assert "you also group by url" in is_not_yet(C._grade_first_tumble(by_url, want)).message
    assert "http_status" in is_not_yet(C._grade_first_tumble(right.drop(columns="http_status"), want)).message
    ends = [10_000 * i for i in range(1, 13)]  # two minutes of 10 s windows, counted per minute
    long_want = pd.DataFrame({"window_end": ends, "status_code": 200, "expected": 3})
    minute = pd.DataFrame({"window_end": pd.to_datetime([60_000, 120_000], unit="ms"), "http_status": 200, "n": 18})
    assert "not 10 s" in is_not_yet(C._grade_first_tumble(minute, long_want)).message
    assert "differ" in is_not_yet(C._grade_first_tumble(right.assign(events=[5, 1, 3]), want)).message


def test_a_blank_first_tumble_is_told_so_without_a_preview():
    from labkit.jobs.custom import CustomMetric

    blank = CustomMetric("first_tumble", "\n-- per window and status\n", topic="lab03_scratch")
    fb = is_not_yet(check_first_tumble(blank, Ledger("lab03_scratch")))
    assert "empty" in fb.message


# ---- the counterfactual of 08: graded as recorded before the run ---------------------------------------------
def test_counterfactual_is_graded_by_what_was_recorded_before_the_run(down):
    from labkit.exercises import predictions

    broken = _acc(lost=40, counted=960)
    # nothing recorded: the current answer is graded, with a note to record first
    fb = C._grade_counterfactual("MISMATCH", broken, None, down)
    assert fb.ok and "predictions.record" in fb.message
    # recorded EXACT before the run, says MISMATCH after seeing it: graded as recorded, and told so
    predictions.record("counterfactual", "exact ", down)
    predictions.lock("counterfactual", broken.verdict, down)
    fb = is_not_yet(C._grade_counterfactual("MISMATCH", broken, None, down))
    assert "You recorded" in fb.message and "EXACT" in fb.message and "MISMATCH" in fb.message
    # a job restored from a checkpoint is not the counterfactual, whatever was predicted
    fb = is_not_yet(C._grade_counterfactual("EXACT", _acc(), {"id": 7, "external_path": "file:/cp/chk-7"}, down))
    assert "file:/cp/chk-7" in fb.message and "fresh=True" in repr(fb)
    # accounts that are not complete cannot grade a prediction: the lab's state, not the attendee's
    fb = C._grade_counterfactual("MISMATCH", _acc(open_windows=3), None, down)
    assert fb.lab_problem and "INCOMPLETE" in fb.message


def test_counterfactual_right_prediction_recorded_in_time_passes(down):
    from labkit.exercises import predictions

    broken = _acc(lost=40, counted=960)
    predictions.record("counterfactual", "MISMATCH", down)
    predictions.lock("counterfactual", broken.verdict, down)
    fb = C._grade_counterfactual("MISMATCH", broken, None, down)
    assert fb.ok and "MISMATCH" in fb.message and "recorded" not in fb.message
    # "?" recorded before the run (the starter), the right answer typed after: the recorded one is graded
    predictions.record("counterfactual", "?", down)
    predictions.lock("counterfactual", _acc(lost=41, counted=959).verdict, down)
    fb = is_not_yet(C._grade_counterfactual("MISMATCH", _acc(lost=41, counted=959), None, down))
    assert "not a prediction" in fb.message


# ---- 03's break-it lab: the fix is graded from the DDL and the windows that came out ----------------------------
def test_silent_fix_wrong_shapes_and_wrong_fixes_are_not_yet(down):
    from labkit.exercises.solutions import silent_fix

    good = silent_fix(_SILENT_DDL)
    assert "'scan.watermark.idle-timeout' = '5 s'" in good
    windows = pd.DataFrame({"window_end": pd.to_datetime([10_000], unit="ms", utc=True), "clicks": [5], "sent": [5]})
    for shape, word in [(None, "empty"), ("   ", "empty"), (42, "SQL text"), ("SELECT 1", "clicks")]:
        fb = is_not_yet(check_silent_fix(shape, _silent_lab(down, good), windows))
        assert word in fb.message, fb.message
    # the lab's job runs another DDL than the attendee's
    assert "lab.run(fixed_ddl)" in is_not_yet(check_silent_fix(good, _silent_lab(down, _SILENT_DDL), windows)).message
    # no idle timeout: the job still waits
    fb = is_not_yet(check_silent_fix(_SILENT_DDL, _silent_lab(down, _SILENT_DDL), pd.DataFrame()))
    assert "still waits" in fb.message and "idle" in repr(fb)
    # the watermark removed: no event time at all
    no_wm = _SILENT_DDL.replace("WATERMARK FOR rowtime AS rowtime - INTERVAL '5' SECOND", "")
    assert "WATERMARK" in is_not_yet(check_silent_fix(no_wm, _silent_lab(down, no_wm), pd.DataFrame())).message
    # an idle timeout of zero is no idle timeout
    zero = good.replace("'5 s'", "'0 s'")
    assert "still waits" in is_not_yet(check_silent_fix(zero, _silent_lab(down, zero), windows)).message
    # the right fix, but the timeout has not passed yet: said as such
    assert "only after" in is_not_yet(check_silent_fix(good, _silent_lab(down, good), pd.DataFrame())).message
    # the job option instead of the table option is also an idle timeout
    from labkit.jobs.silent_partition import has_idle_timeout

    assert has_idle_timeout(_SILENT_DDL, {"table.exec.source.idle-timeout": "3 s"})
    assert not has_idle_timeout(_SILENT_DDL, {"table.exec.source.idle-timeout": "0 ms"})
    # and the right fix with windows out passes
    assert check_silent_fix(good, _silent_lab(down, good), windows).ok


# ---- 05's empty panel: graded against the doctor's walk --------------------------------------------------------
def test_broken_link_wrong_answers_of_every_shape():
    from labkit.pipeline_doctor import LINKS, Diagnosis, Link

    d = Diagnosis("lab05_orders", 15)
    d.links = [Link("producer", True, "2,000 records"), Link("event time", True, "near the wall clock"),
               Link("job", False, "no job reads lab05_orders", "submit it")]  # fmt: skip
    d.links += [Link(n, None, "not checked") for n in LINKS[3:]]
    for shape, word in [(None, "name one link"), ("  ", "name one link"), (3, "name one link"),
                        ("the kafka", "not a link"), ("producer", "holds"), ("Event Time", "holds"),
                        ("windows", "after the first broken link")]:  # fmt: skip
        fb = is_not_yet(check_broken_link(shape, d))
        assert word in fb.message, (shape, fb.message)
    assert "run the doctor" in is_not_yet(check_broken_link("job", None)).message
    fb = check_broken_link(" JOB ", d)
    assert fb.ok and "submit it" in fb.message
    healthy = Diagnosis("t", 15, [Link(n, True, "fine") for n in LINKS])
    assert check_broken_link("job", healthy).lab_problem
