"""Job control against any backend's Flink: submit PyFlink job specs, list, cancel, stop with savepoint.

Submission builds the job in the process's warm PyFlink client (warm_client: `flink run`'s conf and lib, in a
JVM that stays) and sends it to the session cluster; a job with Python UDFs goes through `flink run -py`, which
ships the Python program. Everything else is Flink's REST API. Failures come back as one sentence: the deepest
cause, e.g. Flink's SQL message with its line and column, never a Java stack trace.
"""

from __future__ import annotations

import html
import json
import os
import re
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pandas as pd

from labkit import restore_points
from labkit.console import say
from labkit.credentials import write_secret
from labkit.errors import JobError, RestoreError, ServiceError
from labkit.jobs import warm_client
from labkit.jobs.warm_client import RUNNER
from labkit.settings import Settings
from labkit.tls import tls

_EXC = re.compile(r"^(?:Caused by: |: )?((?:[\w$]+\.)+([\w$]*(?:Exception|Error))): (.+)$")
_PREFERRED = (
    "SqlParserException",
    "ValidationException",
    "SqlValidatorException",
    "CalciteContextException",
    "TableException",
)


def root_cause(text: str) -> str:
    """The most useful single sentence in a Flink/Py4J/Python error dump."""
    found: list[tuple[str, str]] = []
    for line in text.splitlines():
        m = _EXC.match(line.strip())
        if m:
            found.append((m.group(2), m.group(3).strip()))
    for pref in _PREFERRED:
        for name, msg in found:
            if name == pref and ("line" in msg or pref != "TableException"):
                return msg
    if found:
        name, msg = found[-1]
        return f"{name}: {msg}"
    lines = [ln for ln in text.strip().splitlines() if ln.strip()]
    return lines[-1][:500] if lines else "no output"


def stale_functions(text: str) -> str | None:
    """The lab's Java class that the cluster holds in another build than the client's, if that is why Flink said
    no. The cluster loads labkit/jobs/java's jar from its lib folder when it starts; the client builds the jar from
    the sources it has, and Java refuses a class whose serialized form changed in between (its computed
    serialVersionUID differs). That catches `ParseClick` and `ClickEventTime`; the sink's classes declare their
    serialVersionUID, so a changed writer is not refused: the cluster runs the build it started with."""
    m = re.search(r"InvalidClassException: (lab\.clickstream\.[\w$]+); local class incompatible", text)
    return m.group(1) if m else None


_RESTORE = re.compile(
    r"(Cannot find checkpoint or savepoint[^\n]*|Cannot map checkpoint/savepoint state[^\n]*?program"
    r"|Failed to rollback to checkpoint/savepoint[^\n]*|Checkpoint/savepoint path [^\n]*|"
    r"Cannot access file system for checkpoint/savepoint[^\n]*)"
)


def _restore_failure(text: str) -> str | None:
    """The sentence saying why a checkpoint or savepoint could not be restored, if that is why a submission
    failed. `flink run` only reports "Python process exits with code: 1", the warm client a Py4J error: the reason
    is deeper in the output."""
    found = _RESTORE.findall(text)
    if not found:
        return None
    # the most specific: a missing file, or state without an operator, over the generic "failed to rollback"
    for key in ("Cannot find", "Cannot map", "Cannot access", "Checkpoint/savepoint path"):
        for f in found:
            if f.startswith(key):
                return f.strip().rstrip(".") + "."
    return found[0].strip().rstrip(".") + "."


