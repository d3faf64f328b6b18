"""Every checker that needs no running stack, fed wrong answers of every shape: it must answer "not yet" with
a specific message (never raise), and pass the solution."""

import math

import numpy as np
import pandas as pd
import pytest

from labkit.alerts import AlertRule
from labkit.events import EventGenerator, Scenario
from labkit.exercises import (
    QUESTIONS,
    Feedback,
    check_accounts,
    check_bot_alert,
    check_broken_url,
    check_choice,
    check_error_share,
    check_failing_endpoint,
    check_latency_regression,
    check_pipeline_order,
    check_tags_or_fields,
    check_watermark_prediction,
    solutions,
)
from labkit.exercises.solutions import SOLUTIONS
from labkit.ledger import Ledger

# answers an attendee may hand in by mistake, whatever the exercise
ODD_SHAPES = [
    None,
    "",
    "?",
    42,
    -1.5,
    math.nan,
    [],
    {},
    (),
    set(),
    object(),
    pd.DataFrame(),
    pd.Series(dtype=float),
    b"x",
]


def not_yet(fb):
    assert isinstance(fb, Feedback), fb
    assert not fb.ok, fb
    assert fb.message and "not yet" in repr(fb)
    assert "data-state='fail'" in fb._repr_html_()
    return fb


def passed(fb):
    assert isinstance(fb, Feedback) and fb.ok, fb
    assert "data-state='pass'" in fb._repr_html_()
    return fb


@pytest.mark.parametrize("name", sorted(QUESTIONS))
def test_every_question_grades_every_choice_and_odd_shapes(name):
    q = QUESTIONS[name]
    passed(check_choice(name, q.answer))
    passed(check_choice(name, q.answer.upper() + ")"))
    for wrong in set(q.choices) - {q.answer}:
        fb = not_yet(check_choice(name, wrong))
        assert q.wrong[wrong] in fb.message  # the explanation of that very mistake
    for odd in [*ODD_SHAPES, "z", "ab"]:
        not_yet(check_choice(name, odd))
    assert check_choice(name, "?").exercise == name


def test_pipeline_order():
    passed(check_pipeline_order(SOLUTIONS["pipeline_order"]))
    passed(check_pipeline_order(["Producer", "Kafka", "Flink", "InfluxDB", "notebooks"]))
    assert "position 1" in not_yet(check_pipeline_order(["kafka", "producer", "flink", "influxdb", "grafana"])).message
    assert "missing" in not_yet(check_pipeline_order(["producer", "kafka"])).message
    assert "unknown" in not_yet(check_pipeline_order(["producer", "spark", "flink", "influxdb", "grafana"])).message
    not_yet(check_pipeline_order(["producer"] * 5))
    for odd in ODD_SHAPES:
        not_yet(check_pipeline_order(odd))


@pytest.fixture(scope="module")
def sample():
    df = EventGenerator(seed=1, rate=200, late_fraction=0.02, malformed_fraction=0.01).sample(5000)
    return df[df["kind"] != "malformed"].astype({"http_status": int})


def test_error_share_names_each_typical_mistake(sample):
    passed(check_error_share(solutions.error_share(sample), sample))
    passed(check_error_share(np.float64(solutions.error_share(sample)), sample))
    s = sample["http_status"]
    assert "percentage" in not_yet(check_error_share((s >= 400).mean() * 100, sample)).message
    assert "5xx" in not_yet(check_error_share((s >= 500).mean(), sample)).message
    assert "number of errors" in not_yet(check_error_share(int((s >= 400).sum()), sample)).message
    assert "3xx" in not_yet(check_error_share((s >= 300).mean(), sample)).message
    not_yet(check_error_share(0.5, sample))
    for odd in [*ODD_SHAPES, True, "0.013", s]:
        not_yet(check_error_share(odd, sample))


def test_broken_url():
    gen = EventGenerator(seed=4, rate=1000, scenario=Scenario("not_found_storm", start_s=0, duration_s=60))
    storm = gen.sample(3000)
    passed(check_broken_url(solutions.broken_url(storm), gen))
    other = next(e.path for e in gen.site.endpoints if e.path != gen.scenario_info()["target"])
    assert "not the page" in not_yet(check_broken_url(other, gen)).message
    assert "not a page" in not_yet(check_broken_url("/nope", gen)).message
    for odd in ODD_SHAPES:
        not_yet(check_broken_url(odd, gen))
    not_yet(check_broken_url("/", EventGenerator(seed=4)))  # a generator without a scenario


