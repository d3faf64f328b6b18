"""The `labkit` command: a thin mapping of commands to library calls."""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any

import typer

from labkit import settings as settings_mod
from labkit.errors import LabkitError

app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    help="Clickstream Lab: run and explore the stack.",
)
state: dict[str, str | None] = {"mode": None}

ModeOpt = Annotated[str | None, typer.Option("--mode", help="local | docker | external (default: LABKIT_MODE)")]


def _stack(mode: str | None = None):
    """This call's stack, from its context (labkit.context): the settings, with a command's own --mode."""
    from labkit import context

    mode = mode or state["mode"]
    if mode is not None and mode not in ("local", "docker", "external"):
        raise LabkitError(f"--mode {mode!r} is not a mode.", "use --mode local, --mode docker or --mode external")
    settings = settings_mod.get()
    if mode is not None and mode != settings.mode:
        settings = settings.model_copy(update={"mode": mode})
    return context.of(settings).stack


@app.callback()
def main(mode: ModeOpt = None) -> None:
    state["mode"] = mode
    if mode is not None:
        # every command, not only the stack's, reads the mode from the settings: `labkit --mode docker submit`
        # must submit to the docker stack, so the option becomes the setting for this call
        if mode not in ("local", "docker", "external"):
            raise LabkitError(f"--mode {mode!r} is not a mode.", "use --mode local, --mode docker or --mode external")
        os.environ["LABKIT_MODE"] = mode
        settings_mod.get.cache_clear()


@app.command()
def provision() -> None:
    """Fetch/build Kafka, the Flink connector and influxd into the cache (also done by `up`)."""
    from labkit.stack.provision import provision_all

    provision_all()


@app.command()
def up(mode: ModeOpt = None, timeout: float = 180) -> None:
    """Start the stack and wait until every service is ready."""
    st = _stack(mode).up(timeout=timeout)
    typer.echo(st)


@app.command()
def down(mode: ModeOpt = None, wipe: Annotated[bool, typer.Option(help="also delete all data")] = False) -> None:
    """Stop the processes labkit started (data is kept unless --wipe)."""
    typer.echo(_stack(mode).down(wipe=wipe))


@app.command()
def status(mode: ModeOpt = None) -> None:
    """Each service's state, address and pid; the pipeline's state and its last checkpoint."""
    st = _stack(mode).status()
    typer.echo(st)
    if st.all_running:
        from labkit import jobs

        typer.echo(jobs.pipeline_status())


@app.command()
def logs(service: str, lines: Annotated[int, typer.Option("-n", "--lines")] = 50, mode: ModeOpt = None) -> None:
    """The tail of a service's log (kafka, jobmanager, taskmanager, influxdb)."""
    typer.echo(_stack(mode).logs(service, lines))


@app.command()
def doctor(
    mode: ModeOpt = None,
    pipeline: Annotated[
        bool, typer.Option("--pipeline", help="walk a topic's recent traffic through the running pipeline")
    ] = False,
    topic: Annotated[str | None, typer.Option(help="with --pipeline: the topic (default: the lab's)")] = None,
    minutes: Annotated[int, typer.Option(help="with --pipeline: the time range, as a panel's (minutes)")] = 15,
    shown_stream: Annotated[
        str | None, typer.Option(help="with --pipeline: the stream the dashboard's box shows (default: the topic)")
    ] = None,
) -> None:
    """Preflight: tools, versions, ports, memory, disk, CPU. With --pipeline, after the stack is up: where did
    the events stop? (producer, event time, job, reading, watermark, InfluxDB, counted, windows, panel)"""
    s = settings_mod.get()
    s = s.model_copy(update={"mode": mode or state["mode"] or s.mode})
    if pipeline:
        from labkit.pipeline_doctor import diagnose

        d = diagnose(topic, minutes, s, shown_stream=shown_stream)
        typer.echo(d)
        if s.mode == "docker":
            typer.echo(
                "Grafana's datasource: open Connections > Data sources > InfluxDB > Test (its token is the read "
                "token; the panel link above ran the panel's own query with that bucket)"
            )
        raise typer.Exit(0 if d.ok else 1)
    from labkit import doctor as doctor_mod

    report = doctor_mod.run(s)
    typer.echo(report)
    raise typer.Exit(0 if report.ok else 1)


