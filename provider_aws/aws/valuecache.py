"""Secrets Manager values already fetched, so an unchanged secret is served without a re-read.

Memory only, bounded in bytes, least-recently-used first out. The key holds the identity
that fetched the value: a value is only ever served to the identity that was allowed to read it.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass

from provider_aws.model import SecretBytes

__all__ = ["ENTRY_OVERHEAD", "ValueCache", "ValueKey"]

# Rough bookkeeping cost of one entry (key object, dict slot), counted against the bound.
ENTRY_OVERHEAD = 256


@dataclass(frozen=True, slots=True)
class ValueKey:
    """Who read it, where, under which requested name or ARN, and which VersionId it is."""

    identity: str
    region: str
    name: str
    version_id: str

    def cost(self) -> int:
        return len(self.identity) + len(self.region) + len(self.name) + len(self.version_id) + ENTRY_OVERHEAD


class ValueCache:
    """LRU map ValueKey -> SecretBytes holding at most `max_bytes`; 0 keeps nothing."""

    def __init__(self, max_bytes: int) -> None:
        self._max_bytes = max(0, max_bytes)
        self._entries: OrderedDict[ValueKey, SecretBytes] = OrderedDict()
        self._bytes = 0

    def __len__(self) -> int:
        return len(self._entries)

    @property
    def size_bytes(self) -> int:
        return self._bytes

    def get(self, key: ValueKey) -> SecretBytes | None:
        value = self._entries.get(key)
        if value is not None:
            self._entries.move_to_end(key)
        return value

    def put(self, key: ValueKey, value: SecretBytes) -> None:
        """Keep `value`; one larger than the whole bound is not kept at all."""
        if not key.version_id:
            return
        self._remove(key)
        cost = key.cost() + len(value)
        if cost > self._max_bytes:
            return
        self._entries[key] = value
        self._bytes += cost
        while self._bytes > self._max_bytes:
            oldest, dropped = self._entries.popitem(last=False)
            self._bytes -= oldest.cost() + len(dropped)

    def _remove(self, key: ValueKey) -> None:
        old = self._entries.pop(key, None)
        if old is not None:
            self._bytes -= key.cost() + len(old)

    def clear(self) -> None:
        self._entries.clear()
        self._bytes = 0
