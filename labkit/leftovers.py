"""What test runs leave behind: processes, network namespaces and docker containers the tests made.

Every process a test run starts carries `LABKIT_TEST_OWNER=<pid of the pytest that made it>` in its environment
(tests/conftest.py sets it; children inherit it, through `ip netns exec` too). The lab's own stack never
carries it (`ManagedProcess` drops it): `labkit up` is not a test leftover, whoever started it.

* `clean_stale()`: at the start of a run, end what a killed run left (its owner is gone): processes, then
  the network namespaces (`lk-*`) and bridge the cluster tests made, with any process still inside them.
* `clean_owned(pid)`: at the end of a run, however it ends, end what this run made.
* `python -m labkit.leftovers [--docker]`: the check at the end of `make test`: lists what is left, exit 1.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import sys
from dataclasses import dataclass, field

import psutil

MARK = "LABKIT_TEST_OWNER"
NETNS_PREFIX = "lk-"
BRIDGE = "lkbr0"
COMPOSE_PROJECT = "clickstream-lab"
#: set by the cluster tests when they make test hosts: only such a run removes namespaces when it ends
MADE_NAMESPACES = False


@dataclass
class Leftovers:
    processes: list[str] = field(default_factory=list)
    namespaces: list[str] = field(default_factory=list)
    docker: list[str] = field(default_factory=list)
    firewall: list[str] = field(default_factory=list)

    def __bool__(self) -> bool:
        return bool(self.processes or self.namespaces or self.docker or self.firewall)

    def lines(self) -> list[str]:
        return (
            [f"process {p}" for p in self.processes]
            + [f"network namespace or bridge {n}" for n in self.namespaces]
            + [f"docker {d}" for d in self.docker]
            + [f"firewall rule {r}" for r in self.firewall]
        )


def _owner(p: psutil.Process) -> int | None:
    try:
        value = p.environ().get(MARK)
    except (psutil.Error, OSError):
        return None
    return int(value) if value and value.isdigit() else None


def _alive(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.Error:
        return False


def marked(owner: int | None = None) -> list[psutil.Process]:
    """Processes made by test runs (by the run `owner`, if given), this process and its parents excluded."""
    me = {os.getpid(), *(p.pid for p in psutil.Process().parents())}
    out = []
    for p in psutil.process_iter():
        if p.pid in me:
            continue
        o = _owner(p)
        if o is not None and (owner is None or o == owner):
            out.append(p)
    return out


def namespaces() -> list[str]:
    try:
        listed = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout.split()
    except FileNotFoundError:
        return []
    found = [ns for ns in listed if ns.startswith(NETNS_PREFIX)]
    if os.path.exists(f"/sys/class/net/{BRIDGE}"):
        found.append(BRIDGE)
    return found


def firewall() -> list[str]:
    """Rules of the workshop's per-attendee Flink guard (labkit.workshop_flink) whose attendee runs nothing: a
    live workshop's rules (its attendees' users run their clusters) are not a test's leftovers."""
    from labkit.workshop_flink import CHAIN, NET, SRC_CHAIN, USER_PREFIX

    if os.geteuid() != 0 or not shutil.which("iptables"):
        return []
    rules = []
    for chain in (CHAIN, SRC_CHAIN):
        listed = subprocess.run(["iptables", "-S", chain], capture_output=True, text=True)
        if listed.returncode == 0:
            rules += [line for line in listed.stdout.splitlines() if line.startswith("-A")]
    running = {p.info["username"] for p in psutil.process_iter(["username"])}
    live = set()
    for line in rules:  # a host is live when the uid its rule lets in runs a process
        parts = line.split()
        if "--uid-owner" in parts:
            uid = parts[parts.index("--uid-owner") + 1]
            with contextlib.suppress(KeyError, ValueError):
                import pwd

                name = pwd.getpwuid(int(uid)).pw_name if uid.isdigit() else uid
                if name.startswith(USER_PREFIX) and name in running:
                    live |= {x.split("/")[0] for x in parts if x.startswith(NET)}
    return [line for line in rules if not any(x.split("/")[0] in live for x in line.split() if x.startswith(NET))]


def remove_firewall() -> list[str]:
    from labkit.workshop_flink import NET, _unguard

    hosts = {part.split("/")[0] for line in firewall() for part in line.split() if part.startswith(NET)}
    for host in sorted(hosts):
        _unguard(host)
    return sorted(hosts)