class Flink:
    """Flink's REST API, with errors a user can act on."""

    def __init__(self, rest_url: str) -> None:
        self.url = rest_url.rstrip("/")

    def _req(self, method: str, path: str, **kw) -> httpx.Response:
        try:
            try:
                r = httpx.request(method, self.url + path, timeout=10, verify=tls(), **kw)
            except httpx.ConnectTimeout:
                # One more connection, from another source port. A refused or unreachable Flink fails at once
                # (ConnectError) and is not retried; a connect that times out on this machine's loopback is a
                # handshake that got no answer: once in a CI dry run, a workshop cluster's JobManager answered
                # the call just before and not that one. Not understood; a suspect is the owner rules guarding
                # its address, which drop what the kernel answers from a TIME_WAIT socket (it has no owner).
                r = httpx.request(method, self.url + path, timeout=10, verify=tls(), **kw)
        except httpx.HTTPError as e:
            raise ServiceError(
                f"Flink is not reachable at {self.url} ({type(e).__name__}).",
                "start the stack with `labkit up`, or check LABKIT_FLINK_REST_URL",
            ) from None
        if r.status_code == 404:
            raise JobError(
                f"Flink does not know {path.split('/')[2] if path.count('/') > 1 else path}.",
                "list jobs with `labkit jobs`",
            )
        if r.status_code >= 400:
            raise JobError(f"Flink answered {r.status_code} to {method} {path}: {r.text[:300]}")
        return r

    def overview(self) -> dict:
        return self._req("GET", "/overview").json()

    def jobs(self) -> list[dict]:
        return sorted(self._req("GET", "/jobs/overview").json()["jobs"], key=lambda j: -j["start-time"])

    def job(self, job_id: str) -> dict:
        return self._req("GET", f"/jobs/{job_id}").json()

    def cancel(self, job_id: str) -> None:
        self._req("PATCH", f"/jobs/{job_id}", params={"mode": "cancel"})

    def checkpoints(self, job_id: str) -> dict:
        return self._req("GET", f"/jobs/{job_id}/checkpoints").json()

    def exception(self, job_id: str) -> str | None:
        ex = self._req("GET", f"/jobs/{job_id}/exceptions").json()
        hist = ex.get("exceptionHistory", {}).get("entries") or []
        text = ex.get("root-exception") or (hist[0].get("stacktrace") if hist else None)
        return root_cause(text) if text else None

    def stop_with_savepoint(self, job_id: str, target_dir: str | None = None, timeout: float = 120) -> str:
        body = {"drain": False, **({"targetDirectory": target_dir} if target_dir else {})}
        trigger = self._req("POST", f"/jobs/{job_id}/stop", json=body).json()["request-id"]
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            st = self._req("GET", f"/jobs/{job_id}/savepoints/{trigger}").json()
            if st["status"]["id"] == "COMPLETED":
                op = st.get("operation", {})
                if "failure-cause" in op:
                    raise JobError(f"the savepoint failed: {root_cause(op['failure-cause'].get('stack-trace', ''))}")
                return op["location"]
            time.sleep(0.5)
        raise JobError(f"the savepoint of {job_id} did not complete in {timeout:.0f}s.", "see `labkit logs jobmanager`")


def _instant(ms: float) -> pd.Timestamp:
    """A watermark in epoch ms as a UTC timestamp; Flink's "none yet" (Long.MIN_VALUE) and "done" (MAX) as NaT."""
    return pd.to_datetime(int(ms), unit="ms", utc=True) if 0 < ms < 2**62 else pd.NaT


def _ratio(v) -> float:
    """A back-pressure ratio from the REST API: a number, or "NaN"/absent while a subtask is not sampled yet."""
    try:
        r = float(v)
    except (TypeError, ValueError):
        return 0.0
    return r if r == r else 0.0


def _short(name: str, width: int = 90) -> str:
    """A vertex name without Flink's long operator descriptions: 'Source: events_raw -> Calc -> ...'."""
    import re

    name = re.sub(r"\[\d+\]:?", "", name)
    name = re.sub(r"\((?:[^()]|\([^()]*\))*\)", "", name)  # drop argument lists
    name = re.sub(r"\s+", " ", name).strip()
    return name if len(name) <= width else name[: width - 1] + "…"


