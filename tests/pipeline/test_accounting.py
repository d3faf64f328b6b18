"""The issue's acceptance on the real stack: 100,000+ events with malformed and late ones, exact accounts,
a replay that changes nothing, and events from another client (kcat) processed the same."""

import json
import shutil
import subprocess
import time

import pandas as pd
import pytest

from labkit import jobs, kafka_info
from labkit.events import EventGenerator
from labkit.influx import Influx
from labkit.ledger import Ledger
from labkit.produce import produce
from labkit.verify import verify
from tests.requirements import need

pytestmark = pytest.mark.stack


def _snapshot(settings, topic):
    with Influx(settings) as db:
        out = {}
        for m in ("http_counts", "error_rate", "url_counts", "latency", "active_users", "late_events"):
            df = db.query(m, start="-2h", stream=topic)
            out[m] = df.sort_values(list(df.columns)).reset_index(drop=True) if not df.empty else df
        return out


def test_100k_events_are_accounted_for_exactly_and_a_replay_changes_nothing(settings, pipeline):
    topic, job = pipeline
    summary = produce(
        100_000,
        topic=topic,
        seed=11,
        sim_rate=500,
        late_fraction=0.01,
        malformed_fraction=0.01,
        close_windows=True,
        settings=settings,
    )
    assert summary.acknowledged == 100_000
    assert summary.by_kind["late"] > 300 and summary.by_kind["malformed"] > 800

    acc = verify(summary.ledger, settings=settings, wait_s=120)
    assert acc.exact, f"{acc}\n{acc.mismatches}"
    assert acc.windows >= 19 and acc.open_windows == 0
    assert acc.counted == summary.by_kind["valid"]
    assert acc.late_counted == summary.by_kind["late"]
    assert acc.dlq_found == acc.dlq_expected and sum(acc.dlq_found.values()) == summary.by_kind["malformed"]
    # every built-in measurement's values, per window, equal what the ledger computes from the events sent
    assert acc.value_mismatches == {"error_rate": 0, "url_counts": 0, "active_users": 0, "latency": 0}

    before = _snapshot(settings, topic)
    job.cancel()
    replay = jobs.submit_pipeline(settings, topic=topic, from_earliest=True, group_id=f"replay-{topic}")
    try:
        # The results of the first run are already there, so "exact" proves nothing about the replay: wait
        # until it has committed every offset (Flink commits at checkpoints), then for its last windows.
        deadline = time.monotonic() + 120
        while kafka_info.lag(f"replay-{topic}", topic, settings)["lag"].sum() > 0:
            assert time.monotonic() < deadline, "the replay did not consume the topic within 120 s"
            time.sleep(1)
        deadline = time.monotonic() + 60
        after = _snapshot(settings, topic)
        while time.monotonic() < deadline and any(not df.equals(after[m]) for m, df in before.items()):
            time.sleep(2)
            after = _snapshot(settings, topic)
        acc2 = verify(summary.ledger, settings=settings, wait_s=10)
    finally:
        replay.cancel()
    assert acc2.exact, f"the replay: {acc2}\n{acc2.mismatches}\n{acc2.value_diffs}"
    for m, df in before.items():
        pd.testing.assert_frame_equal(df, after[m], obj=f"{m} after the replay")


def test_back_to_back_runs_on_one_topic_keep_their_own_accounts(settings, pipeline):
    # `make demo` after the notebooks, or two demos in a row: the second run's late events must stay out of the
    # first run's windows, whose counts would otherwise show up as the second run's double counts.
    topic, _ = pipeline
    for seed in (31, 32):
        summary = produce(
            12_000,
            topic=topic,
            seed=seed,
            sim_rate=100,
            late_fraction=0.02,
            malformed_fraction=0.01,
            close_windows=True,
            settings=settings,
            progress=False,
        )
        assert summary.by_kind["late"] > 50
        acc = verify(summary.ledger, settings=settings, wait_s=120)
        assert acc.exact, f"run with seed {seed}: {acc}\n{acc.mismatches}"
        assert acc.late_counted == summary.by_kind["late"]


def test_events_from_kcat_are_processed_the_same(settings, pipeline):
    need(shutil.which("kcat") is not None, "kcat is not installed (make system installs it)")
    topic, _ = pipeline
    n = 5000
    now = int(time.time() * 1000)
    gen = EventGenerator(seed=21, rate=200, start_ms=now - n * 5)
    ledger = Ledger(topic)
    lines = []
    for _ in range(n):
        e = next(gen)
        ledger.add(e.kind, e.event_ms, e.status, e.reason, now)
        lines.append(e.key + b"\t" + e.value)
    end = ledger.last_event_ms + 5000 + 10_000 + 1000
    marker = json.dumps({"event_type": "watermark", "event_timestamp": end}).encode()
    for p in range(settings.partitions):
        subprocess.run(
            ["kcat", "-P", "-b", settings.kafka, "-t", topic, "-K", "\t", "-p", str(p)],
            input=b"\n".join(lines if p == 0 else []) + (b"\n" if p == 0 else b"") + b"m\t" + marker + b"\n",
            check=True,
            timeout=60,
        )
    ledger.closed_until_ms = end - 5000
    ledger.first_record_ms, ledger.last_record_ms = now - 60_000, int(time.time() * 1000) + 60_000
    acc = verify(ledger, settings=settings, wait_s=90)
    assert acc.exact, f"{acc}\n{acc.mismatches}"
    assert acc.counted == n


