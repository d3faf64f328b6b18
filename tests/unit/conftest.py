"""Unit tests run against a lab home of their own: what a real run left in ~/.local/share/labkit (a recorded
prediction, restore points) must not decide a unit test's result, and no unit test may write there."""

import pytest

from labkit import settings as settings_mod


@pytest.fixture(autouse=True)
def _own_lab_home(tmp_path_factory, monkeypatch):
    monkeypatch.setenv("LABKIT_HOME", str(tmp_path_factory.mktemp("labkit-home")))
    settings_mod.get.cache_clear()
    yield
    settings_mod.get.cache_clear()
