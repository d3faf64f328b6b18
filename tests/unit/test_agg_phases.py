"""Window aggregations in one phase for labs of parallelism 2 or less, decided by the lab and not by each job:
notebook 08's drill rescales a job from a savepoint (2 -> 4 -> 2), and its window state maps onto the same
operators only if the plan does not change with the job's parallelism (notebook 03 checks the plan itself)."""

from __future__ import annotations

import pytest

from labkit import jobs
from labkit.settings import load

KEY = "table.optimizer.agg-phase-strategy"


@pytest.mark.parametrize("lab", [1, 2])
def test_a_narrow_lab_aggregates_in_one_phase_at_every_job_parallelism(tmp_path, lab):
    s = load(mode="docker", home=tmp_path, flink_parallelism=lab)
    for job in (None, 1, 2, 4, 6):
        assert jobs.base_spec(s, "clickstream-metrics", job)["config"][KEY] == "ONE_PHASE", job


@pytest.mark.parametrize("lab", [3, 4, 8])
def test_a_wider_lab_keeps_flinks_split_at_every_job_parallelism(tmp_path, lab):
    s = load(mode="docker", home=tmp_path, flink_parallelism=lab)
    for job in (None, 1, 2, 4, 6):
        config = jobs.base_spec(s, "clickstream-metrics", job)["config"]
        assert KEY not in config, job
        assert config["parallelism.default"] == (job or lab)
