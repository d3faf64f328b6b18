"""Alert rules as code, evaluated the way Grafana's alerting evaluates the provisioned rule.

Grafana evaluates `grafana/provisioning/alerting/error-rate.yaml` every 10 s: the mean of `error_rate` over the
last 2 minutes, compared with 5%; the condition must hold for 1 minute before the alert fires. `AlertRule`
replays that on a metric's windows (in event time), so a notebook can show when a condition started to hold
and when the alert would have fired, in local mode too where Grafana does not run.
"""

from __future__ import annotations

import html
from dataclasses import dataclass

import pandas as pd

from labkit.dashboards import ERROR_RATE_THRESHOLD


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
