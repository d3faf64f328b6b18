"""The provisioned Grafana rule is read from its file (the same one Grafana loads), not restated in code."""

import pytest

from labkit.alerts import ERROR_RATE, ProvisionedRule, _seconds


def test_the_provisioned_rule_is_read_from_grafanas_file():
    rule = ProvisionedRule.load()
    assert rule.interval_s == 10 and rule.for_s == 60 and rule.threshold == pytest.approx(0.05)
    assert "range(start: -2m)" in rule.flux and 'r._measurement == "error_rate"' in rule.flux
    # the Python replay models the same rule
    assert (ERROR_RATE.threshold, ERROR_RATE.for_s, ERROR_RATE.lookback_s) == (rule.threshold, rule.for_s, 120)


def test_grafana_durations():
    assert _seconds("10s") == 10 and _seconds("1m") == 60 and _seconds("2m30s") == 150 and _seconds("1h") == 3600
    for bad in ("", "1 m", "1d", "10"):
        with pytest.raises(ValueError):
            _seconds(bad)
