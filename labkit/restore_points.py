"""Restore points: which checkpoint or savepoint each pipeline resumes from, per cluster (a JSON file per
pipeline name in the lab's home). The store knows nothing of Flink, so the stack backends (which forget a
cluster's restore points on `down --wipe`) and a Job (which records its savepoint) use it without importing the
job machinery; `labkit.jobs.resume` asks Flink which restore point is the newest.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

from labkit.settings import Settings


def cluster_id(settings: Settings) -> str:
    """local, docker, or external-<hash of the JobManager's address>: whose checkpoints these are."""
    if settings.mode != "external":
        return settings.mode
    import hashlib

    return "external-" + hashlib.sha1(settings.flink.encode()).hexdigest()[:8]


def _state_path(settings: Settings, name: str) -> Path:
    return settings.home / "jobs" / f"{name}.{cluster_id(settings)}.restore.json"


def _load(settings: Settings, name: str) -> dict:
    p = _state_path(settings, name)
    try:
        return json.loads(p.read_text())
    except (OSError, ValueError):
        return {}


def _save(settings: Settings, name: str, state: dict) -> None:
    p = _state_path(settings, name)
    p.parent.mkdir(parents=True, exist_ok=True)
    p.write_text(json.dumps(state, indent=1))


def record_job(settings: Settings, name: str, job_id: str) -> None:
    state = _load(settings, name)
    state["jobs"] = [*state.get("jobs", [])[-9:], job_id]
    _save(settings, name, state)


def record_savepoint(settings: Settings, name: str, location: str) -> None:
    state = _load(settings, name)
    state["savepoint"] = {"path": location, "at_ms": int(time.time() * 1000)}
    _save(settings, name, state)


def forget(settings: Settings, name: str) -> None:
    """Start the next submission fresh (e.g. after `labkit down --wipe`, or a new topic)."""
    _state_path(settings, name).unlink(missing_ok=True)


def forget_cluster(settings: Settings) -> None:
    """Forget every restore point of this cluster: its checkpoints and savepoints were just deleted
    (`labkit down --wipe`). Without this, the next submission would try to resume from a savepoint that no
    longer exists, and Flink would reject the job."""
    for p in (settings.home / "jobs").glob(f"*.{cluster_id(settings)}.restore.json"):
        p.unlink(missing_ok=True)


CHECKPOINTS_IDLE_S = 600


def prune_checkpoints(settings: Settings, live: set[str], idle_s: float = CHECKPOINTS_IDLE_S) -> list[str]:
    """Delete the local cluster's retained checkpoints that nothing can resume from any more.

    Checkpoints are retained on cancel (so `labkit submit` resumes a cancelled pipeline), which left one folder per
    job ever run until `down --wipe`. A folder is kept when its job is one a restore point names (the last ten jobs
    of every pipeline, `restore_points.record_job`), when the job is in `live` (the jobs Flink lists as not finished), or when it
    changed in the last `idle_s` seconds (a running job checkpoints every 10 s). Savepoints are never touched: an
    attendee took them on purpose. Local mode only: another cluster's disk is not ours. Returns the job ids deleted."""
    import shutil

    if settings.mode != "local":
        return []
    root = settings.home / "flink" / "checkpoints"
    if not root.is_dir():
        return []
    named = set()
    # every cluster's restore points: jobs sent from external-mode settings to this machine's Flink (a workshop
    # rehearsed locally, the cluster suites) checkpoint into the same folder
    for p in (settings.home / "jobs").glob("*.restore.json"):
        try:
            named.update(json.loads(p.read_text()).get("jobs", []))
        except (OSError, ValueError):
            return []  # a restore point cannot be read: delete nothing rather than guess
    now, gone = time.time(), []
    for d in root.iterdir():
        if not d.is_dir() or d.name in named or d.name in live or now - d.stat().st_mtime < idle_s:
            continue
        shutil.rmtree(d, ignore_errors=True)
        gone.append(d.name)
    return gone
