"""The PyFlink program that builds labkit's jobs: runs a job spec (SQL statements) into the InfluxDB sink table,
or previews a SELECT. `--serve` keeps it running for one spec after another (labkit.jobs.warm_client).

It imports nothing from labkit: `flink run -py` (a job with Python UDFs) ships it to the cluster, whose Python
may not have labkit installed (compose image). Python only builds the job: every
operator runs in the JVM (Flink SQL, the lab's Java functions and its InfluxDB writer), so the
TaskManagers start no Python workers.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import re
import sys
import threading
import traceback

from pyflink.table import EnvironmentSettings, TableEnvironment

VIEW = re.compile(r"^\s*CREATE TEMPORARY VIEW (\w+) AS\s+(.*)$", re.S | re.I)


def _lit(value: object) -> str:
    """A SQL string literal (jobs/sql.lit's rule: quotes doubled); this file imports nothing from labkit."""
    return "'" + str(value).replace("'", "''") + "'"


def sink_ddl(influx: dict) -> str:
    """The `influx_sink` table: the lab's JVM line-protocol writer (connector `labkit-influx`, InfluxWriter.java in
    the lab's jar). Rows are (measurement, tags JSON, fields JSON, ts ms). A window's point is identified by
    measurement, tags and the window end, so a replay overwrites instead of double counting; writes block and
    retry while InfluxDB is away (back pressure), and everything buffered is written before each checkpoint
    completes, so no window is lost. Refused points are recorded as `sink_rejections`, not retried."""
    options = {
        "connector": "labkit-influx",
        "url": influx["url"],
        "org": influx["org"],
        "bucket": influx["bucket"],
        "token-file": influx.get("token_file") or "",
        "token-env": influx.get("token_env") or "",
    }
    with_ = ",\n".join(f"  '{k}' = {_lit(v)}" for k, v in options.items())
    return (
        "CREATE TEMPORARY TABLE influx_sink (measurement STRING, tags STRING, fields STRING, ts BIGINT) "
        f"WITH (\n{with_}\n)"
    )


def custom_metric_insert(t_env, measurement: str, stream: str, sql: str) -> str:
    """INSERT writing a user's aggregation: STRING columns become tags, numeric columns fields,
    `window_end` the point's time. Built from the query's schema, so any windowed SELECT works."""
    schema = t_env.sql_query(sql).get_schema()
    names, types = schema.get_field_names(), [str(t) for t in schema.get_field_data_types()]
    if "window_end" not in names:
        raise ValueError("a custom metric must select window_end (the end of its window) to time its points")
    tags, fields = [f"KEY 'stream' VALUE '{stream}'"], []
    for n, t in zip(names, types, strict=False):
        if n in ("window_end", "window_start", "window_time"):
            continue
        if t.startswith(("VARCHAR", "STRING", "CHAR")):
            tags.append(f"KEY '{n}' VALUE `{n}`")
        elif t.startswith(("BIGINT", "INT", "SMALLINT", "TINYINT", "DOUBLE", "FLOAT", "DECIMAL", "BOOLEAN")):
            fields.append(f"KEY '{n}' VALUE `{n}`")
    if not fields:
        raise ValueError("a custom metric needs at least one numeric column (the value to store)")
    ts = "CAST(TIMESTAMPDIFF(SECOND, TIMESTAMP '1970-01-01 00:00:00', window_end) AS BIGINT) * 1000"
    return (
        f"INSERT INTO influx_sink SELECT CAST('{measurement}' AS STRING), JSON_OBJECT({', '.join(tags)}), "
        f"JSON_OBJECT({', '.join(fields)}), {ts} FROM (\n{sql}\n)"
    )


def _jsonable(x):
    return x if isinstance(x, (int, float, str, type(None))) else str(x)


def row_kind_column(names: list[str]) -> str:
    """The name the preview gives each row's kind (+I, -U, +U, -D): `op`, unless the query has a column of that
    name already, then `row_kind` (then `_row_kind`, ...)."""
    for name in ("op", "row_kind"):
        if name not in names:
            return name
    name = "row_kind"
    while name in names:
        name = "_" + name
    return name


def plain_times(t_env, sql: str):
    """`sql` as a Table whose TIMESTAMP_LTZ columns (a rowtime, a proctime, TO_TIMESTAMP_LTZ(...)) are cast to
    TIMESTAMP(3), the instant as the session's time zone reads it: PyFlink cannot hand an LTZ value to Python (the
    collect fails in PythonBridgeUtils.getPickledBytesFromRow), and a query that selects `rowtime` is natural."""
    table = t_env.sql_query(sql)
    cols = table._j_table.getResolvedSchema().getColumns()
    out, cast = [], False
    for c in cols:
        name = "`" + c.getName().replace("`", "``") + "`"
        if c.getDataType().getLogicalType().getTypeRoot().name() == "TIMESTAMP_WITH_LOCAL_TIME_ZONE":
            out.append(f"CAST({name} AS TIMESTAMP(3)) AS {name}")
            cast = True
        else:
            out.append(name)
    return t_env.sql_query(f"SELECT {', '.join(out)} FROM (\n{sql}\n)") if cast else table


def preview(t_env, sql: str, limit: int, timeout_s: float, row_kind: bool = False, plain_time: bool = False) -> None:
    """Bounded preview in this process (a local MiniCluster): rows as JSON lines, then stop. A watchdog
    cancels the job at the deadline even when no row ever comes, so the caller always gets an answer.

    `row_kind`: each row also carries its kind, as Flink's changelog spells it (+I insert, -U the row an update
    retracts, +U the row it adds, -D delete), in a first column named by `row_kind_column`. Without it, rows of
    an updating result come out as if every one were an insert (the protocol as it always was).
    `plain_time`: TIMESTAMP_LTZ columns come out as timestamps (`plain_times`) instead of failing the run."""
    table = plain_times(t_env, sql) if plain_time else t_env.sql_query(sql)
    names = table.get_schema().get_field_names()
    kind = row_kind_column(names) if row_kind else None
    print("LABKIT_COLUMNS " + json.dumps([kind, *names] if kind else names), flush=True)  # even an empty result
    result = table.execute()
    timed_out = threading.Event()

    def stop() -> None:
        timed_out.set()
        print("LABKIT_PREVIEW_TIMEOUT", flush=True)
        result.get_job_client().cancel()

    watchdog = threading.Timer(timeout_s, stop)
    watchdog.daemon = True
    watchdog.start()
    try:
        with result.collect() as rows:
            for i, row in enumerate(rows):
                values = dict(zip(names, map(_jsonable, row), strict=False))
                if kind:
                    values = {kind: str(row.get_row_kind()), **values}  # pyflink's RowKind prints as +I/-U/+U/-D
                print("LABKIT_ROW " + json.dumps(values), flush=True)
                if i + 1 >= limit or timed_out.is_set():
                    break
    except Exception:
        if not timed_out.is_set():  # a cancelled job ends the iterator with an error: expected then
            raise
    finally:
        watchdog.cancel()


def table_env(config: dict, remote: dict | None = None, savepoint: str | None = None):
    """A fresh TableEnvironment for one spec. Local (a preview): a MiniCluster in this process. `remote`
    ({"host", "port"}): jobs go to that session cluster, as `flink run -m host:port` sends them, over the client conf
    `flink run` reads (FLINK_CONF_DIR), restored from `savepoint` when given (as `flink run -s`, in Flink's default
    NO_CLAIM mode). Nothing is shipped with the job: the cluster's lib folder holds the connector and the lab's jar."""
    if remote is None:
        t_env = TableEnvironment.create(EnvironmentSettings.in_streaming_mode())
    else:
        from pyflink.datastream import StreamExecutionEnvironment
        from pyflink.java_gateway import get_gateway
        from pyflink.table import StreamTableEnvironment

        gw = get_gateway()
        jconf = gw.jvm.org.apache.flink.configuration
        conf_dir = os.environ.get("FLINK_CONF_DIR")
        j_conf = jconf.GlobalConfiguration.loadConfiguration(conf_dir) if conf_dir else jconf.Configuration()
        if savepoint:
            j_conf.setString("execution.state-recovery.path", savepoint)
        j_env = gw.jvm.org.apache.flink.streaming.api.environment.StreamExecutionEnvironment.createRemoteEnvironment(
            remote["host"], int(remote["port"]), j_conf, gw.new_array(gw.jvm.String, 0)
        )
        t_env = StreamTableEnvironment.create(
            StreamExecutionEnvironment(j_env), EnvironmentSettings.in_streaming_mode()
        )
    conf = t_env.get_config()
    for k, v in config.items():  # a preview's spec comes without checkpoints (custom.preview_config)
        conf.set(k, str(v))
    return t_env


def run_spec(spec: dict, remote: dict | None = None, savepoint: str | None = None) -> None:
    """Run one job spec: its preview (rows printed as tagged lines), or its INSERTs as one job. Under `flink run`
    the environment is the client's; in a warm client (`serve`) it is `table_env`'s."""
    t_env = table_env(spec["config"], remote, savepoint)
    if "influx" in spec:  # a preview reads only, but its spec names the sink too
        t_env.execute_sql(sink_ddl(spec["influx"]))
    for stmt in spec["ddl"]:
        m = VIEW.match(stmt)
        if m:
            # A view made from a Table object is one node that every reader shares: the planner
            # optimizes it once as a common block instead of inlining (and re-running) it per INSERT.
            t_env.create_temporary_view(m.group(1), t_env.sql_query(m.group(2)))
        else:
            t_env.execute_sql(stmt)
    custom = spec.get("custom")
    if custom and spec.get("preview"):
        p = spec["preview"]
        preview(
            t_env,
            custom["sql"],
            p["limit"],
            p["timeout_s"],
            row_kind=bool(p.get("row_kind")),
            plain_time=bool(p.get("plain_time")),
        )
        return
    inserts = list(spec.get("inserts", []))
    if custom:
        inserts.append(custom_metric_insert(t_env, custom["measurement"], custom["stream"], custom["sql"]))
    stmts = t_env.create_statement_set()
    for ins in inserts:
        stmts.add_insert_sql(ins)
    result = stmts.execute()
    client = result.get_job_client()
    if client is not None:  # the line `flink run` prints, which labkit reads the job's id from
        print(f"Job has been submitted with JobID {client.get_job_id()}", flush=True)


def serve(log: str) -> None:
    """A warm client (labkit.jobs.warm_client): run requests one at a time as they come on stdin, one JSON object a
    line ({"spec": path, "remote": {...} or absent, "savepoint": path or absent}), each answered by its output and a
    last line `LABKIT_DONE <0|1>`, a failure's traceback before it as `LABKIT_ERROR <JSON string>`. One JVM serves
    them all, so a run costs the job's own work, not a JVM's start. Ends when stdin closes (its parent is gone);
    the JVM then ends too (PyFlink's gateway exits when its stdin closes)."""
    from pyflink.java_gateway import get_gateway

    gw = get_gateway()
    # The JVM's stdout comes here (and is kept as a run's output, tagged lines aside); its stderr is a pipe PyFlink
    # never reads, which would block the JVM once full: into the log file instead.
    jio = gw.jvm.java.io
    gw.jvm.System.setErr(jio.PrintStream(jio.FileOutputStream(log, True), True))
    print("LABKIT_READY", flush=True)
    for line in sys.stdin:
        if not line.strip():
            continue
        rc, lost = 0, False
        try:
            req = json.loads(line)
            with open(req["spec"]) as f:
                spec = json.load(f)
            run_spec(spec, req.get("remote"), req.get("savepoint"))
        except Exception:
            rc = 1
            print("LABKIT_ERROR " + json.dumps(traceback.format_exc()), flush=True)
            lost = not _jvm_alive(gw)  # no later run could work in this process: end it, the next request starts anew
            if lost:
                print("LABKIT_JVM_LOST", flush=True)
        print(f"LABKIT_DONE {rc}", flush=True)
        if lost:
            break
    # stdin closed: its parent is done with it. End the JVM at once (halt: no shutdown hooks to wait for; every
    # run's MiniCluster is already shut down) and reap it, so nothing outlives this process: a caller closing it
    # waits for this process alone (warm_client.close), and finds no JVM left when it returns.
    with contextlib.suppress(Exception):
        gw.jvm.java.lang.Runtime.getRuntime().halt(0)  # the answer never comes: py4j raises, and that is expected
    with contextlib.suppress(ChildProcessError):
        while True:
            os.wait()


def _jvm_alive(gw) -> bool:
    """Whether the JVM still answers: after it died (crashed, out of memory, killed), every Py4J call fails, with
    messages as odd as "EnvironmentSettings does not exist in the JVM"."""
    try:
        gw.jvm.java.lang.System.currentTimeMillis()
        return True
    except Exception:
        return False


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--spec", help="job spec JSON written by labkit")
    ap.add_argument("--serve", metavar="LOG", help="serve specs from stdin (a warm client), the JVM's stderr to LOG")
    args = ap.parse_args()
    if args.serve:
        serve(args.serve)
        return
    with open(args.spec) as f:
        run_spec(json.load(f))


if __name__ == "__main__":
    main()