@app.command()
def produce(
    count: Annotated[int | None, typer.Option("--count", "-n", help="events to send (default: unbounded)")] = None,
    duration: Annotated[float | None, typer.Option(help="stop after this many seconds")] = None,
    rate: Annotated[float | None, typer.Option(help="events per second (default: full speed)")] = None,
    seed: int = 42,
    scenario: Annotated[
        str | None, typer.Option(help="incident | not_found_storm | latency_regression | bot_burst")
    ] = None,
    late: Annotated[float, typer.Option(help="fraction of late (out-of-order) events")] = 0.0,
    malformed: Annotated[float, typer.Option(help="fraction of malformed events")] = 0.0,
    topic: str | None = None,
    close_windows: Annotated[bool, typer.Option(help="send end markers so the last windows fire")] = False,
    engine: Annotated[str, typer.Option(help="kafka-python | confluent")] = "kafka-python",
) -> None:
    """Send clickstream events to Kafka and print the summary."""
    from labkit.produce import produce as produce_

    summary = produce_(
        count,
        duration=duration,
        rate=rate,
        seed=seed,
        scenario=scenario,
        late_fraction=late,
        malformed_fraction=malformed,
        topic=topic,
        close_windows=close_windows,
        engine=engine,
    )
    typer.echo(summary)


MASK = "***"


def masked_spec(settings: settings_mod.Settings, build: Callable[[settings_mod.Settings], dict]) -> dict:
    """The spec `build` makes from `settings`, with every secret shown as MASK.

    Built from a copy of the settings whose SASL password *is* MASK, so the password never enters the spec,
    however the Kafka properties quote and the SQL escapes it (password="..." inside '...'). Then, in case
    a secret reaches the spec some other way, every string is searched for each secret's raw value."""
    from pydantic import SecretStr

    from labkit.kafka_clients import sasl_password

    tokens = (settings.influx_token, settings.influx_write_token, settings.influx_read_token)
    raw = [sasl_password(settings), *(settings_mod.reveal(t) for t in tokens)]
    secrets = sorted({x for x in raw if x}, key=len, reverse=True)  # longest first: no partial leftovers
    if settings.kafka_sasl_password is not None or settings.kafka_sasl_password_file is not None:
        settings = settings.model_copy(
            update={"kafka_sasl_password": SecretStr(MASK), "kafka_sasl_password_file": None}
        )
    return _redact(build(settings), secrets)


def _redact(value: Any, secrets: list[str]) -> Any:
    if isinstance(value, str):
        for secret in secrets:
            value = value.replace(secret, MASK)
        return value
    if isinstance(value, dict):
        return {k: _redact(v, secrets) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_redact(v, secrets) for v in value]
    return value


@app.command()
def submit(
    topic: str | None = None,
    from_earliest: Annotated[bool, typer.Option(help="read the topic from its first offset")] = False,
    savepoint: Annotated[str | None, typer.Option(help="resume from this savepoint")] = None,
    parallelism: int | None = None,
    fresh: Annotated[
        bool,
        typer.Option(help="start from the committed offsets with empty state (open windows get partial counts)"),
    ] = False,
    print_spec: Annotated[
        bool,
        typer.Option(
            help="print the job's spec (runner.py's input) instead of submitting, secrets shown as ***: for docs/k8s"
        ),
    ] = False,
    spec_file: Annotated[
        Path | None,
        typer.Option(
            help="write the job's spec, secrets included, to this file instead of submitting "
            "(mode 0600; a symlink there is refused)",
        ),
    ] = None,
) -> None:
    """Submit the clickstream metrics job; by default it resumes from its latest checkpoint or savepoint."""
    from labkit import jobs

    if print_spec or spec_file is not None:
        import json

        s = settings_mod.get()

        def spec_of(settings: settings_mod.Settings) -> dict:
            return jobs.pipeline_spec(settings, topic=topic, from_earliest=from_earliest, parallelism=parallelism)[0]

        if spec_file is not None:
            # The real thing, for `flink run ... --spec`: it must hold the password, so only its owner may read it.
            from labkit.credentials import write_secret

            write_secret(spec_file, json.dumps(spec_of(s), indent=1) + "\n")
            typer.echo(f"wrote the job's spec, secrets included, to {spec_file} (mode 0600)", err=True)
        if print_spec:
            # Printed specs end up in terminals, CI logs and docs: every secret is shown as MASK.
            typer.echo(json.dumps(masked_spec(s, spec_of), indent=1))
        return
    job = jobs.submit_pipeline(
        topic=topic, from_earliest=from_earliest, savepoint=savepoint, parallelism=parallelism, fresh=fresh
    )
    typer.echo(f"job {job.name} {job.id} is {job.state}; Flink UI: {job.flink.url}/#/job/running/{job.id}/overview")


