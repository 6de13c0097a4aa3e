"""Mount handlers that wrap the real one for tests that need a Mount to stay in flight."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

from provider_aws.model import MountInput, MountResult
from provider_aws.rpc.service import MountHandler

__all__ = ["Held"]


@dataclass
class Held:
    """Holds each Mount until `release` is set, then hands it to the real handler."""

    handler: MountHandler
    entered: asyncio.Event
    release: asyncio.Event

    async def mount(self, request: MountInput) -> MountResult:
        self.entered.set()
        await self.release.wait()
        return await self.handler.mount(request)
