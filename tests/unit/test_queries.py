"""Query building: Flux for InfluxDB and SQL for Flink, checked as text (they run for real in tests/pipeline)."""

import json
from pathlib import Path

from labkit.influx import Query, flux_string
from labkit.jobs.control import root_cause, stale_functions
from labkit.jobs.sql import JobParams, epoch_ms, lit, pipeline_statements, source_ddl
from labkit.timing import IDLE_TIMEOUT_S


def test_flux_query_filters_and_pivots():
    q = Query("http_counts", start="-5m", where=(("stream", "clicks"),), fields=("count",), bucket="b").flux()
    assert 'from(bucket: "b")' in q
    assert "range(start: -5m, stop: 1h)" in q  # points ahead of the wall clock stay visible
    assert 'r._measurement == "http_counts"' in q
    assert 'r["stream"] == "clicks"' in q
    assert 'r._field == "count"' in q
    assert "pivot(" in q


def test_late_events_is_read_minus_counted_over_closed_windows():
    q = Query("late_events", start="-5m", where=(("stream", "clicks"),), bucket="b").flux()
    assert 'r["stream"] == "clicks"' in q
    assert 'r._measurement == "valid_events" or r._measurement == "http_counts"' in q
    assert "r.valid_events - (if exists r.http_counts then r.http_counts else 0)" in q
    assert "r.fired >= 2" in q


def test_flux_strings_are_escaped():
    assert flux_string('a"b\\c') == '"a\\"b\\\\c"'


def test_sql_literals_are_escaped():
    assert lit("it's") == "'it''s'"


def test_pipeline_statements_cover_every_metric_and_the_dlq():
    ddl, inserts = pipeline_statements(JobParams(bootstrap="k:9092", topic="clicks", dlq_topic="dead"))
    text = "\n".join(ddl + inserts)
    for m in ("http_counts", "error_rate", "active_users", "url_counts", "latency", "valid_events", "dlq_events"):
        assert f"'{m}'" in text
    assert "'topic' = 'clicks'" in text and "'topic' = 'dead'" in text
    assert "WATERMARK FOR rowtime AS rowtime - INTERVAL '5' SECOND" in text
    assert "INTERVAL '10' SECOND" in text
    # the on-time filter ahead of the windows: per partition, from checkpointed state, not CURRENT_WATERMARK
    assert (
        "PARTITION BY kafka_partition" in text
        and "rowtime > partition_newest - INTERVAL '5' SECOND OR rowtime = partition_newest" in text
    )
    assert "CURRENT_WATERMARK" not in text
    # ...but late is measured (read minus counted): every drop is seen, including the window operator's own
    assert "DESCRIPTOR(pt), INTERVAL '1' SECOND" in text
    assert len(inserts) == 2  # one InfluxDB writer, one dead-letter writer


def test_epoch_ms_is_utc_seconds_times_1000():
    assert "TIMESTAMPDIFF(SECOND, TIMESTAMP '1970-01-01 00:00:00', w)" in epoch_ms("w")


def test_root_cause_prefers_the_sql_message():
    dump = """Traceback (most recent call last):
py4j.protocol.Py4JJavaError: An error occurred while calling o8.executeSql.
: org.apache.flink.table.api.ValidationException: SQL validation failed. From line 2, column 8 to line 2, column 10: Column 'foo' not found in any table
\tat org.apache.flink.table.planner...
Caused by: org.apache.calcite.runtime.CalciteContextException: From line 2, column 8 to line 2, column 10: Column 'foo' not found in any table
"""
    assert root_cause(dump).startswith("SQL validation failed. From line 2, column 8")


def test_root_cause_falls_back_to_the_deepest_cause():
    dump = "java.lang.RuntimeException: outer\nCaused by: java.net.ConnectException: Connection refused"
    assert root_cause(dump) == "ConnectException: Connection refused"


def test_a_cluster_holding_an_older_build_of_the_java_functions_is_named_as_such():
    # what Flink 2.2 answered when ParseClick.java had changed after `labkit up` (session 21, verbatim but the ids)
    dump = (
        "org.apache.flink.client.program.ProgramInvocationException: The main method caused an error\n"
        "Caused by: java.io.InvalidClassException: lab.clickstream.ParseClick; local class incompatible: "
        "stream classdesc serialVersionUID = 7605607288750162827, local class serialVersionUID = 8698380545877631960"
    )
    assert stale_functions(dump) == "lab.clickstream.ParseClick"
    nested = dump.replace("lab.clickstream.ParseClick", "lab.clickstream.InfluxWriter$Options")
    assert stale_functions(nested) == "lab.clickstream.InfluxWriter$Options"
    # another class's incompatibility, or any other failure, is not blamed on the lab's build
    assert stale_functions(dump.replace("lab.clickstream.ParseClick", "org.apache.flink.Foo")) is None
    assert stale_functions("Caused by: java.net.ConnectException: Connection refused") is None


def test_the_source_and_notebook_03_state_the_one_idle_timeout():
    """labkit.timing owns the idle timeout: the job's source sets it, and notebook 03 teaches the same number."""
    assert f"'scan.watermark.idle-timeout' = '{IDLE_TIMEOUT_S} s'" in source_ddl(JobParams(bootstrap="k:9092"))
    book = json.loads((Path(__file__).resolve().parents[2] / "notebooks" / "03_flink.ipynb").read_text())
    text = "".join("".join(c["source"]) for c in book["cells"] if c["cell_type"] == "markdown")
    assert f"(`scan.watermark.idle-timeout`, {IDLE_TIMEOUT_S} s)" in text
