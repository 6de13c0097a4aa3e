"""Parsed `objects` parameters kept for reuse.

Every pod of a Deployment, and every rotation poll of each, sends the same `objects` YAML; parsing
it is about an eighth of a warm Mount's CPU. Parsing is pure, so an equal (text, context) always
gives equal specs and problems, and a remembered answer is as good as a fresh one.
"""

from __future__ import annotations

import math

from provider_aws.cache import TtlCache
from provider_aws.model import ObjectSpec
from provider_aws.request.objects import ObjectsContext, parse_objects

__all__ = ["ObjectsMemo"]

# Bounds memory to about max_entries * MAX_TEXT_CHARS of kept text; larger documents are parsed each time.
MAX_TEXT_CHARS = 64 * 1024

_Parsed = tuple[tuple[ObjectSpec, ...], tuple[str, ...]]


class ObjectsMemo:
    def __init__(self, max_entries: int = 256) -> None:
        self._parsed: TtlCache[tuple[str, ObjectsContext], _Parsed] = TtlCache(max_entries)

    def __len__(self) -> int:
        return len(self._parsed)

    def parse(self, text: str | None, ctx: ObjectsContext, problems: list[str]) -> tuple[ObjectSpec, ...]:
        """`parse_objects(text, ctx, problems)`, remembered for texts up to MAX_TEXT_CHARS."""
        if text is None or len(text) > MAX_TEXT_CHARS:
            return parse_objects(text, ctx, problems)
        key = (text, ctx)
        known = self._parsed.get(key)
        if known is None:
            found: list[str] = []
            known = (parse_objects(text, ctx, found), tuple(found))
            self._parsed.put(key, known, math.inf)
        specs, found_problems = known
        problems.extend(found_problems)
        return specs
