"""Run every course notebook with papermill, twice, as CI's smoke test of the course.

1. **As an attendee first runs it**: default parameters, solutions off. Every checker must give "not yet"
   feedback on the starter code (and so must not raise: an exception fails the cell, and the run).
2. **With the solutions** (`use_solution=True`) and CI's parameters: every checker must pass.

In both passes every claim the text makes about the data (`labkit.claims`) is strict: a sentence that the run's
data do not bear out fails the notebook, quoting it.
Executed copies go to build/notebooks/<pass>/ (other modes: build/notebooks-<mode>/<pass>/, so that CI's docker
step can run beside the local one), each also as HTML with plotly.js embedded (viewable offline);
every chart in them must carry data, and no secret may appear in them.
Usage: python -m labkit.notebooks_ci [--pass attendee|solution] [--skip 08,...] [names...]
"""

from __future__ import annotations

import json
import os
import re
import sys
import time
from pathlib import Path

from labkit.paths import NOTEBOOKS_DIR, REPO_ROOT

NOTEBOOKS = NOTEBOOKS_DIR
OUT = REPO_ROOT / "build" / "notebooks"


def out_root(mode: str) -> Path:
    """Where a mode's executed copies go: one folder per mode, so two modes' runs never share a file."""
    return OUT if mode == "local" else OUT.with_name(f"notebooks-{mode}")


TIMEOUT_S = 600  # per cell

# The solution pass: small counts keep CI short, and every notebook with a `seed` runs with a seed other than its
# default, so each sentence checked about the data (labkit.claims) holds for traffic the text was not written
# from; the attendee pass uses each notebook's defaults unchanged.
CI_PARAMETERS: dict[str, dict] = {
    "00_start_here": {},
    "01_producing_events": {"count": 10_000, "sim_rate": 100, "seed": 7},  # default 42
    "02_kafka": {"my_group": "ci-solution-group"},
    "03_flink": {"count": 10_000, "seed": 11},  # default 3
    "04_influxdb": {},
    "05_grafana": {},
    "06_incident_drill": {"seed": 5},  # default 2024
    "07_metric_design": {"count": 10_000, "seed": 13},  # default 7
    "08_failure_and_recovery": {},
    "09_capstone": {"seed": 21},  # default 99
    "10_sql_patterns": {"seed": 17},  # default 10
}
PASSES = {
    "attendee": {"expect": "fail", "params": lambda name: {}},
    "solution": {"expect": "pass", "params": lambda name: {**CI_PARAMETERS.get(name, {}), "use_solution": True}},
}
# checkers with no starter answer: they grade the run itself (verify's accounts), so they pass in both passes
ALWAYS_PASS = {"accounts"}
CHECK = re.compile(r"class='labkit-check' data-exercise='([^']*)' data-state='(pass|fail|lab)'")


def run(names: list[str] | None = None, passes: list[str] | None = None, skip: list[str] | None = None) -> int:
    import papermill as pm

    os.environ.setdefault("LABKIT_PROGRESS", "lines")
    # every sentence about the data is checked, in every pass: a false one fails the run (labkit.claims)
    from labkit.claims import STRICT_ENV

    os.environ[STRICT_ENV] = "1"
    # plotly.js inline in the first chart of each notebook: the HTML copies work offline
    os.environ.setdefault("LABKIT_PLOTLY_RENDERER", "notebook+plotly_mimetype")
    books = sorted(NOTEBOOKS.glob("[0-9][0-9]_*.ipynb"))
    if names:
        books = [b for b in books if any(b.stem.startswith(n) for n in names)]
    if skip:
        books = [b for b in books if not any(b.stem.startswith(n) for n in skip)]
    from labkit import settings as settings_mod

    root = out_root(settings_mod.get().mode)
    failures: list[tuple[str, str]] = []
    t_all = time.monotonic()
    for pass_name in passes or list(PASSES):
        spec = PASSES[pass_name]
        out = root / pass_name
        out.mkdir(parents=True, exist_ok=True)
        for nb in books:
            t0 = time.monotonic()
            label = f"{pass_name}/{nb.name}"
            print(f"[notebooks] {label} ...", flush=True)
            target = out / nb.name
            try:
                pm.execute_notebook(
                    str(nb),
                    str(target),
                    parameters=spec["params"](nb.stem),
                    kernel_name="python3",
                    execution_timeout=TIMEOUT_S,
                    progress_bar=False,
                    cwd=str(NOTEBOOKS),
                )
                problems = check_executed(target, spec["expect"])
            except Exception as e:  # papermill raises PapermillExecutionError with the failing cell
                msg = str(e).strip()
                problems = [msg.splitlines()[-1][:300] if msg else type(e).__name__]
            if target.exists():
                html_path = _to_html(target)
                has_charts = "application/vnd.plotly.v1+json" in target.read_text()
                if has_charts and "plotly.js v" not in html_path.read_text():
                    problems.append("the HTML copy has charts but no inline plotly.js: it would be blank offline")
            failures += [(label, p) for p in problems]
            print(f"[notebooks] {label}: {'FAILED' if problems else 'ok'} in {time.monotonic() - t0:.0f}s", flush=True)
    leaked = _secrets_in_outputs(root)
    if leaked:
        failures.append(("outputs", f"a secret appears in the executed copies: {', '.join(leaked)}"))
    print(f"[notebooks] {len(books)} notebooks, {len(passes or PASSES)} pass(es) in {time.monotonic() - t_all:.0f}s")
    for name, err in failures:
        print(f"[notebooks] {name}: {err}")
    print(f"{'FAILED' if failures else 'ok'}: {len(failures)} problem(s)")
    return 1 if failures else 0


