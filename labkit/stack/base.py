"""The Stack interface every backend implements, and the status objects users look at."""

from __future__ import annotations

import contextlib
import html
import subprocess
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable

from labkit.settings import Settings


@dataclass
class ServiceStatus:
    name: str
    state: str  # running | stopped | crashed | starting | external | unreachable
    address: str = ""
    pid: int | None = None
    detail: str = ""


@dataclass
class StackStatus:
    mode: str
    services: list[ServiceStatus] = field(default_factory=list)

    @property
    def all_running(self) -> bool:
        return all(s.state in ("running", "external") for s in self.services)

    def __getitem__(self, name: str) -> ServiceStatus:
        return next(s for s in self.services if s.name == name)

    def rows(self) -> list[tuple[str, str, str, str, str]]:
        return [(s.name, s.state, s.address, str(s.pid or ""), s.detail) for s in self.services]

    def __str__(self) -> str:
        head = ("service", "state", "address", "pid", "detail")
        rows = [head, *self.rows()]
        widths = [max(len(r[i]) for r in rows) for i in range(len(head))]
        lines = ["  ".join(c.ljust(w) for c, w in zip(r, widths, strict=False)).rstrip() for r in rows]
        return f"{self.mode} stack\n" + "\n".join(lines)

    def _repr_html_(self) -> str:
        colors = {"running": "#2e7d32", "external": "#1565c0", "crashed": "#c62828", "stopped": "#757575"}
        body = "".join(
            "<tr>"
            + "".join(
                f'<td style="color:{colors.get(s.state, "#ef6c00")};font-weight:bold">{html.escape(c)}</td>'
                if i == 1
                else f"<td>{html.escape(c)}</td>"
                for i, c in enumerate(row)
            )
            + "</tr>"
            for s, row in zip(self.services, self.rows(), strict=False)
        )
        head = "".join(f"<th>{h}</th>" for h in ("service", "state", "address", "pid", "detail"))
        return (
            f"<b>{html.escape(self.mode)} stack</b><table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"
        )


@dataclass(frozen=True)
class JobSide:
    """Where the Flink job (running on the cluster, maybe in a container) finds the other services: not
    always where the host finds them (docker: kafka:19092, not 127.0.0.1:9092)."""

    kafka: str
    influx_url: str
    token_file: str  # the write-only InfluxDB token, a path on the TaskManagers ("" = their environment)


class Stack(ABC):
    """Start, stop and inspect Kafka, Flink and InfluxDB; usable as a context manager.

    `with labkit.stack.get() as stack:` brings the stack up and, on exit, stops it only if this
    block started it, so a notebook never tears down a stack somebody else is using.
    """

    mode: str = "abstract"

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._started_here = False

    @abstractmethod
    def up(self, *, timeout: float = 120) -> StackStatus:
        """Start what is not running, wait until every service is ready, return the status."""

    @abstractmethod
    def down(self, *, wipe: bool = False) -> StackStatus:
        """Stop what this backend started; keep data unless `wipe`."""

    @abstractmethod
    def status(self) -> StackStatus: ...

    @abstractmethod
    def logs(self, service: str, lines: int = 50) -> str: ...

    @abstractmethod
    def influx_token(self, role: str = "admin") -> str:
        """InfluxDB's `admin`, `write` (the job's) or `read` token, as this backend keeps it."""

    def secrets(self) -> list[str]:
        """Every secret value this backend knows (tokens, passwords), for scans that must never find one in
        what the lab shows: executed notebooks, logs, specs printed without --spec-file. A role whose token
        cannot be read right now (InfluxDB not onboarded yet) is left out rather than failing the scan."""
        from labkit.errors import LabkitError
        from labkit.settings import reveal

        found = []
        for role in ("admin", "write", "read"):
            with contextlib.suppress(LabkitError, OSError, KeyError, subprocess.SubprocessError):
                found.append(self.influx_token(role))
        s = self.settings
        found += [reveal(x) for x in (s.influx_token, s.influx_write_token, s.influx_read_token, s.kafka_sasl_password)]
        return sorted({x for x in found if x and len(x) >= 8})  # a short value would match ordinary text

    # ---- addresses: the stack owns them; callers never work them out themselves -------------------------
    def get_bootstrap_server(self) -> str:
        """Kafka, as seen from this machine (producer, notebooks, queries)."""
        return self.settings.kafka

    def get_influx_url(self) -> str:
        return self.settings.influx

    def get_flink_url(self) -> str:
        return self.settings.flink

    def job_side(self) -> JobSide:
        """Kafka, InfluxDB and the token file as the Flink job sees them."""
        s = self.settings
        return JobSide(s.kafka_for_flink, s.influx_for_flink, s.flink_influx_token_file or "")

    def is_up(self) -> bool:
        return self.status().all_running

    # ---- capacity: more task slots, as adding a machine would give -------------------------------------
    def taskmanagers(self) -> list[str]:
        """The running TaskManagers' names."""
        return []

    def add_taskmanager(self, timeout: float = 120) -> str:
        """Start one more TaskManager and wait until the JobManager has registered it; returns its name."""
        from labkit.errors import LabkitError

        raise LabkitError(
            f"labkit cannot add a TaskManager in {self.mode} mode.",
            "ask whoever runs the Flink cluster for more TaskManagers (or task slots)",
        )

    def remove_taskmanager(self, name: str | None = None) -> str:
        """Stop a TaskManager that `add_taskmanager` started (the newest if `name` is None)."""
        from labkit.errors import LabkitError

        raise LabkitError(f"labkit cannot remove a TaskManager in {self.mode} mode.", "ask whoever runs the cluster")

    def __enter__(self) -> Stack:
        if not self.is_up():
            self.up()
            self._started_here = True
        return self

    def __exit__(self, *exc: object) -> None:
        if self._started_here:
            self.down()
            self._started_here = False


@runtime_checkable
class Operable(Protocol):
    """A stack whose services labkit runs itself (a process locally, a container in docker mode), so it can take
    one down and bring it back: what fault drills need. Callers ask `isinstance(stack, Operable)`, never the mode:
    an external cluster's services belong to its operators."""

    def pid(self, service: str) -> int | None: ...

    def take_down(self, service: str, how: str) -> None: ...

    def bring_back(self, service: str) -> None: ...

    def host_ports(self, service: str) -> list[int]: ...
