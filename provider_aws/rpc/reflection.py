"""gRPC server reflection over a private descriptor pool.

grpclib's reflection service answers from a descriptor pool. Rather than adding our file to the
process-wide default pool (global state that a grpcio module with the same file name would then
collide with), each server gets its own pool holding our FileDescriptorSet plus the files of the health
and reflection services, so `grpcurl list` and `describe` work for everything it serves.
"""

from __future__ import annotations

from collections.abc import Collection
from typing import TYPE_CHECKING, Any

from grpclib.health.v1 import health_pb2
from grpclib.reflection.service import ServerReflection
from grpclib.reflection.v1 import reflection_pb2
from grpclib.reflection.v1alpha import reflection_pb2 as reflection_v1alpha_pb2

from provider_aws.rpc.messages import new_pool

if TYPE_CHECKING:
    from grpclib._typing import IServable

__all__ = ["descriptor_pool_for_server", "with_reflection"]

# Files of the services grpclib itself provides; they are compiled into grpclib.
_GRPCLIB_FILES = (health_pb2.DESCRIPTOR, reflection_pb2.DESCRIPTOR, reflection_v1alpha_pb2.DESCRIPTOR)


def descriptor_pool_for_server() -> Any:
    """A new pool with the provider API and grpclib's health and reflection files."""
    return new_pool(*(descriptor.serialized_pb for descriptor in _GRPCLIB_FILES))


def with_reflection(services: Collection[IServable]) -> list[IServable]:
    """`services` plus the v1 and v1alpha reflection services describing them."""
    return ServerReflection.extend(services, pool=descriptor_pool_for_server())
