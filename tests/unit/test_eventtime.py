"""The event-time picture's rules (labkit.eventtime), on records written by hand in arrival order."""

import pandas as pd

from labkit.eventtime import watermark_trace


def _records(rows: list[tuple[int, int]]) -> pd.DataFrame:
    """(partition, event time in s) in arrival order; Kafka timestamps 1 ms apart keep that order."""
    return pd.DataFrame(
        [
            {"partition": p, "offset": i, "kafka_ms": 1_000_000 + i, "event_ms": float(t * 1000)}
            for i, (p, t) in enumerate(rows)
        ]
    )


def test_late_is_decided_by_the_events_own_partition_not_by_a_lagging_neighbour():
    # partition 0 runs to 30 s, partition 1 lags at 5 s: the windows' watermark is 0 s (5 - 5)
    rows = [(0, t) for t in range(31)] + [(1, t) for t in range(6)]
    rows += [(0, 10), (0, 27), (1, 3), (1, 0)]
    trace = watermark_trace(_records(rows), delay_s=5)
    tail = trace.tail(4)
    # 10 s on partition 0 is 20 s behind its partition (watermark 25 s): late, though the windows' watermark
    # (0 s, held back by partition 1) has not passed it; 27 s is within the delay; 3 s on partition 1 is on
    # time (its partition's watermark is 0 s), 0 s is at it: late
    assert tail["late"].tolist() == [True, False, False, True]
    assert tail["watermark_ms"].tolist() == [0.0] * 4
    assert tail["partition_watermark_ms"].tolist() == [25_000.0, 25_000.0, 0.0, 0.0]


def test_the_first_event_of_a_partition_is_never_late_and_the_windows_wait_for_every_partition():
    trace = watermark_trace(_records([(0, 100), (0, 50), (1, 10)]), delay_s=5)
    assert trace["late"].tolist() == [False, True, False]
    assert trace["watermark_ms"].isna().all()  # partition 1 had not spoken before any of them arrived


def test_with_no_delay_only_an_event_behind_its_partitions_newest_is_late():
    # the job's SQL: on time when after (newest - delay) or the newest itself (a tie with the newest included)
    trace = watermark_trace(_records([(0, 10), (0, 10), (0, 9), (0, 11)]), delay_s=0)
    assert trace["late"].tolist() == [False, False, True, False]


def test_a_partitions_order_is_its_offsets_even_when_kafka_timestamps_disagree():
    # a client may set Kafka timestamps that do not follow the offsets; the job reads in offset order
    records = pd.DataFrame([
        {"partition": 0, "offset": 0, "kafka_ms": 1003, "event_ms": 90_000.0},
        {"partition": 0, "offset": 1, "kafka_ms": 1001, "event_ms": 100_000.0},
    ])  # fmt: skip
    trace = watermark_trace(records, delay_s=5)
    assert trace.sort_values("offset")["late"].tolist() == [False, False]


def test_the_pictures_reading_of_a_record_refuses_what_the_job_dead_letters():
    import json

    from labkit.kafka_info import _event_ms

    kafka_ms = 1_800_000_000_000
    ok = {"user_id": "u", "session_id": "s", "url": "/a", "http_method": "GET", "http_status": 200,
          "latency_ms": 1.5}  # fmt: skip

    def read(**change) -> float:
        return _event_ms(json.dumps({**ok, "event_timestamp": kafka_ms - 1000, **change}).encode(), kafka_ms)

    assert read() == kafka_ms - 1000
    assert read(event_timestamp=kafka_ms + 9_000) == kafka_ms + 9_000
    # ParseClick: more than 10 s ahead of the record's Kafka timestamp is dead-lettered; so are long ids
    for bad in ({"event_timestamp": kafka_ms + 11_000}, {"user_id": "u" * 65}, {"url": "/" + "x" * 1024},
                {"http_status": 600}, {"event_type": "watermark"}):  # fmt: skip
        assert read(**bad) != read(**bad), bad  # NaN
