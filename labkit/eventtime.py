"""Event time made visible: the watermark and the late events of a run, reconstructed from its Kafka records.

The job's rules, applied to the records in the order they arrived: each partition's watermark is the newest
event time it has seen minus the delay; the windows' watermark is the minimum over the partitions (so one slow
or idle partition holds every window back), and a window [start, end) fires once it reaches the window's end.
An event whose time is at or behind its own partition's watermark when it arrives is late (the job's on-time
filter, `labkit.jobs.sql.on_time_view`: decided in the partition's order, so a replay decides the same).
notebook 03 draws this and compares the late count with what the job itself measured.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from labkit.timing import WATERMARK_DELAY_S, WINDOW_MS


def watermark_trace(records: pd.DataFrame, delay_s: float = WATERMARK_DELAY_S) -> pd.DataFrame:
    """`records` (kafka_info.records) with `watermark` (the windows' watermark before the record arrived),
    `partition_watermark` (its partition's, before it arrived) and `late` columns."""
    df = records.dropna(subset=["event_ms"]).sort_values(["kafka_ms", "partition", "offset"]).reset_index(drop=True)
    delay_ms = delay_s * 1000
    # The windows' watermark needs an interleaving of the partitions: their Kafka timestamps (arrival) stand in.
    newest: dict[int, float] = {}
    n_parts = records["partition"].nunique()
    wm = np.full(len(df), np.nan)
    for i, (p, t) in enumerate(zip(df["partition"].to_numpy(), df["event_ms"].to_numpy(), strict=True)):
        if len(newest) == n_parts:
            wm[i] = min(newest.values()) - delay_ms
        newest[p] = max(newest.get(p, -np.inf), t)
    df["watermark_ms"] = wm
    df["watermark"] = pd.to_datetime(df["watermark_ms"], unit="ms", utc=True)
    # A partition's own watermark needs only its order, the offsets (Kafka timestamps need not follow them).
    by_offset = df.sort_values(["partition", "offset"])
    before = by_offset.groupby("partition")["event_ms"].transform(lambda t: t.cummax().shift(1)).fillna(-np.inf)
    before = before.reindex(df.index)
    df["partition_watermark_ms"] = before - delay_ms
    # at or behind its partition's watermark, and not the partition's newest (which only matters at delay 0)
    df["late"] = (df["event_ms"] <= df["partition_watermark_ms"]) & (df["event_ms"] < before)
    df["window_end"] = pd.to_datetime((df["event_ms"] // WINDOW_MS + 1) * WINDOW_MS, unit="ms", utc=True)
    return df
