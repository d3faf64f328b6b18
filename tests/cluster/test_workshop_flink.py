"""Workshop isolation where Flink has no users: each attendee's own Flink session cluster (labkit.workshop_flink).

The instructor's `workshop.create(own_flink=True)` makes two attendees on the test-made secured broker. Each
attack is made as the attacker really is: a process of attendee a01's Unix user (as their Jupyter runs), with
Flink's own clients (PyFlink's Table API, plain HTTP), never through labkit's checks. Each refusal is asserted
next to the same action succeeding on a01's own cluster, so a test cannot pass because the action never works.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import subprocess
import tempfile
import textwrap
import uuid
from pathlib import Path

import httpx
import psutil
import pytest

from labkit import workshop, workshop_flink
from tests.cli import LABKIT
from tests.requirements import need

pytestmark = pytest.mark.stack


@pytest.fixture(scope="module", autouse=True)
def _root_and_iptables():
    need(
        os.geteuid() == 0 and bool(shutil.which("iptables")) and bool(shutil.which("useradd")),
        "an attendee's own Flink needs root, useradd and iptables (a Unix user and a firewall rule per attendee)",
    )


# Flink's own Table API, run as the attendee: SQL statements, then the rows of the last one (or, with
# "--detach", the job id of an INSERT left running).
CLIENT = textwrap.dedent(
    """
    import json, sys
    from pyflink.common import Configuration
    from pyflink.table import EnvironmentSettings, TableEnvironment
    host, mode, *stmts = sys.argv[1:]
    cfg = Configuration()
    cfg.set_string("execution.target", "remote")
    cfg.set_string("rest.address", host)
    cfg.set_string("rest.port", "8081")
    cfg.set_string("parallelism.default", "2")
    cfg.set_string("restart-strategy.type", "none")  # a refused read fails the job, not retries it for ever
    env = EnvironmentSettings.new_instance().with_configuration(cfg)
    env = env.in_batch_mode() if mode == "--rows" else env.in_streaming_mode()
    t = TableEnvironment.create(env.build())
    for s in stmts[:-1]:
        t.execute_sql(s)
    result = t.execute_sql(stmts[-1])
    if mode == "--rows":
        print("ROWS " + json.dumps([str(r[0]) for r in result.collect()]))
    else:
        print("JOB " + str(result.get_job_client().get_job_id()))
    """
)

READ_FILE_UDF = """
import org.apache.flink.table.functions.ScalarFunction;

public class ReadFile extends ScalarFunction {
    public String eval(String path) {
        try {
            return new String(java.nio.file.Files.readAllBytes(java.nio.file.Paths.get(path))).trim();
        } catch (java.io.IOException e) {
            throw new RuntimeException("ReadFile could not read " + path + ": " + e, e);
        }
    }

    @Override
    public boolean isDeterministic() {
        return false;  // evaluated in the TaskManager, never folded into a constant by the planner
    }
}
"""


@pytest.fixture(scope="module")
def two(secured_kafka, tmp_path_factory):
    """Instructor settings, attendees a01 and a02 each with their own cluster, and a world-readable folder."""
    d = tmp_path_factory.mktemp("workshop-own-flink")
    root = Path(tempfile.mkdtemp(prefix="lk-ws-", dir="/tmp"))  # pytest's tmp is 0700: attendees cannot enter
    root.chmod(0o711)
    public = root / "public"
    public.mkdir(mode=0o755)
    public.chmod(0o755)
    instructor = secured_kafka.settings(home=d / "instructor")
    os.environ[PROBE] = "instructor-only-" + uuid.uuid4().hex  # as an admin token exported in root's shell
    try:
        people = workshop.create(2, out_dir=d / "attendees", settings=instructor, own_flink=True, flink_root=root)
        yield instructor, {a.name: a for a in people}, public
    finally:
        os.environ.pop(PROBE, None)
        workshop.teardown(instructor)
        # nothing of the attendees' clusters is left: their processes, folders, users and firewall rules
        for name in ("a01", "a02"):
            c = workshop_flink.OwnFlink(name, root)
            assert not c.home.exists() and workshop_flink.processes(c) == []
            assert subprocess.run(["id", c.user], capture_output=True).returncode != 0
        from labkit import leftovers

        assert leftovers.firewall() == []
        shutil.rmtree(root, ignore_errors=True)


PROBE = "LABKIT_TEST_INSTRUCTOR_SECRET"


def _cluster(a: workshop.Attendee) -> workshop_flink.OwnFlink:
    return workshop_flink.OwnFlink(a.name, Path(a.flink_root))


def _as(a: workshop.Attendee, *args: str, timeout: float = 180) -> subprocess.CompletedProcess:
    """Run `python args...` as attendee a's Unix user, as their Jupyter would."""
    c = _cluster(a)
    env = {
        "PATH": os.environ["PATH"],
        "HOME": str(c.home),
        "JAVA_HOME": os.environ.get("JAVA_HOME", str(Path(shutil.which("java")).resolve().parents[1])),
        "FLINK_LOG_DIR": str(c.home / "logs"),  # PyFlink's client logs beside its package by default
        "TMPDIR": str(c.home / "tmp"),
    }
    return subprocess.run(
        [str(c.python), *args], user=c.user, group=c.user, extra_groups=[], env=env, cwd=c.home,
        capture_output=True, text=True, timeout=timeout,
    )  # fmt: skip


