import time
import uuid

import pytest

from labkit.errors import JobError, ServiceError
from labkit.influx import Influx
from labkit.jobs import base_spec
from labkit.jobs.control import Flink, submit_spec

pytestmark = pytest.mark.stack


def test_pyflink_job_runs_to_completion_and_writes_through_python(settings, stack):
    tag = uuid.uuid4().hex[:8]
    spec = base_spec(settings, f"smoke-{tag}", parallelism=1)
    spec["ddl"] = [
        "CREATE TEMPORARY TABLE nums (n BIGINT) WITH ('connector' = 'datagen', 'number-of-rows' = '50', "
        "'fields.n.kind' = 'sequence', 'fields.n.start' = '1', 'fields.n.end' = '50')",
        "CREATE TEMPORARY TABLE influx_sink (written INT) WITH ('connector' = 'blackhole')",
    ]
    now = int(time.time() * 1000)
    spec["inserts"] = [
        f"INSERT INTO influx_sink SELECT influx_write('flink_smoke', JSON_OBJECT(KEY 'stream' VALUE '{tag}'), "
        f"JSON_OBJECT(KEY 'n' VALUE n), {now} + n) FROM nums"
    ]
    job = submit_spec(spec, settings, stack.mode)
    assert job.wait_for("FINISHED", timeout=120) == "FINISHED"
    with Influx(settings) as db:
        df = db.query("flink_smoke", start="-10m", stream=tag)
    assert sorted(df["n"].tolist()) == list(range(1, 51))


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
