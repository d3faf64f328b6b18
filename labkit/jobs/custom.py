"""Custom metrics: a user's Flink SQL aggregation over the validated events, previewed in seconds on recent
events, then deployed as its own job writing its own measurement (`custom_<name>`).

The SQL reads the view `events` (valid, on-time events: user_id, session_id, url, http_method,
http_status, latency_ms, country, device, rowtime) and must select `window_end`; STRING columns become
tags and numeric columns fields. Errors come back as Flink's message with the line and column.
"""

from __future__ import annotations

import decimal
import html
import json
import re
import signal
import subprocess
import sys
import time
from dataclasses import dataclass

import pandas as pd

from labkit.console import say
from labkit.credentials import write_secret
from labkit.errors import ConfigError, JobError
from labkit.jobs import base_spec, pipeline_params, warm_client
from labkit.jobs.control import RUNNER, Job, root_cause, submit_spec
from labkit.jobs.sql import JobParams, checked_view, functions_ddl, source_ddl, views
from labkit.settings import Settings
from labkit.settings import get as get_settings

EVENTS_VIEW = "CREATE TEMPORARY VIEW events AS SELECT * FROM events_on_time"


class PreviewTimeout(JobError):
    """A preview that did not finish in time: the lab (a busy machine, a slow or unreachable Kafka), not the
    SQL, is why. Its own class so that checkers tell it from a SQL error (`labkit.exercises.feedback`)."""


def _text(b: bytes | str | None) -> str:
    return b.decode(errors="replace") if isinstance(b, bytes) else (b or "")


def explore(sql: str, *, topic: str | None = None, seconds: float | None = 300, limit: int = 20) -> pd.DataFrame:
    """Run any bounded SELECT over the view `events` (e.g. `SELECT * FROM events LIMIT 10`): a look at the
    stream through Flink SQL before aggregating it. Runs locally on recent events and returns a DataFrame."""
    return CustomMetric("explore", sql, topic=topic).preview(seconds=seconds, limit=limit)


EXAMPLE = """SELECT window_end, url,
       COUNT(*) AS requests,
       CAST(SUM(CASE WHEN http_status >= 500 THEN 1 ELSE 0 END) AS DOUBLE) / COUNT(*) AS error_rate_5xx
FROM TABLE(TUMBLE(TABLE events, DESCRIPTOR(rowtime), INTERVAL '10' SECOND))
GROUP BY window_start, window_end, url"""


def _decimal(v: object) -> decimal.Decimal | None:
    """`v` as a finite Decimal if it is one, or a string spelling one ("0.333333", "0E-21"); None otherwise."""
    if isinstance(v, decimal.Decimal):
        return v if v.is_finite() else None
    if not isinstance(v, str) or not v or v != v.strip():
        return None
    try:
        d = decimal.Decimal(v)
    except decimal.InvalidOperation:
        return None
    return d if d.is_finite() else None


def decimal_column(s: pd.Series) -> bool:
    """Does `s` hold a Flink DECIMAL column as the preview passes it on (Decimal objects, or their text)?

    Flink types `SUM(CASE ... 1.0 ...) / COUNT(*)` as DECIMAL; the runner sends its values as text, so they
    arrived as strings and a checker saw no numeric column, while deploying stores them as numbers. The
    preview's protocol carries column names, not types, so the type is recognised from the values: every one
    is a Decimal, or a string spelling one with the same exponent (a DECIMAL(p, s) value always has scale s:
    "0.333333", and zero as "0E-21" at scale 21), with a fractional scale. A STRING column of ids or URLs
    never looks like that; integer-looking strings ("123") are left alone, they are more likely ids."""
    if s.dtype != object:
        return False
    values = [v for v in s if v is not None and not (isinstance(v, float) and v != v)]
    if not values:
        return False
    if all(isinstance(v, decimal.Decimal) for v in values):
        return all(v.is_finite() for v in values)
    parsed = [_decimal(v) for v in values]
    if any(d is None for d in parsed):
        return False
    exponents = {d.as_tuple().exponent for d in parsed}  # type: ignore[union-attr]
    return len(exponents) == 1 and next(iter(exponents)) < 0  # type: ignore[operator]


def decimals_to_float(df: pd.DataFrame) -> pd.DataFrame:
    """`df` with its DECIMAL columns (see `decimal_column`) as floats, so they are numbers as in InfluxDB."""
    for c in df.columns[~df.columns.duplicated(keep=False)]:  # a repeated name is a frame, not a column
        if decimal_column(df[c]):
            df[c] = pd.Series([float("nan") if v is None else float(v) for v in df[c]], index=df.index, dtype=float)
    return df


