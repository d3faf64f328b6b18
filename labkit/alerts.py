"""Alert rules as code, evaluated the way Grafana's alerting evaluates the provisioned rule.

Grafana evaluates `grafana/provisioning/alerting/error-rate.yaml` every 10 s: the mean of `error_rate` over the
last 2 minutes, compared with 5%; the condition must hold for 1 minute before the alert fires. `AlertRule`
replays that on a metric's windows (in event time), so a notebook can show when a condition started to hold
and when the alert would have fired, in local mode too where Grafana does not run.
"""

from __future__ import annotations

import html
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from labkit.dashboards import ERROR_RATE_THRESHOLD
from labkit.paths import GRAFANA_DIR


@dataclass(frozen=True)
class AlertRule:
    """Fires when the mean of `field` over the last `lookback_s` stays above `threshold` for `for_s`."""

    title: str
    measurement: str
    field: str
    threshold: float
    lookback_s: int = 120
    for_s: int = 60
    interval_s: int = 10

    def evaluate(self, df: pd.DataFrame) -> pd.DataFrame:
        """One row per evaluation (each window end): the reduced value, whether the condition holds, the state.

        `df` has `time` and `self.field` (a metric's windows, as `labkit.influx` returns them)."""
        if df is None or df.empty or self.field not in df.columns:
            return pd.DataFrame(columns=["time", "value", "condition", "state"])
        s = df.set_index("time")[self.field].astype(float).sort_index()
        # Grafana's range(start: -2m) |> mean(): the points of the last `lookback_s` before each evaluation
        value = s.rolling(f"{self.lookback_s}s").mean()
        cond = value > self.threshold
        states, since = [], None
        for t, c in cond.items():
            if not c:
                since = None
                states.append("normal")
                continue
            since = since if since is not None else t
            states.append("firing" if (t - since).total_seconds() >= self.for_s else "pending")
        return pd.DataFrame({"time": s.index, "value": value.values, "condition": cond.values, "state": states})

    def timeline(self, df: pd.DataFrame) -> AlertTimeline:
        ev = self.evaluate(df)
        started = ev.loc[ev["condition"], "time"].min() if ev["condition"].any() else None
        fired = ev.loc[ev["state"] == "firing", "time"].min() if (ev["state"] == "firing").any() else None
        return AlertTimeline(self, ev, started, fired)


@dataclass
class AlertTimeline:
    rule: AlertRule
    evaluations: pd.DataFrame
    started: pd.Timestamp | None  # the first evaluation where the condition held
    fired: pd.Timestamp | None  # the first evaluation in state "firing" (condition held for `for_s`)

    @property
    def detection_delay_s(self) -> float | None:
        return None if self.started is None or self.fired is None else (self.fired - self.started).total_seconds()

    def _repr_html_(self) -> str:
        r = self.rule
        if self.fired is None:
            what = "did <b>not</b> fire" + (
                f" (condition first held at {self.started:%H:%M:%S})" if self.started else ""
            )
        else:
            what = (
                f"condition first held at <b>{self.started:%H:%M:%S}</b>, alert <b>fired at {self.fired:%H:%M:%S}</b> "
                f"({self.detection_delay_s:.0f} s later: the rule's <code>for: {r.for_s}s</code>)"
            )
        return (
            f"<b>Alert rule</b> {html.escape(r.title)}: mean of <code>{html.escape(r.measurement)}.{html.escape(r.field)}"
            f"</code> over {r.lookback_s} s &gt; {r.threshold:g} for {r.for_s} s: {what}"
        )

    def __repr__(self) -> str:
        return f"{self.rule.title}: started {self.started}, fired {self.fired}"


ERROR_RATE = AlertRule("Error-rate spike", "error_rate", "error_rate", ERROR_RATE_THRESHOLD)


# ---- the provisioned Grafana rule itself, evaluated against InfluxDB -------------------------------------------
PROVISIONED_RULE = GRAFANA_DIR / "provisioning" / "alerting" / "error-rate.yaml"


@dataclass(frozen=True)
class ProvisionedRule:
    """What Grafana reads from the provisioning file: the Flux of query A, how often it evaluates, the `for`
    duration and the threshold of condition C (reducer B is `last`)."""

    title: str
    flux: str
    interval_s: int
    for_s: int
    threshold: float

    @classmethod
    def load(cls, path: Path = PROVISIONED_RULE) -> ProvisionedRule:
        import yaml

        group = yaml.safe_load(path.read_text())["groups"][0]
        rule = group["rules"][0]
        by_ref = {d["refId"]: d["model"] for d in rule["data"]}
        threshold = by_ref[rule["condition"]]["conditions"][0]["evaluator"]["params"][0]
        return cls(rule["title"], by_ref["A"]["query"], _seconds(group["interval"]), _seconds(rule["for"]),
                   float(threshold))  # fmt: skip

    def evaluate(self, start: pd.Timestamp, end: pd.Timestamp, stream: str, settings=None) -> AlertTimeline:
        """Run the rule's own Flux at every evaluation time Grafana would use between `start` and `end`, with
        Flux's `now` set to that time (so its `range(start: -2m)` covers the two minutes before it), and apply
        the threshold and the `for` duration as Grafana does. The lab's events are back-dated at full speed, so
        the evaluation times follow the run's event time, not the wall clock: this is the rule, on the data, at
        the instants its windows describe. No data is "normal" (the rule's noDataState: OK)."""
        from labkit.influx import Influx
        from labkit.settings import get as get_settings

        s = settings or get_settings()
        flux = self.flux.replace('from(bucket: "clickstream")', f'from(bucket: "{s.influx_bucket}")')
        rows, since = [], None
        times = pd.date_range(start.ceil(f"{self.interval_s}s"), end, freq=f"{self.interval_s}s")
        with Influx(s) as db:
            for t in times:
                got = db.flux(f"option now = () => {t.strftime('%Y-%m-%dT%H:%M:%SZ')}\n{flux}")
                mine = got[got["stream"] == stream] if "stream" in got.columns else got.iloc[0:0]
                value = float(mine["_value"].iloc[-1]) if len(mine) else float("nan")
                cond = bool(value > self.threshold)
                since = (since if since is not None else t) if cond else None
                state = "normal" if not cond else ("firing" if (t - since).total_seconds() >= self.for_s else "pending")
                rows.append({"time": t, "value": value, "condition": cond, "state": state})
        ev = pd.DataFrame(rows, columns=["time", "value", "condition", "state"])
        rule = AlertRule(self.title, "error_rate", "error_rate", self.threshold, for_s=self.for_s,
                         interval_s=self.interval_s)  # fmt: skip
        started = ev.loc[ev["condition"], "time"].min() if ev["condition"].any() else None
        fired = ev.loc[ev["state"] == "firing", "time"].min() if (ev["state"] == "firing").any() else None
        return AlertTimeline(rule, ev, started, fired)


def _seconds(duration: str) -> int:
    """Grafana's durations as the provisioning file writes them: 10s, 1m, 2m30s, 1h."""
    import re

    parts = re.findall(r"(\d+)([hms])", str(duration))
    if not parts or "".join(n + u for n, u in parts) != str(duration):
        raise ValueError(f"not a duration Grafana writes: {duration!r}")
    return sum(int(n) * {"h": 3600, "m": 60, "s": 1}[u] for n, u in parts)
