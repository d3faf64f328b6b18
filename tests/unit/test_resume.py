"""Where a resubmitted pipeline resumes from: the newest of its last job's retained checkpoint and its last
savepoint; nothing after `forget` (a recreated topic, a wipe)."""

import os
import time

from labkit.jobs import resume
from labkit.settings import load


def _checkpoint(home, job_id, n, age_s=0):
    d = home / "flink" / "checkpoints" / job_id / f"chk-{n}"
    d.mkdir(parents=True)
    (d / "_metadata").write_bytes(b"x")
    t = time.time() - age_s
    os.utime(d, (t, t))
    return d


def test_latest_restore_point(tmp_path):
    s = load(home=tmp_path, flink_rest_url="http://127.0.0.1:1")  # no JobManager knows these jobs: disk only
    assert resume.latest(s, "p") is None
    resume.record_job(s, "p", "job1")
    _checkpoint(tmp_path, "job1", 3, age_s=100)
    _checkpoint(tmp_path, "job1", 12, age_s=50)
    (tmp_path / "flink" / "checkpoints" / "job1" / "chk-13").mkdir()  # in progress: no _metadata yet
    path, _ = resume.latest(s, "p")
    assert path.endswith("/job1/chk-12")

    # a later savepoint (stop with savepoint) wins over older checkpoints
    sp = tmp_path / "flink" / "savepoints" / "savepoint-1"
    sp.mkdir(parents=True)
    resume.record_savepoint(s, "p", f"file://{sp}")
    assert resume.latest(s, "p")[0] == f"file://{sp}"

    # the next job's newer checkpoint wins over that savepoint; a job without one falls back to the previous
    resume.record_job(s, "p", "job2")
    resume.record_job(s, "p", "job3")  # never checkpointed
    _checkpoint(tmp_path, "job2", 1)
    time.sleep(0.01)
    assert resume.latest(s, "p")[0].endswith("/job2/chk-1")

    # a restore point that was deleted is not offered
    sp.rmdir()
    resume.forget(s, "p")
    assert resume.latest(s, "p") is None
    assert resume.latest(s, "other") is None


def test_restore_points_belong_to_their_cluster(tmp_path):
    """The local and docker JobManagers share 127.0.0.1:8081 and labkit's home; neither may resume from the
    other's checkpoints (docker mode once tried a local checkpoint path, and Flink rejected the job)."""
    local = load(home=tmp_path, flink_rest_url="http://127.0.0.1:1")
    docker = load(home=tmp_path, flink_rest_url="http://127.0.0.1:1", mode="docker")
    resume.record_job(local, "p", "job1")
    _checkpoint(tmp_path, "job1", 4)
    assert resume.latest(local, "p")[0].endswith("/job1/chk-4")
    assert resume.latest(docker, "p") is None
    resume.record_job(docker, "p", "job1")  # even a job id docker recorded is not looked up on the host's disk
    assert resume.latest(docker, "p") is None
    assert resume.latest(local, "p")[0].endswith("/job1/chk-4")
    ext_a = load(home=tmp_path, mode="external", flink_rest_url="http://10.0.0.1:8081")
    ext_b = load(home=tmp_path, mode="external", flink_rest_url="http://10.0.0.2:8081")
    assert len({resume.cluster_id(s) for s in (local, docker, ext_a, ext_b)}) == 4


def test_a_wipe_forgets_only_its_own_clusters_restore_points(tmp_path):
    """`labkit down --wipe` deletes a cluster's savepoints; its restore points must go with them (a CI run's
    docker demo tried to resume from a savepoint of a wiped volume), and only its own."""
    local = load(home=tmp_path, flink_rest_url="http://127.0.0.1:1")
    docker = load(home=tmp_path, flink_rest_url="http://127.0.0.1:1", mode="docker")
    sp = tmp_path / "sp"
    sp.mkdir()
    for s in (local, docker):
        resume.record_savepoint(s, "p", f"file://{sp}")
        resume.record_savepoint(s, "p-other-topic", f"file://{sp}")
    resume.forget_cluster(docker)
    assert resume.latest(docker, "p") is None and resume.latest(docker, "p-other-topic") is None
    assert resume.latest(local, "p")[0] == f"file://{sp}"
    assert resume.latest(local, "p-other-topic")[0] == f"file://{sp}"
