"""Mount's messages as the provider writes and reads them are what betterproto's codec makes of them.

betterproto (test-only, generated into testkit/betterproto_api) encodes and decodes protobuf in pure
Python, independently of the protobuf runtime the provider uses: it is the oracle of the wire bytes.
"""

from __future__ import annotations

import pytest
from grpclib import GRPCError, Status
from hypothesis import given, settings
from hypothesis import strategies as st

from provider_aws.model import MountedFile, MountResult, SecretBytes
from provider_aws.model import ObjectVersion as Version
from provider_aws.rpc import messages
from provider_aws.rpc.codec import ProviderCodec, mount_input, mount_response
from testkit.betterproto_api.v1alpha1 import File, MountRequest, MountResponse, ObjectVersion


def betterproto_reply(result: MountResult) -> MountResponse:
    """The oracle: the reply built field by field with the generated betterproto classes."""
    return MountResponse(
        object_version=[ObjectVersion(id=item.id, version=item.version) for item in result.versions],
        files=[
            File(path=item.path, mode=item.mode, contents=item.contents.reveal()) for item in result.files
        ],
    )


CODEC = ProviderCodec()

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
def test_a_reply_is_the_bytes_betterproto_writes(result: MountResult) -> None:
    data = CODEC.encode(mount_response(result), messages.MountResponse)
    assert data == bytes(betterproto_reply(result))
    assert MountResponse().parse(data) == betterproto_reply(result)


@settings(max_examples=150, deadline=None, derandomize=True)
@given(requests)
def test_a_request_reads_as_betterproto_reads_it(request: MountRequest) -> None:
    decoded = CODEC.decode(bytes(request), messages.MountRequest)
    assert mount_input(decoded) == mount_input(request)


def test_version_messages_round_trip() -> None:
    request = messages.VersionRequest(version="v1alpha1")
    assert CODEC.decode(CODEC.encode(request, messages.VersionRequest), messages.VersionRequest) == request


def test_bytes_that_are_no_mount_request_are_invalid_argument() -> None:
    with pytest.raises(GRPCError) as refused:
        CODEC.decode(b"\x0a\xff\xff\xff\xff\x0f", messages.MountRequest)
    assert refused.value.status is Status.INVALID_ARGUMENT
    assert refused.value.message == "the Mount request is not a valid MountRequest"


def test_many_current_versions_are_read_in_full() -> None:
    request = MountRequest(
        attributes="{}",
        current_object_version=[ObjectVersion(id=f"id-{i}", version=f"v-{i}") for i in range(50_000)],
    )
    decoded = mount_input(CODEC.decode(bytes(request), messages.MountRequest))
    assert len(decoded.current_versions) == 50_000
    assert decoded.current_versions[-1] == ("id-49999", "v-49999")