def test_verify_catches_a_wrong_value_in_every_measurement_and_a_missing_window(settings, stack, pipeline):
    """verify must not say EXACT while any built-in measurement holds a wrong value or lacks a window:
    overwrite one point per measurement with a wrong field value, delete one window of another, and
    both the library and `labkit verify` (exit code) report it."""
    from influxdb_client import InfluxDBClient, Point, WritePrecision
    from influxdb_client.client.write_api import SYNCHRONOUS

    topic, _job = pipeline
    summary = produce(4_000, topic=topic, seed=21, sim_rate=100, close_windows=True, settings=settings)
    acc = verify(summary.ledger, settings=settings, wait_s=120)
    assert acc.exact, f"{acc}"
    wrong = {  # measurement: (field to corrupt, which row)
        "error_rate": ("error_rate", lambda df: df.iloc[0]),
        "url_counts": ("count", lambda df: df.iloc[0]),
        "active_users": ("users", lambda df: df.iloc[0]),
        "latency": ("p95", lambda df: df[df["url"] == "ALL"].iloc[0]),
    }
    token = stack.influx_token("admin")
    with Influx(settings) as db, InfluxDBClient(url=settings.influx, token=token, org=settings.influx_org) as cl:
        write = cl.write_api(write_options=SYNCHRONOUS)
        for m, (field, pick) in wrong.items():
            row = pick(db.query(m, start="-2h", stream=topic))
            p = Point(m).tag("stream", topic).time(int(row["time"].value // 10**6), WritePrecision.MS)
            if "url" in row:
                p = p.tag("url", row["url"])
            v = row[field]  # keep the field's type: InfluxDB refuses a float into an integer field
            write.write(
                bucket=settings.influx_bucket, record=p.field(field, v.item() + 1 if hasattr(v, "item") else v + 1)
            )
    acc = verify(summary.ledger, settings=settings, wait_s=3, poll_s=1)
    assert not acc.exact
    assert all(acc.value_mismatches[m] >= 1 for m in wrong), acc.value_mismatches
    assert "value(s) differ" in acc.verdict and not acc.value_diffs.empty

    # a window missing from a measurement (deleted) is a mismatch as well, and the CLI exits non-zero
    w = max(w for w, _ in summary.ledger.on_time if w <= summary.ledger.closed_until_ms)
    with InfluxDBClient(url=settings.influx, token=token, org=settings.influx_org) as cl:
        cl.delete_api().delete(
            pd.to_datetime(w - 1, unit="ms", utc=True).to_pydatetime(),
            pd.to_datetime(w + 1, unit="ms", utc=True).to_pydatetime(),
            f'_measurement="active_users" AND stream="{topic}"',
            bucket=settings.influx_bucket,
            org=settings.influx_org,
        )
    acc = verify(summary.ledger, settings=settings, wait_s=3, poll_s=1)
    assert acc.missing_windows.get("active_users", 0) >= 1 and not acc.exact
    r = subprocess.run(
        [shutil.which("labkit") or ".venv/bin/labkit", "verify", "--topic", topic, "--wait", "3"],
        capture_output=True,
        text=True,
    )
    assert r.returncode == 1 and "MISMATCH" in r.stdout, r.stdout + r.stderr


def test_verify_without_end_markers_and_without_a_job_is_incomplete_not_exact(settings, stack, unique_topic):
    """`labkit produce -n 3000` (no end markers) with no job on the topic, then `labkit verify`: no window was
    checked, so the CLI must not say EXACT; it exits non-zero and says what to do."""
    labkit_cmd = shutil.which("labkit") or ".venv/bin/labkit"
    r = subprocess.run([labkit_cmd, "produce", "-n", "3000", "--topic", unique_topic], capture_output=True, text=True)
    assert r.returncode == 0, r.stdout + r.stderr
    r = subprocess.run([labkit_cmd, "verify", "--topic", unique_topic, "--wait", "5"], capture_output=True, text=True)
    assert r.returncode != 0 and "INCOMPLETE" in r.stdout and "EXACT" not in r.stdout, r.stdout + r.stderr
