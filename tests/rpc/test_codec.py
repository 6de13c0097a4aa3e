"""Mount's messages through the protobuf runtime are the betterproto messages, byte for byte in meaning."""

from __future__ import annotations

import pytest
from grpclib import GRPCError, Status
from hypothesis import given, settings
from hypothesis import strategies as st

from provider_aws._proto.v1alpha1 import File, MountRequest, MountResponse, ObjectVersion, VersionRequest
from provider_aws.model import MountedFile, MountResult, SecretBytes
from provider_aws.model import ObjectVersion as Version
from provider_aws.rpc.codec import MountWire, ProviderCodec, mount_input

WIRE = MountWire()


def betterproto_reply(result: MountResult) -> MountResponse:
    """The oracle: the reply built field by field with the generated betterproto classes."""
    return MountResponse(
        object_version=[ObjectVersion(id=item.id, version=item.version) for item in result.versions],
        files=[
            File(path=item.path, mode=item.mode, contents=item.contents.reveal()) for item in result.files
        ],
    )


CODEC = ProviderCodec(WIRE)

texts = st.text(max_size=40)
files = st.builds(
    MountedFile,
    path=texts,
    mode=st.integers(min_value=0, max_value=0o7777),
    contents=st.binary(max_size=200).map(SecretBytes),
)
results = st.builds(
    MountResult,
    files=st.lists(files, max_size=8).map(tuple),
    versions=st.lists(st.builds(Version, id=texts, version=texts), max_size=8).map(tuple),
)
requests = st.builds(
    MountRequest,
    attributes=texts,
    secrets=texts,
    target_path=texts,
    permission=texts,
    current_object_version=st.lists(st.builds(ObjectVersion, id=texts, version=texts), max_size=8),
)


@settings(max_examples=150, deadline=None, derandomize=True)
@given(results)
def test_a_reply_decodes_to_what_betterproto_would_have_sent(result: MountResult) -> None:
    data = CODEC.encode(WIRE.response(result), MountResponse)
    assert MountResponse().parse(data) == betterproto_reply(result)


@settings(max_examples=150, deadline=None, derandomize=True)
@given(requests)
def test_a_request_reads_as_betterproto_reads_it(request: MountRequest) -> None:
    assert CODEC.decode(bytes(request), MountRequest) == mount_input(request)


def test_other_messages_keep_the_default_codec() -> None:
    request = VersionRequest(version="v1alpha1")
    assert CODEC.decode(CODEC.encode(request, VersionRequest), VersionRequest) == request


def test_bytes_that_are_no_mount_request_are_invalid_argument() -> None:
    with pytest.raises(GRPCError) as refused:
        CODEC.decode(b"\x0a\xff\xff\xff\xff\x0f", MountRequest)
    assert refused.value.status is Status.INVALID_ARGUMENT


def test_many_current_versions_are_read_in_full() -> None:
    request = MountRequest(
        attributes="{}",
        current_object_version=[ObjectVersion(id=f"id-{i}", version=f"v-{i}") for i in range(50_000)],
    )
    decoded = CODEC.decode(bytes(request), MountRequest)
    assert len(decoded.current_versions) == 50_000
    assert decoded.current_versions[-1] == ("id-49999", "v-49999")