def test_tags_or_fields():
    passed(check_tags_or_fields(SOLUTIONS["tags_or_fields"]))
    swapped = {**SOLUTIONS["tags_or_fields"], "count": "tag"}
    assert "'count' is a field" in not_yet(check_tags_or_fields(swapped)).message
    not_yet(check_tags_or_fields({"status_code": "?", "count": "?"}))
    not_yet(check_tags_or_fields({k: "TAG" for k in SOLUTIONS["tags_or_fields"]}))
    for odd in ODD_SHAPES:
        not_yet(check_tags_or_fields(odd))


def test_watermark_prediction_against_a_measured_result():
    result = pd.DataFrame({"delay_s": [0, 5, 30], "late": [375, 354, 0], "wait_s": [0.5, 4.5, 30.5]})
    fb = passed(check_watermark_prediction(SOLUTIONS["watermark_prediction"], result))
    assert "trade-off" in fb.message
    assert (
        "fastest_results"
        in not_yet(check_watermark_prediction({"fewest_late": 30, "fastest_results": 30}, result)).message
    )
    assert (
        "fewest_late" in not_yet(check_watermark_prediction({"fewest_late": 0, "fastest_results": 0}, result)).message
    )
    not_yet(check_watermark_prediction({"fewest_late": 10, "fastest_results": 0}, result))  # not a delay of the run
    not_yet(check_watermark_prediction(SOLUTIONS["watermark_prediction"], None))  # before the experiment ran
    not_yet(check_watermark_prediction({"fewest_late": None, "fastest_results": None}, result))
    not_yet(check_watermark_prediction({"fewest_late": "30s", "fastest_results": 0}, result))
    for odd in ODD_SHAPES:
        not_yet(check_watermark_prediction(odd, result))
        not_yet(check_watermark_prediction(SOLUTIONS["watermark_prediction"], odd))


def _ledger(name, target):
    return Ledger("t", scenario={"name": name, "target": target, "start_ms": 1_000_000, "end_ms": 1_060_000})


def test_failing_endpoint_and_latency_regression():
    led = _ledger("incident", "/api/recommendations")
    passed(check_failing_endpoint("/api/recommendations", led))
    assert "not the endpoint" in not_yet(check_failing_endpoint("/search", led)).message
    assert "not a URL path" in not_yet(check_failing_endpoint("api/recommendations", led)).message
    not_yet(check_failing_endpoint("/api/recommendations", Ledger("t")))  # no scenario in this run
    for odd in ODD_SHAPES:
        not_yet(check_failing_endpoint(odd, led))

    led2 = _ledger("latency_regression", "/search")
    passed(check_latency_regression(SOLUTIONS["latency_regression"], led2))
    passed(check_latency_regression({"metric": "P99", "endpoint": "/search"}, led2))
    assert (
        "error_rate" in not_yet(check_latency_regression({"metric": "error_rate", "endpoint": "/search"}, led2)).message
    )
    # every request to the URL is slower by one factor: its p50 jumps as its tail does, so p50 per URL is right too
    assert "p50" in passed(check_latency_regression({"metric": "p50", "endpoint": "/search"}, led2)).message
    not_yet(check_latency_regression({"metric": "p95", "endpoint": "/cart"}, led2))
    not_yet(check_latency_regression({"metric": "p95"}, led2))
    not_yet(check_latency_regression(SOLUTIONS["latency_regression"], led))  # the other round's ledger
    for odd in ODD_SHAPES:
        not_yet(check_latency_regression(odd, led2))


