"""The driver's v1alpha1 API as protobuf-runtime message classes: the one representation of its messages.

The classes are built once, at import, from the FileDescriptorSet that `make proto` commits
(`provider_aws/_proto/service.binpb`), in a descriptor pool of their own rather than protobuf's
process-wide default pool, where a generated module of the same `v1alpha1/service.proto` would collide.
grpclib's protobuf codec sends and receives them as they are; the server, `provider-aws mount` and
reflection all use them. Their type is `type[Message]`: the fields are checked by the descriptor at run
time, not by mypy.
"""

from __future__ import annotations

from importlib.resources import files

from google.protobuf import descriptor_pb2, descriptor_pool, message_factory
from google.protobuf.message import Message

from provider_aws import _proto

__all__ = [
    "DESCRIPTOR_SET",
    "MOUNT_METHOD",
    "PACKAGE",
    "SERVICE",
    "VERSION_METHOD",
    "File",
    "MountRequest",
    "MountResponse",
    "ObjectVersion",
    "VersionRequest",
    "VersionResponse",
    "load_descriptor_set",
    "new_pool",
]

DESCRIPTOR_SET = "service.binpb"
PACKAGE = "v1alpha1"
SERVICE = f"{PACKAGE}.CSIDriverProvider"
VERSION_METHOD = f"/{SERVICE}/Version"
MOUNT_METHOD = f"/{SERVICE}/Mount"


def load_descriptor_set() -> descriptor_pb2.FileDescriptorSet:
    """The FileDescriptorSet that `make proto` wrote into the `_proto` package."""
    data = files(_proto).joinpath(DESCRIPTOR_SET).read_bytes()
    return descriptor_pb2.FileDescriptorSet.FromString(data)


def new_pool(*extra_files: bytes) -> descriptor_pool.DescriptorPool:
    """A new descriptor pool holding the provider API, then the serialized files `extra_files`."""
    pool = descriptor_pool.DescriptorPool()
    for file in load_descriptor_set().file:
        pool.AddSerializedFile(file.SerializeToString())
    for extra in extra_files:
        pool.AddSerializedFile(extra)
    return pool


_POOL = new_pool()


def _message(name: str) -> type[Message]:
    made: type[Message] = message_factory.GetMessageClass(_POOL.FindMessageTypeByName(f"{PACKAGE}.{name}"))
    return made


VersionRequest = _message("VersionRequest")
VersionResponse = _message("VersionResponse")
MountRequest = _message("MountRequest")
MountResponse = _message("MountResponse")
File = _message("File")
ObjectVersion = _message("ObjectVersion")
