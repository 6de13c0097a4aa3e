"""A bound on what h2 remembers of a server connection's closed streams.

h2 keeps how each closed stream ended, so that a frame still in flight when a stream closed is told
apart from a protocol error: by default the last 65,536 per connection (`MAX_CLOSED_STREAMS`). The
CSI driver holds one connection for the life of the process and opens a stream per call, so that
record grew by megabytes and stayed. A late frame arrives within a round trip of the close, on a
Unix socket microseconds, so the last `CLOSED_STREAMS_KEPT` closes are plenty even with 1,000 Mounts
in flight.

Neither grpclib nor h2 lets a server choose the bound, and grpclib builds the `H2Connection` itself
inside `H2Protocol.connection_made`, so this is the smallest override: the record, still empty then,
is replaced by one of the same type with a smaller limit. tests/rpc/test_h2limits.py checks it against
the installed h2 over a real connection.
"""

from __future__ import annotations

from asyncio import BaseTransport

from grpclib.protocol import H2Protocol
from h2.utilities import SizeLimitDict

__all__ = ["CLOSED_STREAMS_KEPT", "BoundedH2Protocol"]

CLOSED_STREAMS_KEPT = 1024


class BoundedH2Protocol(H2Protocol):
    """grpclib's server protocol with h2's closed-streams record bounded to `CLOSED_STREAMS_KEPT`."""

    def connection_made(self, transport: BaseTransport) -> None:
        super().connection_made(transport)
        h2_connection = self.connection._connection
        if not h2_connection._closed_streams:
            h2_connection._closed_streams = SizeLimitDict(size_limit=CLOSED_STREAMS_KEPT)
