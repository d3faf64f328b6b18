"""Event time made visible: the watermark and the late events of a run, reconstructed from its Kafka records.

Flink's rule, applied to the records in the order they arrived: each partition's watermark is the newest
event time it has seen minus the delay; a reader's watermark is the minimum over its partitions (so one slow
or idle partition holds every window back); a window [start, end) fires once the watermark reaches its end,
and an event whose time is at or behind the watermark when it arrives is late. notebook 03 draws this
and compares the late count with what the job itself measured.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from labkit.timing import WATERMARK_DELAY_S, WINDOW_S


def watermark_trace(records: pd.DataFrame, delay_s: float = WATERMARK_DELAY_S) -> pd.DataFrame:
    """`records` (kafka_info.records) with `watermark` (before the record arrived) and `late` columns."""
    df = records.dropna(subset=["event_ms"]).sort_values(["kafka_ms", "partition", "offset"]).reset_index(drop=True)
    newest: dict[int, float] = {}
    n_parts = records["partition"].nunique()
    wm = np.full(len(df), np.nan)
    for i, (p, t) in enumerate(zip(df["partition"].to_numpy(), df["event_ms"].to_numpy(), strict=True)):
        if len(newest) == n_parts:
            wm[i] = min(newest.values()) - delay_s * 1000
        newest[p] = max(newest.get(p, -np.inf), t)
    df["watermark_ms"] = wm
    df["watermark"] = pd.to_datetime(df["watermark_ms"], unit="ms", utc=True)
    df["late"] = df["event_ms"] <= df["watermark_ms"]
    df["window_end"] = pd.to_datetime((df["event_ms"] // (WINDOW_S * 1000) + 1) * WINDOW_S * 1000, unit="ms", utc=True)
    return df
