"""Each workshop attendee's own Flink session cluster, on the instructor's machine.

Flink has no users: on one shared session cluster every attendee can cancel any job, take every slot, run Java
in the shared TaskManagers (`pipeline.jars`, `CREATE FUNCTION ... USING JAR`) and read every file those
TaskManagers can read, every attendee's InfluxDB token included. No check in labkit can close that, because an
attendee can call Flink's REST API or `flink run` directly. So the boundary is drawn around Flink, with what the
operating system already enforces (docs/architecture.md, "Workshop isolation"):

* **A Unix user per attendee** (`lk-a07`): their JobManager and TaskManager run as that user, with an
  environment of their own (never the instructor's), and what they write (`state/`: temporary files, Flink's
  logs, checkpoints, savepoints) is theirs alone (0700), like their write token (0600). Java or SQL running in
  their cluster can read their own files, never another attendee's.
* **Root never works inside what the attendee owns.** The cluster's folder, its conf, lib, pid files, console
  logs and token folder stay root's: an attendee cannot plant a symlink there for root to follow when the
  instructor runs `create` again (root writes the conf, the lib links, the logs and the pid files).
* **An address per attendee** (127.0.2.7, a loopback address of its own): every port of their cluster binds
  it, the TaskManager's gRPC servers for Python workers included (provision/loopback.py), and a firewall rule
  (iptables, chain LABKIT-WS) lets only that attendee's user, and the instructor's, connect to it. Another
  attendee's `curl`, `flink run` or browser is refused before Flink sees a byte.
* **Slots of their own**: taking every slot of their cluster, or cancelling every job on it, touches nobody else.

An attendee's Jupyter then runs as their Unix user (JupyterHub's LocalProcessSpawner does exactly that). On
Kubernetes the same boundary is a FlinkDeployment per attendee with a NetworkPolicy (docs/scaling.md).
Needs root (users, ownership, firewall rules) and iptables; `create` says so otherwise.
"""

from __future__ import annotations

import contextlib
import grp
import os
import pwd
import shutil
import subprocess
import sys
import sysconfig
from dataclasses import dataclass
from pathlib import Path

from labkit.console import say
from labkit.credentials import Credentials, write_secret
from labkit.errors import ConfigError, ServiceError
from labkit.paths import REPO_ROOT, cache_dir
from labkit.settings import Settings
from labkit.stack.flink import LocalJobManager, LocalTaskManager, write_conf
from labkit.stack.provision import flink as provision

USER_PREFIX = "lk-"
# attendee aNN's cluster binds 127.0.2.NN. Not 127.0.1.x: Debian and Ubuntu map the machine's own name to
# 127.0.1.1, and a Kafka or InfluxDB reached by that name would then be a01's alone.
NET = "127.0.2."
CHAIN = "LABKIT-WS"
REST_PORT = 8081  # every attendee's cluster has the usual ports, each on its own address


def _index(name: str) -> int:
    n = int(name.removeprefix("a"))
    if not 1 <= n <= 254:
        raise ConfigError(f"attendee {name}: own Flink clusters are numbered a01..a254", "create fewer attendees")
    return n


@dataclass(frozen=True)
class OwnFlink:
    """Attendee `name`'s cluster: where it lives, who runs it, where it answers."""

    name: str  # the attendee's namespace, "a07"
    root: Path  # the workshop's clusters folder; this cluster's is root/name

    @property
    def user(self) -> str:
        return USER_PREFIX + self.name

    @property
    def host(self) -> str:
        return f"{NET}{_index(self.name)}"

    @property
    def rest_url(self) -> str:
        return f"http://{self.host}:{REST_PORT}"

    @property
    def home(self) -> Path:
        return self.root / self.name

    @property
    def python(self) -> Path:
        """The Python the attendee's processes run (their TaskManager's Python workers, their Jupyter)."""
        return self.root / "python" / "bin" / "python"

    @property
    def token_file(self) -> Path:
        """The attendee's InfluxDB write token, readable by their cluster alone (a root-owned folder 0711 holds it:
        the attendee reads it by name, cannot list or change the folder)."""
        return self.home / "tokens" / f"{self.name}.write-token"

    @property
    def state(self) -> Path:
        """What the attendee's processes write: the only part of the cluster's folder the attendee owns."""
        return self.home / "state"

    def settings(self, base: Settings, slots: int) -> Settings:
        """Settings for the cluster's own processes (the local stack's Flink services, on this address)."""
        return base.model_copy(
            update={"home": self.home, "bind_host": self.host, "flink_rest_url": None, "flink_rest_port": REST_PORT,
                    "flink_rpc_port": 6123, "flink_taskmanager_slots": slots, "mode": "local"}
        )  # fmt: skip