#: the config keys a preview drops from its job's (preview_config)
PREVIEW_DROPPED = ("execution.checkpointing.", "restart-strategy.")


def preview_config(config: dict) -> dict:
    """A job's config (labkit.jobs.base_spec) for a preview: without checkpointing and without restarts.

    Checkpoints: the preview reads its rows with TableResult.collect(), and Flink 2.2's collect iterator
    (CollectResultIterator.createBuffer, flink-streaming-java .../api/operators/collect/) takes a
    CheckpointedCollectResultBuffer when the job checkpoints EXACTLY_ONCE: a row reaches the client only once the
    checkpoint after it completes (maintainVisibility: visible up to lastCheckpointedOffset). With the pipeline's
    10 s checkpoints a preview's rows came in bursts, 10 s apart at best and minutes apart on a busy machine. With
    checkpointing off it takes an UncheckpointedCollectResultBuffer, whose rows are visible as soon as they are
    produced; TableResult.collect's own documentation says the same ("for streaming jobs without checkpointing ...
    results are immediately accessible by the clients once they're produced"; "with exactly-once checkpointing ...
    only after its corresponding checkpoint completes").

    Dropping the job's `execution.checkpointing.*` keys is enough: the runner runs a preview as a plain Python
    process (not `flink run`), so there is no context environment, and StreamExecutionEnvironment
    .getExecutionEnvironment builds a local one from the TableConfig alone (TableEnvironmentImpl.create). The
    cluster's config.yaml (the local stack's and compose's `execution.checkpointing.interval: 10 s`) is not read
    into it: the MiniCluster loads the global configuration only for file formats' defaults
    (initializeIOFormatClasses: FileOutputFormat's static initializer), and without the key checkpointing is off.
    Checked in the Flink 2.2.0 jars PyFlink installs. This is the one place that drops them: the runner sets what
    the spec says. The lab's real jobs are untouched: they keep base_spec's 10 s EXACTLY_ONCE checkpoints."""
    out = {k: v for k, v in config.items() if not k.startswith(PREVIEW_DROPPED)}
    out["restart-strategy.type"] = "none"
    return out


def run_preview(
    spec: dict,
    name: str,
    settings: Settings,
    *,
    limit: int,
    timeout_s: float,
    row_kind: bool = False,
    plain_time: bool = False,
    slow_hint: str = "preview fewer events (a smaller `seconds`), or give it longer (timeout_s=...)",
) -> pd.DataFrame:
    """Run a job spec's `custom` SELECT once, bounded, in a local MiniCluster (`runner.py --spec`), and return its
    rows. Shared by every preview (custom metrics here, notebook 10's patterns in labkit.jobs.patterns).

    The spec becomes a throwaway run: parallelism 1, the Kafka connector's jar, no checkpoints and no restarts.
    `row_kind` adds each row's kind (+I, -U, +U, -D) as a first column (`op`; runner.row_kind_column);
    `plain_time` returns TIMESTAMP_LTZ columns (a rowtime selected as it is) as timestamps (runner.plain_times).
    Raises PreviewTimeout when the lab was too slow (no row in time, or the runner hung), JobError with Flink's
    message when the query failed; a run cut short with some rows returns them with `attrs["partial"]` True.
    `slow_hint`: what to do when no row came in time (the caller knows what makes its previews smaller)."""
    from labkit.stack.provision import flink as flink_dist
    from labkit.stack.provision import provision_client, udf

    provision_client()
    spec["config"]["pipeline.jars"] = f"{flink_dist.connector_jar().as_uri()};{udf.jar_path().as_uri()}"
    spec["config"]["parallelism.default"] = 1
    # A preview is a throwaway run: no checkpoints and no restarts (a query that fails at run time must say so
    # now, not retry until the timeout). `preview_config` says why checkpoints must go, and why dropping the
    # job's own keys is enough.
    spec["config"] = preview_config(spec["config"])
    spec["preview"] = {"limit": limit, "timeout_s": timeout_s}
    spec["preview"].update({k: True for k, on in (("row_kind", row_kind), ("plain_time", plain_time)) if on})
    path = settings.home / "jobs" / f"preview-{name}.json"
    write_secret(path, json.dumps(spec))  # may hold a secured cluster's password: 0600, never via a link
    try:
        if warm_client.enabled():
            r = warm_client.run(path, timeout=timeout_s + 120, log_dir=settings.home / "logs")
        else:
            r = subprocess.run(
                [sys.executable, str(RUNNER), "--spec", str(path)],
                capture_output=True,
                text=True,
                timeout=timeout_s + 120,  # the runner's own watchdog stops the job at timeout_s
                stdin=subprocess.DEVNULL,
            )
    except subprocess.TimeoutExpired as e:
        raise PreviewTimeout(
            f"the preview of {name} did not finish in {timeout_s + 120:.0f}s: "
            f"{root_cause(_text(e.stdout) + _text(e.stderr))}",
            "see `labkit doctor`; a preview needs Java and the Kafka topic, not the Flink cluster",
        ) from None
    return _preview_rows(r, name, timeout_s, slow_hint)


