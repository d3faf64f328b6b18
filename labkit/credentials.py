"""Credentials generated at first run: random, stored in the lab home with mode 0600, never committed.

The admin token stays with labkit; the Flink job gets a token that can only write the bucket and
notebooks get one that can only read it (created when InfluxDB is onboarded).
"""

from __future__ import annotations

import json
import os
import secrets
from dataclasses import asdict, dataclass, field
from pathlib import Path


@dataclass
class Credentials:
    influx_username: str = "labkit"
    influx_password: str = field(default_factory=lambda: secrets.token_urlsafe(18))
    influx_admin_token: str = field(default_factory=lambda: secrets.token_urlsafe(32))
    influx_write_token: str | None = None
    influx_read_token: str | None = None

    def __repr__(self) -> str:  # never print secrets in logs or notebook outputs
        return f"Credentials(user={self.influx_username!r}, secrets hidden)"


def path(home: Path) -> Path:
    return home / "secrets.json"


def load_or_create(home: Path) -> Credentials:
    p = path(home)
    if p.exists():
        return Credentials(**json.loads(p.read_text()))
    creds = Credentials()
    save(home, creds)
    return creds


def save(home: Path, creds: Credentials) -> None:
    home.mkdir(parents=True, exist_ok=True)
    p = path(home)
    tmp = p.with_suffix(".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        json.dump(asdict(creds), f, indent=2)
    os.chmod(tmp, 0o600)
    tmp.replace(p)
