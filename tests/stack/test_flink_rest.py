"""Flink's REST API, attacked as a web page and a local user would: it must not take a jar upload (which would run
any code as the lab's user) and must not hand its state to scripts from other origins. Next to each refusal,
the same endpoint answers where it is allowed: labkit's own calls, and the web UI's own origin. Runs against
whichever stack is up (local or docker: the Makefile runs this suite in both)."""

from __future__ import annotations

import httpx
import pytest

pytestmark = pytest.mark.stack

EVIL = "http://evil.example"


def _jar() -> bytes:
    """The smallest zip there is: a jar needs no content for Flink to accept or refuse the upload."""
    return b"PK\x05\x06" + b"\x00" * 18


def test_a_browser_style_jar_upload_is_refused(settings, stack):
    with httpx.Client(base_url=settings.flink, timeout=15) as http:
        assert http.get("/overview").status_code == 200  # the API answers labkit
        up = http.post(
            "/jars/upload",
            files={"jarfile": ("evil.jar", _jar(), "application/x-java-archive")},
            headers={"Origin": EVIL},
        )
        assert up.status_code in (400, 404, 405), (up.status_code, up.text[:200])  # Flink: "POST request not allowed"
        assert http.get("/jars").status_code in (400, 404, 405)  # no uploaded jars to list, or run
        assert http.post("/jars/x.jar/run", headers={"Origin": EVIL}).status_code in (400, 404, 405)


def test_other_origins_get_no_cors_grant_and_the_ui_origin_does(settings, stack):
    u = httpx.URL(settings.flink)
    own = f"http://{u.host}:{u.port}"
    with httpx.Client(base_url=settings.flink, timeout=15) as http:
        theirs = http.get("/jobs/overview", headers={"Origin": EVIL})
        granted = theirs.headers.get("access-control-allow-origin")
        assert granted not in ("*", EVIL), granted  # a script on another site cannot read the answer
        mine = http.get("/jobs/overview", headers={"Origin": own})
        assert mine.status_code == 200 and mine.headers.get("access-control-allow-origin") == own
