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
