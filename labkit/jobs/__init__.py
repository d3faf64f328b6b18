"""Flink jobs: the clickstream pipeline, custom metrics, and job control."""

from __future__ import annotations

import pandas as pd

from labkit.console import say
from labkit.errors import RestoreError
from labkit.jobs import resume
from labkit.jobs.control import Flink, Job, root_cause, submit_spec
from labkit.jobs.sql import JobParams, pipeline_statements
from labkit.kafka_clients import java_properties
from labkit.settings import Settings
from labkit.settings import get as get_settings
from labkit.timing import WATERMARK_DELAY_S

PIPELINE = "clickstream-metrics"
TOKEN_ENV = "LABKIT_INFLUX_WRITE_TOKEN"


def _stack(settings: Settings):
    """The settings' stack, built once per settings object (labkit.context)."""
    from labkit import context

    return context.of(settings).stack


def base_spec(settings: Settings, name: str, parallelism: int | None = None) -> dict:
    """Config and InfluxDB sink of a job; addresses and the token file as the job sees them (the stack's)."""
    st = _stack(settings)  # one stack: building it reads the credentials, and job_side() writes the token file
    side = st.job_side()
    # An external cluster's TaskManagers run the job's Python with their own interpreter, unless told which
    # (one with apache-flink and the runner's packages; a session cluster shared by a workshop usually has one).
    python = {"python.executable": settings.flink_python_executable} if settings.flink_python_executable else {}
    parallelism = parallelism or settings.flink_parallelism
    # Flink's planner splits a window aggregation in two unless told otherwise: a local phase before the shuffle
    # (partial results per slice, buffered and flushed at each watermark) and a global one after it that merges
    # them. That pays when many subtasks feed a key across a network. Between two subtasks on one host, shipping
    # every row is cheaper than the local operator's buffering: one phase made the warm job 14% faster at
    # parallelism 2 (docs/benchmarks.md, session 21). Decided by the lab's parallelism, not this job's, so a job
    # rescaled from a savepoint (notebook 08's drill) keeps its operators and its state maps onto them; labs set
    # wider (LABKIT_FLINK_PARALLELISM > 2) keep the split. Group aggregations are split only with mini-batch,
    # which the lab does not enable, so this changes nothing for them.
    phases = {"table.optimizer.agg-phase-strategy": "ONE_PHASE"} if settings.flink_parallelism <= 2 else {}
    return {
        "config": {
            **python,
            **phases,
            "pipeline.name": settings.scoped(name),  # an attendee's jobs carry their namespace
            "parallelism.default": parallelism,
            "table.local-time-zone": "UTC",
            # Small Python bundles, for a job with a Python UDF (the lab's own jobs run none in the TaskManagers).
            "python.fn-execution.bundle.time": 100,
            "python.fn-execution.bundle.size": 1000,
            "python.fn-execution.arrow.batch.size": 1000,
            "pipeline.auto-watermark-interval": "20 ms",  # small: a window fires soon after its last event
            "pipeline.object-reuse": "true",  # SQL operators are safe with it; saves a copy per branch
            # The updating counts (`arrivals`, `dlq_events`: GROUP BY win_end) and the on-time filter's newest
            # time per partition keep a row per key forever by default, so a job that runs for weeks grows without
            # bound. A key idle for 8 days is dropped: longer than the 7 days an event may be old (ParseClick's
            # MAX_PAST_MS), so every window an accepted event can still reach keeps its count (a dropped one would
            # restart at 1 and overwrite its point). Window aggregates clean up when they fire anyway.
            "table.exec.state.ttl": "8 d",
            # Recovery travels with the job, so it holds on any cluster (external ones included).
            # Exponential delay, as Flink itself defaults to with checkpointing: it waits for resources as
            # long as an outage lasts (a TaskManager down for minutes, a laptop asleep) instead of giving up
            # after a fixed number of attempts; the delay resets after 5 minutes of running.
            "restart-strategy.type": "exponential-delay",
            "restart-strategy.exponential-delay.initial-backoff": "1 s",
            "restart-strategy.exponential-delay.max-backoff": "20 s",
            "restart-strategy.exponential-delay.backoff-multiplier": "2.0",
            "restart-strategy.exponential-delay.reset-backoff-threshold": "5 min",
            "restart-strategy.exponential-delay.jitter-factor": "0.1",
            "restart-strategy.exponential-delay.attempts-before-reset-backoff": "2147483647",
            "execution.checkpointing.interval": "10 s",
            "execution.checkpointing.mode": "EXACTLY_ONCE",
            "execution.checkpointing.externalized-checkpoint-retention": "RETAIN_ON_CANCELLATION",
            # An InfluxDB outage blocks the sink, so checkpoints time out meanwhile: that must delay the
            # job, never fail it.
            "execution.checkpointing.timeout": "2 min",
            "execution.checkpointing.tolerable-failed-checkpoints": "2147483647",
        },
        "influx": {
            "url": side.influx_url,
            "org": st.settings.influx_org,
            "bucket": st.settings.influx_bucket,
            "token_file": side.token_file,
            "token_env": TOKEN_ENV,
        },
    }