class _Own:
    """What the attendee's two services do differently from the local stack's: their conf keeps temporary files
    in their own folder, and their lib folder holds copies of the lab's jars (the instructor's cache is not
    theirs to read)."""

    settings: Settings

    def prepare(self) -> None:
        state = self.settings.home / "state"
        py = str(self.settings.home.parent / "python" / "bin" / "python")
        write_conf(self, **{
            "io.tmp.dirs": str(state / "tmp"), "web.tmpdir": str(state / "tmp"),
            "env.log.dir": str(state / "logs"), "env.pid.dir": str(state / "run"),
            "state.checkpoints.dir": f"file://{state / 'checkpoints'}",
            "state.savepoints.dir": f"file://{state / 'savepoints'}",
            "python.executable": py, "python.client.executable": py,
            # the TaskManager's gRPC servers for Python workers bind the attendee's address too (loopback.py)
            "env.java.opts.taskmanager": f"-Dlabkit.grpc.bind={self.settings.bind_host}",
        })  # fmt: skip

    def command(self) -> tuple[list[str], dict[str, str]]:
        cmd, env = super().command()  # type: ignore[misc]
        state = self.settings.home / "state"
        env = {**env, "FLINK_LIB_DIR": str(_readable_lib(self.settings.home)),
               "FLINK_LOG_DIR": str(state / "logs"), "FLINK_PID_DIR": str(state / "run"),
               "HOME": str(state), "TMPDIR": str(state / "tmp")}  # fmt: skip
        return cmd, env


class OwnJobManager(_Own, LocalJobManager):
    pass


class OwnTaskManager(_Own, LocalTaskManager):
    pass


def _services(cluster: OwnFlink, slots: int = 1, base: Settings | None = None) -> list:
    """The cluster's JobManager and TaskManager (their pid files and logs are in the attendee's folder). They
    hold no lab credentials: a Credentials object of throwaway values, never written anywhere."""
    s = cluster.settings(base or Settings(), slots)
    return [OwnJobManager(s, Credentials()), OwnTaskManager(s, Credentials())]


def _readable_lib(home: Path) -> Path:
    """The lab's Flink lib folder, with the jars that live in the instructor's cache copied in (the others are
    PyFlink's, in the venv every attendee already reads)."""
    lib = provision.lib_dir(home)
    cache = cache_dir().resolve()
    for link in lib.iterdir():
        if link.is_symlink() and cache in link.resolve().parents:
            target = link.resolve()
            link.unlink()
            shutil.copy2(target, link)
    return lib


def _world_usable(path: Path) -> bool:
    """Whether any user may run `path`: every folder above it can be entered, and the file executed."""
    real = path.resolve()
    return real.is_file() and all(os.stat(d).st_mode & 0o001 for d in [real, *real.parents])


def attendee_python(root: Path) -> Path:
    """A Python every attendee may run, with this lab's packages: a venv of a world-usable interpreter of the same
    version (the lab's own may live in the instructor's home, e.g. pyenv's), which reads this venv's packages
    (a .pth file) instead of installing them again."""
    target = root / "python" / "bin" / "python"
    version = f"{sys.version_info.major}.{sys.version_info.minor}"
    candidates = [Path(getattr(sys, "_base_executable", sys.executable)), Path(f"/usr/bin/python{version}"),
                  *(Path(p) for p in filter(None, [shutil.which(f"python{version}")]))]  # fmt: skip
    base = next((c for c in candidates if _world_usable(c)), None)
    if base is None:
        raise ConfigError(
            f"no Python {version} that other users may run: the lab's ({candidates[0]}) is inside a private folder",
            f"install one system-wide (Debian: apt-get install python{version}-venv) and run labkit from it",
        )
    if not target.exists():
        r = _run(str(base), "-m", "venv", "--without-pip", str(root / "python"))
        if r.returncode != 0:
            raise ServiceError(f"could not make the attendees' Python from {base}: {r.stderr.strip()[-500:]}")
    site = Path(_run(str(target), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])").stdout.strip())
    # `import site; site.addsitedir(...)` also runs that folder's own .pth files (an editable labkit's, say)
    lines = [f"import site; site.addsitedir({sysconfig.get_paths()['purelib']!r})", str(REPO_ROOT)]
    (site / "labkit-lab.pth").write_text("\n".join(lines) + "\n")
    for p in [root / "python", *(root / "python").rglob("*")]:
        if not p.is_symlink():
            p.chmod(p.stat().st_mode | 0o005 if p.is_dir() or os.access(p, os.X_OK) else p.stat().st_mode | 0o004)
    return target


def _run(*cmd: str) -> subprocess.CompletedProcess:
    return subprocess.run(list(cmd), capture_output=True, text=True)


