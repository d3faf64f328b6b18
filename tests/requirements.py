"""What a suite needs from the machine (root, kcat). On a laptop a missing need skips the suite, with the reason;
in CI (CI=true) it fails it: CI's machine installs everything (`make system`), so a skip there would let a
regression in a skipped suite pass unseen."""

from __future__ import annotations

import os

import pytest


def need(ok: bool, what: str) -> None:
    """Go on when `ok`; otherwise skip (a laptop) or fail (CI), saying `what` is missing."""
    if ok:
        return
    if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
        pytest.fail(f"CI must run this suite, but {what}", pytrace=False)
    pytest.skip(what)