def _preview_rows(r: subprocess.CompletedProcess, name: str, timeout_s: float, slow_hint: str) -> pd.DataFrame:
    """The runner's output (one tagged line each: LABKIT_COLUMNS, LABKIT_ROW, LABKIT_PREVIEW_TIMEOUT) as rows."""
    rows, columns, timed_out = [], None, False
    for line in r.stdout.splitlines():
        tag, _, payload = line.partition(" ")
        if tag == "LABKIT_ROW":
            rows.append(json.loads(payload))
        elif tag == "LABKIT_COLUMNS":
            columns = json.loads(payload)
        elif tag == "LABKIT_PREVIEW_TIMEOUT":
            timed_out = True
    if timed_out and not rows:
        raise PreviewTimeout(f"the preview of {name} returned no row within {timeout_s:.0f}s.", slow_hint)
    if r.returncode != 0 and not rows:
        cause, lab = _failure_cause(r)
        if lab:
            raise JobError(
                f"the preview of {name} failed: {cause}",
                "the lab failed, not your SQL: run it again; `labkit doctor` checks Java and the machine's memory",
            )
        raise JobError(
            f"your SQL for {name} failed: {cause}",
            "fix the SQL at the line and column shown, then preview again"
            if " line " in cause
            else "the query failed while running: fix the expression the error names, then preview again",
        )
    if timed_out:
        say(f"the preview stopped after {timeout_s:.0f}s: showing the {len(rows)} row(s) it had by then")
    df = decimals_to_float(pd.DataFrame(rows, columns=columns))
    df.attrs["partial"] = timed_out  # cut short: a checker must not grade part of a result as the answer
    return df


# Lines of a failed preview's output that say the lab broke, where the root cause (the deepest exception) hides it:
# after a JVM crash or an OutOfMemoryError the last exception is py4j's lost connection ("Answer from Java side is
# empty"), which says less. labkit.exercises.feedback classifies the sentence this makes.
_LAB_LINE = re.compile(
    r"(java\.lang\.OutOfMemoryError[^\n]*|A fatal error has been detected by the Java Runtime Environment"
    r"|Could not create the Java Virtual Machine|Error occurred during initialization of VM[^\n]*)"
)


def _failure_cause(r: subprocess.CompletedProcess) -> tuple[str, bool]:
    """(the sentence saying why a preview run failed, whether it was the lab): the deepest exception of its output,
    after what the lab said first when that is further up (a JVM crash, an OutOfMemoryError), or the signal that
    killed the runner."""
    text = _text(r.stdout) + _text(r.stderr)
    cause = root_cause(text)
    if r.returncode < 0:  # killed by a signal: nothing raised, so the output's last words are not the reason
        try:
            sig = signal.Signals(-r.returncode).name
        except ValueError:
            sig = f"signal {-r.returncode}"
        why = " (SIGKILL: most often the machine ran out of memory)" if sig == "SIGKILL" else ""
        return f"its process was killed by {sig}{why}; its last output: {cause}", True
    m = _LAB_LINE.search(text)
    if m and m.group(1) not in cause:
        return f"{m.group(1).lstrip('# ').strip()} (then: {cause})", True
    return cause, False