def require_root() -> None:
    if os.geteuid() != 0 or not shutil.which("iptables") or not shutil.which("useradd"):
        raise ConfigError(
            "a Flink cluster per attendee needs root, useradd and iptables (Unix users, file ownership, firewall "
            "rules)",
            "run `labkit workshop create --own-flink` as root on the workshop machine, or leave --own-flink off: "
            "attendees then share one Flink, which keeps them apart by job names only (docs/architecture.md)",
        )


def _ensure_user(user: str, home: Path) -> tuple[int, int]:
    try:
        entry = pwd.getpwnam(user)
    except KeyError:
        r = _run("useradd", "--system", "--user-group", "--no-create-home", "--home-dir", str(home),
                 "--shell", "/usr/sbin/nologin", user)  # fmt: skip
        if r.returncode != 0:
            raise ServiceError(f"could not create the Unix user {user}: {r.stderr.strip()}") from None
        entry = pwd.getpwnam(user)
    return entry.pw_uid, entry.pw_gid


STATE_DIRS = ("tmp", "logs", "run", "checkpoints", "savepoints")


def _make_state(cluster: OwnFlink, uid: int, gid: int) -> None:
    """The attendee's own folder, made once: by root inside root's folder, handed over last. Once it exists it
    is the attendee's, and root does not enter it again (only `stop(remove=True)` deletes it, without following
    links)."""
    if cluster.state.exists() or cluster.state.is_symlink():
        return
    cluster.state.mkdir(mode=0o700)
    for name in STATE_DIRS:
        (cluster.state / name).mkdir(mode=0o700)
        os.lchown(cluster.state / name, uid, gid)
    os.lchown(cluster.state, uid, gid)


#: two chains, each jumped to from OUTPUT on loopback: CHAIN for packets *to* an attendee's address (who may
#: connect), SRC_CHAIN for packets *from* one (who may answer: while an attendee's cluster is down, another
#: attendee could listen on its address and answer its clients). Two chains, not one: a RETURN for a packet's
#: own source must not skip the rules for its destination.
SRC_CHAIN = CHAIN + "-SRC"
_JUMPS = {CHAIN: ["OUTPUT", "-o", "lo", "-d", f"{NET}0/24", "-j", CHAIN],
          SRC_CHAIN: ["OUTPUT", "-o", "lo", "-s", f"{NET}0/24", "-j", SRC_CHAIN]}  # fmt: skip


def _guard_rules(host: str, uid: int, side: str) -> list[list[str]]:
    """Only the attendee's user and the instructor's may send to (`-d`) or from (`-s`) the attendee's address."""
    me = str(os.geteuid())
    # The resets and ICMP errors the REJECTs below send carry the refused address as their source: let them go,
    # or a refused client waits for a timeout instead of hearing "refused" at once.
    kernel = [] if side == "-d" else [
        [side, host, "-p", "tcp", "--tcp-flags", "RST", "RST", "-j", "RETURN"],
        [side, host, "-p", "icmp", "-j", "RETURN"],
    ]  # fmt: skip
    return kernel + [
        [side, host, "-m", "owner", "--uid-owner", str(uid), "-j", "RETURN"],
        [side, host, "-m", "owner", "--uid-owner", me, "-j", "RETURN"],
        [side, host, "-p", "tcp", "-j", "REJECT", "--reject-with", "tcp-reset"],
        [side, host, "-j", "REJECT"],
    ]


def _rules_about(chain: str, host: str) -> list[list[str]]:
    """The chain's rules about `host`, as `iptables -S` lists them (without the leading -A)."""
    out = []
    for line in _run("iptables", "-S", chain).stdout.splitlines():
        parts = line.split()
        if parts[:2] != ["-A", chain]:
            continue
        for side in ("-d", "-s"):
            if side in parts and parts[parts.index(side) + 1].split("/")[0] == host:
                out.append(parts[1:])
                break
    return out


def _guard(host: str, uid: int) -> None:
    """The attendee's rules, the new ones added before the old ones go: a re-run never leaves a gap."""
    for chain, side in ((CHAIN, "-d"), (SRC_CHAIN, "-s")):
        old = _rules_about(chain, host)
        _run("iptables", "-N", chain)  # exists already: fine
        if _run("iptables", "-C", *_JUMPS[chain]).returncode != 0:
            _run("iptables", "-I", *_JUMPS[chain])
        for rule in _guard_rules(host, uid, side):
            r = _run("iptables", "-A", chain, *rule)
            if r.returncode != 0:
                raise ServiceError(f"iptables refused a rule for {host}: {r.stderr.strip()}")
        for rule in old:  # -D removes the first match: the old copy, listed before the new one
            _run("iptables", "-D", *rule)


def _unguard(host: str) -> None:
    """Remove every rule about `host`; each chain and its jump go with the last attendee."""
    for chain in (CHAIN, SRC_CHAIN):
        for rule in _rules_about(chain, host):
            _run("iptables", "-D", *rule)
        if not [x for x in _run("iptables", "-S", chain).stdout.splitlines() if x.startswith("-A")]:
            _run("iptables", "-D", *_JUMPS[chain])
            _run("iptables", "-X", chain)


