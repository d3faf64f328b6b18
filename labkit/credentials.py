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
    write_secret(path(home), json.dumps(asdict(creds), indent=2))


def write_secret(target: Path, text: str) -> Path:
    """Write `text` to `target`, readable and writable by its owner only (0600), never through a symlink.

    Every file labkit writes secrets to goes through here (secrets.json, token files, attendees' settings
    files, `labkit submit --spec-file`). A symlink planted at the target (or at a fixed temporary name, as
    `secrets.tmp` used to be) would make a plain open() write the secret wherever the link points: into a
    file its planter can read, or over one of ours. So:

    * a symlink at `target` is refused outright (its own target is left untouched);
    * the text goes to a fresh, randomly named file in the same folder, created with
      O_CREAT|O_EXCL|O_NOFOLLOW and mode 0600 in the same call: it cannot be an existing file or a link, and
      is never readable by others, not even for a moment;
    * that file is renamed over `target`. rename() replaces the directory entry itself and never follows a
      link there, so a link planted after the check above is replaced, not written through.
    """
    from labkit.errors import ConfigError

    target = Path(target)
    if target.is_symlink():
        raise ConfigError(
            f"{target} is a symbolic link; labkit does not write secrets through links.",
            f"remove the link ({target}) or choose another path",
        )
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(f".{target.name}.{secrets.token_hex(8)}.tmp")
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | getattr(os, "O_CLOEXEC", 0)
    fd = os.open(tmp, flags, 0o600)
    try:
        with os.fdopen(fd, "w") as f:
            os.fchmod(f.fileno(), 0o600)  # exactly 0600, whatever the umask took away
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, target)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return target
