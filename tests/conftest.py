"""Shared fixtures. Stack and pipeline tests talk to the real local stack (`labkit up`)."""

from __future__ import annotations

import uuid

import pytest

from labkit import settings as settings_mod


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