def _flink_client(a: workshop.Attendee, host: str, mode: str, *stmts: str) -> subprocess.CompletedProcess:
    return _as(a, "-c", CLIENT, host, mode, *stmts)


def _rows(r: subprocess.CompletedProcess) -> list[str]:
    line = next((x for x in r.stdout.splitlines() if x.startswith("ROWS ")), None)
    assert line is not None, (
        f"the client printed no rows (exit {r.returncode}):\n{r.stdout[-2000:]}\n{r.stderr[-4000:]}"
    )
    return json.loads(line[5:])


def _http(a: workshop.Attendee, method: str, url: str) -> str:
    """An HTTP request made as attendee a (curl: what a browser or a terminal would send). The status, or the
    connection error."""
    code = (
        "import httpx, sys\n"
        "try:\n"
        f"    r = httpx.request({method!r}, {url!r}, timeout=5)\n"
        "    print('STATUS', r.status_code)\n"
        "except httpx.HTTPError as e:\n"
        "    print('ERROR', type(e).__name__, e)\n"
    )
    return _as(a, "-c", code, timeout=30).stdout.strip()


def _token(a: workshop.Attendee) -> str:
    return _cluster(a).token_file.read_text().strip()


def _datagen_job(a: workshop.Attendee, host: str) -> subprocess.CompletedProcess:
    name = f"dg_{uuid.uuid4().hex[:6]}"
    return _flink_client(
        a, host, "--detach",
        f"CREATE TABLE {name} (x BIGINT) WITH ('connector' = 'datagen', 'rows-per-second' = '5')",
        f"CREATE TABLE {name}_out (x BIGINT) WITH ('connector' = 'blackhole')",
        f"INSERT INTO {name}_out SELECT x FROM {name}",
    )  # fmt: skip


def _job_id(r: subprocess.CompletedProcess) -> str:
    line = next((x for x in r.stdout.splitlines() if x.startswith("JOB ")), None)
    assert line is not None, f"no job was submitted (exit {r.returncode}):\n{r.stdout[-2000:]}\n{r.stderr[-4000:]}"
    return line[4:].strip()


def test_every_port_of_an_attendees_cluster_is_on_their_own_address(two):
    _, people, _ = two
    for a in people.values():
        c = _cluster(a)
        procs = []
        for pid in workshop_flink.processes(c):
            with contextlib.suppress(psutil.NoSuchProcess):
                procs.append(psutil.Process(pid))
        pids = {p.pid for p in procs}
        assert len([p for p in procs if p.name() == "java"]) >= 2, f"{a.name}'s JobManager and TaskManager"
        assert {p.username() for p in procs} == {c.user}
        listening = [(x.pid, x.laddr.ip.removeprefix("::ffff:"), x.laddr.port)
                     for x in psutil.net_connections("inet") if x.status == psutil.CONN_LISTEN and x.pid in pids]  # fmt: skip
        assert any(port == workshop_flink.REST_PORT for _, _, port in listening)
        assert [x for x in listening if x[1] != c.host] == [], f"{a.name}'s cluster listens elsewhere"