@dataclass
class Job:
    """A submitted job; renders as a small card in notebooks."""

    id: str
    name: str
    flink: Flink = field(repr=False)
    #: the settings the job was submitted or found with: its savepoint is recorded in their home, not in
    #: whatever the process-wide settings say (an attendee's job, another mode's stack)
    settings: Settings | None = field(default=None, repr=False)

    @property
    def lab(self):
        """The job's own context (labkit.context): its settings' stack, addresses and tokens."""
        from labkit import context

        return context.of(self.settings)

    def info(self) -> dict:
        return self.flink.job(self.id)

    @property
    def state(self) -> str:
        return self.info()["state"]

    def wait_for(self, *states: str, timeout: float = 60) -> str:
        """Wait until the job is in one of `states`; a failure raises with its root cause."""
        deadline = time.monotonic() + timeout
        while True:
            st = self.state
            if st in states:
                return st
            if st in ("FAILED", "FAILING") and "FAILED" not in states:
                raise JobError(f"job {self.name} failed: {self.flink.exception(self.id) or 'no exception recorded'}")
            if time.monotonic() > deadline:
                cause = self.flink.exception(self.id)
                raise JobError(
                    f"job {self.name} is {st}, not {'/'.join(states)}, after {timeout:.0f}s"
                    + (f"; last error: {cause}" if cause else "."),
                    "see `labkit logs taskmanager`",
                )
            time.sleep(0.5)

    def wait_running(self, timeout: float = 90) -> Job:
        """Wait until every task of the job runs (not only the job: sources must be reading)."""
        self.wait_for("RUNNING", timeout=timeout)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            vertices = self.info().get("vertices", [])
            if vertices and all(v["status"] == "RUNNING" for v in vertices):
                return self
            if self.state in ("FAILED", "RESTARTING"):
                cause = self.flink.exception(self.id)
                if self.state == "FAILED":
                    raise JobError(f"job {self.name} failed: {cause}")
            time.sleep(0.5)
        raise JobError(f"job {self.name}'s tasks did not all start in {timeout:.0f}s.", "see `labkit logs taskmanager`")

    def cancel(self) -> None:
        self.flink.cancel(self.id)
        self.wait_for("CANCELED", "FAILED", "FINISHED", timeout=60)

    def stop(self, savepoint_dir: str | None = None) -> str:
        """Stop with a savepoint; returns its location. Submitting the pipeline again resumes from it."""
        from labkit import restore_points as resume
        from labkit.settings import get

        location = self.flink.stop_with_savepoint(self.id, savepoint_dir)
        resume.record_savepoint(self.settings or get(), self.name, location)
        return location

    def checkpoints(self) -> dict:
        return self.flink.checkpoints(self.id)

    def graph(self) -> pd.DataFrame:
        """The job graph as the Flink UI draws it: one row per vertex (chained operators), with parallelism,
        status and the records it read and wrote so far."""
        rows = []
        for v in self.info().get("vertices", []):
            m = v.get("metrics", {})
            rows.append(
                {
                    "vertex": _short(v["name"]),
                    "parallelism": v["parallelism"],
                    "status": v["status"],
                    "records_in": m.get("read-records", 0),
                    "records_out": m.get("write-records", 0),
                    "id": v["id"],
                }
            )
        return pd.DataFrame(rows, columns=["vertex", "parallelism", "status", "records_in", "records_out", "id"])

    def watermarks(self) -> pd.DataFrame:
        """Current watermark of every vertex's subtasks (the Flink UI's Watermarks tab)."""
        rows = []
        for _, v in self.graph().iterrows():
            for w in self.flink._req("GET", f"/jobs/{self.id}/vertices/{v['id']}/watermarks").json():
                val = int(w["value"])
                rows.append(
                    {
                        "vertex": v["vertex"],
                        "subtask": int(w["id"].split(".")[0]),
                        "watermark": pd.to_datetime(val, unit="ms", utc=True) if 0 < val < 2**62 else pd.NaT,
                    }
                )
        return pd.DataFrame(rows, columns=["vertex", "subtask", "watermark"])

    def backpressure(self) -> pd.DataFrame:
        """Back pressure per vertex (the UI's BackPressure tab): ok, low or high; busy/backpressured ratios."""
        rows = []
        for _, v in self.graph().iterrows():
            b = self.flink._req("GET", f"/jobs/{self.id}/vertices/{v['id']}/backpressure").json()
            subs = b.get("subtasks", [])
            rows.append(
                {
                    "vertex": v["vertex"],
                    "level": b.get("backpressureLevel", b.get("status", "?")),
                    "busy_ratio": max((_ratio(s.get("busyRatio")) for s in subs), default=0.0),
                    "backpressured_ratio": max((_ratio(s.get("backPressuredRatio")) for s in subs), default=0.0),
                }
            )
        return pd.DataFrame(rows)

    def partition_watermarks(self, topic: str, partitions: int | None = None) -> pd.DataFrame:
        """Each Kafka partition's watermark as the job's source reports it: the connector's per-split metric
        `<source>.split.<topic>-<partition>.watermark.currentWatermark`, from the REST API. A partition that has
        sent nothing since the job started has none (Flink reports Long.MIN_VALUE): NaT here."""
        vertex = next((v["id"] for v in self.info().get("vertices", []) if v["name"].startswith("Source")), None)
        marks: dict[int, pd.Timestamp] = dict.fromkeys(range(partitions or 0), pd.NaT)
        if vertex is not None:
            base = f"/jobs/{self.id}/vertices/{vertex}/subtasks/metrics"
            want = re.compile(r"\.split\.(.+)-(\d+)\.watermark\.currentWatermark$")
            ids = [m["id"] for m in self.flink._req("GET", base).json()]
            names = [i for i in ids if (m := want.search(i)) and m[1] == topic]
            got = self.flink._req("GET", base, params={"get": ",".join(names), "agg": "max"}).json() if names else []
            for m in got:
                v = float(m["max"])
                marks[int(want.search(m["id"])[2])] = _instant(v)
        return pd.DataFrame({"partition": list(marks), "watermark": list(marks.values())}).sort_values("partition")

    def window_watermark(self) -> pd.Timestamp:
        """The event time the job's windows have reached: the smallest watermark of the window operators'
        subtasks (NaT while any of them has none)."""
        wm = self.watermarks()
        w = wm[wm["vertex"].str.contains("Window", case=False)]
        if w.empty or w["watermark"].isna().any():
            return pd.NaT
        return w["watermark"].min()

    def restarts(self) -> int:
        """How many times the job restarted (Flink's numRestarts metric)."""
        r = self.flink._req("GET", f"/jobs/{self.id}/metrics?get=numRestarts").json()
        return int(float(r[0]["value"])) if r else 0

    def _repr_html_(self) -> str:
        st = self.state
        return (
            f"<b>Flink job</b> {html.escape(self.name)} <code>{self.id}</code>: <b>{st}</b> "
            f"(<a href='{self.flink.url}/#/job/running/{self.id}/overview' target='_blank'>Flink UI</a>)"
        )


