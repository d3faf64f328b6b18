"""Flink: the local standalone cluster (JobManager and TaskManager as foreground processes)."""

from __future__ import annotations

import functools
import shutil
import sys
from pathlib import Path

from labkit.settings import Settings
from labkit.stack.local_service import LocalService
from labkit.stack.provision import flink as provision
from labkit.stack.provision.tools import require_java
from labkit.stack.readiness import FlinkSlots, PortOpen, WaitStrategy

# `flink run` is a JVM that lives for seconds and spends most of them compiling the job's plan: the C2 JIT never
# pays back there, and its compiler threads took half the client's CPU (15 s of CPU for a 9 s submission of the
# clickstream job; 9 s with C1 only, and 2 s sooner: docs/benchmarks.md, session 15). A serial collector for a
# heap that lives that briefly. The long-running JobManager and TaskManagers keep the JVM's defaults.
CLIENT_JAVA_OPTS = "-XX:TieredStopAtLevel=1 -XX:+UseSerialGC"


def conf_folder(conf: Path, settings: dict[str, object]) -> Path:
    """A Flink conf folder: the distribution's logging files and a config.yaml of `settings` over what every
    Flink process of the lab needs (Java 17 module flags, Beam and PemJa loaded parent-first). Shared by the
    local stack and the test-built session cluster (tests/cluster), so the two cannot drift apart."""
    conf.mkdir(parents=True, exist_ok=True)
    for name in ("log4j-console.properties", "log4j-cli.properties", "log4j.properties", "logback-console.xml"):
        shutil.copy(provision.flink_home() / "conf" / name, conf / name)
    base = {
        # Flink's own JVM flags (module opens for Java 17), carried over from PyFlink's default config.
        "env.java.opts.all": _default_java_opts(),
        # flink-python sits in lib/ behind the loopback gRPC patch (provision/loopback.py); every job also
        # ships it as a user jar. Beam's and PemJa's classes must come from one place, the patched one.
        "classloader.parent-first-patterns.additional": "org.apache.beam.;pemja.",
        # No jar upload and run from the web UI: with it on, anyone who reaches the REST port (or a web page
        # that makes a visitor's browser reach it) can upload a jar (/jars/upload) and run it (/jars/:id/run),
        # i.e. run code as this user. It only turns off those /jars handlers (Flink's WebSubmissionExtension);
        # POST /jobs, which `flink run` (RestClusterClient) submits with, is registered regardless (checked in
        # Flink 2.2's DispatcherRestEndpoint), so `labkit submit` works as before.
        "web.submit.enable": "false",
        "env.java.opts.client": CLIENT_JAVA_OPTS,
    }
    (conf / "config.yaml").write_text("".join(f"{k}: {v}\n" for k, v in {**base, **settings}.items()))
    return conf


def rest_origin(settings: Settings) -> str:
    """The origin of the local cluster's web UI, the one origin its REST API answers CORS requests for."""
    return f"http://{settings.bind_host}:{settings.flink_rest_port}"


def write_conf(service: LocalService, **extra: object) -> None:
    """One conf folder for both processes and for `flink run`; `extra` keys go over the lab's."""
    s = service.settings
    root = s.home / "flink"
    h = s.bind_host
    settings = {
        "jobmanager.rpc.address": h,
        "jobmanager.rpc.port": s.flink_rpc_port,
        "jobmanager.bind-host": h,
        "taskmanager.bind-host": h,
        "taskmanager.host": h,
        "rest.address": h,
        "rest.bind-address": h,
        "rest.port": s.flink_rest_port,
        "blob.server.port": "0",
        "jobmanager.memory.process.size": "1024m",
        "taskmanager.memory.process.size": "2048m",
        "taskmanager.numberOfTaskSlots": s.flink_taskmanager_slots,
        "parallelism.default": 1,
        # The TaskManager must run this venv's Python, or jobs loop on "No module named pyflink".
        "python.executable": sys.executable,
        "python.client.executable": sys.executable,
        # Jobs carry their own restart strategy and checkpointing (labkit.jobs.base_spec); these are the
        # cluster's defaults for anything else submitted here, the same exponential delay.
        "restart-strategy.type": "exponential-delay",
        "restart-strategy.exponential-delay.max-backoff": "20 s",
        "execution.checkpointing.interval": "10 s",
        "execution.checkpointing.externalized-checkpoint-retention": "RETAIN_ON_CANCELLATION",
        "state.checkpoints.dir": f"file://{root / 'checkpoints'}",
        "state.savepoints.dir": f"file://{root / 'savepoints'}",
        "heartbeat.timeout": 20000,
        "env.log.dir": str(s.home / "logs"),
        "env.pid.dir": str(s.home / "run"),
        "web.cancel.enable": "true",
        # Flink answers every REST call with Access-Control-Allow-Origin "*" by default, so a script on any web
        # page the user visits could read the cluster's state (jobs, configs, exceptions). Allow only the lab's
        # own web UI; same-origin pages and non-browser clients (labkit, curl, `flink run`) are not affected.
        "web.access-control-allow-origin": rest_origin(s),
        **extra,
    }
    conf = conf_folder(root / "conf", settings)
    (conf / "masters").write_text(f"{h}:{s.flink_rest_port}\n")
    (conf / "workers").write_text(f"{h}\n")


@functools.cache
def _default_java_opts() -> str:
    import yaml

    default = yaml.safe_load((provision.flink_home() / "conf" / "config.yaml").read_text())
    return default["env"]["java"]["opts"]["all"]


def flink_env(settings) -> dict[str, str]:
    root = settings.home / "flink"
    return {
        "FLINK_HOME": str(provision.flink_home()),
        "FLINK_CONF_DIR": str(root / "conf"),
        "FLINK_LIB_DIR": str(provision.lib_dir(settings.home)),
        "FLINK_LOG_DIR": str(settings.home / "logs"),
        "FLINK_PID_DIR": str(settings.home / "run"),
        "JAVA_HOME": _java_home(),
    }


def _java_home() -> str:
    import os
    from pathlib import Path

    return os.environ.get("JAVA_HOME") or str(Path(require_java()).resolve().parent.parent)


class LocalJobManager(LocalService):
    name = "jobmanager"
    port_settings = ("LABKIT_FLINK_REST_PORT", "LABKIT_FLINK_RPC_PORT")

    @property
    def address(self) -> str:
        return self.settings.flink

    def prepare(self) -> None:
        write_conf(self)

    def command(self) -> tuple[list[str], dict[str, str]]:
        return [str(provision.flink_home() / "bin" / "jobmanager.sh"), "start-foreground"], flink_env(self.settings)

    def readiness(self) -> WaitStrategy:
        return PortOpen(self.settings.bind_host, self.settings.flink_rest_port)


class LocalTaskManager(LocalService):
    """The stack's TaskManager (index 1), or one more added with `labkit taskmanager add` (index 2, 3, ...):
    more task slots on the same host, each a process of its own (its RPC and data ports are picked free)."""

    name = "taskmanager"

    def __init__(self, settings, creds, index: int = 1) -> None:
        self.index = index
        self.name = "taskmanager" if index == 1 else f"taskmanager-{index}"
        super().__init__(settings, creds)

    @property
    def address(self) -> str:
        return f"{self.settings.flink_taskmanager_slots} slots"

    def prepare(self) -> None:
        write_conf(self)

    def command(self) -> tuple[list[str], dict[str, str]]:
        return [str(provision.flink_home() / "bin" / "taskmanager.sh"), "start-foreground"], flink_env(self.settings)

    def readiness(self) -> WaitStrategy:
        return FlinkSlots(self.settings.flink)
