"""Under the faults of a few fixed seeds every invariant holds: nothing lost, doubled, looping or hidden."""

from __future__ import annotations

import pytest

from chaos import campaign

pytestmark = pytest.mark.chaos

#: The first seeds of `make chaos`, with its duration, so `make chaos SEED=n` replays a failure here.
SEEDS = campaign.DEFAULT_SEEDS[:3]


@pytest.mark.parametrize("seed", SEEDS)
def test_every_invariant_holds_under_the_faults_of_a_seed(seed):
    # Given the seed's workload sent through real workers, schedulers, Redis and database,
    # while its faults kill and stop workers, kill Redis, refuse writes, drop connections and kill the leader
    # When the system has settled
    outcome = campaign.run(seed)

    # Then every invariant holds
    failed = [line for line in outcome.lines() if not line.startswith("PASS")]
    assert outcome.passed, "\n".join(failed) + f"\nlogs: {outcome.workdir}; replay: make chaos SEED={seed}"