@dataclass
class CustomMetric:
    """A metric you design: `preview()` it, `deploy()` it, then `query()`/`plot()` it like the built-in ones."""

    name: str
    sql: str
    topic: str | None = None
    settings: Settings | None = None

    def __post_init__(self) -> None:
        if not re.fullmatch(r"[a-z][a-z0-9_]{0,40}", self.name):
            raise ConfigError(
                f"metric name {self.name!r} is not usable as a measurement name.",
                "use lowercase letters, digits and _ (e.g. 'error_rate_per_url')",
            )
        self.settings = self.settings or get_settings()
        if self.topic is not None:
            self.topic = self.settings.scoped(self.topic)
        self.sql = self.sql.strip().rstrip(";")

    @property
    def measurement(self) -> str:
        return f"custom_{self.name}"

    def _spec(self, params: JobParams, job_name: str) -> dict:
        spec = base_spec(self.settings, job_name, parallelism=1)
        spec["ddl"] = [
            *functions_ddl(),
            source_ddl(params),
            checked_view(params),
            *views(params),
            EVENTS_VIEW,
        ]  # influx_sink is the runner's (runner.sink_ddl)
        spec["custom"] = {"sql": self.sql, "measurement": self.measurement, "stream": params.topic}
        return spec

    def preview(
        self, seconds: float | None = 120, limit: int = 50, timeout_s: float = 90, since_ms: int | None = None
    ) -> pd.DataFrame:
        """Run the SQL once over the last `seconds` of events (None: the whole topic) in a local, bounded run;
        rows as a DataFrame. The run stops at the offsets that are latest when it starts, and its watermark
        then jumps to the end, so every window of the data fires. `since_ms` (epoch ms) fixes where reading
        starts instead, so two previews read the same records."""

        s = self.settings
        params = pipeline_params(s, topic=self.topic)
        params = JobParams(
            **{
                **params.__dict__,
                "bootstrap": s.kafka,
                "group_id": s.scoped(f"labkit-preview-{self.name}"),
                "startup": "timestamp" if (seconds is not None or since_ms is not None) else "earliest-offset",
                "bounded": True,
                "startup_timestamp_ms": since_ms
                if since_ms is not None
                else (int((time.time() - seconds) * 1000) if seconds is not None else None),
            }
        )
        spec = self._spec(params, f"preview-{self.name}")
        df = run_preview(spec, self.name, s, limit=limit, timeout_s=timeout_s)
        if df.empty:
            where = (
                f"since {pd.Timestamp(since_ms, unit='ms')} UTC"
                if since_ms is not None
                else ("the whole topic" if seconds is None else f"the last {seconds:.0f}s")
            )
            say(f"no rows: {params.topic} has no valid events in {where} (produce some, or widen `seconds`)")
        for c in ("window_start", "window_end", "window_time"):
            if c in df.columns:
                df[c] = pd.to_datetime(df[c])
        return df

    def deploy(self, backfill_s: float | None = 300) -> Job:
        """Run the metric as its own job (reading from `backfill_s` ago), writing `custom_<name>`."""
        s = self.settings
        params = pipeline_params(s, topic=self.topic, group_id=f"labkit-custom-{self.name}")
        params = JobParams(
            **{
                **params.__dict__,
                "startup": "timestamp" if backfill_s is not None else "earliest-offset",
                "startup_timestamp_ms": int((time.time() - backfill_s) * 1000) if backfill_s is not None else None,
            }
        )
        from labkit import context

        job = submit_spec(self._spec(params, f"custom-{self.name}"), s, context.of(s).mode)
        return job.wait_running()

    def query(self, start: str = "-15m") -> pd.DataFrame:
        from labkit.influx import Influx

        with Influx(self.settings) as db:
            return db.query(self.measurement, start=start, stream=self.topic)

    def plot(self, field: str | None = None, start: str = "-15m", top: int = 8):
        """A line per tag value (e.g. per URL), the `top` ones with the highest mean of `field`."""
        from labkit.plots import line

        df = self.query(start)
        tags = [c for c in df.columns if c not in ("time", "stream") and df[c].dtype == object]
        if df.empty or not tags:
            return line(df, field, title=f"custom metric: {self.name}")
        tag = tags[0]
        if field:
            keep = df.groupby(tag)[field].mean().nlargest(top).index
            df = df[df[tag].isin(keep)]
        return line(df, field, color=tag, title=f"custom metric: {self.name} (top {top} by {field or 'value'})")

    def panel(self, field: str, title: str | None = None, panel_id: int = 100):
        """A dashboard panel (Grafana and inline) for one field of this metric."""
        from labkit.dashboards import Panel, _q

        return Panel(
            panel_id,
            title or f"{self.name}: {field}",
            _q(self.measurement, f'  |> filter(fn: (r) => r._field == "{field}")'),
        )

    def _repr_html_(self) -> str:
        return (
            f"<b>Custom metric</b> <code>{html.escape(self.name)}</code> → measurement "
            f"<code>{self.measurement}</code><pre>{html.escape(self.sql)}</pre>"
        )
