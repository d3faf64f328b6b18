"""Security of the local stack on a shared machine: loopback only, private secrets, least privilege,
no secret in logs, job specs or executed notebooks."""

import os
import stat
from pathlib import Path

import psutil
import pytest

from labkit import credentials

pytestmark = pytest.mark.stack


def _tree(p: psutil.Process):
    return [p, *p.children(recursive=True)]


def test_every_listening_socket_is_on_loopback(stack):
    listening = []
    for svc in stack.services:
        proc = svc.process.process()
        assert proc is not None, f"{svc.name} is not running"
        for p in _tree(proc):
            try:
                conns = p.net_connections(kind="inet")
            except psutil.Error:
                continue
            listening += [(svc.name, c.laddr.ip, c.laddr.port) for c in conns if c.status == psutil.CONN_LISTEN]
    assert listening
    exposed = [x for x in listening if x[1] not in ("127.0.0.1", "::1", "::ffff:127.0.0.1")]
    assert not exposed, f"listening beyond loopback: {exposed}"


def test_secrets_are_private(settings, stack):
    for path in [credentials.path(settings.home), settings.home / "jobs" / "influx-write.token"]:
        if path.exists():
            assert stat.S_IMODE(os.stat(path).st_mode) == 0o600, path


def test_no_secret_in_logs_job_specs_or_notebook_outputs(settings, stack):
    creds = credentials.load_or_create(settings.home)
    secrets = [
        s
        for s in (creds.influx_admin_token, creds.influx_password, creds.influx_write_token, creds.influx_read_token)
        if s
    ]
    places = list((settings.home / "logs").glob("*")) + list((settings.home / "jobs").glob("*.json"))
    places += list((Path(__file__).resolve().parents[2] / "build" / "notebooks").rglob("*.ipynb"))
    for path in places:
        text = path.read_text(errors="ignore")
        for secret in secrets:
            assert secret not in text, f"a secret appears in {path}"