def pipeline_name(settings: Settings, topic: str | None = None) -> str:
    """The clickstream job's name for `topic`: the lab's topic has the plain name, scratch topics their own."""
    topic = settings.scoped(topic or settings.topic)
    return settings.scoped(PIPELINE if topic == settings.topic else f"{PIPELINE}-{topic}")


def pipeline_params(
    settings: Settings,
    *,
    topic: str | None = None,
    group_id: str | None = None,
    from_earliest: bool = False,
    watermark_delay_s: int = WATERMARK_DELAY_S,
) -> JobParams:
    topic = settings.scoped(topic or settings.topic)
    return JobParams(
        bootstrap=_stack(settings).job_side().kafka,
        kafka_properties=tuple(java_properties(settings).items()),
        topic=topic,
        dlq_topic=settings.dlq_topic_for(topic),
        group_id=settings.scoped(group_id) if group_id else settings.pipeline_group(topic),
        startup="earliest-offset" if from_earliest else "group-offsets",
        watermark_delay_s=watermark_delay_s,
    )


def pipeline_spec(
    settings: Settings,
    *,
    topic: str | None = None,
    group_id: str | None = None,
    from_earliest: bool = False,
    parallelism: int | None = None,
    name: str | None = None,
) -> tuple[dict, JobParams]:
    """The clickstream job's spec as it will be submitted, in any mode (pure: nothing is started)."""
    params = pipeline_params(settings, topic=topic, group_id=group_id, from_earliest=from_earliest)
    ddl, inserts = pipeline_statements(params)
    job_name = name or pipeline_name(settings, params.topic)
    spec = base_spec(settings, job_name, parallelism)
    spec.update(ddl=ddl, inserts=inserts)
    return spec, params


def submit_pipeline(
    settings: Settings | None = None,
    *,
    topic: str | None = None,
    group_id: str | None = None,
    from_earliest: bool = False,
    savepoint: str | None = None,
    parallelism: int | None = None,
    wait: bool = True,
    name: str | None = None,
    fresh: bool = False,
) -> Job:
    """Submit the clickstream metrics job; returns when its tasks run (unless `wait=False`).

    By default it resumes from the pipeline's latest retained checkpoint or savepoint (state and offsets
    together). `fresh=True` starts from the consumer group's committed offsets with empty state instead:
    windows that were open at the last stop then get a partial count. `from_earliest` reads the whole topic."""
    settings = settings or get_settings()
    spec, params = pipeline_spec(
        settings, topic=topic, group_id=group_id, from_earliest=from_earliest, parallelism=parallelism, name=name
    )
    job_name = spec["config"]["pipeline.name"]
    from labkit.stack.kafka import ensure_topics

    st = _stack(settings)
    ensure_topics(
        st.get_bootstrap_server(),
        settings.model_copy(update={"topic": params.topic, "dlq_topic": params.dlq_topic}),
    )
    automatic = False
    if savepoint is None and not fresh and not from_earliest:
        point = resume.latest(settings, job_name)
        if point:
            savepoint, automatic = point[0], True
            say(f"resuming {job_name} from {savepoint}")
    elif fresh and resume.latest(settings, job_name):
        say(
            f"starting {job_name} fresh from the committed offsets: windows open at its last completed checkpoint "
            "will be counted partially (resume instead: submit without fresh)"
        )
    try:
        job = submit_spec(spec, settings, st.mode, savepoint=savepoint)
    except RestoreError as e:
        if not automatic:
            raise  # the user named this savepoint: they decide what to do instead
        # The restore point labkit picked cannot be used: its files are gone (a wiped cluster), or the job's SQL
        # changed since (exploring new metrics does that), so its state maps onto no operator. Resubmitting would
        # fail the same way every time: forget it and start from the committed offsets, and say what that costs.
        say(
            f"{e.message} Starting {job_name} fresh from the committed offsets instead: windows that were open "
            "when it last stopped will be counted partially."
        )
        resume.forget(settings, job_name)
        job = submit_spec(spec, settings, st.mode)
    resume.record_job(settings, job_name, job.id)
    return job.wait_running() if wait else job


