"""Where labkit keeps things: the lab's own files beside the package (compose/, grafana/, notebooks/), a cache
for provisioned artifacts, a home for data, logs and secrets."""

from __future__ import annotations

import os
from pathlib import Path

from platformdirs import user_cache_dir, user_data_dir

# The lab's checkout: the package and, beside it, the files it drives. Every module takes these from here.
PACKAGE_DIR = Path(__file__).resolve().parent
REPO_ROOT = PACKAGE_DIR.parent
COMPOSE_DIR = REPO_ROOT / "compose"
GRAFANA_DIR = REPO_ROOT / "grafana"
NOTEBOOKS_DIR = REPO_ROOT / "notebooks"


def cache_dir() -> Path:
    """Provisioned artifacts, per version; safe to share between lab homes."""
    return Path(os.environ.get("LABKIT_CACHE_DIR") or user_cache_dir("labkit"))


def default_home() -> Path:
    """Data, logs, pid files and secrets of the local stack."""
    return Path(user_data_dir("labkit"))
