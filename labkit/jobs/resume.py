"""Where a pipeline resumes from: its latest retained checkpoint or savepoint (state and offsets together).

Submitting the pipeline again (after a cancel, a failure, a `labkit down`) must not start from the consumer
group's committed offsets with empty state: windows that were open would get a partial count, which then
overwrites the complete point in InfluxDB. labkit records, per pipeline name, the jobs it submitted and the
savepoints it took (home/jobs/<name>.<cluster>.restore.json); the restore point is the newest of the last
job's completed checkpoint (from Flink's REST API, or, locally, from the checkpoint folder when the JobManager
has restarted since) and the last savepoint.

Restore points belong to a cluster: the local and the docker JobManager share an address (127.0.0.1:8081) and
labkit's home, but neither can read the other's checkpoints. (A CI run submitted the docker-mode pipeline
"from" a local checkpoint, and the job was rejected.)
"""

from __future__ import annotations

from pathlib import Path

from labkit.restore_points import (  # noqa: F401  (the store, re-exported for callers of this module)
    _load,
    _save,
    _state_path,
    cluster_id,
    forget,
    forget_cluster,
    record_job,
    record_savepoint,
)
from labkit.settings import Settings


def latest(settings: Settings, name: str) -> tuple[str, int] | None:
    """(location, taken at ms) of the newest restore point of pipeline `name`, or None."""
    state = _load(settings, name)
    candidates: list[tuple[int, str]] = []
    sp = state.get("savepoint")
    if sp:
        candidates.append((sp["at_ms"], sp["path"]))
    for job_id in reversed(state.get("jobs", [])):
        cp = _latest_checkpoint(settings, job_id)
        if cp:
            candidates.append((cp[1], cp[0]))
            break
    candidates = [(t, p) for t, p in candidates if _exists(p)]
    if not candidates:
        return None
    t, p = max(candidates)
    return p, t


def _latest_checkpoint(settings: Settings, job_id: str) -> tuple[str, int] | None:
    from labkit.jobs.control import Flink

    try:
        latest = Flink(settings.flink).checkpoints(job_id).get("latest", {}) or {}
        done = latest.get("completed") or {}
        if done.get("external_path"):
            return done["external_path"], int(done.get("latest_ack_timestamp") or done.get("trigger_timestamp") or 0)
    except Exception:  # the JobManager restarted since and forgot the job: look on disk (local mode)
        pass
    if settings.mode != "local":
        return None  # the cluster's disk is not ours to read
    folder = settings.home / "flink" / "checkpoints" / job_id
    chks = sorted(
        (p for p in folder.glob("chk-*") if (p / "_metadata").exists()), key=lambda p: int(p.name.split("-")[1])
    )
    if chks:
        return f"file://{chks[-1]}", int(chks[-1].stat().st_mtime * 1000)
    return None


def _exists(location: str) -> bool:
    """Local paths are checked; remote ones (docker/external clusters) are trusted."""
    if location.startswith("file://"):
        return Path(location[len("file://") :]).exists()
    if location.startswith("/"):
        return Path(location).exists()
    return True
