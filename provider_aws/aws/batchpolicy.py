"""When a Mount may spend a BatchGetSecretValue: the fleet-wide policy of one provider process.

BatchGetSecretValue saves up to 19 requests of 20, but its quota is 100 requests/s per account
and region, shared by every node of every cluster in the account (GetSecretValue has 10,000/s).
A fleet rollout can ask for more than that, so a batch is sent only when

* it carries at least `min_secrets` unpinned secrets: a small batch spends a scarce token to
  save a request or two;
* its (identity, region) is not backing off after a throttle, nor remembering a refusal; and
* the node's own budget allows it (`rate` per second, 0 = no budget of its own), so that an
  operator can give each node its share of the account's quota and never be throttled.

Everything else goes through GetSecretValue at once. A throttled batch is never retried by
botocore (see `SINGLE_ATTEMPT`); its identity and region back off for a jittered, doubling,
bounded time, so that hundreds of nodes throttled together do not come back together.
"""

from __future__ import annotations

import random
import time
from collections import OrderedDict
from dataclasses import dataclass

from provider_aws.cache import Clock
from provider_aws.settings import Settings

__all__ = ["SINGLE_ATTEMPT", "BatchPolicy", "BatchRules", "TokenBucket"]

_Key = tuple[str, str]

# Operations botocore must try once only: a throttled or failed batch falls back to
# GetSecretValue instead of waiting through botocore's retries for the scarce quota.
SINGLE_ATTEMPT: dict[str, int] = {"batch_get_secret_value": 1}


_DEFAULTS = Settings()


@dataclass(frozen=True, slots=True)
class BatchRules:
    """The batch policy's settings: `Settings.batch_*` without the prefix, with their defaults."""

    min_secrets: int = _DEFAULTS.batch_min_secrets
    # Back-off after the first throttle, doubled after each further one, capped.
    backoff_base: float = _DEFAULTS.batch_backoff_base
    backoff_max: float = _DEFAULTS.batch_backoff_max
    # How long an AccessDenied (no IAM permission for the batch API) is remembered.
    fallback_ttl: float = _DEFAULTS.batch_fallback_ttl
    # The node's own BatchGetSecretValue budget, requests per second; 0 means none.
    rate: float = _DEFAULTS.batch_rate
    # Seconds of `rate` the node may spend at once (at least one request): short, because every
    # node of a fleet may spend its burst at the same moment, e.g. when a rollout starts.
    burst_seconds: float = 1.0

    @classmethod
    def of(cls, settings: Settings) -> BatchRules:
        return cls(
            min_secrets=settings.batch_min_secrets,
            backoff_base=settings.batch_backoff_base,
            backoff_max=settings.batch_backoff_max,
            fallback_ttl=settings.batch_fallback_ttl,
            rate=settings.batch_rate,
        )


@dataclass(slots=True)
class _State:
    throttles: int = 0
    until: float = 0.0


class TokenBucket:
    """`rate` tokens a second, at most `capacity` (at least one) held; `take` never waits, it
    answers whether a token was there. Not thread-safe: one event loop, or the caller's lock."""

    def __init__(self, rate: float, capacity: float, clock: Clock = time.monotonic) -> None:
        self.rate = rate
        self._capacity = max(1.0, capacity)
        self._tokens = self._capacity
        self._clock = clock
        self._at = clock()

    def take(self) -> bool:
        now = self._clock()
        self._tokens = min(self._capacity, self._tokens + (now - self._at) * self.rate)
        self._at = now
        if self._tokens < 1.0:
            return False
        self._tokens -= 1.0
        return True


class BatchPolicy:
    """Per-(identity, region) back-off and refusal memory, bounded to `max_entries` keys (LRU)."""

    def __init__(
        self,
        rules: BatchRules,
        *,
        clock: Clock = time.monotonic,
        rng: random.Random | None = None,
        max_entries: int = 4096,
    ) -> None:
        self.rules = rules
        self._clock = clock
        self._rng = rng if rng is not None else random.Random()
        self._max = max(1, max_entries)
        self._states: OrderedDict[_Key, _State] = OrderedDict()
        self._budget = (
            TokenBucket(rules.rate, rules.rate * rules.burst_seconds, clock) if rules.rate > 0 else None
        )

    def __len__(self) -> int:
        return len(self._states)

    def waiting(self, identity: str, region: str) -> bool:
        """True while this identity and region back off or remember a refusal."""
        state = self._states.get((identity, region))
        return state is not None and state.until > self._clock()

    def allow(self, identity: str, region: str, secrets: int) -> bool:
        """May a batch of `secrets` go out now? Takes a token of the node's budget when it may."""
        if secrets < max(2, self.rules.min_secrets) or self.waiting(identity, region):
            return False
        return self._budget is None or self._budget.take()

    def throttled(self, identity: str, region: str) -> float:
        """Back off after a throttle (or a failed batch); returns the chosen wait in seconds."""
        state = self._state(identity, region)
        state.throttles += 1
        ceiling = min(self.rules.backoff_max, self.rules.backoff_base * 2.0 ** (state.throttles - 1))
        wait = ceiling * self._rng.uniform(0.5, 1.0)
        state.until = max(state.until, self._clock() + wait)
        return wait

    def refused(self, identity: str, region: str) -> None:
        """The batch API is not allowed for this identity: use GetSecretValue for a while."""
        if self.rules.fallback_ttl <= 0:
            return
        state = self._state(identity, region)
        state.until = max(state.until, self._clock() + self.rules.fallback_ttl)

    def succeeded(self, identity: str, region: str) -> None:
        """A batch went through: the next throttle starts from the base wait again."""
        state = self._states.get((identity, region))
        if state is not None and state.until <= self._clock():
            del self._states[(identity, region)]

    def _state(self, identity: str, region: str) -> _State:
        key = (identity, region)
        state = self._states.get(key)
        if state is None:
            state = self._states[key] = _State()
        self._states.move_to_end(key)
        while len(self._states) > self._max:
            self._states.popitem(last=False)
        return state
