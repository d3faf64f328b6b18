import contextlib

import pytest

from labkit import jobs


@pytest.fixture
def pipeline(settings, stack, unique_topic):
    """The clickstream job running on a fresh topic of its own; cancelled afterwards."""
    job = jobs.submit_pipeline(settings, topic=unique_topic, from_earliest=True)
    yield unique_topic, job
    with contextlib.suppress(Exception):
        job.cancel()