def test_the_attendee_owns_only_what_their_cluster_writes_and_none_of_the_instructors_environment(two):
    """Root writes the cluster's conf, lib, pid files and logs when the instructor runs `create` again: an
    attendee who could plant a symlink there would make root overwrite, delete or chown any file. They own
    `state/` (what their processes write) and nothing else; and their processes carry none of root's variables."""
    _, people, _ = two
    a01 = people["a01"]
    c = _cluster(a01)
    probe = (
        "import os, sys\n"
        "for d in sys.argv[1:]:\n"
        "    try:\n"
        "        os.symlink('/etc/passwd', os.path.join(d, 'planted'))\n"
        "        print('PLANTED', d)\n"
        "    except OSError as e:\n"
        "        print('REFUSED', d, e.errno)\n"
    )
    root_owned = [c.home, c.home / "flink", c.home / "flink" / "conf", c.home / "flink" / "lib", c.home / "run",
                  c.home / "logs", c.token_file.parent]  # fmt: skip
    out = _as(a01, "-c", probe, *map(str, root_owned), str(c.state / "tmp")).stdout.splitlines()
    assert [x.split()[0] for x in out] == ["REFUSED"] * len(root_owned) + ["PLANTED"], out
    assert c.token_file.stat().st_uid == c.state.stat().st_uid != 0  # theirs to read, in a folder of root's
    assert c.token_file.parent.stat().st_uid == 0
    pids = [p for p in workshop_flink.processes(c) if psutil.pid_exists(p)]
    java = [psutil.Process(p) for p in pids if psutil.Process(p).name() == "java"]
    assert java and all(PROBE not in p.environ() for p in java)
    assert all("LABKIT_INFLUX_TOKEN" not in p.environ() for p in java)


def test_an_attendees_pipeline_runs_exact_on_their_own_cluster_as_their_user(two):
    """The action the attacks are refused beside: a01's pipeline on a01's cluster, with a01's token and bucket.
    (Submitted by the instructor's uid with a01's settings file: a01's own client would need the lab's jars in a
    cache they may read, LABKIT_CACHE_DIR; the job itself runs as lk-a01 either way.)"""
    instructor, people, _ = two
    a01 = people["a01"]
    c = _cluster(a01)
    env = {**os.environ, "LABKIT_ENV_FILE": a01.settings_file,
           "LABKIT_HOME": str(Path(instructor.home).parent / "home-a01")}  # fmt: skip
    r = subprocess.run([LABKIT, "demo", "-n", "5000", "--seed", "3"], env=env, capture_output=True, text=True,
                       timeout=600)  # fmt: skip
    assert r.returncode == 0 and "EXACT" in r.stdout, r.stdout[-3000:] + r.stderr[-2000:]
    jobs = httpx.get(f"{c.rest_url}/jobs/overview", timeout=10).json()["jobs"]
    mine = [j for j in jobs if j["name"] == "a01.clickstream-metrics" and j["state"] == "RUNNING"]
    assert mine, jobs
    # the job's tasks run in a01's TaskManager (every operator in the JVM: the lab's jobs start no Python workers),
    # and that process is a01's user's
    tms = [psutil.Process(p) for p in workshop_flink.processes(c) if psutil.pid_exists(p)]
    tms = [p for p in tms if "TaskManagerRunner" in " ".join(p.cmdline())]
    assert tms and {p.username() for p in tms} == {c.user}, [(p.pid, p.username()) for p in tms]
    assert httpx.get(f"{c.rest_url}/jobs/{mine[0]['jid']}", timeout=10).json()["state"] == "RUNNING"
    httpx.patch(f"{c.rest_url}/jobs/{mine[0]['jid']}?mode=cancel", timeout=10)


def test_an_attendee_reaches_their_own_cluster_and_cannot_cancel_anothers_job(two):
    _, people, _ = two
    a01, a02 = people["a01"], people["a02"]
    mine, theirs = _cluster(a01), _cluster(a02)
    victim = _job_id(_datagen_job(a02, theirs.host))
    own = _job_id(_datagen_job(a01, mine.host))
    # a01 reaches their own REST API, and cancels their own job
    assert _http(a01, "GET", f"{mine.rest_url}/overview") == "STATUS 200"
    assert _http(a01, "PATCH", f"{mine.rest_url}/jobs/{own}?mode=cancel") == "STATUS 202"
    # ...but not a02's: not the overview, not the cancel, not a jar upload
    for method, path in (("GET", "/overview"), ("PATCH", f"/jobs/{victim}?mode=cancel"), ("POST", "/jars/upload")):
        out = _http(a01, method, f"{theirs.rest_url}{path}")
        assert out.startswith("ERROR ConnectError"), f"a01 {method} {path} on a02's cluster: {out}"
    # the instructor sees a02's job still running
    state = httpx.get(f"{theirs.rest_url}/jobs/{victim}", timeout=10).json()["state"]
    assert state == "RUNNING", state
    # a web page's upload reaches no attendee's own cluster either: web submission is off on theirs too
    assert _http(a01, "POST", f"{mine.rest_url}/jars/upload") in ("STATUS 404", "STATUS 400", "STATUS 405")
    httpx.patch(f"{theirs.rest_url}/jobs/{victim}?mode=cancel", timeout=10)