def check_executed(path: Path, expect: str) -> list[str]:
    """What is wrong with an executed notebook: a checker in the wrong state, a `check` cell without a
    checker's feedback, a chart without data (solution pass)."""
    nb = json.loads(path.read_text())
    problems = []
    for cell in nb["cells"]:
        if cell["cell_type"] != "code":
            continue
        outs = cell.get("outputs", [])
        text = "".join("".join(o.get("data", {}).get("text/html", "")) for o in outs)
        if "check" in cell.get("metadata", {}).get("tags", []):
            found = CHECK.findall(text)
            if not found:
                problems.append(f"a check cell shows no checker feedback: {''.join(cell['source'])[:80]!r}")
            for exercise, state in found:
                if state == "lab":  # the checker could not reach a service: the lab is broken, not the answer
                    problems.append(f"checker {exercise!r} could not reach the lab")
                    continue
                if state != ("pass" if exercise in ALWAYS_PASS else expect):
                    problems.append(f"checker {exercise!r} gave {state!r}, expected {expect!r}")
        for o in outs:
            fig = o.get("data", {}).get("application/vnd.plotly.v1+json")
            # the attendee pass runs starter answers, whose charts may rightly be empty ("no data yet")
            if fig is not None and expect == "pass" and not _has_data(fig):
                title = (fig.get("layout", {}).get("title") or {}).get("text", "?")
                problems.append(f"chart without data: {title!r}")
    return problems


def _has_data(fig: dict) -> bool:
    for trace in fig.get("data", []):
        for axis in ("x", "y", "values"):
            vals = trace.get(axis)
            if isinstance(vals, dict):  # plotly >= 6 may encode arrays as {"dtype", "bdata"}
                if vals.get("bdata"):
                    return True
            elif vals is not None and len(vals) > 0 and any(v is not None for v in vals):
                return True
    return False


def _to_html(path: Path) -> Path:
    import nbformat
    from nbconvert import HTMLExporter

    body, _ = HTMLExporter().from_notebook_node(nbformat.read(path, as_version=4))
    html_path = path.with_suffix(".html")
    html_path.write_text(body)
    return html_path


def _secrets_in_outputs(folder: Path) -> list[str]:
    """Executed notebooks must never show a token or password: every secret the stack knows, in every mode
    (local: the lab's credentials; docker: compose/.env and the secrets volume; external: the settings)."""
    from labkit import stack as stack_mod

    secrets = stack_mod.get().secrets()
    return [
        str(p.relative_to(folder))
        for p in list(folder.rglob("*.ipynb")) + list(folder.rglob("*.html"))
        if any(x in p.read_text(errors="ignore") for x in secrets)
    ]


def main(argv: list[str]) -> int:
    passes, skip = None, []
    if "--pass" in argv:
        i = argv.index("--pass")
        passes = [argv[i + 1]]
        argv = argv[:i] + argv[i + 2 :]
    if "--skip" in argv:  # e.g. --skip 08: every notebook but those (CI runs 08's drills solved in docker mode)
        i = argv.index("--skip")
        skip = argv[i + 1].split(",")
        argv = argv[:i] + argv[i + 2 :]
    names = [n for a in argv for n in a.split(",") if n]  # `03 08` or `03,08` (the Makefile's lists are the latter)
    return run(names or None, passes, skip)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