@app.command("jobs")
def jobs_cmd() -> None:
    """Jobs on the Flink cluster, newest first."""
    from labkit import jobs

    df = jobs.list_jobs()
    typer.echo(df.to_string(index=False) if not df.empty else "no jobs")


@app.command()
def cancel(job_id: str) -> None:
    """Cancel a job (no savepoint)."""
    from labkit import jobs

    jobs.get_job(job_id).cancel()
    typer.echo(f"cancelled {job_id}")


@app.command()
def stop(job_id: str) -> None:
    """Stop a job with a savepoint and print where it is (resume with `labkit submit --savepoint`)."""
    from labkit import jobs

    typer.echo(jobs.get_job(job_id).stop())


@app.command()
def query(
    measurement: Annotated[
        str,
        typer.Argument(
            help="http_counts | error_rate | active_users | url_counts | latency | late_events | dlq_events"
        ),
    ],
    start: str = "-15m",
    topic: str | None = None,
    flux: Annotated[bool, typer.Option(help="print the Flux query instead of running it")] = False,
) -> None:
    """Query a metric from InfluxDB and print it as a table."""
    from labkit.influx import MEASUREMENTS, Influx, Query

    if measurement not in MEASUREMENTS:
        raise LabkitError(f"unknown measurement {measurement!r}.", f"use one of: {', '.join(MEASUREMENTS)}")
    s = settings_mod.get()
    if flux:
        typer.echo(Query(measurement, start, where=(("stream", topic or s.topic),), bucket=s.influx_bucket).flux())
        return
    with Influx(s) as db:
        df = db.query(measurement, start=start, stream=topic)
    typer.echo(df.to_string(index=False) if not df.empty else f"no {measurement} points since {start}")


@app.command()
def verify(
    topic: str | None = None,
    wait: Annotated[float, typer.Option(help="seconds to wait for windows still in flight")] = 60,
) -> None:
    """Account for every event of the last producer run: lost, double counted, dead-lettered, late."""
    from labkit.verify import verify as verify_

    acc = verify_(topic=topic, wait_s=wait)
    typer.echo(acc)
    raise typer.Exit(0 if acc.exact else 1)


@app.command()
def demo(
    count: Annotated[int, typer.Option("--count", "-n")] = 50_000,
    seed: int = 42,
) -> None:
    """Everything at once: stack up, job submitted, a short bounded run, accounting, where to look next."""
    from labkit.demo import run_demo

    raise typer.Exit(run_demo(count=count, seed=seed))


@app.command()
def bench(quick: Annotated[bool, typer.Option(help="smaller runs (~5 min)")] = False) -> None:
    """Benchmarks on the local stack; prints numbers and writes build/bench.json."""
    from labkit.bench import run as run_bench

    run_bench(quick=quick)


taskmanager_app = typer.Typer(no_args_is_help=True, help="More task slots: add or remove a TaskManager.")
app.add_typer(taskmanager_app, name="taskmanager")


@taskmanager_app.command("add")
def taskmanager_add(mode: ModeOpt = None) -> None:
    """Start one more TaskManager (local: a process; docker: compose --scale), as adding a machine would."""
    name = _stack(mode).add_taskmanager()
    typer.echo(f"added {name}")


@taskmanager_app.command("remove")
def taskmanager_remove(name: Annotated[str | None, typer.Argument()] = None, mode: ModeOpt = None) -> None:
    """Stop an added TaskManager (the newest by default); its tasks fail over like a lost machine's."""
    typer.echo(f"removed {_stack(mode).remove_taskmanager(name)}")


@taskmanager_app.command("list")
def taskmanager_list(mode: ModeOpt = None) -> None:
    typer.echo("\n".join(_stack(mode).taskmanagers()) or "no TaskManager running")


workshop_app = typer.Typer(no_args_is_help=True, help="One shared cluster for a workshop: attendees' namespaces.")
app.add_typer(workshop_app, name="workshop")


