"""BatchPolicy on its own: back-off per identity and region, jittered, doubling, bounded; the node budget;
the smallest batch worth the quota. A settable clock stands in for time: nothing here waits."""

from __future__ import annotations

import random

import pytest

from provider_aws.aws.batchpolicy import BatchPolicy, BatchRules
from testkit.clock import FakeClock


def policy(clock: FakeClock, **rules: float) -> BatchPolicy:
    return BatchPolicy(BatchRules(**rules), clock=clock, rng=random.Random(15))


def test_back_off_doubles_with_jitter_up_to_its_bound() -> None:
    clock = FakeClock()
    gate = policy(clock, backoff_base=2.0, backoff_max=30.0)
    waits = [gate.throttled("irsa:a", "eu-west-1") for _ in range(8)]
    ceilings = [2.0, 4.0, 8.0, 16.0, 30.0, 30.0, 30.0, 30.0]
    for wait, ceiling in zip(waits, ceilings, strict=True):
        assert ceiling / 2 <= wait <= ceiling
    # jittered: nodes throttled together do not come back together
    assert len({round(w, 6) for w in waits[4:]}) == 4


def test_a_throttle_pauses_batching_for_that_identity_and_region_only() -> None:
    clock = FakeClock()
    gate = policy(clock, backoff_base=10.0)
    wait = gate.throttled("irsa:a", "eu-west-1")
    assert not gate.allow("irsa:a", "eu-west-1", 20)
    assert gate.allow("irsa:a", "eu-central-1", 20)
    assert gate.allow("irsa:b", "eu-west-1", 20)
    clock.now += wait + 0.001
    assert gate.allow("irsa:a", "eu-west-1", 20)


def test_success_after_the_pause_starts_the_next_back_off_from_the_base() -> None:
    clock = FakeClock()
    gate = policy(clock, backoff_base=4.0, backoff_max=100.0)
    for _ in range(3):
        clock.now += gate.throttled("irsa:a", "r") + 1
    gate.succeeded("irsa:a", "r")
    assert len(gate) == 0
    assert gate.throttled("irsa:a", "r") <= 4.0


def test_success_of_a_batch_sent_before_a_throttle_keeps_the_pause() -> None:
    clock = FakeClock()
    gate = policy(clock, backoff_base=4.0)
    gate.throttled("irsa:a", "r")
    gate.succeeded("irsa:a", "r")  # an earlier batch answering late
    assert gate.waiting("irsa:a", "r")


def test_state_is_bounded_least_recently_throttled_first() -> None:
    clock = FakeClock()
    gate = BatchPolicy(BatchRules(backoff_base=60.0), clock=clock, rng=random.Random(1), max_entries=3)
    for name in ("a", "b", "c", "d", "e"):
        gate.throttled(f"irsa:{name}", "r")
    assert len(gate) == 3
    assert not gate.waiting("irsa:a", "r")
    assert not gate.waiting("irsa:b", "r")
    assert gate.waiting("irsa:e", "r")


@pytest.mark.parametrize(
    ("minimum", "secrets", "batched"), [(4, 3, False), (4, 4, True), (1, 1, False), (2, 2, True)]
)
def test_only_enough_secrets_are_worth_a_batch(minimum: int, secrets: int, batched: bool) -> None:
    gate = policy(FakeClock(), min_secrets=minimum)
    assert gate.allow("irsa:a", "r", secrets) is batched


def test_the_node_budget_spends_tokens_and_refills_with_time() -> None:
    clock = FakeClock()
    gate = policy(clock, rate=0.5, burst_seconds=4.0)  # two tokens at most, one every two seconds
    assert [gate.allow("irsa:a", "r", 10) for _ in range(3)] == [True, True, False]
    # the budget is the node's, not an identity's
    assert not gate.allow("irsa:b", "r", 10)
    clock.now += 2.0
    assert gate.allow("irsa:b", "r", 10)
    assert not gate.allow("irsa:a", "r", 10)


def test_a_refusal_is_remembered_for_its_ttl() -> None:
    clock = FakeClock()
    gate = policy(clock, fallback_ttl=300.0)
    gate.refused("irsa:a", "r")
    clock.now += 299.0
    assert not gate.allow("irsa:a", "r", 10)
    clock.now += 2.0
    assert gate.allow("irsa:a", "r", 10)
