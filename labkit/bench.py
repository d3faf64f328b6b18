"""Benchmarks: numbers printed for the docs, never asserted in tests (these machines are noisy).

`labkit bench` measures, on the running local stack: stack start-up and idle memory, Kafka's own
ProducerPerformance ceiling, labkit's producer alone, end-to-end throughput with exact accounting, freshness
(window end to queryable), and a rate sweep up to saturation.
"""

from __future__ import annotations

import contextlib
import json
import os
import platform
import re
import statistics
import subprocess
import threading
import time
import uuid
from pathlib import Path

import psutil

from labkit.console import say
from labkit.settings import Settings
from labkit.settings import get as get_settings


def hardware() -> dict:
    cpu = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {
        "cpu": cpu,
        "cores": psutil.cpu_count(),
        "memory_gib": round(psutil.virtual_memory().total / 2**30, 1),
        "os": platform.platform(),
        "python": platform.python_version(),
    }


def _topic(settings: Settings, name: str, partitions: int | None = None) -> str:
    from labkit.stack.kafka import ensure_topics

    ensure_topics(
        settings.kafka,
        settings.model_copy(
            update={
                "topic": name,
                "dlq_topic": settings.dlq_topic_for(name),
                "partitions": partitions or settings.partitions,
            }
        ),
    )
    return name


def stack_startup(settings: Settings) -> dict:
    """`down` then `up` with artifacts cached: seconds until every service is ready, then idle RSS."""
    from labkit import stack

    st = stack.get(settings)
    st.down()
    t0 = time.monotonic()
    st.up()
    up_s = time.monotonic() - t0
    time.sleep(10)
    return {"up_seconds": round(up_s, 1), "idle_rss_mib": idle_rss_mib(settings)}


def idle_rss_mib(settings: Settings) -> float:
    from labkit import stack

    total = 0
    for svc in stack.get(settings).services:
        p = svc.process.process()
        if p:
            for q in [p, *p.children(recursive=True)]:
                with contextlib.suppress(psutil.Error):
                    total += q.memory_info().rss
    return round(total / 2**20)


def kafka_ceiling(settings: Settings, records: int = 1_000_000, size: int = 330) -> dict:
    """Kafka's own Java ProducerPerformance against the same broker (acks=all): the raw ceiling."""
    from labkit.stack.provision import kafka as kprov
    from labkit.stack.provision.tools import require_java

    topic = _topic(settings, "bench_ceiling")
    out = subprocess.run(
        [
            require_java(),
            "-Xmx512m",
            "-cp",
            str(kprov.jars_dir() / "*"),
            "org.apache.kafka.tools.ProducerPerformance",
            "--topic",
            topic,
            "--num-records",
            str(records),
            "--record-size",
            str(size),
            "--throughput",
            "-1",
            "--producer-props",
            f"bootstrap.servers={settings.kafka}",
            "acks=all",
            "linger.ms=20",
            "batch.size=262144",
        ],
        capture_output=True,
        text=True,
        timeout=600,
    ).stdout
    m = re.findall(r"([\d.]+) records/sec", out)
    return {"records": records, "record_bytes": size, "records_per_s": round(float(m[-1])) if m else None}


def producer_alone(settings: Settings, count: int = 500_000) -> dict:
    from labkit.produce import produce

    res = {}
    for engine, n in (("confluent", count), ("kafka-python", min(count, 100_000))):
        topic = _topic(settings, f"bench_producer_{engine.replace('-', '_')}")
        s = produce(n, topic=topic, engine=engine, settings=settings, progress=False, seed=1)
        res[engine] = {"events": n, "events_per_s": round(s.rate)}
    return res


def end_to_end(settings: Settings, count: int = 1_000_000, parallelism: int | None = None) -> dict:
    """Pre-load `count` events, start a fresh job from the earliest offset, time it until the accounts are exact."""
    from labkit import jobs
    from labkit.produce import produce
    from labkit.verify import verify

    topic = _topic(settings, f"bench_e2e_{uuid.uuid4().hex[:6]}")
    say(f"loading {count:,} events into {topic}")
    s = produce(
        count,
        topic=topic,
        engine="confluent",
        sim_rate=2000,
        late_fraction=0.001,
        malformed_fraction=0.001,
        close_windows=True,
        settings=settings,
        progress=False,
        seed=5,
    )
    from labkit.operator_profile import Profiler

    job = jobs.submit_pipeline(settings, topic=topic, from_earliest=True, parallelism=parallelism)
    t0 = time.monotonic()
    try:
        with Profiler(settings.flink, job.id) as prof:  # where the time goes, per operator (Flink's metrics)
            acc = verify(s.ledger, settings=settings, wait_s=900, poll_s=0.5)  # finer end-of-run resolution
        dt = time.monotonic() - t0
    finally:
        job.cancel()
    return {
        "events": count,
        "seconds": round(dt, 1),
        "events_per_s": round(count / dt),
        "exact": acc.exact,
        "verdict": acc.verdict,
        "parallelism": parallelism or settings.flink_parallelism,
        "operators": prof.records(),
    }


