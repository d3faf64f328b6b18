"""Preflight: check what the chosen mode needs and say what to fix."""

from __future__ import annotations

import html
import platform
import shutil
import subprocess
from dataclasses import dataclass, field

import psutil

from labkit.errors import LabkitError
from labkit.settings import Settings
from labkit.stack.provision import tools
from labkit.versions import JAVA_MAJOR


@dataclass
class Finding:
    check: str
    ok: bool
    detail: str
    fix: str = ""


@dataclass
class Report:
    mode: str
    findings: list[Finding] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return all(f.ok for f in self.findings)

    def __str__(self) -> str:
        lines = [f"labkit doctor ({self.mode} mode)"]
        for f in self.findings:
            lines.append(f"  [{'ok' if f.ok else 'FAIL'}] {f.check}: {f.detail}")
            if not f.ok and f.fix:
                lines.append(f"         fix: {f.fix}")
        lines.append("all checks passed" if self.ok else "some checks failed: fix them, then run `labkit doctor` again")
        return "\n".join(lines)

    def _repr_html_(self) -> str:
        rows = "".join(
            f"<tr><td>{'✅' if f.ok else '❌'}</td><td>{html.escape(f.check)}</td><td>{html.escape(f.detail)}</td>"
            f"<td>{html.escape(f.fix if not f.ok else '')}</td></tr>"
            for f in self.findings
        )
        return f"<b>labkit doctor ({self.mode})</b><table><tr><th></th><th>check</th><th>detail</th><th>fix</th></tr>{rows}</table>"


def _tool(report: Report, name: str, needed_for: str) -> None:
    path = shutil.which(name)
    t = tools.TOOLS[name]
    report.findings.append(
        Finding(f"{name}", path is not None, path or f"not found (needed {needed_for})", t.how_to_get)
    )


def run(settings: Settings) -> Report:
    from labkit.stack import provision

    r = Report(settings.mode)
    arch = platform.machine()
    r.findings.append(
        Finding(
            "CPU architecture",
            arch in ("x86_64", "amd64", "aarch64", "arm64"),
            arch,
            "the lab supports x86_64 and arm64",
        )
    )
    cpus = psutil.cpu_count() or 1
    r.findings.append(Finding("CPU cores", cpus >= 2, f"{cpus}", "give the machine at least 2 cores"))
    mem = psutil.virtual_memory().available / 2**30
    r.findings.append(
        Finding("free memory", mem >= 4, f"{mem:.1f} GiB available", "the stack needs ~3 GiB; close other programs")
    )
    if settings.mode == "local":
        settings.home.mkdir(parents=True, exist_ok=True)
        disk = shutil.disk_usage(settings.home).free / 2**30
        r.findings.append(
            Finding(
                "free disk",
                disk >= 5,
                f"{disk:.0f} GiB free at {settings.home}",
                "free space, or set LABKIT_HOME to a bigger disk",
            )
        )
        try:
            major = tools.java_major()
            r.findings.append(Finding("java", major >= JAVA_MAJOR, f"Java {major}", tools.TOOLS["java"].how_to_get))
        except LabkitError as e:
            r.findings.append(Finding("java", False, e.message, e.hint or ""))
        try:
            from labkit.stack.provision.flink import flink_home

            r.findings.append(Finding("PyFlink", True, str(flink_home())))
        except LabkitError as e:
            r.findings.append(Finding("PyFlink", False, e.message, e.hint or ""))
        if not provision.udf.is_provisioned():
            _tool(r, "javac", "to compile the lab's Java functions once")
        if not provision.influxdb.is_provisioned():
            for name in ("go", "cargo", "pkg-config", "cc"):
                _tool(r, name, "to build influxd once")
        else:
            r.findings.append(Finding("influxd", True, str(provision.influxdb.influxd_path())))
        if not provision.kafka.is_provisioned() or not provision.flink.is_provisioned():
            _tool(r, "mvn", "to fetch the Kafka and connector jars once")
        from labkit.stack import get
        from labkit.stack.local import port_holder

        stack = get(settings)
        running = {s.name for s in stack.status().services if s.state == "running"}
        for svc in stack.services:
            for setting, port in svc.ports().items():
                holder = None if svc.name in running else port_holder(settings.bind_host, port)
                r.findings.append(
                    Finding(
                        f"port {port} ({setting})",
                        holder is None,
                        "in use by labkit's " + svc.name
                        if svc.name in running
                        else (f"taken by {holder}" if holder else "free"),
                        f"stop {holder} or export {setting}=<free port>",
                    )
                )
    elif settings.mode == "docker":
        docker = shutil.which("docker")
        r.findings.append(
            Finding("docker", docker is not None, docker or "not found", "install Docker, or use LABKIT_MODE=local")
        )
        if docker:
            ok = subprocess.run(["docker", "info"], capture_output=True).returncode == 0
            r.findings.append(
                Finding(
                    "docker engine", ok, "running" if ok else "not reachable", "start Docker, or use LABKIT_MODE=local"
                )
            )
            ok = subprocess.run(["docker", "compose", "version"], capture_output=True).returncode == 0
            r.findings.append(
                Finding(
                    "docker compose",
                    ok,
                    "available" if ok else "plugin missing",
                    "install the Docker Compose v2 plugin",
                )
            )
    else:
        from labkit.stack import get

        for s in get(settings).status().services:
            r.findings.append(
                Finding(
                    s.name,
                    s.state == "external",
                    f"{s.address}: {s.detail}",
                    f"check the LABKIT_ settings for {s.name}",
                )
            )
    return r
