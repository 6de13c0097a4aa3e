"""One HTTP connection pool for every AWS client of the process.

aiobotocore gives each client its own aiohttp session: a new TLS context with the CA bundle loaded
(tens of milliseconds of CPU and about a megabyte per client) and its own idle connections. The
provider opens a client per identity and region, so a node with a hundred ServiceAccounts would pay
that a hundred times and never reuse a connection across pods. Requests are signed per request, so
a keep-alive connection carries no identity and can be shared safely.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import aiohttp
from aiobotocore.httpsession import AIOHTTPSession

__all__ = ["SharedHttpPool"]


class SharedHttpPool:
    """Owns the process-wide aiohttp session that the AWS clients send through."""

    def __init__(self) -> None:
        self._session: aiohttp.ClientSession | None = None

    def session_factory(self) -> Callable[..., AIOHTTPSession]:
        """The `http_session_cls` for AioConfig: aiobotocore calls it once per client."""
        pool = self

        class _PooledSession(AIOHTTPSession):  # type: ignore[misc]  # untyped library base
            async def _get_session(self, proxy_url: str | None) -> aiohttp.ClientSession:
                if proxy_url:
                    # A proxy needs its own connector settings; rare on a node, kept per client.
                    session: aiohttp.ClientSession = await super()._get_session(proxy_url)
                    return session
                return pool._shared(self)

        return _PooledSession

    def _shared(self, template: AIOHTTPSession) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            # The first client's settings (timeouts, verify, CA bundle) stand for all: every client
            # is built from the same AioConfig, whose max_pool_connections bounds the shared pool.
            connector_template: Any = template
            connector = connector_template._create_connector(None)
            self._session = aiohttp.ClientSession(
                connector=connector,
                timeout=connector_template._timeout,
                skip_auto_headers={"CONTENT-TYPE"},
                auto_decompress=False,
            )
        return self._session

    async def close(self) -> None:
        if self._session is not None and not self._session.closed:
            await self._session.close()
        self._session = None
