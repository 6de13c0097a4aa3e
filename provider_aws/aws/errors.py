"""Turn a classified AWS failure into the ProviderError a user can act on."""

from __future__ import annotations

from provider_aws.aws.clients import AwsCallError
from provider_aws.errors import (
    AccessDeniedError,
    ConfigError,
    NotFoundError,
    PreconditionError,
    ProviderError,
    UnavailableError,
)

__all__ = ["to_provider_error"]

_NOT_FOUND = frozenset({"ResourceNotFoundException", "ParameterNotFound", "ParameterVersionNotFound"})
_DENIED = frozenset(
    {
        "AccessDeniedException",
        "AccessDenied",
        "UnrecognizedClientException",
        "InvalidClientTokenId",
        "ExpiredTokenException",
        "ExpiredToken",
        "InvalidSignatureException",
        "SignatureDoesNotMatch",
        "DecryptionFailure",
        "KMSAccessDeniedException",
        "KMSDisabledException",
        "KMSInvalidStateException",
        "KMSNotFoundException",
    }
)
_INVALID = frozenset({"ValidationException", "InvalidParameterException", "InvalidParameterValueException"})


def to_provider_error(error: AwsCallError, what: str, region: str) -> ProviderError:
    """`what` names the object(s), e.g. 'secret "db/creds"'; never a value."""
    where = f"{what} in region {region}"
    if error.code in _NOT_FOUND:
        return NotFoundError(
            f"{where} was not found ({error.code}): check objectName, objectVersion and objectVersionLabel"
        )
    if error.code in _DENIED:
        hint = "the KMS key policy" if error.code.startswith(("KMS", "Decryption")) else "the IAM policy"
        return AccessDeniedError(
            f"access to {where} was denied ({error.code}): check {hint} of the pod's role"
        )
    if error.throttled:
        return UnavailableError(f"AWS throttled requests for {where} ({error.code}); retries were exhausted")
    if error.retriable:
        return UnavailableError(f"could not fetch {where}: {error.code} ({error.detail or 'no detail'})")
    if error.code in _INVALID:
        return ConfigError([f"AWS rejected the request for {where} ({error.code}): {error.detail}"])
    return PreconditionError(f"AWS refused the request for {where} ({error.code}): {error.detail}")
