"""The docker backend: the compose/ stack driven through `docker compose`, same readiness checks as local."""

from __future__ import annotations

import functools
import os
import re
import shutil
import subprocess
import time
from pathlib import Path

import httpx
from dotenv import dotenv_values

from labkit.errors import LabkitError, MissingToolError
from labkit.paths import COMPOSE_DIR
from labkit.stack.base import ServiceStatus, Stack, StackStatus
from labkit.stack.readiness import FlinkSlots, HttpOk, InfluxBucket, KafkaMetadata
from labkit.tls import tls

SERVICES = {
    "kafka": "kafka",
    "jobmanager": "jobmanager",
    "taskmanager": "taskmanager",
    "influxdb": "influxdb",
    "grafana": "grafana",
}


TOKEN_TTL_S = 60.0
_TOKENS: dict[tuple[str, str], tuple[str, float]] = {}  # (admin token, role) -> (token, read at)


class DockerStack(Stack):
    mode = "docker"

    def _compose(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        self._require_engine()
        ensure_env_file()
        r = subprocess.run(
            ["docker", "compose", *self._files(), *args],
            capture_output=True,
            text=True,
            check=False,
            env={**os.environ, **self._ports()},
        )
        if check and r.returncode != 0:
            # compose prints progress lines on stderr too: lead with the ones that say what went wrong
            lines = r.stderr.strip().splitlines()
            key = [ln for ln in lines if re.search(r"error|exited \(|unhealthy|failed|denied", ln, re.I)]
            raise LabkitError(
                f"docker compose {' '.join(args)} failed: " + "\n".join((key or lines)[-10:]),
                "see `docker compose ps -a` and `labkit logs SERVICE --mode docker`",
            )
        return r

    @functools.cached_property
    def _engine(self) -> str:
        """The engine's version, checked once per stack object (every compose call needs it running)."""
        if shutil.which("docker") is None:
            raise MissingToolError(
                "Docker is not installed, so the docker mode cannot run.",
                "install Docker Desktop or Docker Engine with the compose plugin, or use the local mode: "
                "labkit up --mode local",
            )
        info = subprocess.run(["docker", "info", "--format", "{{.ServerVersion}}"], capture_output=True, text=True)
        if info.returncode != 0:
            raise MissingToolError(
                "Docker is installed but its engine is not running (docker info failed).",
                "start Docker, or use the local mode: labkit up --mode local",
            )
        return info.stdout.strip()

    def _require_engine(self) -> None:
        _ = self._engine  # the cached check

    def _files(self) -> list[str]:
        files = ["-f", str(COMPOSE_DIR / "docker-compose.yml")]
        if self.settings.compose_override:
            override = COMPOSE_DIR / self.settings.compose_override
            if not override.is_file():
                raise LabkitError(
                    f"LABKIT_COMPOSE_OVERRIDE names {override}, which does not exist.",
                    "set it to a compose file under compose/ (e.g. ci/docker-compose.ci.yml), or unset it",
                )
            files += ["-f", str(override)]
        return ["--project-directory", str(COMPOSE_DIR), *files]

    def _ports(self) -> dict[str, str]:
        """The host ports to publish are labkit's settings (one owner), passed over compose/.env's values."""
        s = self.settings
        return {
            "KAFKA_HOST_PORT": str(s.kafka_port),
            "FLINK_HOST_PORT": str(s.flink_rest_port),
            "INFLUXDB_HOST_PORT": str(s.influx_port),
            "GRAFANA_HOST_PORT": str(httpx.URL(s.grafana_url).port or 3000),
        }

    @functools.cached_property
    def _services(self) -> tuple[str, ...]:
        return tuple(self._compose("config", "--services").stdout.split())

    def services(self) -> list[str]:
        """The services this compose configuration starts (an override may move Grafana to a profile); read
        once per stack object, as the status and readiness checks ask for it every time."""
        return list(self._services)

    def influx_token(self, role: str = "admin") -> str:
        """Admin from compose/.env; the read/write tokens live in the secrets volume (created at first start).

        Reading one takes a `docker compose exec` (about a second), and every `Influx()` asks: `verify` polling
        InfluxDB started a subprocess per poll. A token read is kept for TOKEN_TTL_S seconds (per admin token,
        so a regenerated compose/.env reads afresh, and `down --wipe` here forgets them); after a wipe from
        another process, a stale token lives at most that long."""
        if role == "admin":
            return compose_env()["INFLUXDB_ADMIN_TOKEN"]
        key = (compose_env().get("INFLUXDB_ADMIN_TOKEN") or "", role)
        hit = _TOKENS.get(key)
        if hit and time.monotonic() - hit[1] < TOKEN_TTL_S:
            return hit[0]
        r = self._compose("exec", "-T", "influxdb-init", "cat", f"/secrets/influx-{role}.token", check=False)
        if r.returncode != 0:
            r = self._compose(
                "run", "--rm", "--no-deps", "--entrypoint", "cat", "influxdb-init", f"/secrets/influx-{role}.token"
            )
        token = r.stdout.strip()
        if token:
            _TOKENS[key] = (token, time.monotonic())
        return token

    def secrets(self) -> list[str]:
        """The base's tokens, and compose/.env's passwords and tokens (InfluxDB's admin, Grafana's, Jupyter's)."""
        env = compose_env()
        extra = [v for k, v in env.items() if v and ("PASSWORD" in k or "TOKEN" in k) and len(v) >= 8]
        return sorted({*super().secrets(), *extra})

    def up(self, *, timeout: float = 600) -> StackStatus:
        # The first start builds the lab's Flink image (PyFlink, the connector, the lab's functions): minutes.
        self._compose("up", "-d", "--build", "--wait", "--wait-timeout", str(int(timeout)))
        for name, check in self._checks():
            check.wait_until_ready(timeout, service=name)
        from labkit.stack.kafka import ensure_topics

        ensure_topics(self.settings.kafka, self.settings)
        return self.status()

    def down(self, *, wipe: bool = False) -> StackStatus:
        self._compose("down", "--remove-orphans", *(["--volumes"] if wipe else []))
        if wipe:  # the savepoints and checkpoints were in a volume, and so were the tokens
            _TOKENS.clear()
            from labkit import restore_points as resume

            resume.forget_cluster(self.settings)
        return self.status()

    def containers(self) -> list[dict]:
        """Every container of the project, running or exited: service, state, health, exit code."""
        import json

        out = self._compose("ps", "-a", "--format", "json").stdout.strip()
        rows = (
            [json.loads(line) for line in out.splitlines() if line.strip()]
            if not out.startswith("[")
            else json.loads(out)
        )
        return [
            {
                "service": r["Service"],
                "state": r["State"],
                "health": r.get("Health", ""),
                "exit_code": r.get("ExitCode"),
            }
            for r in rows
        ]

    # Fault drills (labkit.faults): a container is a service's process here.
    def pid(self, service: str) -> int | None:
        """The main process of the service's container, as the host sees it (None: not running)."""
        cid = self._compose("ps", "-q", service).stdout.strip()
        if not cid:
            return None
        r = subprocess.run(["docker", "inspect", "-f", "{{.State.Pid}}", cid], capture_output=True, text=True)
        pid = int(r.stdout.strip() or 0) if r.returncode == 0 else 0
        return pid or None

    def take_down(self, service: str, how: str) -> None:
        """`kill`: SIGKILL, like a crash; `stop`: a clean shutdown."""
        self._compose("kill" if how == "kill" else "stop", service)

    def bring_back(self, service: str, timeout: float = 180) -> None:
        self._compose("start", service)
        self._compose("up", "-d", "--wait", "--wait-timeout", str(int(timeout)), service)
        for name, check in self._checks():
            check.wait_until_ready(timeout, service=name)

    def taskmanagers(self) -> list[str]:
        out = self._compose("ps", "-q", "taskmanager", check=False).stdout.split()
        return [f"taskmanager-{i}" for i in range(1, len(out) + 1)]

    def _scale_taskmanagers(self, n: int, timeout: float) -> None:
        # compose's own scaling: the TaskManager service has no fixed name or host port, so N replicas can run
        self._compose("up", "-d", "--no-recreate", "--wait", "--wait-timeout", str(int(timeout)),
                      "--scale", f"taskmanager={n}", "taskmanager")  # fmt: skip

    def add_taskmanager(self, timeout: float = 180) -> str:
        import time

        import httpx

        before = httpx.get(f"{self.get_flink_url()}/overview", timeout=5, verify=tls()).json().get("taskmanagers", 0)
        n = len(self.taskmanagers()) + 1
        self._scale_taskmanagers(n, timeout)
        # the container's healthcheck passes once any TaskManager is registered: wait for this one's slots
        deadline = time.monotonic() + timeout
        while (
            httpx.get(f"{self.get_flink_url()}/overview", timeout=5, verify=tls()).json().get("taskmanagers", 0)
            <= before
        ):
            if time.monotonic() > deadline:
                raise LabkitError(
                    f"taskmanager-{n} did not register within {timeout:.0f}s.", "see `labkit logs taskmanager`"
                )
            time.sleep(1)
        return f"taskmanager-{n}"

    def remove_taskmanager(self, name: str | None = None) -> str:
        n = len(self.taskmanagers())
        if n <= 1:
            raise LabkitError("no added TaskManager to remove.", "`labkit taskmanager add` adds one")
        self._scale_taskmanagers(n - 1, 180)
        return f"taskmanager-{n}"

    def host_ports(self, service: str) -> list[int]:
        s = self.settings
        return {"kafka": [s.kafka_port], "jobmanager": [s.flink_rest_port], "influxdb": [s.influx_port]}.get(
            service, []
        )

    def logs(self, service: str, lines: int = 50) -> str:
        if service not in SERVICES:
            raise LabkitError(f"there is no service {service!r}.", f"use one of: {', '.join(SERVICES)}")
        return self._compose("logs", "--no-color", "--tail", str(lines), SERVICES[service]).stdout

    def _checks(self):
        s = self.settings
        checks = [
            ("kafka", KafkaMetadata(s.kafka)),
            ("flink", FlinkSlots(s.flink)),
            ("influxdb", InfluxBucket(s.influx, self.influx_token("admin"), s.influx_org, s.influx_bucket)),
        ]
        if "grafana" in self.services():
            checks.append(("grafana", HttpOk(f"{s.grafana_url}/api/health")))
        return checks

    def status(self) -> StackStatus:
        out = StackStatus(self.mode)
        addr = {
            "kafka": self.settings.kafka,
            "flink": self.settings.flink,
            "influxdb": self.settings.influx,
            "grafana": self.settings.grafana_url,
        }
        for name, check in self._checks():
            c = check.safe_check()
            out.services.append(ServiceStatus(name, "running" if c.ok else "stopped", addr[name], None, c.detail))
        return out


def compose_env(compose_dir: Path = COMPOSE_DIR) -> dict[str, str | None]:
    """compose/.env's values (its secrets and the stack's org and bucket); {} while the file does not exist yet.
    The one reader of the file: labkit reads it as docker compose does (python-dotenv)."""
    env = compose_dir / ".env"
    return dotenv_values(env) if env.exists() else {}


def docker_settings(settings):
    """The container-side endpoints the Flink job needs; the host keeps using 127.0.0.1 ports."""
    env = compose_env()
    fields = settings.model_fields_set
    update = {
        "kafka_bootstrap_for_flink": settings.kafka_bootstrap_for_flink or "kafka:19092",
        "influx_url_for_flink": settings.influx_url_for_flink or "http://influxdb:8086",
        "flink_influx_token_file": settings.flink_influx_token_file or "/secrets/influx-write.token",
    }
    if "influx_org" not in fields and env.get("INFLUXDB_ORG"):
        update["influx_org"] = env["INFLUXDB_ORG"]
    if "influx_bucket" not in fields and env.get("INFLUXDB_BUCKET"):
        update["influx_bucket"] = env["INFLUXDB_BUCKET"]
    return settings.model_copy(update=update)


def _generated_secrets() -> dict[str, str]:
    import secrets

    return {
        "INFLUXDB_ADMIN_PASSWORD": secrets.token_urlsafe(18),
        "INFLUXDB_ADMIN_TOKEN": secrets.token_urlsafe(32),
        "GRAFANA_ADMIN_PASSWORD": secrets.token_urlsafe(18),
        # JupyterLab's login (the jupyter profile): it runs code for whoever reaches its port
        "JUPYTER_TOKEN": secrets.token_urlsafe(32),
    }


def ensure_env_file(compose_dir: Path = COMPOSE_DIR) -> Path:
    """compose/.env with freshly generated secrets (0600) if it does not exist yet.

    An existing file keeps its values; a generated secret it has no line for (one added to the lab after the
    file was made, like JUPYTER_TOKEN) is appended, as compose refuses to start without it. A key that is there
    but empty is left to the user, whom compose then tells what is missing."""
    from labkit.credentials import write_secret

    env = compose_dir / ".env"
    values = _generated_secrets()
    if env.exists():
        have = compose_env(compose_dir)
        missing = {k: v for k, v in values.items() if k not in have}
        if missing:
            text = env.read_text()
            text += ("" if text.endswith("\n") or not text else "\n") + "".join(
                f"{k}={v}\n" for k, v in missing.items()
            )
            write_secret(env, text)  # rewritten whole: 0600, never through a symlink
        return env
    example = (compose_dir / ".env.example").read_text()
    lines = []
    for line in example.splitlines():
        key = line.split("=", 1)[0]
        lines.append(f"{key}={values[key]}" if key in values else line)
    write_secret(env, "\n".join(lines) + "\n")
    return env