def test_bot_alert_fires_in_the_burst_only():
    times = pd.date_range("2026-01-01", periods=30, freq="10s", tz="UTC")
    values = pd.DataFrame({"time": times, "m": [5.0] * 10 + [900.0] * 6 + [6.0] * 14})
    start_ms = int(times[10].value // 10**6) - 10_000
    led = Ledger(
        "t", scenario={"name": "bot_burst", "target": "u_bot", "start_ms": start_ms, "end_ms": start_ms + 60_000}
    )
    for t in times:  # the run's windows: points outside them (an earlier run on the topic) are not graded
        led.on_time[(int(t.value // 10**6), 200)] = 1
    earlier = pd.DataFrame({"time": times - pd.Timedelta("1h"), "m": [900.0] * 30})
    assert check_bot_alert(AlertRule("bot", "custom_x", "m", 100, 20, 10), pd.concat([earlier, values]), led).ok
    fb = passed(check_bot_alert(AlertRule("bot", "custom_x", "m", 100, lookback_s=20, for_s=10), values, led))
    assert "after the burst began" in fb.message
    assert "never fires" in not_yet(check_bot_alert(AlertRule("bot", "custom_x", "m", 10_000), values, led)).message
    assert (
        "false alarm"
        in not_yet(check_bot_alert(AlertRule("bot", "custom_x", "m", 1, lookback_s=20, for_s=0), values, led)).message
    )
    not_yet(check_bot_alert(AlertRule("bot", "custom_x", "nope", 100), values, led))
    for odd in ODD_SHAPES:
        not_yet(check_bot_alert(odd, values, led))
        not_yet(check_bot_alert(AlertRule("bot", "custom_x", "m", 100), odd, led))


def test_accounts_checker_reads_the_verdict():
    class Acc:
        exact, verdict, expected, windows = True, "EXACT", 10, 2

    passed(check_accounts(Acc()))
    Acc.exact, Acc.verdict = False, "MISMATCH: 3 lost"
    assert "3 lost" in not_yet(check_accounts(Acc())).message
    for odd in ODD_SHAPES:
        not_yet(check_accounts(odd))


def test_alert_rule_replays_grafana_semantics():
    """mean over the lookback > threshold, held for `for_s` before firing (error-rate.yaml: 2 min, 5%, 1 min)."""
    from labkit.alerts import ERROR_RATE

    times = pd.date_range("2026-01-01", periods=60, freq="10s", tz="UTC")
    rate = [0.01] * 20 + [0.09] * 25 + [0.01] * 15
    tl = ERROR_RATE.timeline(pd.DataFrame({"time": times, "error_rate": rate}))
    # the 2-minute mean (12 windows) passes 5% once 7 of 12 windows are at 9%: window 26; firing 60 s later
    assert tl.started == times[26] and tl.fired == times[32]
    assert tl.detection_delay_s == 60
    assert ERROR_RATE.timeline(pd.DataFrame({"time": times, "error_rate": [0.04] * 60})).fired is None


def test_partition_split_grades_the_prediction_against_the_groups_assignment():
    from labkit.exercises import check_partition_split

    two = pd.DataFrame({"consumer": ["consumer 1", "consumer 2"], "partitions": [[0, 1], [2, 3]], "count": [2, 2]})
    one = pd.DataFrame({"consumer": ["consumer 1"], "partitions": [[0, 1, 2, 3]], "count": [4]})
    passed(check_partition_split([2, 2], two))
    passed(check_partition_split((2.0, 2), two))
    assert "only one consumer" in not_yet(check_partition_split([2, 2], one)).message  # no second consumer started
    assert "not [1, 3]" in not_yet(check_partition_split([3, 1], two)).message  # uneven
    assert "shares out 8" in not_yet(check_partition_split([4, 4], two)).message  # each its own copy
    assert "one per consumer" in not_yet(check_partition_split([1, 1, 2], two)).message
    assert "2.5" in not_yet(check_partition_split([2.5, 1.5], two)).message  # not whole
    assert "starts the consumers" in not_yet(check_partition_split([2, 2], None)).message
    for odd in ODD_SHAPES:
        not_yet(check_partition_split(odd, two))


def test_solve_shows_the_answer_returns_it_and_not_yet_offers_it(capsys):
    from labkit.exercises import check_choice, check_watermark_prediction, solve
    from labkit.exercises.solutions import SOLUTIONS

    answer = solve("alert_condition")
    out = capsys.readouterr().out
    assert answer == SOLUTIONS["alert_condition"] and "why:" in out
    assert check_choice("alert_condition", answer).ok  # assigned, it puts the state right
    assert solve("no_such_exercise") is None and "no solution called" in capsys.readouterr().out
    # a multiple-choice question teaches with its wrong-choice feedback: it does not offer solve() there
    assert not any("solve(" in h for h in check_choice("alert_condition", "b").hints)
    from labkit.exercises import check_pipeline_order

    fb = check_pipeline_order(["kafka", "producer"])
    assert not fb.ok and any('solve("pipeline_order")' in h for h in fb.hints)
    assert check_pipeline_order(solve("pipeline_order")).ok
    # a prediction's answer is worth something only before the run: no solve() offered
    fb = check_watermark_prediction({"fewest_late": None})
    assert not fb.ok and not any("solve(" in h for h in fb.hints)
