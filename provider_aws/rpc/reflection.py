"""gRPC server reflection over a private descriptor pool.

betterproto registers nothing with the protobuf runtime, and grpclib's
reflection service answers from a descriptor pool. Rather than adding our
file to the process-wide default pool (global state that a grpcio module with
the same file name would then collide with), each server gets its own pool
holding our FileDescriptorSet plus the files of the health and reflection
services, so `grpcurl list` and `describe` work for everything it serves.
"""

from __future__ import annotations

from collections.abc import Collection
from importlib.resources import files
from typing import TYPE_CHECKING, Any

from google.protobuf import descriptor_pb2, descriptor_pool, message_factory
from grpclib.health.v1 import health_pb2
from grpclib.reflection.service import ServerReflection
from grpclib.reflection.v1 import reflection_pb2
from grpclib.reflection.v1alpha import reflection_pb2 as reflection_v1alpha_pb2

if TYPE_CHECKING:
    from grpclib._typing import IServable

__all__ = [
    "DESCRIPTOR_SET",
    "descriptor_pool_for_server",
    "load_descriptor_set",
    "message_classes",
    "with_reflection",
]

DESCRIPTOR_SET = "service.binpb"

# Files of the services grpclib itself provides; they are compiled into grpclib.
_GRPCLIB_FILES = (health_pb2.DESCRIPTOR, reflection_pb2.DESCRIPTOR, reflection_v1alpha_pb2.DESCRIPTOR)


def load_descriptor_set() -> descriptor_pb2.FileDescriptorSet:
    """The FileDescriptorSet that `make proto` wrote next to the generated code."""
    data = files("provider_aws._proto").joinpath(DESCRIPTOR_SET).read_bytes()
    return descriptor_pb2.FileDescriptorSet.FromString(data)


def descriptor_pool_for_server() -> Any:
    """A new pool with the provider API and grpclib's health and reflection files."""
    pool = descriptor_pool.DescriptorPool()
    for file in load_descriptor_set().file:
        pool.AddSerializedFile(file.SerializeToString())
    for descriptor in _GRPCLIB_FILES:
        pool.AddSerializedFile(descriptor.serialized_pb)
    return pool


def message_classes(*names: str) -> dict[str, Any]:
    """Protobuf-runtime classes of `v1alpha1` messages (e.g. "MountRequest"), keyed by name."""
    pool = descriptor_pool_for_server()
    return {
        name: message_factory.GetMessageClass(pool.FindMessageTypeByName(f"v1alpha1.{name}"))
        for name in names
    }


def with_reflection(services: Collection[IServable]) -> list[IServable]:
    """`services` plus the v1 and v1alpha reflection services describing them."""
    return ServerReflection.extend(services, pool=descriptor_pool_for_server())
