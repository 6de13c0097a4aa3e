"""What the driver sends, for tests: attributes built by provider_aws.cli.drivermount.build_request."""

from __future__ import annotations

import json
from pathlib import Path

from provider_aws.cli.drivermount import MountOptions, SecretProviderClass, build_request

__all__ = [
    "REGION",
    "SEED_DOC",
    "STATIC",
    "TEST_ACCESS_KEY",
    "TEST_SECRET_KEY",
    "pod_attributes",
    "seed_objects",
]

REGION = "eu-west-1"
# The static key pair of the tests (moto accepts any); tests.conftest re-exports it.
TEST_ACCESS_KEY = "AKIDTESTTESTTEST"
TEST_SECRET_KEY = "test-secret-access-key"
# The nodePublishSecretRef data of static credentials that moto accepts.
STATIC = json.dumps({"awsAccessKeyId": TEST_ACCESS_KEY, "awsSecretAccessKey": TEST_SECRET_KEY})
# The seed document's example secret (its text promises john.doe and 123456).
SEED_DOC = {"user": {"username": "john.doe", "password": "123456"}}


def seed_objects(first_arn: str, second_arn: str) -> str:
    """The seed document's `objects`: two jmesPath files from the first secret, the second as `foobar`."""
    return (
        f'- objectName: "{first_arn}"\n'
        "  jmesPath:\n"
        "    - path: user.username\n"
        "      objectAlias: dbusername\n"
        "    - path: user.password\n"
        "      objectAlias: dbpassword\n"
        f'- objectName: "{second_arn}"\n'
        "  objectAlias: foobar\n"
    )


def pod_attributes(
    objects: str,
    *,
    pod: str = "web-0",
    namespace: str = "shop",
    service_account: str = "web",
    region: str | None = REGION,
    sts_token: str | None = None,
    pod_identity_token: str | None = None,
    **parameters: str,
) -> str:
    """MountRequest.attributes for a pod mounting `objects`; region None leaves the lookup to the provider."""
    spc = {"objects": objects, **parameters}
    if region is not None:
        spc["region"] = region
    options = MountOptions(
        target=Path("/mnt"),
        namespace=namespace,
        pod=pod,
        pod_uid=f"uid-{namespace}-{pod}",
        service_account=service_account,
        sts_token=sts_token,
        pod_identity_token=pod_identity_token,
    )
    attributes: str = build_request(SecretProviderClass("test-spc", spc), options).attributes
    return attributes