def client_env(settings: Settings, stack_mode: str) -> dict[str, str]:
    """Environment for the job client (the warm client, or `flink run`): the local cluster's conf, or a client-only conf."""
    from labkit.stack.flink import flink_env
    from labkit.stack.provision import flink as flink_dist

    env = flink_env(settings)
    if stack_mode != "local":
        u = httpx.URL(settings.flink)
        conf = settings.home / "flink-client" / stack_mode
        conf.mkdir(parents=True, exist_ok=True)
        import shutil
        import sys

        from labkit.stack.flink import CLIENT_JAVA_OPTS, _default_java_opts

        for name in ("log4j-cli.properties",):
            shutil.copy(flink_dist.flink_home() / "conf" / name, conf / name)
        (conf / "config.yaml").write_text(
            f"rest.address: {u.host}\nrest.port: {u.port or 8081}\njobmanager.rpc.address: {u.host}\n"
            f"python.client.executable: {sys.executable}\nenv.java.opts.all: {_default_java_opts()}\n"
            f"env.java.opts.client: {CLIENT_JAVA_OPTS}\n"
        )
        env["FLINK_CONF_DIR"] = str(conf)
    return env


def require_slots(flink: Flink, needed: int, name: str, wait_s: float = 15) -> None:
    """A job needs as many free task slots as its parallelism (slot sharing puts one of each operator in a
    slot). Without them it would wait in RESTARTING forever (the restart strategy waits for resources), so
    say which jobs hold the slots instead. Slots freed a moment ago (a stop, a cancel) are waited for."""
    deadline = time.monotonic() + wait_s
    while True:
        o = flink.overview()
        if o.get("slots-available", 0) >= needed or o.get("slots-total", 0) == 0:
            return  # no TaskManager registered yet: it will bring its slots (the job waits for them)
        if time.monotonic() > deadline:
            break
        time.sleep(1)
    holders = [
        f"{j['name']} ({j['jid'][:8]})" for j in flink.jobs() if j["state"] in ("RUNNING", "RESTARTING", "CREATED")
    ]
    raise JobError(
        f"{name} needs {needed} free task slot(s) but only {o.get('slots-available', 0)} of "
        f"{o.get('slots-total', 0)} are free; running: {', '.join(holders) or 'nothing'}.",
        "add a TaskManager (`labkit taskmanager add`: more slots, as another machine would bring), cancel a job you "
        "no longer need (`labkit jobs`, then `labkit cancel ID`), or submit with a lower parallelism",
    )


