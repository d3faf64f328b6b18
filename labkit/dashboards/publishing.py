"""Publishing: the dashboard JSON files Grafana provisions (grafana/dashboards/, `make dashboards`), and a
dashboard pushed to the running Grafana (docker mode)."""

from __future__ import annotations

import json
from pathlib import Path

from labkit.dashboards.boards import DASHBOARDS
from labkit.dashboards.model import Dashboard
from labkit.paths import GRAFANA_DIR
from labkit.settings import Settings
from labkit.settings import get as get_settings


def write_grafana(dest: Path = GRAFANA_DIR / "dashboards") -> list[Path]:
    """Regenerate grafana/dashboards/*.json from the lab's dashboards (boards.py; `make dashboards`)."""
    dest.mkdir(parents=True, exist_ok=True)
    out = []
    for d in DASHBOARDS:
        p = dest / f"{d.uid}.json"
        p.write_text(json.dumps(d.grafana(), indent=2) + "\n")
        out.append(p)
    return out


def publish(dashboard: Dashboard, settings: Settings | None = None) -> str | None:
    """Docker mode: create or update `dashboard` in the running Grafana (its HTTP API, admin login from
    compose/.env); returns the dashboard's URL, or None when Grafana is not running (local mode)."""
    import httpx

    from labkit.errors import ServiceError
    from labkit.stack.docker import compose_env

    settings = settings or get_settings()
    password = compose_env().get("GRAFANA_ADMIN_PASSWORD")
    try:
        httpx.get(f"{settings.grafana_url}/api/health", timeout=2).raise_for_status()
    except httpx.HTTPError:
        return None
    r = httpx.post(
        f"{settings.grafana_url}/api/dashboards/db",
        json={"dashboard": dashboard.grafana(), "overwrite": True},
        auth=("admin", password or ""),
        timeout=10,
    )
    if r.status_code >= 400:
        raise ServiceError(f"Grafana refused the dashboard (HTTP {r.status_code}): {r.text[:200]}")
    return settings.grafana_url + r.json().get("url", "")
