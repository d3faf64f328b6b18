"""The `labkit` command: a thin mapping of commands to library calls."""

from __future__ import annotations

import sys
from typing import Annotated, Optional

import typer

from labkit import settings as settings_mod
from labkit.errors import LabkitError

app = typer.Typer(add_completion=False, no_args_is_help=True, help="Clickstream Lab: run and explore the stack.")
state: dict[str, str | None] = {"mode": None}

ModeOpt = Annotated[Optional[str], typer.Option("--mode", help="local | docker | external (default: LABKIT_MODE)")]


def _stack(mode: str | None = None):
    from labkit import stack

    mode = mode or state["mode"]
    if mode is not None and mode not in ("local", "docker", "external"):
        raise LabkitError(f"--mode {mode!r} is not a mode.", "use --mode local, --mode docker or --mode external")
    return stack.get(settings_mod.get(), mode)


@app.callback()
def main(mode: ModeOpt = None) -> None:
    state["mode"] = mode


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
    """Each service's state, address and pid."""
    typer.echo(_stack(mode).status())


@app.command()
def logs(service: str, lines: Annotated[int, typer.Option("-n", "--lines")] = 50, mode: ModeOpt = None) -> None:
    """The tail of a service's log (kafka, jobmanager, taskmanager, influxdb)."""
    typer.echo(_stack(mode).logs(service, lines))


@app.command()
def doctor(mode: ModeOpt = None) -> None:
    """Preflight: tools, versions, ports, memory, disk, CPU."""
    from labkit import doctor as doctor_mod

    s = settings_mod.get()
    report = doctor_mod.run(s.model_copy(update={"mode": mode or state["mode"] or s.mode}))
    typer.echo(report)
    raise typer.Exit(0 if report.ok else 1)


def run() -> None:
    """Entry point: a LabkitError becomes one sentence and a fix, exit code 2, never a traceback."""
    try:
        app(standalone_mode=False)
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
        import click

        if isinstance(e, click.ClickException):
            e.show()
            sys.exit(e.exit_code)
        raise


if __name__ == "__main__":
    run()
