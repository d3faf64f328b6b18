"""Where a running job spends its time, per operator, from Flink's own task metrics (issue 23: measure first).

For each vertex of the job graph (a chain of operators Flink runs in one task) Flink reports, per subtask:
`busyTimeMsPerSecond` (working), `backPressuredTimeMsPerSecond` (waiting for the next vertex to take its
output) and `idleTimeMsPerSecond` (waiting for input); the three add up to ~1000 ms per second. The vertex
that is busy while the others are back-pressured or idle is the bottleneck. `numRecordsInPerSecond` and
`numRecordsOutPerSecond` say how many records it moved. See Flink's docs, "Monitoring Back Pressure".

`Profiler(job)` samples these every `interval_s` on a thread while a run goes on (labkit bench's end-to-end
run); `table()` is the mean over the samples in which the job moved records.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field

import httpx
import pandas as pd

TIME = ("busyTimeMsPerSecond", "backPressuredTimeMsPerSecond", "idleTimeMsPerSecond")
RATES = ("numRecordsInPerSecond", "numRecordsOutPerSecond")


def _short(name: str, width: int = 70) -> str:
    """A vertex's name is its whole operator chain; keep its first operators, readable in a table."""
    name = " ".join(name.split())
    return name if len(name) <= width else name[: width - 1] + "…"


def sample(flink_url: str, job_id: str) -> list[dict]:
    """One sample: per vertex, the mean over its subtasks of the time metrics, the sum of the record rates."""
    base = f"{flink_url.rstrip('/')}/jobs/{job_id}"
    with httpx.Client(timeout=10) as http:
        vertices = http.get(base).json().get("vertices", [])
        out = []
        for v in vertices:
            row = {"vertex": _short(v["name"]), "parallelism": v.get("parallelism")}
            for agg, names in (("avg", TIME), ("sum", RATES)):
                r = http.get(f"{base}/vertices/{v['id']}/subtasks/metrics", params={"get": ",".join(names), "agg": agg})
                for m in r.json() if r.status_code == 200 else []:
                    value = m.get(agg)
                    row[m["id"]] = float(value) if value is not None and value == value else None
            out.append(row)
    return out


@dataclass
class Profiler:
    """Samples a job's vertices on a thread until stopped; `with Profiler(url, job_id) as p: ...; p.table()`."""

    flink_url: str
    job_id: str
    interval_s: float = 2.0
    samples: list[list[dict]] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def _loop(self) -> None:
        while not self._stop.wait(self.interval_s):
            try:
                self.samples.append(sample(self.flink_url, self.job_id))
            except (httpx.HTTPError, ValueError, KeyError):
                continue  # the job is restarting or finishing: that sample is missed, not fatal

    def __enter__(self) -> Profiler:
        self._thread = threading.Thread(target=self._loop, name="operator-profile", daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=15)

    def table(self) -> pd.DataFrame:
        """Mean per vertex over the samples in which the job moved records (the busy part of the run)."""
        rows = [dict(r, sample=i) for i, s in enumerate(self.samples) for r in s]
        if not rows:
            return pd.DataFrame(columns=["vertex", "parallelism", *TIME, *RATES, "samples"])
        df = pd.DataFrame(rows)
        for c in (*TIME, *RATES):
            if c not in df:
                df[c] = None
        moving = df.groupby("sample")["numRecordsInPerSecond"].sum(min_count=1).fillna(0)
        df = df[df["sample"].isin(moving[moving > 0].index)]
        order = {v: i for i, v in enumerate(dict.fromkeys(df["vertex"]))}
        out = (
            df.groupby("vertex", sort=False)
            .agg(
                parallelism=("parallelism", "first"),
                samples=("sample", "nunique"),
                **{c: (c, "mean") for c in (*TIME, *RATES)},
            )  # fmt: skip
            .reset_index()
        )
        out["order"] = out["vertex"].map(order)
        return out.sort_values("order").drop(columns="order").round(1).reset_index(drop=True)

    def records(self) -> list[dict]:
        return self.table().to_dict(orient="records")
