"""Between Mount's messages and the domain, and grpclib's protobuf codec with the provider's error.

The messages are protobuf-runtime classes (`rpc/messages.py`), which grpclib's ProtoCodec reads and
writes with protobuf's C runtime. Bytes that are no valid message are the caller's fault: they are
answered with INVALID_ARGUMENT rather than the INTERNAL an exception in a handler would get.
"""

from __future__ import annotations

from typing import Any

from google.protobuf.message import DecodeError, Message
from grpclib import GRPCError, Status
from grpclib.encoding.proto import ProtoCodec

from provider_aws.model import MountInput, MountResult
from provider_aws.rpc.messages import MountResponse

__all__ = ["ProviderCodec", "mount_input", "mount_response"]


def mount_input(request: Message) -> MountInput:
    """A MountRequest's fields as plain values."""
    return MountInput(
        attributes=request.attributes,
        secrets=request.secrets,
        target_path=request.target_path,
        permission=request.permission,
        current_versions=tuple((item.id, item.version) for item in request.current_object_version),
    )


def mount_response(result: MountResult) -> Message:
    """The MountResponse carrying `result`'s versions and files."""
    reply = MountResponse()
    for version in result.versions:
        reply.object_version.add(id=version.id, version=version.version)
    for item in result.files:
        reply.files.add(path=item.path, mode=item.mode, contents=item.contents.reveal())
    return reply


class ProviderCodec(ProtoCodec):
    """grpclib's protobuf codec; undecodable bytes are INVALID_ARGUMENT, naming the expected message."""

    def decode(self, data: bytes, message_type: Any) -> Any:
        try:
            return super().decode(data, message_type)
        except DecodeError:
            name = message_type.DESCRIPTOR.name
            call = name.removesuffix("Request")
            raise GRPCError(Status.INVALID_ARGUMENT, f"the {call} request is not a valid {name}") from None
