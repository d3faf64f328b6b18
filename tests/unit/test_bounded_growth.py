"""What the lab leaves on disk stays bounded on a machine that keeps it for weeks (issue: growth without bound):
job specs are pruned to the newest few, retained checkpoints nothing can resume from are deleted, and a service's
console log is rotated. File logic only: which job ids are live is an argument, so these run without a cluster
(the pipeline suites submit and cancel real jobs through the same code)."""

from __future__ import annotations

import os
import time

from labkit import restore_points
from labkit.jobs.control import prune_specs
from labkit.settings import Settings, load
from labkit.stack.process import rotate


def _spec(d, name, ms):
    p = d / f"{name}-{ms}.json"
    p.write_text("{}")
    return p


def test_only_the_newest_specs_stay_and_nothing_else_is_touched(tmp_path):
    base = 1_790_000_000_000
    specs = [_spec(tmp_path, "clickstream-metrics", base + i) for i in range(40)]
    others = [tmp_path / "clickstream-metrics.local.restore.json", tmp_path / "preview-q.json"]
    for p in others:
        p.write_text("{}")
    gone = prune_specs(tmp_path, keep=30)
    assert sorted(gone) == specs[:10]
    assert all(p.exists() for p in specs[10:] + others)
    assert prune_specs(tmp_path, keep=30) == []  # idempotent


def _settings(tmp_path) -> Settings:
    return Settings(mode="local", home=tmp_path / "home")


def _checkpoint(root, job_id, age_s):
    d = root / job_id / "chk-3"
    d.mkdir(parents=True)
    (d / "_metadata").write_text("x")
    t = time.time() - age_s
    os.utime(root / job_id, (t, t))
    return root / job_id


def test_checkpoints_nothing_can_resume_from_are_deleted(tmp_path):
    s = _settings(tmp_path)
    root = s.home / "flink" / "checkpoints"
    named, live, fresh, orphan = "a" * 32, "b" * 32, "c" * 32, "d" * 32
    for j in (named, live, orphan):
        _checkpoint(root, j, age_s=3600)
    _checkpoint(root, fresh, age_s=5)
    (s.home / "jobs").mkdir(parents=True)
    restore_points.record_job(s, "clickstream-metrics", named)
    assert restore_points.prune_checkpoints(s, live={live}) == [orphan]
    assert sorted(p.name for p in root.iterdir()) == sorted([named, live, fresh])


def test_an_unreadable_restore_point_deletes_nothing(tmp_path):
    s = _settings(tmp_path)
    root = s.home / "flink" / "checkpoints"
    _checkpoint(root, "d" * 32, age_s=3600)
    (s.home / "jobs").mkdir(parents=True)
    (s.home / "jobs" / "x.local.restore.json").write_text("{not json")
    assert restore_points.prune_checkpoints(s, live=set()) == []
    assert (root / ("d" * 32)).exists()


def test_another_clusters_checkpoints_are_not_ours_to_delete(tmp_path):
    s = Settings(mode="docker", home=tmp_path / "home")
    root = s.home / "flink" / "checkpoints"
    _checkpoint(root, "d" * 32, age_s=3600)
    assert restore_points.prune_checkpoints(s, live=set()) == []
    assert (root / ("d" * 32)).exists()


def test_a_log_past_its_limit_is_rotated_once(tmp_path):
    log = tmp_path / "kafka.log"
    log.write_bytes(b"x" * 2000)
    assert rotate(log, max_bytes=1000)
    assert not log.exists() and (tmp_path / "kafka.log.1").stat().st_size == 2000
    log.write_bytes(b"y" * 10)
    assert not rotate(log, max_bytes=1000)  # under the limit: left alone
    assert log.read_bytes() == b"y" * 10
    assert not rotate(tmp_path / "never-written.log")


def test_a_wipe_takes_the_jobs_write_token_with_it(tmp_path):
    """`labkit down --wipe` deletes the InfluxDB that issued the jobs' write token; the token file went on lying
    in the lab's home. A stopped lab in a home of this test's own: nothing runs there, nothing is stopped."""
    from labkit.stack.local import LocalStack

    s = load(home=tmp_path / "home", mode="local")
    token = s.home / "jobs" / "influx-write.token"
    token.parent.mkdir(parents=True)
    token.write_text("secret")
    keep = _spec(token.parent, "clickstream-metrics", 1_790_000_000_000)
    LocalStack(s).down(wipe=True)
    assert not token.exists() and not (s.home / "secrets.json").exists()
    assert keep.exists()  # specs are pruned by count, not wiped


def test_a_checkpoint_of_another_clusters_restore_point_is_kept(tmp_path):
    """Jobs sent from external-mode settings to this machine's Flink checkpoint into the same folder."""
    s = _settings(tmp_path)
    root = s.home / "flink" / "checkpoints"
    theirs = "e" * 32
    _checkpoint(root, theirs, age_s=3600)
    (s.home / "jobs").mkdir(parents=True)
    ext = load(home=tmp_path / "home", mode="external", flink_rest_url="http://127.0.0.1:8081", influx_token="t" * 20)
    restore_points.record_job(ext, "clickstream-metrics", theirs)
    assert restore_points.prune_checkpoints(s, live=set()) == []
