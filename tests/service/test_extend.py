"""A finished job extended to a larger stop continues its curve (through the real server)."""

from __future__ import annotations

import pytest

from algorithms.common import metrics
from service.client import APIError, Client
from tests.service.conftest import wait_for_condition


def test_a_finished_job_extended_continues_from_where_it_stopped(alice: Client) -> None:
    job = alice.submit({"algorithm": "q_learning", "stop": {"iterations": 4}})
    assert alice.wait(job.id, timeout=300).status == "SUCCEEDED"
    with pytest.raises(APIError) as refused:  # nothing to continue to
        alice.resume(job.id)
    assert refused.value.status == 409
    with pytest.raises(APIError) as invalid:
        alice.resume(job.id, stop={"iterations": 0})
    assert invalid.value.status == 422 and "iterations" in str(invalid.value)

    extended = alice.resume(job.id, stop={"iterations": 9})
    assert extended.status in ("QUEUED", "PENDING", "RUNNING")
    assert extended.spec["stop"]["iterations"] == 9
    done = alice.wait(job.id, timeout=300)
    assert done.status == "SUCCEEDED", done.message
    rows = alice.metrics(job.id)
    assert [row[metrics.ITERATION] for row in rows] == list(range(1, 10))
    # the second attempt picked up at the fifth iteration: nothing was trained twice
    assert [row["attempt"] for row in rows] == [1] * 4 + [2] * 5
    wait_for_condition(lambda: alice.job(job.id).checkpoints >= 2, 30)
    assert max(c.iteration or 0 for c in alice.checkpoints(job.id)) == 9
