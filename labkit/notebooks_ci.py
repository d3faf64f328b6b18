"""Run every course notebook top to bottom with papermill (the CI smoke test).

Executed copies go to build/notebooks/; a cell error fails the run. Parameters keep CI runs short.
Usage: python -m labkit.notebooks_ci [names...]
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = ROOT / "notebooks"
OUT = ROOT / "build" / "notebooks"
TIMEOUT_S = 600  # per notebook

CI_PARAMETERS: dict[str, dict] = {
    "00_start_here": {},
    "01_producing_events": {"count": 10_000},
    "02_kafka": {},
    "03_flink": {"count": 10_000},
    "04_influxdb": {},
    "05_grafana": {},
    "06_incident_drill": {"count": 40_000},
    "07_metric_design": {"count": 10_000, "use_solution": True},
    "08_failure_and_recovery": {"count": 45_000, "rate": 3_000},
}


def run(names: list[str] | None = None) -> int:
    import papermill as pm

    os.environ.setdefault("LABKIT_PROGRESS", "lines")
    OUT.mkdir(parents=True, exist_ok=True)
    books = sorted(NOTEBOOKS.glob("[0-9][0-9]_*.ipynb"))
    if names:
        books = [b for b in books if any(b.stem.startswith(n) for n in names)]
    failures, timings = [], []
    t_all = time.monotonic()
    for nb in books:
        t0 = time.monotonic()
        print(f"[notebooks] {nb.name} ...", flush=True)
        try:
            pm.execute_notebook(
                str(nb),
                str(OUT / nb.name),
                parameters=CI_PARAMETERS.get(nb.stem, {}),
                kernel_name="python3",
                execution_timeout=TIMEOUT_S,
                progress_bar=False,
                cwd=str(NOTEBOOKS),
            )
            status = "ok"
        except Exception as e:  # papermill raises PapermillExecutionError with the failing cell
            status = "FAILED"
            failures.append((nb.name, str(e).strip().splitlines()[-1][:300] if str(e).strip() else type(e).__name__))
        dt = time.monotonic() - t0
        timings.append((nb.name, dt, status))
        print(f"[notebooks] {nb.name}: {status} in {dt:.0f}s", flush=True)
    leaked = _secrets_in_outputs(OUT)
    if leaked:
        failures.append(("outputs", f"a secret appears in the executed copies: {', '.join(leaked)}"))
    total = time.monotonic() - t_all
    print(f"[notebooks] {len(books)} notebooks in {total:.0f}s; executed copies in {OUT}")
    for name, err in failures:
        print(f"[notebooks] {name}: {err}")
    print(f"{len(books) - len(failures)} passed, {len(failures)} failed")
    return 1 if failures else 0


def _secrets_in_outputs(folder: Path) -> list[str]:
    """Executed notebooks must never show a token or password (local mode knows them all)."""
    from labkit import credentials
    from labkit.settings import get

    s = get()
    if s.mode != "local" or not credentials.path(s.home).exists():
        return []
    c = credentials.load_or_create(s.home)
    secrets = [x for x in (c.influx_admin_token, c.influx_password, c.influx_write_token, c.influx_read_token) if x]
    return [p.name for p in folder.glob("*.ipynb") if any(x in p.read_text(errors="ignore") for x in secrets)]


if __name__ == "__main__":
    sys.exit(run(sys.argv[1:] or None))
