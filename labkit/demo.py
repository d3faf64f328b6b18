"""The README's first command: the whole pipeline on the stack, a bounded run, and the accounts."""

from __future__ import annotations

import time

from labkit.console import say
from labkit.timing import WINDOW_S


def run_demo(count: int = 50_000, seed: int = 42) -> int:
    """Bring the stack up, run the job, produce `count` events, verify; 0 when the accounts are exact."""
    from labkit import influx, jobs, stack
    from labkit.events import Scenario
    from labkit.produce import produce
    from labkit.settings import get
    from labkit.verify import verify

    s = get()
    st = stack.get(s)
    print(st.up())
    job = jobs.running(settings=s)
    if job is None:
        say("submitting the clickstream job to Flink")
        job = jobs.submit_pipeline(s)
    say(f"job {job.name} {job.id} is running")
    sim_rate = 500.0  # 100 s of event time for 50k events: late events need 45 s of a run behind them
    span = count / sim_rate
    summary = produce(
        count,
        seed=seed,
        sim_rate=sim_rate,
        late_fraction=0.005,
        malformed_fraction=0.005,
        scenario=Scenario("incident", start_s=span * 0.4, duration_s=span * 0.2),
        close_windows=True,
    )
    print(summary)
    say("waiting for the last windows to reach InfluxDB and checking the accounts")
    t0 = time.monotonic()
    acc = verify(summary.ledger, settings=s, wait_s=90)
    rates = influx.error_rate(start="-2h", settings=s)
    peak = None
    if not rates.empty:
        end_ms = rates["time"].astype("int64") // 10**6
        windows = {w for w, _ in summary.ledger.on_time}
        rates = rates[end_ms.isin(windows)]
        peak = rates.loc[rates["error_rate"].idxmax()] if not rates.empty else None
    print()
    print(f"events produced      {summary.produced:,} ({summary.rate:,.0f}/s)")
    print(f"windows written      {acc.windows} ({WINDOW_S} s each), checked in {time.monotonic() - t0:.1f}s")
    if peak is not None:
        overall = rates["errors_4xx"].sum() + rates["errors_5xx"].sum()
        print(
            f"error rate           {overall / rates['total'].sum():.2%} overall; peak {peak['error_rate']:.1%} "
            f"at {peak['time']:%H:%M:%S} (the incident on {summary.ledger.scenario['target']})"
        )
    print(f"accounting           {acc.verdict}")
    print(acc)
    print()
    print("where to look next")
    print(f"  Flink UI           {s.flink}/#/job/running/{job.id}/overview")
    print("  metrics            labkit query error_rate   |   labkit query http_counts")
    print("  notebooks          make lab  (then open notebooks/00_start_here.ipynb)")
    if s.mode == "docker":
        print(f"  Grafana            {s.grafana_url}/d/clickstream-errors (anonymous viewer)")
    else:
        print("  Grafana            docker mode only: labkit up --mode docker, then http://127.0.0.1:3000")
    return 0 if acc.exact else 1