def pipeline_status(settings: Settings | None = None, name: str = PIPELINE) -> str:
    """One line on the pipeline: its state, its last completed checkpoint, and where a resubmission resumes."""
    settings = settings or get_settings()
    name = settings.scoped(name)
    job = running(name, settings)
    point = resume.latest(settings, name)
    resume_from = (
        f"resumes from {point[0]}" if point else "no checkpoint yet: a submission starts from committed offsets"
    )
    if job is None:
        return f"pipeline {name}: not running; {resume_from}"
    latest = (job.checkpoints().get("latest", {}) or {}).get("completed") or {}
    when = pd.to_datetime(latest.get("latest_ack_timestamp", 0), unit="ms", utc=True) if latest else None
    cp = f"last checkpoint #{latest.get('id')} at {when:%H:%M:%S}" if latest else "no completed checkpoint yet"
    line = f"pipeline {name}: {job.state} (job {job.id}); {cp}; restarts {job.restarts()}"
    return line + refusals(settings)


def refusals(settings: Settings, start: str = "-1h") -> str:
    """A line on the points InfluxDB refused in the last hour (the sink records them and goes on), or ""."""
    from labkit.errors import ServiceError
    from labkit.influx import Influx

    try:
        with Influx(settings) as db:
            rec = db.flux(
                f'from(bucket: "{settings.influx_bucket}") |> range(start: {start}) '
                '|> filter(fn: (r) => r._measurement == "sink_rejections" and r._field == "points") '
                '|> group(columns: ["measurement"]) |> sum()'
            )
    except ServiceError:
        return ""
    if rec.empty:
        return ""
    parts = ", ".join(f"{int(n):,} of {m}" for m, n in zip(rec["measurement"], rec["_value"], strict=False))
    return (
        f"\nInfluxDB refused points in the last hour ({parts}): "
        f"`labkit query sink_rejections --start {start} --topic TOPIC` shows why"
    )


def list_jobs(settings: Settings | None = None) -> pd.DataFrame:
    """Jobs on the cluster, newest first (in a workshop namespace: only this attendee's)."""
    settings = settings or get_settings()
    mine = settings.scoped("")
    rows = [
        {
            "id": j["jid"],
            "name": j["name"],
            "state": j["state"],
            "started": pd.to_datetime(j["start-time"], unit="ms", utc=True),
            "duration_s": round(j["duration"] / 1000, 1),
        }
        for j in Flink(settings.flink).jobs()
        if j["name"].startswith(mine)
    ]
    return pd.DataFrame(rows, columns=["id", "name", "state", "started", "duration_s"])


def get_job(job_id: str, settings: Settings | None = None) -> Job:
    settings = settings or get_settings()
    f = Flink(settings.flink)
    return Job(job_id, f.job(job_id)["name"], f, settings)


def running(name: str = PIPELINE, settings: Settings | None = None) -> Job | None:
    """The running job called `name`, if any."""
    settings = settings or get_settings()
    f = Flink(settings.flink)
    name = settings.scoped(name)
    for j in f.jobs():
        if j["name"] == name and j["state"] in ("RUNNING", "CREATED", "RESTARTING", "INITIALIZING"):
            return Job(j["jid"], j["name"], f, settings)
    return None


__all__ = ["Job", "get_job", "list_jobs", "root_cause", "running", "submit_pipeline"]