def _describe(p: psutil.Process) -> str:
    """pid and the whole command line (a broker's main class comes after a long classpath)."""
    with contextlib.suppress(psutil.Error):
        return f"{p.pid} {' '.join(p.cmdline())}"
    return str(p.pid)


def _short(line: str, width: int = 160) -> str:
    return line if len(line) <= width else line[: width // 2] + " … " + line[-width // 2 :]


def _kill(procs: list[psutil.Process]) -> list[str]:
    gone = []
    for p in procs:
        desc = _describe(p)
        with contextlib.suppress(psutil.Error, ProcessLookupError, PermissionError):
            p.send_signal(signal.SIGKILL)
            gone.append(desc)
    psutil.wait_procs(procs, timeout=10)
    return gone


def remove_namespaces(only_unowned_by_live_runs: bool) -> list[str]:
    removed = []
    for ns in namespaces():
        if ns == BRIDGE:
            continue
        pids = subprocess.run(["ip", "netns", "pids", ns], capture_output=True, text=True).stdout.split()
        procs = []
        for x in pids:
            with contextlib.suppress(psutil.Error, ValueError):
                procs.append(psutil.Process(int(x)))
        if only_unowned_by_live_runs and any((o := _owner(p)) is not None and _alive(o) for p in procs):
            continue  # a live run's host
        _kill(procs)
        subprocess.run(["ip", "netns", "del", ns], capture_output=True)
        removed.append(ns)
    if removed and BRIDGE in namespaces():
        if shutil.which("iptables"):  # the cluster tests add the rule only where iptables exists
            subprocess.run(
                ["iptables", "-D", "FORWARD", "-i", BRIDGE, "-o", BRIDGE, "-j", "ACCEPT"], capture_output=True
            )
        subprocess.run(["ip", "link", "del", BRIDGE], capture_output=True)
        removed.append(BRIDGE)
    return removed


def clean_stale() -> Leftovers:
    """End what killed runs left: processes whose run is gone, and then, only when no other test run is alive
    (a live run may have made a namespace it has not started a process in yet), the test namespaces."""
    everyone = marked()
    stale = [p for p in everyone if not _alive(_owner(p) or 0)]
    out = Leftovers(processes=_kill(stale))
    others_alive = any(_alive(_owner(p) or 0) for p in everyone if p not in stale)
    if os.geteuid() == 0 and not others_alive:
        out.namespaces = remove_namespaces(only_unowned_by_live_runs=True)
        out.firewall = remove_firewall()
    return out


def clean_owned(owner: int) -> Leftovers:
    """End what the run `owner` made and left running (a test interrupted before its own teardown)."""
    return Leftovers(processes=_kill(marked(owner)))


def docker_leftovers() -> list[str]:
    """Containers and volumes of the lab's compose project (docker mode's tests end with `down --wipe`)."""
    found = []
    for what, cmd in (
        ("container", ["docker", "ps", "-a", "--filter", f"label=com.docker.compose.project={COMPOSE_PROJECT}"]),
        ("volume", ["docker", "volume", "ls", "--filter", f"label=com.docker.compose.project={COMPOSE_PROJECT}"]),
    ):
        try:
            r = subprocess.run([*cmd, "--format", "{{.Names}}" if what == "container" else "{{.Name}}"],
                               capture_output=True, text=True, timeout=30)  # fmt: skip
        except (FileNotFoundError, subprocess.TimeoutExpired):
            return []
        if r.returncode != 0:  # no engine running: nothing of ours can be left in it
            return []
        found += [f"{what} {n}" for n in r.stdout.split()]
    return found


def find(docker: bool = False) -> Leftovers:
    """What finished runs left (a process of a run still going is that run's business, not a leftover)."""
    return Leftovers(
        processes=[_describe(p) for p in marked() if not _alive(_owner(p) or 0)],
        namespaces=namespaces(),
        docker=docker_leftovers() if docker else [],
        firewall=firewall(),
    )


def main(argv: list[str]) -> int:
    left = find(docker="--docker" in argv)
    if not left:
        print("[leftovers] nothing left behind by the tests")
        return 0
    print("[leftovers] the tests left these behind:")
    for line in left.lines():
        print(f"  {_short(line)}")
    if "--clean" in argv:
        cleaned = clean_stale()
        print(f"[leftovers] removed: {', '.join(cleaned.lines()) or 'nothing (their runs are alive)'}")
    return 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
