import contextlib

import pytest

from labkit import jobs


@pytest.fixture
def pipeline(settings, stack, unique_topic):
    """The clickstream job running on a fresh topic of its own; cancelled afterwards."""
    job = jobs.submit_pipeline(settings, topic=unique_topic, from_earliest=True)
    yield unique_topic, job
    with contextlib.suppress(Exception):
        job.cancel()


PY_UDF = """from pyflink.table import DataTypes
from pyflink.table.udf import udf


@udf(result_type=DataTypes.INT())
def payload_size(payload):
    return len(payload or b"")
"""


@pytest.fixture
def python_udf_job(settings, stack, unique_topic, tmp_path, monkeypatch):
    """A job with a Python UDF, declared in SQL (`CREATE FUNCTION ... LANGUAGE PYTHON`) as someone exploring PyFlink
    would: the lab's own jobs run no Python in the TaskManagers (their InfluxDB writer is Java), so this job is what
    starts Python workers, whose guarantees (their gRPC servers on the bind host, reaped after a crash) still hold.
    Yields (topic, job); cancelled afterwards."""
    from labkit.jobs import base_spec, pipeline_params
    from labkit.jobs.control import submit_spec
    from labkit.jobs.sql import functions_ddl, source_ddl
    from labkit.stack.kafka import ensure_topics

    module = tmp_path / "lab_probe_udf.py"
    module.write_text(PY_UDF)
    # the client imports the function to plan the job (its Python inherits this path); `python.files` ships it to
    # the TaskManager's Python workers
    monkeypatch.setenv("PYTHONPATH", str(tmp_path))
    params = pipeline_params(settings, topic=unique_topic, from_earliest=True)
    ensure_topics(stack.get_bootstrap_server(), settings.model_copy(update={"topic": params.topic}))
    spec = base_spec(settings, f"python-udf-{unique_topic}", parallelism=1)
    spec.pop("influx")  # writes nowhere
    spec["config"]["python.files"] = str(module)
    spec["ddl"] = [
        *functions_ddl(),
        source_ddl(params),
        "CREATE TEMPORARY FUNCTION payload_size AS 'lab_probe_udf.payload_size' LANGUAGE PYTHON",
        "CREATE TEMPORARY TABLE sizes (n INT) WITH ('connector' = 'blackhole')",
    ]
    spec["inserts"] = ["INSERT INTO sizes SELECT payload_size(payload) FROM events_raw"]
    job = submit_spec(spec, settings, stack.mode)
    job.wait_running(timeout=180)
    yield unique_topic, job
    with contextlib.suppress(Exception):
        job.cancel()
