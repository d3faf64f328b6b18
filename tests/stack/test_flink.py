import time
import uuid

import pytest

from labkit.errors import JobError, ServiceError
from labkit.influx import Influx
from labkit.jobs import base_spec
from labkit.jobs.control import Flink, submit_spec

pytestmark = pytest.mark.stack


def test_pyflink_job_runs_to_completion_and_writes_through_the_lab_sink(settings, stack):
    tag = uuid.uuid4().hex[:8]
    spec = base_spec(settings, f"smoke-{tag}", parallelism=1)
    spec["ddl"] = [
        "CREATE TEMPORARY TABLE nums (n BIGINT) WITH ('connector' = 'datagen', 'number-of-rows' = '50', "
        "'fields.n.kind' = 'sequence', 'fields.n.start' = '1', 'fields.n.end' = '50')",
    ]
    now = int(time.time() * 1000)
    spec["inserts"] = [
        f"INSERT INTO influx_sink SELECT 'flink_smoke', JSON_OBJECT(KEY 'stream' VALUE '{tag}'), "
        f"JSON_OBJECT(KEY 'n' VALUE n), {now} + n FROM nums"
    ]
    job = submit_spec(spec, settings, stack.mode)
    # a bounded job ends: what the writer still held is written at the end of input
    assert job.wait_for("FINISHED", timeout=120) == "FINISHED"
    with Influx(settings) as db:
        df = db.query("flink_smoke", start="-10m", stream=tag)
    assert sorted(df["n"].tolist()) == list(range(1, 51))


def test_the_sink_keeps_awkward_tags_and_fields_and_types(settings, stack):
    """Line protocol's escapes and types, through the lab's writer and back out of InfluxDB: tag values with a
    space, a comma and an equals sign or a backslash, a string field with quotes and a backslash, integers, floats
    and booleans, a null field left out, a point with no field at all skipped, and an updating count ending on its
    latest value (its -U rows skipped, its +U rows rewriting the point). The bytes sent are the Python client's
    (tests/unit/test_influx_line_protocol.py); this is what InfluxDB makes of them."""
    tag = uuid.uuid4().hex[:8]
    spec = base_spec(settings, f"sink-{tag}", parallelism=1)
    now = int(time.time() * 1000)
    spec["ddl"] = []
    spec["inserts"] = [
        "INSERT INTO influx_sink SELECT 'sink check', JSON_OBJECT(KEY 'stream' VALUE '" + tag + "', "
        "KEY 'page' VALUE page), JSON_OBJECT(KEY 'hits' VALUE hits, KEY 'ratio' VALUE ratio, KEY 'ok' VALUE ok, "
        "KEY 'note' VALUE note, KEY 'gone' VALUE CAST(NULL AS INT)), " + str(now) + " + k FROM (VALUES "
        "(1, '/a b,c=d', CAST(7 AS BIGINT), CAST(0.25 AS DOUBLE), TRUE, 'say \"hi\" \\ bye'), "
        "(2, '/back\\slash', CAST(-3 AS BIGINT), CAST(1e-5 AS DOUBLE), FALSE, 'x')) AS t(k, page, hits, ratio, ok, note)",
        # no field with a value: nothing to write
        "INSERT INTO influx_sink SELECT 'sink check', JSON_OBJECT(KEY 'stream' VALUE '" + tag + "', KEY 'page' "
        "VALUE '/none'), JSON_OBJECT(KEY 'hits' VALUE CAST(NULL AS BIGINT)), " + str(now) + " + 3",
        # an updating count: +I 1, then -U 1 / +U 2, then -U 2 / +U 3 for the same point
        "INSERT INTO influx_sink SELECT 'sink check', JSON_OBJECT(KEY 'stream' VALUE '" + tag + "', KEY 'page' "
        "VALUE '/count'), JSON_OBJECT(KEY 'hits' VALUE COUNT(*)), " + str(now) + " + 4 "
        "FROM (VALUES (1), (2), (3)) AS v(x)",
    ]
    job = submit_spec(spec, settings, stack.mode)
    assert job.wait_for("FINISHED", timeout=120) == "FINISHED"
    with Influx(settings) as db:
        df = db.query("sink check", start="-10m", stream=tag)
    rows = {r["page"]: r for r in df.to_dict("records")}
    assert set(rows) == {"/a b,c=d", "/back\\slash", "/count"}, rows
    a, p = rows["/a b,c=d"], rows["/back\\slash"]
    assert (a["hits"], a["ratio"], a["ok"], a["note"]) == (7, 0.25, True, 'say "hi" \\ bye')
    assert (p["hits"], p["ratio"], p["ok"], p["note"]) == (-3, 1e-5, False, "x")
    assert rows["/count"]["hits"] == 3
    assert "gone" not in df.columns or df["gone"].isna().all()


def test_sql_error_comes_back_as_flinks_message_not_a_stack_trace(settings, stack):
    spec = base_spec(settings, "bad-sql", parallelism=1)
    spec["ddl"] = ["CREATE TEMPORARY TABLE t (n INT) WITH ('connector' = 'datagen')"]
    spec["inserts"] = ["INSERT INTO t SELECT\n  no_such_column FROM t"]
    with pytest.raises(JobError) as e:
        submit_spec(spec, settings, stack.mode)
    msg = str(e.value)
    assert "no_such_column" in msg and "line 2" in msg
    assert "\tat " not in msg and "Traceback" not in msg


def test_cluster_down_is_one_sentence():
    with pytest.raises(ServiceError, match="Flink is not reachable at http://127.0.0.1:1"):
        Flink("http://127.0.0.1:1").overview()


@pytest.mark.parametrize("wrong", ["token", "bucket"])
def test_a_rejected_write_fails_the_job_with_influxdbs_message(settings, stack, wrong):
    """A wrong token (401) or bucket (404) is configuration, not data: retrying cannot help and skipping would lose
    every window, so the writer fails the job, and Flink's exception history says what InfluxDB said."""
    spec = base_spec(settings, f"rejected-{wrong}-{uuid.uuid4().hex[:6]}", parallelism=1)
    if wrong == "token":  # no token at all, in any mode (a file here would not be in docker mode's TaskManager)
        spec["influx"].update(token_file="", token_env="LABKIT_TEST_NO_SUCH_TOKEN")
    else:
        spec["influx"]["bucket"] = f"no_such_bucket_{uuid.uuid4().hex[:6]}"
    spec["ddl"] = []
    spec["inserts"] = [
        f"INSERT INTO influx_sink SELECT 'rejected', JSON_OBJECT(KEY 'stream' VALUE 'x'), JSON_OBJECT(KEY 'n' VALUE 1), "
        f"{int(time.time() * 1000)}"
    ]
    job = submit_spec(spec, settings, stack.mode)
    try:
        deadline, seen = time.monotonic() + 90, None
        while time.monotonic() < deadline and not seen:
            seen = job.flink.exception(job.id)
            time.sleep(1)
        status = "401" if wrong == "token" else "404"
        assert seen and f"InfluxDB rejected the write (HTTP {status})" in seen, seen
    finally:
        job.cancel()
