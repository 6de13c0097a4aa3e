"""h2's record of closed streams on the provider's server connections stays bounded.

The driver keeps one connection open and opens a stream per call; h2 would remember 65,536 of them.
The calls go over the real Unix socket; the server's `H2Connection` is found among live objects.
"""

from __future__ import annotations

import asyncio
import gc
from collections.abc import Iterator

import pytest
from grpclib.client import Channel
from h2.connection import H2Connection
from h2.utilities import SizeLimitDict

from provider_aws.model import MountInput, MountResult
from provider_aws.rpc.h2limits import CLOSED_STREAMS_KEPT
from provider_aws.settings import Settings
from testkit.betterproto_api.v1alpha1 import CsiDriverProviderStub, VersionRequest
from testkit.grpc_clients import running_provider, short_socket_dir

CALLS = CLOSED_STREAMS_KEPT + 300
AT_ONCE = 50
WAIT = 60.0


class NoMounts:
    async def mount(self, request: MountInput) -> MountResult:
        raise AssertionError("only Version is called here")


@pytest.fixture
def settings() -> Iterator[Settings]:
    with short_socket_dir() as path:
        yield Settings(socket_dir=path)


def server_connections() -> list[H2Connection]:
    return [obj for obj in gc.get_objects() if isinstance(obj, H2Connection) and not obj.config.client_side]


@pytest.mark.asyncio
async def test_closed_streams_of_one_connection_are_remembered_up_to_the_bound(settings: Settings) -> None:
    # The installed h2 still keeps the record this bounds, and keeps more than the bound by default.
    assert H2Connection.MAX_CLOSED_STREAMS > CLOSED_STREAMS_KEPT
    async with running_provider(settings, NoMounts()):
        channel = Channel(path=str(settings.socket_path))
        stub = CsiDriverProviderStub(channel)
        try:
            async with asyncio.timeout(WAIT):
                for start in range(0, CALLS, AT_ONCE):
                    count = min(AT_ONCE, CALLS - start)
                    await asyncio.gather(*(stub.version(VersionRequest()) for _ in range(count)))
            (connection,) = server_connections()
            record = connection._closed_streams
            # every call was a stream on this one connection; the record filled to the bound, no further
            assert connection.highest_inbound_stream_id == 2 * CALLS - 1
            assert type(record) is SizeLimitDict
            assert len(record) == CLOSED_STREAMS_KEPT
        finally:
            channel.close()
