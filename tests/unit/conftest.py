"""Unit tests run against a lab home of their own: what a real run left in ~/.local/share/labkit (a recorded
prediction, restore points) must not decide a unit test's result, and no unit test may write there."""

import os

import pytest

from labkit import settings as settings_mod


@pytest.fixture(autouse=True)
def _own_lab_home(tmp_path_factory, monkeypatch):
    monkeypatch.setenv("LABKIT_HOME", str(tmp_path_factory.mktemp("labkit-home")))
    settings_mod.get.cache_clear()
    yield
    settings_mod.get.cache_clear()


@pytest.fixture
def clean(monkeypatch, tmp_path):
    """No LABKIT_ variable or .env of the caller's; a home of the test's own; the settings cache reset."""
    for k in list(os.environ):
        if k.startswith("LABKIT_"):
            monkeypatch.delenv(k)
    (tmp_path / "cwd").mkdir()
    monkeypatch.chdir(tmp_path / "cwd")
    monkeypatch.setenv("LABKIT_HOME", str(tmp_path / "home"))
    settings_mod.get.cache_clear()
    yield tmp_path
    settings_mod.get.cache_clear()
