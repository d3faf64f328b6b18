"""Where labkit keeps things: a cache for provisioned artifacts, a home for data, logs and secrets."""

from __future__ import annotations

import os
from pathlib import Path

from platformdirs import user_cache_dir, user_data_dir


def cache_dir() -> Path:
    """Provisioned artifacts, per version; safe to share between lab homes."""
    return Path(os.environ.get("LABKIT_CACHE_DIR") or user_cache_dir("labkit"))


def default_home() -> Path:
    """Data, logs, pid files and secrets of the local stack."""
    return Path(user_data_dir("labkit"))