def heal_local_taskmanager(settings: Settings, flink: Flink, wait_s: float = 60) -> None:
    """Local mode: a TaskManager (or JobManager) that went down on its own is started again before a submission.

    Flink 2.2's Python runner can take the whole TaskManager down while a job is cancelled: closing the Beam
    environment that a slot's Python operators share fails ("Reference count must not be negative") and Flink
    treats that as fatal (seen once in CI). A job submitted then would wait for slots forever. A TaskManager
    still shutting down is waited for first; one that is starting is given time to register."""
    from labkit import stack as stack_mod

    st = stack_mod.get(settings)
    deadline = time.monotonic() + wait_s
    while True:
        dead = [
            s.name for s in st.services if s.name in ("jobmanager", "taskmanager") and s.process.state() == "crashed"
        ]
        if dead:
            say(
                f"the local {' and '.join(dead)} stopped on its own (`labkit logs taskmanager` says why); starting it again"
            )
            st.up()
        if flink.overview().get("slots-total", 0) > 0 or time.monotonic() > deadline:
            return
        time.sleep(1)


def submit_spec(
    spec: dict,
    settings: Settings,
    stack_mode: str,
    *,
    savepoint: str | None = None,
    timeout: float = 120,
) -> Job:
    """Submit a job spec (see runner.py) detached; returns once Flink has accepted it."""
    from labkit.stack.provision import flink as flink_dist
    from labkit.stack.provision import provision_client

    flink = Flink(settings.flink)
    flink.overview()  # a cluster that is down is reported before the slow client starts
    if stack_mode == "local":
        heal_local_taskmanager(settings, flink)
    require_slots(flink, int(spec["config"].get("parallelism.default", 1)), spec["config"]["pipeline.name"])
    provision_client()
    jobs_dir = settings.home / "jobs"
    jobs_dir.mkdir(parents=True, exist_ok=True)
    spec_path = jobs_dir / f"{spec['config']['pipeline.name']}-{int(time.time() * 1000)}.json"
    # a secured cluster's password is in the job's connector options: 0600, never through a planted link
    write_secret(spec_path, json.dumps(spec, indent=2))
    prune_specs(jobs_dir)
    u = httpx.URL(settings.flink)
    env = client_env(settings, stack_mode)
    python_udfs = any(re.search(r"\bLANGUAGE\s+PYTHON\b", stmt, re.I) for stmt in spec.get("ddl", []))
    if warm_client.enabled() and not python_udfs:
        # the same client conf and lib as `flink run`, in a JVM that stays (warm_client says why)
        try:
            r = warm_client.run(
                spec_path,
                timeout=timeout,
                log_dir=settings.home / "logs",
                env=env,
                remote={"host": u.host, "port": u.port or 8081},
                savepoint=savepoint,
            )
        except subprocess.TimeoutExpired:
            raise JobError(
                f"the submission did not finish in {timeout:.0f}s.", "see `labkit logs jobmanager`"
            ) from None
    else:
        # a job with Python UDFs needs `flink run -py`: it ships the Python program and starts its workers
        cmd = [str(flink_dist.flink_home() / "bin" / "flink"), "run", "-m", f"{u.host}:{u.port or 8081}", "-d"]
        if savepoint:
            cmd += ["-s", savepoint]
        cmd += ["-py", str(RUNNER), "--spec", str(spec_path)]
        try:
            r = subprocess.run(
                cmd,
                capture_output=True,
                text=True,
                env={**os.environ, **env},
                timeout=timeout,
                stdin=subprocess.DEVNULL,
            )
        except subprocess.TimeoutExpired:
            raise JobError(f"`flink run` did not finish in {timeout:.0f}s.", "see `labkit logs jobmanager`") from None
    out = r.stdout + "\n" + r.stderr
    m = re.search(r"JobID ([0-9a-f]{32})", out)
    if r.returncode != 0 or not m:
        name = spec["config"]["pipeline.name"]
        restore = _restore_failure(out) if savepoint else None
        if restore:
            raise RestoreError(
                f"Flink could not start {name} from {savepoint}: {restore}",
                "start it without the saved state: `labkit submit --fresh` (or `submit_pipeline(fresh=True)`); "
                "windows that were open when it stopped are then counted partially",
            )
        stale = stale_functions(out)
        if stale:
            restart = (
                "replace clickstream-udf.jar in the cluster's lib folder with this labkit's build (under its cache "
                "folder, udf/<hash>/) and restart the cluster"
                if stack_mode == "external"
                else f"restart Flink so it loads this build: `labkit down` then `labkit --mode {stack_mode} up`"
            )
            raise JobError(
                f"Flink rejected job {name}: the running cluster loaded another build of the lab's Java functions "
                f"than this labkit's ({stale} differs: labkit/jobs/java changed since Flink started)",
                restart,
            )
        raise JobError(f"Flink rejected job {name}: {root_cause(out)}")
    if stack_mode == "local":
        try:
            live = {j["jid"] for j in flink.jobs() if j.get("state") not in ("FINISHED", "CANCELED", "FAILED")}
        except (httpx.HTTPError, ServiceError, KeyError):
            live = None  # Flink cannot say what runs: delete nothing
        if live is not None:
            # the job this one was restored from keeps its folder: a failover before the new job's first
            # checkpoint restores from that path again (Flink's NO_CLAIM mode leaves it to us)
            source = re.search(r"/([0-9a-f]{32})/chk-\d+", savepoint or "")
            restore_points.prune_checkpoints(settings, live | {m.group(1)} | ({source.group(1)} if source else set()))
    return Job(m.group(1), spec["config"]["pipeline.name"], flink, settings)


SPECS_KEPT = 30


def prune_specs(jobs_dir: Path, keep: int = SPECS_KEPT) -> list[Path]:
    """Delete all but the `keep` newest job specs (`<pipeline>-<ms>.json`). A spec is read once, by the client,
    at submission; the newest few stay for `labkit logs` and debugging, and a day of course runs no longer
    leaves hundreds of files, each holding a secured cluster's password. Returns what it deleted."""
    specs = sorted(
        (p for p in jobs_dir.glob("*-[0-9]*.json") if re.fullmatch(r".+-\d{13}\.json", p.name)),
        key=lambda p: int(p.stem.rsplit("-", 1)[1]),
    )
    gone = specs[:-keep] if keep > 0 else specs
    for p in gone:
        p.unlink(missing_ok=True)
    return gone
