"""The watermark experiment of notebook 03: the same live traffic through the job's event-time logic with
several watermark delays at once, measuring for each the late events and how long results take to appear.

One job, one slot: a source table per delay (each with its own WATERMARK and alignment group) over the same
scratch topic, each feeding the job's validation, on-time filter and 10 s TUMBLE count. Every window's point
carries the wall-clock second it fired, so "time until results appear" is measured, not computed.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, replace

import pandas as pd

from labkit.jobs import base_spec, pipeline_params
from labkit.jobs.control import submit_spec
from labkit.jobs.sql import (
    JobParams,
    checked_view,
    epoch_ms,
    functions_ddl,
    influx_insert,
    lit,
    on_time_view,
    point_select,
    source_ddl,
)
from labkit.settings import Settings
from labkit.settings import get as get_settings
from labkit.timing import WINDOW_MS, WINDOW_S

MEASUREMENT = "watermark_experiment"


def experiment_spec(topic: str, delays: tuple[int, ...], settings: Settings, group: str) -> dict:
    base = pipeline_params(settings, topic=topic)
    ddl, selects = list(functions_ddl()), []
    for d in delays:
        p: JobParams = replace(
            base,
            watermark_delay_s=d,
            group_id=f"{group}-{d}",
            startup="earliest-offset",
            alignment_group=f"{group}-{d}",
        )
        ddl.append(source_ddl(p, name=f"raw_{d}"))
        ddl.append(checked_view(p, source=f"raw_{d}", name=f"checked_{d}"))
        ddl.append(on_time_view(d, name=f"on_time_{d}", source=f"checked_{d}", columns="rowtime"))
        selects.append(
            point_select(
                MEASUREMENT,
                {"stream": lit(topic), "delay_s": lit(str(d))},
                # the wall-clock second the window fired (evaluated when the window's row is emitted)
                {"counted": "COUNT(*)", "fired_ms": "CAST(UNIX_TIMESTAMP() AS BIGINT) * 1000"},
                epoch_ms("window_end"),
                f"FROM TABLE(TUMBLE(TABLE on_time_{d}, DESCRIPTOR(rowtime), INTERVAL '{WINDOW_S}' SECOND)) "
                "GROUP BY window_start, window_end",
            )
        )
    spec = base_spec(settings, f"watermark-experiment-{topic}", parallelism=1)
    spec.update(ddl=ddl, inserts=[influx_insert(selects)])
    return spec


@dataclass
class WatermarkExperiment:
    summary: object  # ProduceSummary of the traffic
    windows: pd.DataFrame  # per delay and window: sent, counted, late, wait_s
    result: pd.DataFrame  # per delay: late, late_share, wait_s (median)

    def _repr_html_(self) -> str:
        return "<b>Watermark experiment</b>" + self.result.to_html(index=False)


def run(
    delays: tuple[int, ...] = (0, 5, 30),
    *,
    topic: str = "lab_watermarks",
    seconds: float = 75,
    rate: float = 300,
    late_fraction: float = 0.05,
    late_behind_s: tuple[float, float] = (2, 25),
    seed: int = 11,
    settings: Settings | None = None,
) -> WatermarkExperiment:
    """Send `seconds` of live traffic (event time = wall clock) with `late_fraction` of events sent
    `late_behind_s` seconds after they happened, through one job per delay; measure late events and waits."""
    from labkit import context, influx, kafka_info
    from labkit.events import EventGenerator
    from labkit.produce import produce

    settings = settings or get_settings()
    topic = settings.scoped(topic)
    kafka_info.fresh_topic(topic, settings)
    group = settings.scoped(f"labkit-wmx-{int(time.time())}")
    job = submit_spec(experiment_spec(topic, delays, settings, group), settings, context.of(settings).mode)
    job.wait_running()
    try:
        gen = EventGenerator(
            seed=seed,
            rate=rate,
            start_ms=int(time.time() * 1000),
            late_fraction=late_fraction,
            late_min_s=late_behind_s[0],
            late_max_s=late_behind_s[1],
            late_warmup_s=late_behind_s[1],
        )
        summary = produce(int(rate * seconds), rate=rate, topic=topic, generator=gen, settings=settings)
        ledger = summary.ledger
        # windows every delay has fired by the end of the traffic: their late count is final
        last_ok = ledger.last_event_ms - max(delays) * 1000 - 2000
        sent = pd.Series(
            {
                w: n
                for w, n in _valid_per_window(ledger).items()
                if w <= last_ok and w > ledger.first_event_ms + WINDOW_MS
            }
        )
        deadline = time.monotonic() + 30
        while True:
            with influx.Influx(settings) as db:
                pts = db.query(MEASUREMENT, start="-1h", stream=topic)
            if not pts.empty:
                pts["window_end"] = pts["time"].astype("int64") // 10**6
                pts = pts[pts["window_end"].isin(sent.index)]
            if (not pts.empty and len(pts) >= len(sent) * len(delays)) or time.monotonic() > deadline:
                break
            time.sleep(1)
    finally:
        job.cancel()
    pts["sent"] = pts["window_end"].map(sent)
    pts["late"] = pts["sent"] - pts["counted"]
    # fired_ms is whole seconds (UNIX_TIMESTAMP()): take the middle of that second; the producer's clock may
    # run a fraction of a second ahead of the wall clock, so a result can never appear "before" its window ends
    pts["wait_s"] = ((pts["fired_ms"] + 500 - pts["window_end"]) / 1000).clip(lower=0)
    pts["delay_s"] = pts["delay_s"].astype(int)
    windows = pts[["delay_s", "time", "sent", "counted", "late", "wait_s"]].sort_values(["delay_s", "time"])
    res = (
        windows.groupby("delay_s")
        .agg(windows=("time", "count"), sent=("sent", "sum"), late=("late", "sum"), wait_s=("wait_s", "median"))
        .reset_index()
    )
    res["late_share"] = res["late"] / res["sent"]
    return WatermarkExperiment(summary, windows.reset_index(drop=True), res)


def _valid_per_window(ledger) -> dict[int, int]:
    """Every valid event the producer sent, on time or late, by its event-time window."""
    out: dict[int, int] = {}
    for (w, _s), n in ledger.on_time.items():
        out[w] = out.get(w, 0) + n
    for w, n in ledger.late.items():
        out[w] = out.get(w, 0) + n
    return out
