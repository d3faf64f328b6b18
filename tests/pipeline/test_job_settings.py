"""A job carries the settings it was submitted with: its savepoint is recorded where those settings keep
restore points, not where the process-wide settings happen to point (an attendee's home, another stack)."""

import json

import pytest

from labkit.jobs.control import Job
from labkit.jobs.resume import _state_path

pytestmark = pytest.mark.stack


def test_stop_records_the_savepoint_with_the_jobs_own_settings(settings, pipeline, tmp_path):
    topic, job = pipeline
    assert job.settings is not None and job.settings.home == settings.home  # submit_pipeline hands the job its settings
    job.wait_for("RUNNING", timeout=120)
    other = settings.model_copy(update={"home": tmp_path / "other-home"})
    mine = Job(job.id, job.name, job.flink, other)
    default_record = _state_path(settings, job.name)
    before = default_record.read_text() if default_record.exists() else None
    location = mine.stop()
    recorded = json.loads(_state_path(other, job.name).read_text())
    assert recorded["savepoint"]["path"] == location
    # and the process-wide home was left alone
    assert (default_record.read_text() if default_record.exists() else None) == before
