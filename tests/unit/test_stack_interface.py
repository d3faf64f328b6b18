"""The Stack base declares what callers use, and fault drills ask for a capability, not a mode string."""

from __future__ import annotations

import pytest

from labkit import faults
from labkit import settings as settings_mod
from labkit.errors import LabkitError
from labkit.settings import load
from labkit.stack.base import Operable, Stack
from labkit.stack.docker import DockerStack
from labkit.stack.external import ExternalStack
from labkit.stack.local import LocalStack


def test_only_stacks_labkit_runs_can_take_a_service_down(tmp_path):
    local = LocalStack(load(home=tmp_path, mode="local"))
    docker = DockerStack(load(home=tmp_path, mode="docker"))
    external = ExternalStack(load(home=tmp_path, mode="external", influx_token="t" * 20))
    assert isinstance(local, Operable) and isinstance(docker, Operable)
    assert not isinstance(external, Operable)
    with pytest.raises(LabkitError, match="not in external mode"):
        faults.kill_taskmanager(external)


def test_every_backend_implements_the_whole_base():
    for cls in (LocalStack, DockerStack, ExternalStack):
        assert not getattr(cls, "__abstractmethods__", set()), cls
        assert issubclass(cls, Stack)


def test_an_external_stack_knows_its_secrets_and_the_ci_scan_finds_them(tmp_path, monkeypatch):
    """The scan of executed notebooks ran only in local mode; it now asks the stack, whatever the mode."""
    from labkit import notebooks_ci

    token, write, password = "admintoken-" + "a" * 20, "writetoken-" + "b" * 20, "kafka-pass-" + "c" * 20
    monkeypatch.setenv("LABKIT_MODE", "external")
    monkeypatch.setenv("LABKIT_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("LABKIT_INFLUX_TOKEN", token)
    monkeypatch.setenv("LABKIT_INFLUX_WRITE_TOKEN", write)
    monkeypatch.setenv("LABKIT_KAFKA_SASL_PASSWORD", password)
    settings_mod.get.cache_clear()
    try:
        out = tmp_path / "out"
        (out / "attendee").mkdir(parents=True)
        (out / "attendee" / "clean.ipynb").write_text('{"cells": []}')
        (out / "attendee" / "leaky.html").write_text(f"<pre>token = {write}</pre>")
        assert notebooks_ci._secrets_in_outputs(out) == ["attendee/leaky.html"]
        (out / "attendee" / "leaky.html").write_text("<pre>token = **********</pre>")
        assert notebooks_ci._secrets_in_outputs(out) == []
        from labkit.stack import get

        assert {token, write, password} <= set(get().secrets())
    finally:
        settings_mod.get.cache_clear()


def test_a_kernel_without_the_docker_cli_is_told_it_cannot_drill(tmp_path, monkeypatch):
    """JupyterLab in the compose `jupyter` profile runs in a container without the Docker CLI: drill 2 must say
    so (and the notebook tells the attendee what to type), not fail. No PATH here is that container's view."""
    external = ExternalStack(load(home=tmp_path, mode="external", influx_token="t" * 20))
    assert "not in external mode" in faults.cannot_drill(external)
    monkeypatch.setenv("PATH", str(tmp_path))  # no `docker` on it
    docker = DockerStack(load(home=tmp_path, mode="docker"))
    assert "Docker is not installed" in faults.cannot_drill(docker)