def end_to_end_warm(settings: Settings, count: int = 1_000_000, warmups: int = 2, runs: int = 3) -> dict:
    """The warm figure: `warmups` runs first, then the median of `runs`.

    A TaskManager's JIT keeps improving over its first jobs, not only its first: five runs in a row on a fresh
    stack went 36k, 44k, 71k, 85k, 91k events/s (session 21), so the second run, which this figure used to be,
    still measured warming, and the figure here (after 3 earlier jobs, the cold one included) is warmer but not
    a ceiling. The runs before and the spread are kept beside the figure."""
    if runs < 1:
        raise ValueError("runs must be at least 1")
    return warm_summary([end_to_end(settings, count) for _ in range(warmups + runs)], warmups)


def warm_summary(done: list[dict], warmups: int) -> dict:
    """The median of the runs after `warmups` (its own record; the upper one of an even count), with every run's
    rate beside it; exact only if every run was, warm-ups included (a warm-up that lost events is a defect however
    fast the rest were)."""
    measured = sorted(done[warmups:], key=lambda r: r["events_per_s"])
    mid = dict(measured[len(measured) // 2])
    mid["warmup_events_per_s"] = [r["events_per_s"] for r in done[:warmups]]
    mid["runs_events_per_s"] = [r["events_per_s"] for r in done[warmups:]]
    mid["exact"] = all(r["exact"] for r in done)
    if not mid["exact"]:
        mid["verdict"] = next(r["verdict"] for r in done if not r["exact"])
    return mid


def freshness(settings: Settings, rate: float = 2000, seconds: float = 60, engine: str = "confluent") -> dict:
    """Live traffic paced at `rate` with event time = wall clock; for each window, the delay from its end
    until its point is queryable in InfluxDB. Ends with the accounts of the run (late and malformed included)."""
    from labkit import jobs
    from labkit.influx import Influx
    from labkit.jobs import pipeline_params
    from labkit.produce import produce
    from labkit.verify import verify

    topic = _topic(settings, f"bench_fresh_{uuid.uuid4().hex[:6]}")
    job = jobs.submit_pipeline(settings, topic=topic)
    seen: dict[int, float] = {}
    stop = threading.Event()

    lags: list[int] = []

    def poll():
        last_lag = 0.0
        with Influx(settings) as db:
            while not stop.is_set():
                df = db.query("http_counts", start="-10m", stream=topic)
                now = time.time()
                if not df.empty:
                    for t in set(df["time"].astype("int64") // 10**6):
                        seen.setdefault(int(t), now)
                if now - last_lag >= 2:
                    last_lag = now
                    lag = _consumer_lag(settings, topic)
                    if lag is not None:
                        lags.append(lag)
                time.sleep(0.2)

    th = threading.Thread(target=poll, daemon=True)
    th.start()
    try:
        s = produce(
            int(rate * seconds),
            rate=rate,
            topic=topic,
            engine=engine,
            settings=settings,
            progress=False,
            late_fraction=0.001,
            malformed_fraction=0.001,
            close_windows=True,
        )
        lag_end = _consumer_lag(settings, topic)
        acc = verify(s.ledger, settings=settings, wait_s=300)
    finally:
        stop.set()
        th.join(5)
        job.cancel()
    # Not the first window (partial) nor the last ones: the end markers fire those early.
    first_window = min(w for w, _ in s.ledger.on_time)
    last_fired = s.ledger.last_event_ms - pipeline_params(settings, topic=topic).watermark_delay_s * 1000
    delays = sorted(seen[w] - w / 1000 for w in seen if first_window < w <= last_fired)
    if not delays:
        return {"rate": rate, "windows": 0, "exact": acc.exact, "verdict": acc.verdict}
    return {
        "rate": rate,
        "achieved_rate": round(s.rate),
        "windows": len(delays),
        "freshness_p50_s": round(statistics.median(delays), 2),
        "freshness_p95_s": round(delays[min(len(delays) - 1, int(len(delays) * 0.95))], 2),
        # Flink commits its offsets at each checkpoint (10 s): a job that keeps up shows up to ~10 s of records
        "consumer_lag_max": max(lags) if lags else None,
        "consumer_lag_max_s": round(max(lags) / s.rate, 1) if lags and s.rate else None,
        "consumer_lag_at_end": lag_end,
        "consumer_lag_at_end_s": round(lag_end / rate, 1) if lag_end is not None else None,
        "exact": acc.exact,
        "verdict": acc.verdict,
    }


def _consumer_lag(settings: Settings, topic: str) -> int | None:
    """Records written to `topic` but not yet committed by the job's consumer group (committed at checkpoints)."""
    from labkit import kafka_info
    from labkit.jobs import pipeline_params

    try:
        return int(kafka_info.lag(pipeline_params(settings, topic=topic).group_id, topic, settings)["lag"].sum())
    except Exception:
        return None


# 30k: the live edge lay between 20k (p95 5.5 s) and 40k (6.7 s) in session 20's run
SWEEP_RATES = (5_000, 20_000, 30_000, 40_000, 60_000, 80_000, 100_000)
LIVE_P95_S = 6.0  # a rate counts as "live" while windows are queryable within this, at p95 (issue 23: the 5 s
# watermark delay plus at most 1 s; it was 7.5 s while event time started behind the wall clock, see produce())


def sweep(settings: Settings, rates=SWEEP_RATES, seconds: float = 50) -> list[dict]:
    """Producer rates up to saturation: throughput, consumer lag, freshness and the accounts at each."""
    out = []
    for r in rates:
        say(f"sweep: {r:,} events/s for {seconds:.0f}s")
        res = freshness(settings, rate=r, seconds=seconds)
        out.append(res)
        if res.get("achieved_rate", r) < 0.9 * r or (res.get("consumer_lag_at_end_s") or 0) > 20:
            break  # saturated: the producer or the job cannot keep up
    return out


def run(quick: bool = False, out: Path | None = None, settings: Settings | None = None) -> dict:
    settings = settings or get_settings()
    res: dict = {"hardware": hardware(), "when": time.strftime("%Y-%m-%d %H:%M:%S")}
    steps = [
        ("stack", lambda: stack_startup(settings)),
        ("kafka_ceiling", lambda: kafka_ceiling(settings, 300_000 if quick else 1_000_000)),
        ("producer", lambda: producer_alone(settings, 200_000 if quick else 1_000_000)),
        # the first job on the stack pays its start and a cold JIT; the warm figure comes after more jobs (the
        # quick bench keeps the old definition, the second job, to stay quick)
        ("end_to_end_cold", lambda: end_to_end(settings, 200_000 if quick else 1_000_000)),
        (
            "end_to_end",
            lambda: end_to_end_warm(settings, 200_000, warmups=0, runs=1) if quick else end_to_end_warm(settings),
        ),
        ("freshness", lambda: freshness(settings, rate=2000, seconds=30 if quick else 120)),
        ("sweep", lambda: sweep(settings, (5_000, 20_000) if quick else SWEEP_RATES)),
    ]
    for name, fn in steps:
        say(f"bench: {name}")
        res[name] = fn()
        print(json.dumps({name: res[name]}, indent=1), flush=True)
    res["ratios"] = ratios(res)
    print(ratio_table(res["ratios"]), flush=True)
    out = out or Path("build") / "bench.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(res, indent=2))
    say(f"results in {out}")
    return res


def ratios(res: dict) -> dict:
    """Each throughput as a share of Kafka's own producer ceiling measured in the same run (issue 23's targets
    are stated that way: a faster or slower machine moves both)."""
    ceiling = (res.get("kafka_ceiling") or {}).get("records_per_s")
    if not ceiling:
        return {}
    out = {"kafka_ceiling_records_per_s": ceiling}
    for engine, r in (res.get("producer") or {}).items():
        out[f"producer_{engine}"] = round(r["events_per_s"] / ceiling, 3)
    for key in ("end_to_end", "end_to_end_cold"):
        if res.get(key):
            out[key] = round(res[key]["events_per_s"] / ceiling, 3)
    # live and sustained: the accounts exact and windows queryable within LIVE_P95_S at p95 (issue 23's definition)
    live = [r for r in res.get("sweep") or []
            if r.get("exact") and r.get("achieved_rate") and (r.get("freshness_p95_s") or 99) <= LIVE_P95_S]  # fmt: skip
    if live:
        best = max(live, key=lambda r: r["achieved_rate"])
        out["live_sustained_exact"] = round(best["achieved_rate"] / ceiling, 3)
    return out


def ratio_table(r: dict) -> str:
    if not r:
        return "ratios: no Kafka ceiling measured"
    lines = [f"ratios to Kafka's producer ceiling ({r['kafka_ceiling_records_per_s']:,} records/s):"]
    lines += [f"  {k:<28} {v:.2f}" for k, v in r.items() if k != "kafka_ceiling_records_per_s"]
    return "\n".join(lines)


if __name__ == "__main__":
    run(quick=bool(os.environ.get("LABKIT_BENCH_QUICK")))
