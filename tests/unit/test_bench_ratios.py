"""labkit bench states each throughput as a share of Kafka's own producer ceiling from the same run."""

from labkit.bench import LIVE_P95_S, ratio_table, ratios


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
