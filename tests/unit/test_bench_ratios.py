"""labkit bench states each throughput as a share of Kafka's own producer ceiling from the same run."""

from labkit.bench import LIVE_P95_S, ratio_table, ratios, warm_summary


def test_ratios_are_shares_of_the_same_runs_ceiling_and_live_means_exact_and_fresh():
    res = {
        "kafka_ceiling": {"records_per_s": 200_000},
        "producer": {"confluent": {"events_per_s": 130_000}, "kafka-python": {"events_per_s": 10_000}},
        "end_to_end": {"events_per_s": 100_000},
        "end_to_end_cold": {"events_per_s": 50_000},
        "sweep": [
            {"exact": True, "achieved_rate": 20_000, "freshness_p95_s": LIVE_P95_S - 0.1},
            {"exact": False, "achieved_rate": 60_000, "freshness_p95_s": 6.0},  # not exact: not counted
            {"exact": True, "achieved_rate": 40_000, "freshness_p95_s": LIVE_P95_S + 0.1},  # too stale
        ],
    }
    r = ratios(res)
    assert r["producer_confluent"] == 0.65 and r["producer_kafka-python"] == 0.05
    assert r["end_to_end"] == 0.5 and r["end_to_end_cold"] == 0.25
    assert r["live_sustained_exact"] == 0.1
    assert "end_to_end                   0.50" in ratio_table(r)


def test_no_ceiling_no_ratios():
    assert ratios({"producer": {"confluent": {"events_per_s": 1}}}) == {}
    assert "no Kafka ceiling" in ratio_table({})


def _run(rate: int, exact: bool = True) -> dict:
    return {
        "events_per_s": rate,
        "exact": exact,
        "verdict": "EXACT" if exact else f"LOST at {rate}",
        "seconds": 1e6 / rate,
    }


def test_the_warm_figure_is_the_median_run_after_the_warmups_and_keeps_every_rate():
    s = warm_summary([_run(40_000), _run(70_000), _run(95_000), _run(80_000), _run(110_000)], warmups=2)
    # the warm-ups' rates never become the figure, even when one run after them is slower
    assert s["events_per_s"] == 95_000 and s["seconds"] == 1e6 / 95_000
    assert s["warmup_events_per_s"] == [40_000, 70_000]
    assert s["runs_events_per_s"] == [95_000, 80_000, 110_000]
    assert s["exact"] is True


def test_a_warmup_that_lost_events_makes_the_warm_figure_inexact_and_says_which():
    s = warm_summary([_run(40_000, exact=False), _run(90_000), _run(95_000), _run(99_000)], warmups=1)
    assert s["events_per_s"] == 95_000 and s["exact"] is False and s["verdict"] == "LOST at 40000"
    s = warm_summary([_run(40_000), _run(90_000), _run(95_000, exact=False), _run(99_000)], warmups=1)
    assert s["exact"] is False and s["verdict"] == "LOST at 95000"