def start(cluster: OwnFlink, base: Settings, write_token: str, *, slots: int = 2, timeout: float = 120) -> OwnFlink:
    """Make the attendee's user, folder and firewall rule, write their token, and start their JobManager and
    TaskManager as that user. Idempotent: a running cluster is left as it is (its token file is rewritten)."""
    require_root()
    from labkit.stack import provision as provisioning

    if not provisioning.is_provisioned():
        provisioning.provision_all()
    root = cluster.root
    root.mkdir(parents=True, exist_ok=True)
    root.chmod(0o711)  # attendees pass through to their own folder; they cannot list the others
    for parent in root.resolve().parents:
        if not os.stat(parent).st_mode & 0o001:
            raise ConfigError(
                f"the attendees' Flink folder {root} is inside {parent}, which other users cannot enter",
                "put it where every user can pass through (e.g. /srv/labkit-workshop): --flink-root",
            )
    py = attendee_python(root)
    uid, gid = _ensure_user(cluster.user, cluster.home)
    check = _run(
        "setpriv", f"--reuid={uid}", f"--regid={gid}", "--clear-groups", str(py), "-c", "import pyflink, labkit"
    )
    if check.returncode != 0:
        raise ConfigError(
            f"{cluster.user} cannot import PyFlink and labkit with {py}: {check.stderr.strip()[-300:]}",
            "other users must be able to read the lab's venv and its labkit package (chmod -R o+rX .venv labkit), "
            "not the whole repository: an instructor's .env there holds the admin token",
        )
    services = _services(cluster, slots, base)
    cluster.home.mkdir(mode=0o711, exist_ok=True)  # root's: the attendee passes through, lists nothing
    if cluster.home.is_symlink() or os.lstat(cluster.home).st_uid != 0:
        raise ServiceError(f"{cluster.home} is not root's own folder: remove it and run create again")
    cluster.home.chmod(0o711)
    _make_state(cluster, uid, gid)
    cluster.token_file.parent.mkdir(mode=0o711, exist_ok=True)
    write_secret(cluster.token_file, write_token + "\n")  # 0600, renamed into place in a folder of root's
    os.lchown(cluster.token_file, uid, gid)
    for svc in services:
        if svc.process.state() != "running":
            svc.prepare()
    _guard(cluster.host, uid)
    for svc in services:
        if svc.process.state() != "running":
            cmd, env = svc.command()
            svc.process.start(cmd, env=env, user=cluster.user, test_owned=True)
            say(f"attendee {cluster.name}: started their {svc.name} as {cluster.user} on {cluster.host}")
    for svc in services:
        svc.readiness().wait_until_ready(timeout, service=f"{cluster.name}'s {svc.name}",
                                         alive=lambda p=svc.process: p.pid is not None)  # fmt: skip
    return cluster


def processes(cluster: OwnFlink) -> list[int]:
    """The pids of the attendee's cluster: their JobManager, TaskManager and everything those started."""
    import psutil

    out = []
    for svc in _services(cluster):
        p = svc.process.process()
        if p is not None:
            out += [p.pid, *(c.pid for c in p.children(recursive=True))]
    with contextlib.suppress(KeyError):
        uid = pwd.getpwnam(cluster.user).pw_uid
        out += [p.pid for p in psutil.process_iter(["uids"]) if p.info["uids"] and p.info["uids"].real == uid]
    return sorted(set(out))


def stop(cluster: OwnFlink, *, remove: bool = True) -> None:
    """Stop the attendee's cluster; with `remove`, also their folder, firewall rules and Unix user."""
    import psutil

    try:
        uid = pwd.getpwnam(cluster.user).pw_uid
    except KeyError:
        uid = None
    for svc in reversed(_services(cluster)):
        p = svc.process.process()
        if p is not None and uid is not None and p.uids().real != uid:
            continue  # a pid file that names someone else's process: never root's to kill here
        svc.process.stop()
    with contextlib.suppress(KeyError):  # Python workers a killed TaskManager left, still running as the user
        uid = pwd.getpwnam(cluster.user).pw_uid
        left = [p for p in psutil.process_iter(["uids"]) if p.info["uids"] and p.info["uids"].real == uid]
        for p in left:
            with contextlib.suppress(psutil.Error):
                p.kill()
        psutil.wait_procs(left, timeout=10)
    if not remove:
        return
    if shutil.which("iptables"):
        _unguard(cluster.host)
    shutil.rmtree(cluster.home, ignore_errors=True)
    with contextlib.suppress(KeyError):
        pwd.getpwnam(cluster.user)
        _run("userdel", cluster.user)
        with contextlib.suppress(KeyError):
            grp.getgrnam(cluster.user)
            _run("groupdel", cluster.user)
