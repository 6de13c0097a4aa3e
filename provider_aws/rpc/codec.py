"""Mount's request and reply through protobuf's C runtime.

The betterproto classes describe the API to grpclib, but their pure-Python codec made up about a
third of a warm Mount's CPU (building and serialising the reply's File messages) and took seconds to
decode a request with tens of thousands of versions. The codec below reads MountRequest and writes
MountResponse with message classes built from the same committed descriptor set, so the bytes on
the wire are those of the same `.proto`; every other message keeps grpclib's default handling.
"""

from __future__ import annotations

from typing import Any

from google.protobuf.message import DecodeError
from grpclib import GRPCError, Status
from grpclib.encoding.proto import ProtoCodec

from provider_aws._proto.v1alpha1 import MountRequest
from provider_aws.model import MountInput, MountResult
from provider_aws.rpc.reflection import message_classes

__all__ = ["MountWire", "ProviderCodec", "mount_input"]


def mount_input(request: Any) -> MountInput:
    """A MountRequest's fields as plain values; from either message class (same field names)."""
    return MountInput(
        attributes=request.attributes,
        secrets=request.secrets,
        target_path=request.target_path,
        permission=request.permission,
        current_versions=tuple((item.id, item.version) for item in request.current_object_version),
    )


class MountWire:
    """MountRequest bytes -> MountInput, MountResult -> MountResponse message."""

    def __init__(self) -> None:
        classes = message_classes("MountRequest", "MountResponse")
        self._request: Any = classes["MountRequest"]
        self.response_type: Any = classes["MountResponse"]

    def decode_request(self, data: bytes) -> MountInput:
        try:
            request = self._request.FromString(data)
        except DecodeError:
            raise GRPCError(
                Status.INVALID_ARGUMENT, "the Mount request is not a valid MountRequest"
            ) from None
        return mount_input(request)

    def response(self, result: MountResult) -> Any:
        reply = self.response_type()
        for version in result.versions:
            reply.object_version.add(id=version.id, version=version.version)
        for item in result.files:
            reply.files.add(path=item.path, mode=item.mode, contents=item.contents.reveal())
        return reply


class ProviderCodec(ProtoCodec):
    """grpclib's protobuf codec, with Mount's messages handled by `wire`."""

    def __init__(self, wire: MountWire) -> None:
        self._wire = wire

    def encode(self, message: Any, message_type: Any) -> bytes:
        if isinstance(message, self._wire.response_type):
            data: bytes = message.SerializeToString()
            return data
        encoded: bytes = super().encode(message, message_type)
        return encoded

    def decode(self, data: bytes, message_type: Any) -> Any:
        if message_type is MountRequest:
            return self._wire.decode_request(data)
        return super().decode(data, message_type)
