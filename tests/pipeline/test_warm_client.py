"""The warm PyFlink client (labkit.jobs.warm_client): one runner and its JVM serve a process's previews and
submissions, each run in a fresh TableEnvironment; a run past its deadline kills the client and its JVM, a client
killed mid-run answers as a dead process would, and the next run starts a new one. Flink's own datagen source
feeds the runs (no labkit input, no Kafka); the submissions' path is what every pipeline test takes."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import threading
import time

import psutil
import pytest

from labkit.jobs import warm_client

pytestmark = pytest.mark.stack  # a JVM of its own, like a preview: not in the unit tests' two minutes

GEN = "CREATE TEMPORARY TABLE g (x INT) WITH ('connector' = 'datagen', 'number-of-rows' = '{n}', 'fields.x.kind' = 'sequence', 'fields.x.start' = '1', 'fields.x.end' = '{n}')"
ENDLESS = "CREATE TEMPORARY TABLE g (x INT) WITH ('connector' = 'datagen', 'rows-per-second' = '1')"


def _spec(tmp_path, name: str, ddl: list[str], sql: str, timeout_s: float = 60) -> os.PathLike:
    spec = {
        "config": {"pipeline.name": name, "parallelism.default": 1, "restart-strategy.type": "none"},
        "ddl": ddl,
        "custom": {"sql": sql, "measurement": name, "stream": "none"},
        "preview": {"limit": 1000, "timeout_s": timeout_s},
    }
    path = tmp_path / f"{name}.json"
    path.write_text(json.dumps(spec))
    return path


def _rows(r: subprocess.CompletedProcess) -> list[dict]:
    return [json.loads(line.partition(" ")[2]) for line in r.stdout.splitlines() if line.startswith("LABKIT_ROW ")]


def _client_pid() -> int:
    (client, _lock), *_ = [e for k, e in warm_client._clients.items() if k == ()]
    return client.proc.pid


def _run(tmp_path, name: str, n: int | None = None, *, ddl: list[str] | None = None, sql: str = "SELECT x FROM g",
         timeout_s: float = 60, timeout: float = 120) -> subprocess.CompletedProcess:  # fmt: skip
    """A preview through the warm client: of `n` rows from datagen, unless `ddl` declares the table."""
    spec = _spec(tmp_path, name, [GEN.format(n=n)] if ddl is None else ddl, sql, timeout_s)
    return warm_client.run(spec, timeout=timeout, log_dir=tmp_path / "logs")


def _dead(p: psutil.Process) -> bool:
    """Gone, or a zombie its new parent has not reaped yet."""
    try:
        return p.status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


@pytest.fixture(scope="module", autouse=True)
def _none_left():
    """The module starts with no client and leaves none."""
    warm_client.close_all()
    yield
    warm_client.close_all()


@pytest.fixture
def fresh():
    warm_client.close_all()


@pytest.fixture
def warm(tmp_path) -> int:
    """A client that has answered a run: its pid. Each test below ends with a new client that has answered one, and
    the next test takes it over (a JVM start saved per test): the run here starts one only if none is alive."""
    assert _run(tmp_path, "warm", 1).returncode == 0
    return _client_pid()


def test_runs_share_one_jvm_and_each_gets_a_fresh_table_environment(tmp_path, fresh):
    r = _run(tmp_path, "a", 7)
    assert r.returncode == 0, r.stderr
    assert sorted(row["x"] for row in _rows(r)) == list(range(1, 8))
    pid = _client_pid()
    jvm = [p for p in psutil.Process(pid).children(recursive=True) if "java" in p.name()]
    assert len(jvm) == 1

    # the table of the first run is gone: a run sees only what its own spec declares
    r = _run(tmp_path, "b", ddl=[])
    assert r.returncode == 1 and not _rows(r)
    assert "Object 'g' not found" in r.stderr

    r = _run(tmp_path, "c", 3, sql="SELECT SUM(x) AS s FROM g")
    assert r.returncode == 0, r.stderr
    assert [row["s"] for row in _rows(r)][-1] == 6
    assert _client_pid() == pid and jvm[0].is_running()  # the same process and JVM served all three

    # its log holds the JVM's stderr, and like the specs only its owner may read it
    (log,) = (tmp_path / "logs").glob("warm-client-*.log")
    assert log.stat().st_mode & 0o777 == 0o600


def test_a_run_past_its_deadline_kills_the_client_and_its_jvm_and_the_next_starts_anew(tmp_path, warm):
    group = psutil.Process(warm).children(recursive=True)
    started = time.monotonic()
    with pytest.raises(subprocess.TimeoutExpired):
        _run(tmp_path, "endless", ddl=[ENDLESS], timeout_s=600, timeout=8)
    assert time.monotonic() - started < 60
    assert not psutil.pid_exists(warm) or psutil.Process(warm).status() == psutil.STATUS_ZOMBIE
    assert all(_dead(p) for p in group)  # its JVM went too

    r = _run(tmp_path, "after", 2)
    assert r.returncode == 0 and len(_rows(r)) == 2
    assert _client_pid() != warm


def test_a_client_killed_mid_run_answers_as_a_dead_process_and_the_next_run_starts_anew(tmp_path, warm):
    threading.Timer(6, os.kill, (warm, signal.SIGKILL)).start()  # while the endless preview runs
    r = _run(tmp_path, "endless", ddl=[ENDLESS], timeout_s=600)
    assert r.returncode == -signal.SIGKILL

    r = _run(tmp_path, "after", 4)
    assert r.returncode == 0 and len(_rows(r)) == 4
    assert _client_pid() != warm


def test_a_read_cut_short_kills_the_client_so_the_next_run_gets_its_own_answer(tmp_path, warm, monkeypatch):
    """A notebook's stop button raises KeyboardInterrupt while a preview's rows are being read: the half-read answer
    must not become the next run's (every answer one request late)."""
    client, _ = warm_client._clients[()]
    real_get = client.lines.get
    cut = {"done": False}

    def interrupted(*a, **kw):
        if not cut["done"]:
            cut["done"] = True
            raise KeyboardInterrupt
        return real_get(*a, **kw)

    monkeypatch.setattr(client.lines, "get", interrupted)
    with pytest.raises(KeyboardInterrupt):
        _run(tmp_path, "five", 5)
    r = _run(tmp_path, "two", 2)
    assert r.returncode == 0 and sorted(row["x"] for row in _rows(r)) == [1, 2]  # its own rows, not the five's
    assert _client_pid() != warm


def test_a_jvm_lost_between_runs_is_replaced_and_the_preview_still_answers(tmp_path, warm):
    (jvm,) = [p for p in psutil.Process(warm).children(recursive=True) if "java" in p.name()]
    jvm.kill()  # the OOM killer's way
    deadline = time.monotonic() + 10
    while not _dead(jvm) and time.monotonic() < deadline:
        time.sleep(0.05)  # dead, not yet reaped: the runner reaps it when it ends
    r = _run(tmp_path, "after", 3)
    assert r.returncode == 0, r.stderr
    assert sorted(row["x"] for row in _rows(r)) == [1, 2, 3]
    assert _client_pid() != warm


def test_close_all_leaves_no_process_behind(warm):
    procs = [psutil.Process(warm), *psutil.Process(warm).children(recursive=True)]
    warm_client.close_all()
    assert all(_dead(p) for p in procs)
    assert not warm_client._clients