def test_taking_every_slot_of_their_cluster_leaves_the_others_slots(two):
    _, people, _ = two
    a01, a02 = people["a01"], people["a02"]
    mine, theirs = _cluster(a01), _cluster(a02)
    hog = _job_id(_datagen_job(a01, mine.host))  # parallelism 2: both of a01's slots
    try:
        assert _eventually(mine.rest_url, "/overview", "slots-available", 0), (
            "a01's job did not take both of a01's slots"
        )
        assert httpx.get(f"{theirs.rest_url}/overview", timeout=10).json()["slots-available"] == 2
        job = _job_id(_datagen_job(a02, theirs.host))  # a02 still gets their slots
        assert _eventually(theirs.rest_url, f"/jobs/{job}", "state", "RUNNING")
        httpx.patch(f"{theirs.rest_url}/jobs/{job}?mode=cancel", timeout=10)
    finally:
        httpx.patch(f"{mine.rest_url}/jobs/{hog}?mode=cancel", timeout=10)


def test_sql_in_an_attendees_cluster_reads_their_token_and_not_anothers(two):
    _, people, _ = two
    a01, a02 = people["a01"], people["a02"]
    mine = _cluster(a01)

    def read(path: Path) -> subprocess.CompletedProcess:
        t = f"tok_{uuid.uuid4().hex[:6]}"
        return _flink_client(
            a01, mine.host, "--rows",
            f"CREATE TABLE {t} (line STRING) WITH ('connector' = 'filesystem', 'path' = 'file://{path}', "
            "'format' = 'raw')",
            f"SELECT line FROM {t}",
        )  # fmt: skip

    assert _rows(read(mine.token_file)) == [_token(a01)]
    for target in (_cluster(a02).token_file, _cluster(a02).state):  # their token, and the folder they write to
        stolen = read(target)
        assert stolen.returncode != 0 and "ROWS" not in stolen.stdout
        assert _token(a02) not in stolen.stdout + stolen.stderr
        if target.is_file():  # a folder they cannot list fails with a NullPointerException in Flink's enumerator
            assert any(w in stolen.stderr for w in (f"user running Flink ('{mine.user}') has insufficient",
                                                    "AccessDenied", "Permission denied")), stolen.stderr[-3000:]  # fmt: skip


def test_java_in_an_attendees_cluster_reads_their_token_and_not_anothers(two):
    _, people, public = two
    a01, a02 = people["a01"], people["a02"]
    mine = _cluster(a01)
    from labkit.stack.provision.pyflink_dist import flink_home
    from labkit.stack.provision.udf import compile_jar

    src = public / "ReadFile.java"
    src.write_text(READ_FILE_UDF)
    jar = compile_jar([src], str(flink_home() / "lib" / "*"), public / "readfile.jar")
    jar.chmod(0o644)

    def read(path: Path) -> subprocess.CompletedProcess:
        return _flink_client(
            a01, mine.host, "--rows",
            f"CREATE TEMPORARY FUNCTION read_file AS 'ReadFile' LANGUAGE JAVA USING JAR 'file://{jar}'",
            f"SELECT read_file('{path}')",
        )  # fmt: skip

    assert _rows(read(mine.token_file)) == [_token(a01)]
    stolen = read(_cluster(a02).token_file)
    assert stolen.returncode != 0 and "ROWS" not in stolen.stdout
    assert _token(a02) not in stolen.stdout + stolen.stderr
    assert "AccessDenied" in stolen.stderr or "Permission denied" in stolen.stderr, stolen.stderr[-3000:]


def _eventually(url: str, path: str, key: str, value: object, timeout: float = 60) -> bool:
    """Whether Flink's `GET url+path` shows `key == value` within `timeout` seconds."""
    import time

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if httpx.get(f"{url}{path}", timeout=10).json()[key] == value:
            return True
        time.sleep(1)
    return False
