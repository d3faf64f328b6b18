"""Shared fixtures. Stack and pipeline tests talk to the real local stack (`labkit up`)."""

from __future__ import annotations

import atexit
import os
import signal
import uuid

import pytest

from labkit import leftovers
from labkit import settings as settings_mod


def pytest_configure(config):
    """Every process this run starts is marked as this run's (labkit.leftovers), and what a killed run left
    is ended first. SIGTERM (a `timeout`, a cancelled CI job) ends the run like Ctrl-C: the fixtures' teardowns
    run, and `pytest_unconfigure` ends whatever they did not."""
    os.environ[leftovers.MARK] = str(os.getpid())
    cleaned = leftovers.clean_stale()
    if cleaned:
        print(f"[tests] removed what an earlier, interrupted run left: {'; '.join(cleaned.lines())}")

    def interrupted(signum, frame):
        signal.signal(signal.SIGTERM, signal.SIG_IGN)  # already ending: a second signal must not cut the teardown
        raise KeyboardInterrupt(f"signal {signum}")

    signal.signal(signal.SIGTERM, interrupted)
    atexit.register(_end_what_this_run_left)  # also when a signal cut pytest's own unconfigure short


def _end_what_this_run_left():
    from labkit.jobs import warm_client

    warm_client.close_all()  # this process's warm PyFlink clients end with it, not as leftovers
    ended = leftovers.clean_owned(os.getpid())
    if os.geteuid() == 0 and leftovers.MADE_NAMESPACES:  # only a run that made test hosts removes them
        ended.namespaces = leftovers.remove_namespaces(only_unowned_by_live_runs=True)
    if ended:
        print(f"[tests] ended what this run's tests left running: {'; '.join(ended.lines())}")


def pytest_unconfigure(config):
    _end_what_this_run_left()


@pytest.fixture(scope="session")
def settings():
    settings_mod.get.cache_clear()
    return settings_mod.get()


@pytest.fixture(scope="session")
def stack(settings):
    from labkit import stack as stack_mod

    st = stack_mod.get(settings)
    st.up()  # a no-op when `make test` already brought it up
    return st


@pytest.fixture
def unique_topic(settings, stack):
    from labkit.stack.kafka import ensure_topics

    topic = f"t_{uuid.uuid4().hex[:10]}"
    ensure_topics(
        settings.kafka, settings.model_copy(update={"topic": topic, "dlq_topic": settings.dlq_topic_for(topic)})
    )
    return topic
