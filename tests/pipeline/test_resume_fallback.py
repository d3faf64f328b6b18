"""Resuming when the restore point cannot be used.

Restore points go stale in two ordinary ways: the cluster's files were deleted (`labkit down --wipe`, a new
docker volume), or the job's SQL changed since (designing new metrics does that), so the saved state maps onto
no operator. A savepoint the user named gives a clear error; one labkit picked by itself is dropped and the job
starts from the committed offsets, saying so. A CI run once failed exactly here: `labkit demo` on a docker stack
tried to resume from a savepoint of a wiped volume."""

import pytest

from labkit import jobs
from labkit.errors import RestoreError
from labkit.jobs import PIPELINE, resume
from labkit.jobs.custom import EXAMPLE, CustomMetric
from labkit.produce import produce
from labkit.verify import verify

pytestmark = pytest.mark.stack


def test_a_savepoint_that_does_not_exist_is_named_with_the_fix(settings, stack, unique_topic):
    gone = "file:///flink-data/savepoints/savepoint-000000-gone" if stack.mode == "docker" else None
    gone = gone or (settings.home / "flink" / "savepoints" / "savepoint-000000-gone").as_uri()
    with pytest.raises(RestoreError) as e:
        jobs.submit_pipeline(settings, topic=unique_topic, savepoint=gone)
    assert "savepoint-000000-gone" in e.value.message and "Cannot find" in e.value.message, e.value.message
    assert "--fresh" in e.value.hint
    assert jobs.running(f"{PIPELINE}-{unique_topic}", settings) is None


def test_a_restore_point_that_no_longer_fits_the_job_is_dropped_and_the_job_starts_fresh(
    settings, stack, unique_topic, capsys
):
    # A savepoint of another program (a custom metric on the same topic) recorded as the pipeline's restore
    # point: the same situation as the pipeline's SQL having changed since it was taken.
    other = CustomMetric("resume_probe", EXAMPLE, topic=unique_topic, settings=settings).deploy(backfill_s=None)
    foreign = other.stop()
    name = f"{PIPELINE}-{unique_topic}"
    resume.record_savepoint(settings, name, foreign)
    assert resume.latest(settings, name)[0] == foreign

    job = jobs.submit_pipeline(settings, topic=unique_topic)
    try:
        said = capsys.readouterr()
        said = said.out + said.err
        assert f"resuming {name} from {foreign}" in said
        assert "Cannot map checkpoint/savepoint state" in said and "fresh from the committed offsets" in said, said
        assert job.state == "RUNNING"
        point = resume.latest(settings, name)
        assert point is None or point[0] != foreign  # dropped, so the next submission does not trip over it

        summary = produce(
            20_000, topic=unique_topic, seed=5, sim_rate=500, late_fraction=0.01, close_windows=True, settings=settings
        )
        acc = verify(summary.ledger, settings=settings, wait_s=120)
        assert acc.exact, f"{acc}\n{acc.mismatches}"
    finally:
        job.cancel()