@workshop_app.command("create")
def workshop_create(
    n: Annotated[int, typer.Argument(help="how many attendees")],
    out: Annotated[
        Path | None,
        typer.Option(
            # parentheses, not brackets: rich would take "[...]" for markup and drop it
            help="folder for the attendees' settings files, 0600 as they hold passwords and tokens "
            "(default: LABKIT_HOME/workshop/attendees, outside the repository so they cannot be committed)"
        ),
    ] = None,
    token_dir: Annotated[
        Path | None, typer.Option(help="folder the TaskManagers see at the same path (default: OUT/tokens)")
    ] = None,
    first: Annotated[int, typer.Option(help="number of the first attendee (add more later)")] = 1,
    parallelism: Annotated[int, typer.Option(help="task slots each attendee's pipeline takes")] = 1,
    producer_bytes: Annotated[
        int | None, typer.Option(help="Kafka produce quota per attendee, bytes/s [default: 4 MB/s]")
    ] = None,
    consumer_bytes: Annotated[
        int | None, typer.Option(help="Kafka fetch quota per attendee, bytes/s [default: 8 MB/s]")
    ] = None,
    own_flink: Annotated[
        bool,
        typer.Option(
            help="a Flink session cluster per attendee, run as a Unix user of their own on an address only they "
            "may reach (root only; see labkit/workshop_flink.py). Off: attendees share the Flink of the settings"
        ),
    ] = False,
    flink_root: Annotated[
        Path | None, typer.Option(help="folder of the attendees' own clusters (default: LABKIT_HOME/workshop/flink)")
    ] = None,
    flink_slots: Annotated[int, typer.Option(help="task slots of each attendee's own cluster")] = 2,
    controller_mutations: Annotated[
        float | None,
        typer.Option(
            help="partitions each attendee may create or delete per second, Kafka's controller_mutation_rate "
            "(default: 10)"
        ),
    ] = None,
) -> None:
    """Create attendees a01..aNN: Kafka user, prefix ACLs and quotas, topics, bucket, tokens, settings file.

    The settings files (and, unless --token-dir, the write-token files) go to LABKIT_HOME/workshop/attendees
    unless --out names another folder: they hold passwords and tokens, so keep them out of any repository."""
    from labkit import workshop

    made = workshop.create(
        n,
        out_dir=out,
        token_dir=token_dir,
        first=first,
        parallelism=parallelism,
        producer_bytes_per_s=producer_bytes or workshop.PRODUCER_BYTES_PER_S,
        consumer_bytes_per_s=consumer_bytes or workshop.CONSUMER_BYTES_PER_S,
        own_flink=own_flink,
        flink_root=flink_root,
        flink_slots=flink_slots,
        controller_mutations_per_s=controller_mutations or workshop.CONTROLLER_MUTATIONS_PER_S,
    )
    for a in made:
        typer.echo(f"{a.name}: {a.settings_file} (Kafka user {a.kafka_user}, bucket {a.bucket})")


@workshop_app.command("status")
def workshop_status() -> None:
    """Each attendee's Flink jobs and pipeline lag."""
    from labkit import workshop

    df = workshop.status()
    typer.echo(df.to_string(index=False) if not df.empty else "no attendees")


@workshop_app.command("teardown")
def workshop_teardown(
    names: Annotated[list[str] | None, typer.Argument(help="attendees to remove (default: all)")] = None,
) -> None:
    """Remove attendees: jobs, topics, groups, ACLs, quotas, user, bucket, tokens and settings files."""
    from labkit import workshop

    gone = workshop.teardown(names=names or None)
    typer.echo(f"removed {', '.join(gone)}" if gone else "no attendees to remove")


def run() -> None:
    """Entry point: a LabkitError becomes one sentence and a fix, exit code 2, never a traceback."""
    try:
        # without standalone mode, click returns a command's exit code (typer.Exit) instead of exiting
        code = app(standalone_mode=False)
        if isinstance(code, int) and code:
            sys.exit(code)
    except LabkitError as e:
        typer.secho(f"error: {e.message}", err=True, fg="red")
        if e.hint:
            typer.echo(f"  fix: {e.hint}", err=True)
        sys.exit(2)
    except typer.Exit as e:
        sys.exit(e.exit_code)
    except (typer.Abort, KeyboardInterrupt):
        typer.echo("aborted", err=True)
        sys.exit(130)
    except Exception as e:
        # click's usage errors (typer vendors click, so match by behaviour, not by class)
        if hasattr(e, "show") and hasattr(e, "exit_code"):
            e.show()
            sys.exit(e.exit_code)
        raise


if __name__ == "__main__":
    run()
