"""Dashboards as code (grafana-foundation-sdk): the committed JSON is what labkit generates, Grafana's typed
dashboard model reads it back unchanged, and every panel uses the provisioned datasource. (Their queries run for real in tests/pipeline.)"""

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import yaml
from grafana_foundation_sdk.cog.encoder import JSONEncoder
from grafana_foundation_sdk.models import dashboard as sdk_dashboard

from labkit import dashboards
from labkit.settings import load

ROOT = Path(__file__).resolve().parents[2]


def test_committed_dashboards_are_the_generated_ones():
    for d in dashboards.DASHBOARDS:
        committed = json.loads((ROOT / "grafana" / "dashboards" / f"{d.uid}.json").read_text())
        assert committed == d.grafana(), f"run `make dashboards` to regenerate {d.uid}.json"


def test_dashboards_validate_and_use_the_provisioned_datasource():
    ds = yaml.safe_load((ROOT / "grafana/provisioning/datasources/influxdb.yaml").read_text())["datasources"][0]
    assert ds["uid"] == dashboards.DATASOURCE_UID
    assert ds["type"] == "influxdb" and ds["jsonData"]["version"] == "Flux"
    assert ds["jsonData"]["organization"] and ds["jsonData"]["defaultBucket"]
    assert ds["secureJsonData"]["token"].startswith("${")
    uids = set()
    for d in dashboards.DASHBOARDS:
        model = d.grafana()
        # Grafana's own typed model (grafana-foundation-sdk) reads the JSON back unchanged
        again = json.loads(json.dumps(sdk_dashboard.Dashboard.from_json(model), cls=JSONEncoder))
        assert again["panels"] == model["panels"] and again["templating"] == model["templating"]
        assert all(p["type"] in ("timeseries", "stat", "bargauge", "barchart", "table") for p in model["panels"])
        assert model["refresh"] == "5s"
        uids.add(model["uid"])
        for p in model["panels"]:
            assert p["datasource"]["uid"] == dashboards.DATASOURCE_UID
            for t in p["targets"]:
                assert t["datasource"]["uid"] == dashboards.DATASOURCE_UID
                assert "v.timeRangeStart" in t["query"]
                if d.variable == "attendee":  # a workshop board: one attendee's bucket and topic
                    assert 'from(bucket: "clickstream-${attendee}")' in t["query"]
                    assert 'r.stream == "${attendee}.clickstream_events"' in t["query"]
                else:
                    assert "v.defaultBucket" in t["query"] and "${stream}" in t["query"]
        names = [v["name"] for v in model["templating"]["list"]]
        assert names == [d.variable]
    assert len(uids) == len(dashboards.DASHBOARDS)


def test_macros_are_substituted_like_grafanas_flux_datasource():
    p = dashboards.ERRORS.panels[0]
    s = load()
    t0 = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
    q = p.render_flux(s, t0, t0 + timedelta(minutes=15), timedelta(seconds=10), stream="clicks")
    assert 'from(bucket: "clickstream")' in q
    assert "range(start: 2026-01-02T03:04:05.000000Z, stop: 2026-01-02T03:19:05.000000Z)" in q
    assert 'r.stream == "clicks"' in q
    assert "v." not in q
    assert dashboards._go_duration(timedelta(seconds=90)) == "1m30s"
    assert dashboards._go_duration(timedelta(milliseconds=250)) == "250ms"


def test_alert_rule_references_the_datasource():
    rule = yaml.safe_load((ROOT / "grafana/provisioning/alerting/error-rate.yaml").read_text())["groups"][0]["rules"][0]
    assert rule["data"][0]["datasourceUid"] == dashboards.DATASOURCE_UID
    assert rule["condition"] == "C"


def test_charts_tell_the_truth_gaps_and_fixed_status_colours():
    """A missing window is a gap (a NaN row between its neighbours), not a line across it; a status code has
    the same colour in every chart (its family: 2xx green, 3xx blue, 4xx orange, 5xx red)."""
    import pandas as pd

    from labkit import plots

    t = pd.date_range("2026-01-01", periods=5, freq="10s", tz="UTC")
    df = pd.DataFrame({"time": t.delete(2), "error_rate": [0.01, 0.02, 0.03, 0.01]})  # the third window missing
    gapped = plots.with_gaps(df)
    assert len(gapped) == 5 and gapped["error_rate"].isna().sum() == 1
    fig = plots.error_rate(df.assign(rate_4xx=0.01, rate_5xx=0.0))
    ys = [v for tr in fig.data if tr.name == "error_rate" for v in tr.y]
    assert any(v is None or v != v for v in ys)  # the gap reaches the chart
    assert all(tr.connectgaps is False for tr in fig.data)

    counts = pd.DataFrame({"time": [t[0]] * 4, "status_code": ["200", "302", "404", "503"], "count": [90, 5, 4, 1]})
    colours = {tr.name: tr.marker.color for tr in plots.status_counts(counts).data}
    assert colours == {"200": "#2ca02c", "302": "#6baed6", "404": "#ff7f0e", "503": "#ff6961"}
    assert plots.status_color("418") == plots.FAMILY_COLORS["4xx"]  # an unlisted code takes its family's colour
